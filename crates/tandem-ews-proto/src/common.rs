//! What every EWS response shares: response codes and the ResponseMessages wrapper.

use tandem_xml::Writer;

/// EWS response codes used by Tandem (the names are Exchange's, `ResponseCodeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum ResponseCode {
    NoError,
    ErrorAccessDenied,
    ErrorCannotDeleteObject,
    ErrorCalendarInvalidTimeZone,
    ErrorDeleteDistinguishedFolder,
    ErrorFolderExists,
    ErrorFolderNotFound,
    ErrorIncorrectSchemaVersion,
    ErrorInternalServerError,
    ErrorInvalidIdMalformed,
    ErrorInvalidIdNotAnItemAttachmentId,
    ErrorInvalidOperation,
    ErrorInvalidPropertyRequest,
    ErrorInvalidPropertySet,
    ErrorInvalidRecipients,
    ErrorInvalidRequest,
    ErrorInvalidServerVersion,
    ErrorInvalidSubscription,
    ErrorInvalidChangeKey,
    ErrorStaleObject,
    ErrorAttachmentNestLevelLimitExceeded,
    ErrorInvalidPushSubscriptionUrl,
    ErrorItemNotFound,
    ErrorMoveCopyFailed,
    ErrorNonExistentMailbox,
    ErrorNotSupported,
    ErrorSchemaValidation,
    ErrorServerBusy,
    ErrorExceededSubscriptionCount,
    ErrorUnsupportedPathForQuery,
    ErrorUnsupportedQueryFilter,
    ErrorInvalidPropertySetDuplicateProperty,
    ErrorInvalidPropertyForOperation,
    ErrorInvalidExtendedPropertyValue,
    ErrorInvalidIndexedPagingParameters,
    ErrorUnsupportedMimeConversion,
    ErrorNoPropertyTagForCustomProperties,
    ErrorImpersonationDenied,
    ErrorIrresolvableConflict,
    ErrorNameResolutionNoResults,
    ErrorNameResolutionMultipleResults,
    ErrorChangeKeyRequiredForWriteOperations,
    ErrorInvalidSyncStateData,
    ErrorInvalidWatermark,
    ErrorSubscriptionNotFound,
    ErrorSubscriptionAccessDenied,
    ErrorExpiredSubscription,
    ErrorMailRecipientNotFound,
    ErrorDelegateNoUser,
    ErrorDelegateAlreadyExists,
    ErrorNotDelegate,
    ErrorImContactLimitReached,
    ErrorImGroupDisplayNameAlreadyExists,
    ErrorImGroupLimitReached,
    ErrorInvalidImContactId,
    ErrorInvalidImGroupId,
    ErrorInvalidImDistributionGroupSmtpAddress,
    ErrorItemSave,
}

impl ResponseCode {
    pub fn as_str(self) -> &'static str {
        use ResponseCode::*;
        match self {
            NoError => "NoError",
            ErrorAccessDenied => "ErrorAccessDenied",
            ErrorCannotDeleteObject => "ErrorCannotDeleteObject",
            ErrorCalendarInvalidTimeZone => "ErrorCalendarInvalidTimeZone",
            ErrorDeleteDistinguishedFolder => "ErrorDeleteDistinguishedFolder",
            ErrorFolderExists => "ErrorFolderExists",
            ErrorFolderNotFound => "ErrorFolderNotFound",
            ErrorIncorrectSchemaVersion => "ErrorIncorrectSchemaVersion",
            ErrorInternalServerError => "ErrorInternalServerError",
            ErrorInvalidIdMalformed => "ErrorInvalidIdMalformed",
            ErrorInvalidIdNotAnItemAttachmentId => "ErrorInvalidIdNotAnItemAttachmentId",
            ErrorInvalidOperation => "ErrorInvalidOperation",
            ErrorInvalidPropertyRequest => "ErrorInvalidPropertyRequest",
            ErrorInvalidPropertySet => "ErrorInvalidPropertySet",
            ErrorInvalidRecipients => "ErrorInvalidRecipients",
            ErrorInvalidRequest => "ErrorInvalidRequest",
            ErrorInvalidServerVersion => "ErrorInvalidServerVersion",
            ErrorInvalidSubscription => "ErrorInvalidSubscription",
            ErrorInvalidChangeKey => "ErrorInvalidChangeKey",
            ErrorStaleObject => "ErrorStaleObject",
            ErrorAttachmentNestLevelLimitExceeded => "ErrorAttachmentNestLevelLimitExceeded",
            ErrorInvalidPushSubscriptionUrl => "ErrorInvalidPushSubscriptionUrl",
            ErrorItemNotFound => "ErrorItemNotFound",
            ErrorMoveCopyFailed => "ErrorMoveCopyFailed",
            ErrorNonExistentMailbox => "ErrorNonExistentMailbox",
            ErrorNotSupported => "ErrorNotSupported",
            ErrorSchemaValidation => "ErrorSchemaValidation",
            ErrorServerBusy => "ErrorServerBusy",
            ErrorExceededSubscriptionCount => "ErrorExceededSubscriptionCount",
            ErrorUnsupportedPathForQuery => "ErrorUnsupportedPathForQuery",
            ErrorUnsupportedQueryFilter => "ErrorUnsupportedQueryFilter",
            ErrorInvalidPropertySetDuplicateProperty => "ErrorInvalidPropertySetDuplicateProperty",
            ErrorInvalidPropertyForOperation => "ErrorInvalidPropertyForOperation",
            ErrorInvalidExtendedPropertyValue => "ErrorInvalidExtendedPropertyValue",
            ErrorInvalidIndexedPagingParameters => "ErrorInvalidIndexedPagingParameters",
            ErrorUnsupportedMimeConversion => "ErrorUnsupportedMimeConversion",
            ErrorNoPropertyTagForCustomProperties => "ErrorNoPropertyTagForCustomProperties",
            ErrorImpersonationDenied => "ErrorImpersonationDenied",
            ErrorIrresolvableConflict => "ErrorIrresolvableConflict",
            ErrorNameResolutionNoResults => "ErrorNameResolutionNoResults",
            ErrorNameResolutionMultipleResults => "ErrorNameResolutionMultipleResults",
            ErrorChangeKeyRequiredForWriteOperations => "ErrorChangeKeyRequiredForWriteOperations",
            ErrorInvalidSyncStateData => "ErrorInvalidSyncStateData",
            ErrorInvalidWatermark => "ErrorInvalidWatermark",
            ErrorSubscriptionNotFound => "ErrorSubscriptionNotFound",
            ErrorSubscriptionAccessDenied => "ErrorSubscriptionAccessDenied",
            ErrorExpiredSubscription => "ErrorExpiredSubscription",
            ErrorMailRecipientNotFound => "ErrorMailRecipientNotFound",
            ErrorDelegateNoUser => "ErrorDelegateNoUser",
            ErrorDelegateAlreadyExists => "ErrorDelegateAlreadyExists",
            ErrorNotDelegate => "ErrorNotDelegate",
            ErrorImContactLimitReached => "ErrorImContactLimitReached",
            ErrorImGroupDisplayNameAlreadyExists => "ErrorImGroupDisplayNameAlreadyExists",
            ErrorImGroupLimitReached => "ErrorImGroupLimitReached",
            ErrorInvalidImContactId => "ErrorInvalidImContactId",
            ErrorInvalidImGroupId => "ErrorInvalidImGroupId",
            ErrorInvalidImDistributionGroupSmtpAddress => "ErrorInvalidImDistributionGroupSmtpAddress",
            ErrorItemSave => "ErrorItemSave",
        }
    }
}

/// Builds `<m:{Op}Response><m:ResponseMessages>…</m:ResponseMessages></m:{Op}Response>`.
#[derive(Debug)]
pub struct ResponseMessages {
    op: &'static str,
    w: Writer,
}

impl ResponseMessages {
    pub fn new(op: &'static str) -> ResponseMessages {
        let mut w = Writer::new();
        w.start(&format!("m:{op}Response"), &[]).start("m:ResponseMessages", &[]);
        ResponseMessages { op, w }
    }

    /// A successful message whose content (`inner`, rendered XML) follows ResponseCode.
    pub fn success(&mut self, inner: &str) -> &mut Self {
        let name = format!("m:{}ResponseMessage", self.op);
        self.w.start(&name, &[("ResponseClass", "Success")]).leaf("m:ResponseCode", "NoError").raw(inner).end();
        self
    }

    /// An error message; `inner` is what the schema still wants (often empty containers).
    pub fn error(&mut self, code: ResponseCode, text: &str, inner: &str) -> &mut Self {
        let name = format!("m:{}ResponseMessage", self.op);
        self.w
            .start(&name, &[("ResponseClass", "Error")])
            .leaf("m:MessageText", text)
            .leaf("m:ResponseCode", code.as_str())
            .leaf("m:DescriptiveLinkKey", "0")
            .raw(inner)
            .end();
        self
    }

    /// A warning message (results with a caveat, e.g. several name matches).
    pub fn warning(&mut self, code: ResponseCode, text: &str, inner: &str) -> &mut Self {
        let name = format!("m:{}ResponseMessage", self.op);
        self.w
            .start(&name, &[("ResponseClass", "Warning")])
            .leaf("m:MessageText", text)
            .leaf("m:ResponseCode", code.as_str())
            .leaf("m:DescriptiveLinkKey", "0")
            .raw(inner)
            .end();
        self
    }

    pub fn finish(self) -> String {
        self.w.finish()
    }
}

//! GetUserOofSettings: the out-of-office settings of a mailbox.

use tandem_xml::{Node, child, text};

use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub address: String,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let address = child(op, ns::TYPES, "Mailbox")
            .and_then(|m| child(m, ns::TYPES, "Address"))
            .map(text)
            .ok_or_else(|| ProtoError::schema("GetUserOofSettingsRequest needs Mailbox/Address"))?;
        Ok(Request { address })
    }
}

/// The settings of a mailbox that never set any.
pub const DEFAULT_SETTINGS: &str = "<t:OofState>Disabled</t:OofState><t:ExternalAudience>All</t:ExternalAudience><t:InternalReply><t:Message/></t:InternalReply><t:ExternalReply><t:Message/></t:ExternalReply>";

/// The response, with `settings` the stored children of OofSettings.
pub fn render(settings: &str) -> String {
    format!(
        "<m:GetUserOofSettingsResponse><m:ResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode></m:ResponseMessage><t:OofSettings>{settings}</t:OofSettings><m:AllowExternalOof>All</m:AllowExternalOof></m:GetUserOofSettingsResponse>"
    )
}

/// The error form.
pub fn render_error(code: &str, message: &str) -> String {
    format!(
        "<m:GetUserOofSettingsResponse><m:ResponseMessage ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:ResponseMessage></m:GetUserOofSettingsResponse>",
        tandem_xml::escape(message)
    )
}

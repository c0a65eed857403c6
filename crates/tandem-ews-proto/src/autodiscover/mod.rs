//! SOAP Autodiscover (`/autodiscover/autodiscover.svc`, MS-OXWSADISC): GetUserSettings and
//! GetDomainSettings, one module each, and the envelope both share.

use tandem_xml::soap::{self, Envelope};

use crate::{ProtoError, ns, version};

pub mod get_domain_settings;
pub mod get_user_settings;

/// Every user setting name Exchange defines (and exchangelib knows: a name outside this list
/// breaks it, so only requested names are ever returned).
pub const USER_SETTING_NAMES: &[&str] = &[
    "UserDisplayName",
    "UserDN",
    "UserDeploymentId",
    "InternalMailboxServer",
    "InternalRpcClientServer",
    "InternalMailboxServerDN",
    "InternalEcpUrl",
    "InternalEcpVoicemailUrl",
    "InternalEcpEmailSubscriptionsUrl",
    "InternalEcpTextMessagingUrl",
    "InternalEcpDeliveryReportUrl",
    "InternalEcpRetentionPolicyTagsUrl",
    "InternalEcpPublishingUrl",
    "InternalEwsUrl",
    "InternalOABUrl",
    "InternalUMUrl",
    "InternalWebClientUrls",
    "MailboxDN",
    "PublicFolderServer",
    "ActiveDirectoryServer",
    "ExternalMailboxServer",
    "ExternalMailboxServerRequiresSSL",
    "ExternalMailboxServerAuthenticationMethods",
    "EcpVoicemailUrlFragment",
    "EcpEmailSubscriptionsUrlFragment",
    "EcpTextMessagingUrlFragment",
    "EcpDeliveryReportUrlFragment",
    "EcpRetentionPolicyTagsUrlFragment",
    "EcpPublishingUrlFragment",
    "ExternalEcpUrl",
    "ExternalEcpVoicemailUrl",
    "ExternalEcpEmailSubscriptionsUrl",
    "ExternalEcpTextMessagingUrl",
    "ExternalEcpDeliveryReportUrl",
    "ExternalEcpRetentionPolicyTagsUrl",
    "ExternalEcpPublishingUrl",
    "ExternalEwsUrl",
    "ExternalOABUrl",
    "ExternalUMUrl",
    "ExternalWebClientUrls",
    "CrossOrganizationSharingEnabled",
    "AlternateMailboxes",
    "CasVersion",
    "EwsSupportedSchemas",
    "InternalPop3Connections",
    "ExternalPop3Connections",
    "InternalImap4Connections",
    "ExternalImap4Connections",
    "InternalSmtpConnections",
    "ExternalSmtpConnections",
    "InternalServerExclusiveConnect",
    "ExternalServerExclusiveConnect",
    "ExchangeRpcUrl",
    "ShowGalAsDefaultView",
    "AutoDiscoverSMTPAddress",
    "InteropExternalEwsUrl",
    "ExternalEwsVersion",
    "InteropExternalEwsVersion",
    "MobileMailboxPolicyInterop",
    "GroupingInformation",
    "UserMSOnline",
    "MapiHttpEnabled",
];

/// Which operation a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    GetUserSettings(get_user_settings::Request),
    GetDomainSettings(get_domain_settings::Request),
    /// Another Autodiscover operation (GetFederationInformation, GetOrganizationRelationshipSettings…).
    Other(String),
}

/// Parses a SOAP Autodiscover request envelope.
pub fn parse(env: &Envelope<'_, '_>) -> Result<Request, ProtoError> {
    let op = env.operation;
    if op.tag_name().namespace() != Some(ns::AUTODISCOVER) {
        return Err(ProtoError::schema("the operation is not in the Autodiscover namespace"));
    }
    match op.tag_name().name() {
        "GetUserSettingsRequestMessage" => get_user_settings::Request::parse(op).map(Request::GetUserSettings),
        "GetDomainSettingsRequestMessage" => get_domain_settings::Request::parse(op).map(Request::GetDomainSettings),
        other => Ok(Request::Other(other.to_owned())),
    }
}

const NAMESPACES: &[(&str, &str)] = &[("a", ns::ADDRESSING), ("i", ns::XSI)];

const REQUEST_NAMESPACES: &[(&str, &str)] = &[("a", ns::AUTODISCOVER), ("wsa", ns::ADDRESSING)];

/// The `wsa:Action` (and SOAPAction) URI of an Autodiscover operation (`GetUserSettings`).
pub fn action(operation: &str) -> String {
    format!("{}/Autodiscover/{operation}", ns::AUTODISCOVER)
}

/// A request envelope for `operation` sent to `to` (the service URL, when known), asking for
/// the Exchange 2013 schema as Skype for Business does. `body` uses the `a:` prefix.
pub fn request_envelope(operation: &str, to: Option<&str>, body: &str) -> String {
    let mut header = format!(
        "<a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>{}</wsa:Action>",
        action(operation)
    );
    if let Some(to) = to {
        header.push_str(&format!("<wsa:To>{}</wsa:To>", tandem_xml::escape(to)));
    }
    soap::envelope(REQUEST_NAMESPACES, &header, body)
}

/// The response envelope with `wsa:Action` and ServerVersionInfo headers.
pub fn envelope(action: &str, body: &str) -> String {
    let header = format!(
        "<a:Action s:mustUnderstand=\"1\">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/{action}</a:Action>\
         <h:ServerVersionInfo xmlns:h=\"{}\"><h:MajorVersion>{}</h:MajorVersion><h:MinorVersion>{}</h:MinorVersion>\
         <h:MajorBuildNumber>{}</h:MajorBuildNumber><h:MinorBuildNumber>{}</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo>",
        ns::AUTODISCOVER,
        version::MAJOR,
        version::MINOR,
        version::MAJOR_BUILD,
        version::MINOR_BUILD,
    );
    soap::envelope(NAMESPACES, &header, body)
}

/// A SOAP fault for a request Autodiscover cannot read.
pub fn fault(reason: &str) -> String {
    soap::fault(soap::FaultCode::Client, reason, "", "", NAMESPACES)
}

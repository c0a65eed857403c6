//! GetUserOofSettings: the out-of-office settings of a mailbox.

use tandem_xml::{Node, child, text};

use super::BuildRequest;
use crate::reply::{Message, MessageError, ReplyError};
use crate::{ProtoError, ns, parse_datetime};

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

impl BuildRequest for Request {
    const OPERATION: &'static str = "GetUserOofSettings";

    fn to_xml(&self) -> String {
        format!(
            "<m:GetUserOofSettingsRequest><t:Mailbox><t:Address>{}</t:Address></t:Mailbox></m:GetUserOofSettingsRequest>",
            tandem_xml::escape(&self.address)
        )
    }
}

/// A mailbox's out-of-office settings as a client reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OofSettings {
    /// Enabled, Disabled or Scheduled.
    pub state: String,
    /// None, Known or All.
    pub external_audience: String,
    /// The scheduled window (UTC seconds), when one is set.
    pub duration: Option<(i64, i64)>,
    pub internal_reply: String,
    pub external_reply: String,
    /// AllowExternalOof: what the organisation lets the mailbox answer outside.
    pub allow_external: String,
}

/// Reads a GetUserOofSettings answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<OofSettings, MessageError>, ReplyError> {
    let (m, t) = (ns::MESSAGES, ns::TYPES);
    let op = crate::reply::response(doc, "GetUserOofSettings")?;
    let message = child(op, m, "ResponseMessage")
        .ok_or_else(|| ReplyError::unexpected("GetUserOofSettings", "no ResponseMessage"))?;
    if let Err(e) = Message::of(message).result() {
        return Ok(Err(e));
    }
    let s = child(op, t, "OofSettings")
        .ok_or_else(|| ReplyError::unexpected("GetUserOofSettings", "a success without OofSettings"))?;
    let f = |n: &str| child(s, t, n).map(text).unwrap_or_default();
    let reply = |n: &str| child(s, t, n).and_then(|r| child(r, t, "Message")).map(text).unwrap_or_default();
    let duration = child(s, t, "Duration").and_then(|d| {
        let at = |n: &str| child(d, t, n).map(text).and_then(|v| parse_datetime(&v));
        Some((at("StartTime")?, at("EndTime")?))
    });
    Ok(Ok(OofSettings {
        state: f("OofState"),
        external_audience: f("ExternalAudience"),
        duration,
        internal_reply: reply("InternalReply"),
        external_reply: reply("ExternalReply"),
        allow_external: child(op, m, "AllowExternalOof").map(text).unwrap_or_default(),
    }))
}

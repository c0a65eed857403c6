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

impl OofSettings {
    /// Reads settings as the Mailbox stores them (the `t:` children of UserOofSettings, as
    /// SetUserOofSettings sent them, or [`DEFAULT_SETTINGS`]); `None` when they do not parse.
    pub fn from_stored(settings: &str) -> Option<OofSettings> {
        let wrapped = format!("<t:OofSettings xmlns:t=\"{}\">{settings}</t:OofSettings>", ns::TYPES);
        let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
        Some(Self::of(doc.root_element(), "All"))
    }

    fn of(s: Node<'_, '_>, allow_external: &str) -> OofSettings {
        let t = ns::TYPES;
        let f = |n: &str| child(s, t, n).map(text).unwrap_or_default();
        let reply = |n: &str| child(s, t, n).and_then(|r| child(r, t, "Message")).map(text).unwrap_or_default();
        let duration = child(s, t, "Duration").and_then(|d| {
            let at = |n: &str| child(d, t, n).map(text).and_then(|v| parse_datetime(&v));
            Some((at("StartTime")?, at("EndTime")?))
        });
        OofSettings {
            state: f("OofState"),
            external_audience: f("ExternalAudience"),
            duration,
            internal_reply: reply("InternalReply"),
            external_reply: reply("ExternalReply"),
            allow_external: allow_external.to_owned(),
        }
    }

    /// Whether automatic replies are on at `now`: Enabled, or Scheduled and inside its window.
    pub fn is_on(&self, now: i64) -> bool {
        match self.state.as_str() {
            "Enabled" => true,
            "Scheduled" => self.duration.is_some_and(|(s, e)| s <= now && now < e),
            _ => false,
        }
    }
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
    let allow = child(op, m, "AllowExternalOof").map(text).unwrap_or_default();
    Ok(Ok(OofSettings::of(s, &allow)))
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[test]
    fn stored_settings_read_back_and_say_when_they_are_on() {
        let d = OofSettings::from_stored(DEFAULT_SETTINGS).unwrap();
        assert_eq!((d.state.as_str(), d.external_audience.as_str()), ("Disabled", "All"));
        assert!(!d.is_on(0));
        let s = OofSettings::from_stored(
            "<t:OofState>Scheduled</t:OofState><t:ExternalAudience>Known</t:ExternalAudience><t:Duration><t:StartTime>2026-12-01T00:00:00Z</t:StartTime><t:EndTime>2026-12-02T00:00:00Z</t:EndTime></t:Duration><t:InternalReply><t:Message>In &amp; out</t:Message></t:InternalReply>",
        )
        .unwrap();
        let (a, b) = s.duration.unwrap();
        assert_eq!((s.internal_reply.as_str(), s.external_reply.as_str()), ("In & out", ""));
        assert!(!s.is_on(a - 1) && s.is_on(a) && !s.is_on(b));
        assert!(OofSettings::from_stored("<t:Open>").is_none());
    }
}

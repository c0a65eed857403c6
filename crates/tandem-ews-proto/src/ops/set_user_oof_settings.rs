//! SetUserOofSettings: replaces the out-of-office settings of a mailbox.

use tandem_xml::{Node, child, children, text};

use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub address: String,
    /// OofState: Enabled, Disabled or Scheduled.
    pub state: String,
    /// The UserOofSettings children, rendered with the `t:` prefix, to keep as sent.
    pub settings: String,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let t = ns::TYPES;
        let address = child(op, t, "Mailbox")
            .and_then(|m| child(m, t, "Address"))
            .map(text)
            .ok_or_else(|| ProtoError::schema("SetUserOofSettingsRequest needs Mailbox/Address"))?;
        let s = child(op, t, "UserOofSettings")
            .ok_or_else(|| ProtoError::schema("SetUserOofSettingsRequest needs UserOofSettings"))?;
        let state = child(s, t, "OofState").map(text).unwrap_or_default();
        if !matches!(state.as_str(), "Enabled" | "Disabled" | "Scheduled") {
            return Err(ProtoError::schema(format!("OofState `{state}` is not valid")));
        }
        if state == "Scheduled" {
            let d =
                child(s, t, "Duration").ok_or_else(|| ProtoError::schema("a Scheduled OofState needs a Duration"))?;
            let st = child(d, t, "StartTime").map(text).and_then(|v| crate::parse_datetime(&v));
            let en = child(d, t, "EndTime").map(text).and_then(|v| crate::parse_datetime(&v));
            match (st, en) {
                (Some(a), Some(b)) if b > a => {}
                _ => {
                    return Err(ProtoError::new(
                        crate::ResponseCode::ErrorInvalidRequest,
                        "The Duration's EndTime must be after its StartTime.",
                    ));
                }
            }
        }
        let mut settings = String::new();
        for c in children(s) {
            tandem_xml::serialize(c, t, "t", &mut settings);
        }
        Ok(Request { address, state, settings })
    }
}

pub fn render() -> String {
    "<m:SetUserOofSettingsResponse><m:ResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode></m:ResponseMessage></m:SetUserOofSettingsResponse>".to_owned()
}

pub fn render_error(code: &str, message: &str) -> String {
    format!(
        "<m:SetUserOofSettingsResponse><m:ResponseMessage ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:ResponseMessage></m:SetUserOofSettingsResponse>",
        tandem_xml::escape(message)
    )
}

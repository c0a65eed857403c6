//! GetMailTips: per-recipient tips (out-of-office reply, invalid or external recipient). Stray
//! text between the request's elements (exchangelib writes some) is ignored.

use tandem_xml::{Node, Writer, child, children, text};

use super::need;
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub recipients: Vec<String>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let recipients = children(need(op, "Recipients")?)
            .map(|m| child(m, ns::TYPES, "EmailAddress").map(text).unwrap_or_default())
            .collect();
        Ok(Request { recipients })
    }
}

/// One recipient's tips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tips {
    pub address: String,
    pub invalid: bool,
    pub external: bool,
    /// The out-of-office reply when the recipient is away now.
    pub out_of_office: Option<String>,
}

pub fn render(tips: &[Tips]) -> String {
    let mut w = Writer::new();
    w.start("m:GetMailTipsResponse", &[("ResponseClass", "Success")]).leaf("m:ResponseCode", "NoError");
    w.start("m:ResponseMessages", &[]);
    for t in tips {
        w.start("m:MailTipsResponseMessageType", &[("ResponseClass", "Success")]).leaf("m:ResponseCode", "NoError");
        w.start("m:MailTips", &[]);
        w.start("t:RecipientAddress", &[]).leaf("t:EmailAddress", &t.address).leaf("t:RoutingType", "SMTP").end();
        if let Some(reply) = &t.out_of_office {
            w.start("t:OutOfOffice", &[]).start("t:ReplyBody", &[]).leaf("t:Message", reply).end().end();
        }
        w.leaf("t:MailboxFull", "false")
            .leaf("t:TotalMemberCount", "1")
            .leaf("t:ExternalMemberCount", if t.external { "1" } else { "0" })
            .leaf("t:MaxMessageSize", "33554432")
            .leaf("t:DeliveryRestricted", "false")
            .leaf("t:IsModerated", "false")
            .leaf("t:InvalidRecipient", if t.invalid { "true" } else { "false" });
        w.end().end();
    }
    w.finish()
}

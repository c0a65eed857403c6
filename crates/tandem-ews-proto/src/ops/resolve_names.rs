//! ResolveNames: directory look-up by name, display name or address.

use tandem_xml::{Node, Writer};

use super::need;
use crate::{ProtoError, parse_bool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub unresolved: String,
    pub full_contact_data: bool,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let unresolved = tandem_xml::text(need(op, "UnresolvedEntry")?);
        let full_contact_data = op.attribute("ReturnFullContactData").and_then(parse_bool).unwrap_or(false);
        Ok(Request { unresolved, full_contact_data })
    }
}

/// One match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub name: String,
    pub address: String,
    pub display_name: String,
}

/// `<m:ResolutionSet …><t:Resolution>…</t:Resolution></m:ResolutionSet>`.
pub fn render(found: &[Resolution], full: bool) -> String {
    let mut w = Writer::new();
    let n = found.len().to_string();
    w.start("m:ResolutionSet", &[("TotalItemsInView", &n), ("IncludesLastItemInRange", "true")]);
    for r in found {
        w.start("t:Resolution", &[]).start("t:Mailbox", &[]);
        w.leaf("t:Name", &r.display_name)
            .leaf("t:EmailAddress", &r.address)
            .leaf("t:RoutingType", "SMTP")
            .leaf("t:MailboxType", "Mailbox");
        w.end();
        if full {
            w.start("t:Contact", &[]).leaf("t:DisplayName", &r.display_name);
            w.start("t:EmailAddresses", &[])
                .leaf_with("t:Entry", &[("Key", "EmailAddress1")], &format!("SMTP:{}", r.address))
                .end();
            w.leaf("t:ContactSource", "ActiveDirectory").end();
        }
        w.end();
    }
    w.finish()
}

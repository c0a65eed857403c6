//! ConvertId: converts ids between formats (EwsId, EwsLegacyId, EntryId, HexEntryId, StoreId,
//! OwaId). exchangelib sends it as its version probe and DavMail to learn the user's address.

use tandem_xml::{Node, children};

use super::need;
use crate::{ProtoError, ns};

pub const FORMATS: &[&str] = &["EwsId", "EwsLegacyId", "EntryId", "HexEntryId", "StoreId", "OwaId"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceId {
    pub format: String,
    pub id: String,
    pub mailbox: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub destination: String,
    pub sources: Vec<SourceId>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let destination = op.attribute("DestinationFormat").unwrap_or("EwsId").to_owned();
        if !FORMATS.contains(&destination.as_str()) {
            return Err(ProtoError::schema(format!("DestinationFormat {destination} is not valid")));
        }
        let sources = children(need(op, "SourceIds")?)
            .filter(|n| n.tag_name().namespace() == Some(ns::TYPES))
            .map(|n| SourceId {
                format: n.attribute("Format").unwrap_or("EwsId").to_owned(),
                id: n.attribute("Id").unwrap_or_default().to_owned(),
                mailbox: n.attribute("Mailbox").unwrap_or_default().to_owned(),
            })
            .collect();
        Ok(Request { destination, sources })
    }
}

/// `<m:AlternateId xsi:type="t:AlternateIdType" …/>` for a converted id.
pub fn render(format: &str, id: &str, mailbox: &str) -> String {
    format!(
        "<m:AlternateId xsi:type=\"t:AlternateIdType\" Format=\"{}\" Id=\"{}\" Mailbox=\"{}\"/>",
        tandem_xml::escape(format),
        tandem_xml::escape(id),
        tandem_xml::escape(mailbox)
    )
}

//! DeleteItem: HardDelete, SoftDelete (to Recoverable Items) or MoveToDeletedItems.

use tandem_xml::Node;

use super::delete_folder::DeleteType;
use super::{BuildRequest, need};
use crate::ProtoError;
use crate::reply::{self, MessageError, ReplyError};
use crate::types::ItemRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub delete_type: DeleteType,
    /// `SendMeetingCancellations` (`SendToNone`, `SendOnlyToAll`, `SendToAllAndSaveCopy`): for a
    /// meeting its organizer deletes, whether the attendees are told.
    pub send_cancellations: Option<String>,
    pub items: Vec<Result<ItemRef, ProtoError>>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request {
            delete_type: DeleteType::parse(op)?,
            send_cancellations: op.attribute("SendMeetingCancellations").map(str::to_owned),
            items: ItemRef::parse_each(need(op, "ItemIds")?),
        })
    }

    pub fn new(delete_type: DeleteType, items: Vec<ItemRef>) -> Request {
        // Exchange requires the attribute for calendar items; the client never cancels meetings.
        Request {
            delete_type,
            send_cancellations: Some("SendToNone".into()),
            items: items.into_iter().map(Ok).collect(),
        }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "DeleteItem";

    /// Ids that failed to parse (only a parsed request has them) are left out. Calendar items
    /// are deleted without sending cancellations, as Exchange requires the attribute for them.
    fn to_xml(&self) -> String {
        let mut s = format!(
            "<m:DeleteItem DeleteType=\"{}\" SendMeetingCancellations=\"{}\" AffectedTaskOccurrences=\"AllOccurrences\"><m:ItemIds>",
            self.delete_type.as_str(),
            tandem_xml::escape(self.send_cancellations.as_deref().unwrap_or("SendToNone"))
        );
        for id in self.items.iter().flatten() {
            s.push_str(&id.to_xml());
        }
        s.push_str("</m:ItemIds></m:DeleteItem>");
        s
    }
}

/// Reads a DeleteItem answer: one outcome per id asked for.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Vec<Result<(), MessageError>>, ReplyError> {
    Ok(reply::messages(doc, "DeleteItem")?.iter().map(|m| m.result().map(|_| ())).collect())
}

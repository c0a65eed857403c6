//! RemoveContactFromImList: takes a contact off the IM list: out of every group, and its Quick Contacts item removed.

use tandem_xml::Node;

use super::BuildRequest;
use super::im_items;
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};
use crate::types::ItemRef;

pub const OPERATION: &str = "RemoveContactFromImList";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub contact_id: ItemRef,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let contact_id = im_items::need_id(op, "ContactId")?;
        Ok(Request { contact_id })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [im_items::request_id("ContactId", &self.contact_id)].concat();
        format!("<m:RemoveContactFromImList>{inner}</m:RemoveContactFromImList>")
    }
}

/// The successful answer.
pub fn render() -> String {
    im_items::render_success(OPERATION, "")
}

/// Reads the answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<(), MessageError>, ReplyError> {
    im_items::parse_empty(doc, OPERATION)
}

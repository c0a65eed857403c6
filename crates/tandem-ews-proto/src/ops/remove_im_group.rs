//! RemoveImGroup: removes a user group; its members stay on the list (in Other Contacts when no other group lists them).

use tandem_xml::Node;

use super::BuildRequest;
use super::im_items;
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};
use crate::types::ItemRef;

pub const OPERATION: &str = "RemoveImGroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub group_id: ItemRef,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let group_id = im_items::need_id(op, "GroupId")?;
        Ok(Request { group_id })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [im_items::request_id("GroupId", &self.group_id)].concat();
        format!("<m:RemoveImGroup>{inner}</m:RemoveImGroup>")
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

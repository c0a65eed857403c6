//! SetImGroup: renames a user group.

use tandem_xml::{Node, escape};

use super::BuildRequest;
use super::im_items;
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};
use crate::types::ItemRef;

pub const OPERATION: &str = "SetImGroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub group_id: ItemRef,
    pub new_display_name: String,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let group_id = im_items::need_id(op, "GroupId")?;
        let new_display_name = im_items::need_text(op, "NewDisplayName")?;
        Ok(Request { group_id, new_display_name })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [
            im_items::request_id("GroupId", &self.group_id),
            format!("<m:NewDisplayName>{}</m:NewDisplayName>", escape(&self.new_display_name)),
        ]
        .concat();
        format!("<m:SetImGroup>{inner}</m:SetImGroup>")
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

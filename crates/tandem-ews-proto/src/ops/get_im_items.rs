//! GetImItems: the groups and contact personas asked for by id (unknown ids are left out, as Exchange leaves them).

use tandem_xml::{Node, children};

use super::BuildRequest;
use super::im_items::{self, ImItemList};
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};
use crate::types::ItemRef;

pub const OPERATION: &str = "GetImItems";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// ContactIds: contact items.
    pub contact_ids: Vec<ItemRef>,
    /// GroupIds: group items.
    pub group_ids: Vec<ItemRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let ids = |name: &str| -> Result<Vec<ItemRef>, ProtoError> {
            match super::opt(op, name) {
                Some(list) => children(list).map(im_items::parse_id).collect(),
                None => Ok(Vec::new()),
            }
        };
        Ok(Request { contact_ids: ids("ContactIds")?, group_ids: ids("GroupIds")? })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let ids = |name: &str, list: &[ItemRef]| -> String {
            if list.is_empty() {
                return String::new();
            }
            let inner: String = list.iter().map(ItemRef::to_xml).collect();
            format!("<m:{name}>{inner}</m:{name}>")
        };
        format!(
            "<m:GetImItems>{}{}</m:GetImItems>",
            ids("ContactIds", &self.contact_ids),
            ids("GroupIds", &self.group_ids)
        )
    }
}

/// The successful answer.
pub fn render(list: &ImItemList) -> String {
    im_items::render_success(OPERATION, &list.render())
}

/// Reads the answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<ImItemList, MessageError>, ReplyError> {
    im_items::parse_list(doc, OPERATION)
}

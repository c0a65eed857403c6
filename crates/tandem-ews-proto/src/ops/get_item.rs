//! GetItem: items by id under a shape.

use tandem_xml::Node;

use super::create_item::{AnswerItems, items_of};
use super::{BuildRequest, need};
use crate::ProtoError;
use crate::reply::ReplyError;
use crate::types::{ItemRef, Shape};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub shape: Shape,
    pub items: Vec<Result<ItemRef, ProtoError>>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request { shape: Shape::parse(need(op, "ItemShape")?)?, items: ItemRef::parse_each(need(op, "ItemIds")?) })
    }

    pub fn new(shape: Shape, items: Vec<ItemRef>) -> Request {
        Request { shape, items: items.into_iter().map(Ok).collect() }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "GetItem";

    /// Ids that failed to parse (only a parsed request has them) are left out.
    fn to_xml(&self) -> String {
        let mut s = format!("<m:GetItem>{}<m:ItemIds>", self.shape.to_xml("ItemShape"));
        for id in self.items.iter().flatten() {
            s.push_str(&id.to_xml());
        }
        s.push_str("</m:ItemIds></m:GetItem>");
        s
    }
}

/// Reads a GetItem answer: for each id asked for, the item (id and properties) or the error.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<AnswerItems, ReplyError> {
    items_of(doc, "GetItem")
}

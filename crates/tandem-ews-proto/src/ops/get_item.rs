//! GetItem: items by id under a shape.

use tandem_xml::Node;

use super::need;
use crate::ProtoError;
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
}

//! MoveItem and CopyItem: the same request shape.

use tandem_xml::{Node, children};

use super::need;
use crate::ProtoError;
use crate::types::{FolderRef, ItemRef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub to: FolderRef,
    pub items: Vec<Result<ItemRef, ProtoError>>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let to = children(need(op, "ToFolderId")?)
            .next()
            .ok_or_else(|| ProtoError::schema("ToFolderId is empty"))
            .and_then(FolderRef::parse)?;
        Ok(Request { to, items: ItemRef::parse_each(need(op, "ItemIds")?) })
    }
}

//! DeleteItem: HardDelete, SoftDelete (to Recoverable Items) or MoveToDeletedItems.

use tandem_xml::Node;

use super::delete_folder::DeleteType;
use super::need;
use crate::ProtoError;
use crate::types::ItemRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub delete_type: DeleteType,
    pub items: Vec<Result<ItemRef, ProtoError>>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request { delete_type: DeleteType::parse(op)?, items: ItemRef::parse_each(need(op, "ItemIds")?) })
    }
}

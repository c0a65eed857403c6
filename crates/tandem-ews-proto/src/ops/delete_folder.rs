//! DeleteFolder: HardDelete, SoftDelete or MoveToDeletedItems.

use tandem_xml::Node;

use super::need;
use crate::ProtoError;
use crate::types::FolderRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteType {
    HardDelete,
    SoftDelete,
    MoveToDeletedItems,
}

impl DeleteType {
    pub fn parse(op: Node<'_, '_>) -> Result<DeleteType, ProtoError> {
        match op.attribute("DeleteType") {
            Some("HardDelete") => Ok(DeleteType::HardDelete),
            Some("SoftDelete") => Ok(DeleteType::SoftDelete),
            Some("MoveToDeletedItems") => Ok(DeleteType::MoveToDeletedItems),
            other => Err(ProtoError::schema(format!("DeleteType {other:?} is not valid"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeleteType::HardDelete => "HardDelete",
            DeleteType::SoftDelete => "SoftDelete",
            DeleteType::MoveToDeletedItems => "MoveToDeletedItems",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub delete_type: DeleteType,
    pub folders: Vec<FolderRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request { delete_type: DeleteType::parse(op)?, folders: FolderRef::parse_all(need(op, "FolderIds")?)? })
    }
}

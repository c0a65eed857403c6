//! GetFolder: folders by id or distinguished name.

use tandem_xml::Node;

use super::need;
use crate::types::{FolderRef, Shape};
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub shape: Shape,
    pub folders: Vec<FolderRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let _ = ns::MESSAGES;
        Ok(Request {
            shape: Shape::parse(need(op, "FolderShape")?)?,
            folders: FolderRef::parse_all(need(op, "FolderIds")?)?,
        })
    }
}

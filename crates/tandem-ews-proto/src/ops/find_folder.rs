//! FindFolder: subfolders (Shallow) or the whole subtree (Deep), with paging and a restriction.

use tandem_xml::Node;

use super::{need, opt};
use crate::types::{FolderRef, IndexedPage, Restriction, Shape};
use crate::{ProtoError, ResponseCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traversal {
    Shallow,
    Deep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub traversal: Traversal,
    pub shape: Shape,
    pub page: Option<IndexedPage>,
    pub restriction: Option<Restriction>,
    pub parents: Vec<FolderRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let traversal = match op.attribute("Traversal").unwrap_or("Shallow") {
            "Shallow" => Traversal::Shallow,
            "Deep" => Traversal::Deep,
            "SoftDeleted" => {
                return Err(ProtoError::new(
                    ResponseCode::ErrorNotSupported,
                    "SoftDeleted traversal is not supported.",
                ));
            }
            other => return Err(ProtoError::schema(format!("Traversal {other} is not valid"))),
        };
        if opt(op, "FractionalPageFolderView").is_some() {
            return Err(ProtoError::new(ResponseCode::ErrorNotSupported, "FractionalPageFolderView is not supported."));
        }
        Ok(Request {
            traversal,
            shape: Shape::parse(need(op, "FolderShape")?)?,
            page: opt(op, "IndexedPageFolderView").map(IndexedPage::parse).transpose()?,
            restriction: opt(op, "Restriction").map(Restriction::parse_container).transpose()?,
            parents: FolderRef::parse_all(need(op, "ParentFolderIds")?)?,
        })
    }
}

//! SyncFolderHierarchy: the folders under a folder (root when none is named) as changes since a
//! sync state.

use tandem_xml::{Node, children, text};

use super::sync_folder_items::parse_state;
use super::{need, opt};
use crate::ProtoError;
use crate::types::{FolderRef, Shape};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub shape: Shape,
    pub folder: Option<FolderRef>,
    pub state: i64,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let folder = match opt(op, "SyncFolderId") {
            Some(n) => Some(
                children(n)
                    .next()
                    .ok_or_else(|| ProtoError::schema("SyncFolderId is empty"))
                    .and_then(FolderRef::parse)?,
            ),
            None => None,
        };
        let state = match opt(op, "SyncState").map(text).filter(|s| !s.is_empty()) {
            Some(s) => parse_state(&s)?,
            None => 0,
        };
        Ok(Request { shape: Shape::parse(need(op, "FolderShape")?)?, folder, state })
    }
}

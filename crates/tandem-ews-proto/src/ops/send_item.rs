//! SendItem: sends saved drafts, optionally keeping a copy.

use tandem_xml::{Node, children};

use super::{need, opt};
use crate::types::{FolderRef, ItemRef};
use crate::{ProtoError, parse_bool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub save_copy: bool,
    pub saved_folder: Option<FolderRef>,
    pub items: Vec<Result<ItemRef, ProtoError>>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let save_copy = op.attribute("SaveItemToFolder").and_then(parse_bool).unwrap_or(true);
        let saved_folder = match opt(op, "SavedItemFolderId") {
            Some(n) => Some(
                children(n)
                    .next()
                    .ok_or_else(|| ProtoError::schema("SavedItemFolderId is empty"))
                    .and_then(FolderRef::parse)?,
            ),
            None => None,
        };
        Ok(Request { save_copy, saved_folder, items: ItemRef::parse_each(need(op, "ItemIds")?) })
    }
}

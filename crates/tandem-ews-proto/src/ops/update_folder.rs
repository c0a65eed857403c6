//! UpdateFolder: SetFolderField / DeleteFolderField on DisplayName and FolderClass.

use tandem_xml::{Node, child, children, text};

use super::need;
use crate::types::{FolderRef, PropertyPath};
use crate::{ProtoError, ResponseCode, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    SetDisplayName(String),
    SetClass(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderChange {
    pub folder: FolderRef,
    /// Each update, or the error it alone deserves.
    pub changes: Result<Vec<Change>, ProtoError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub changes: Vec<FolderChange>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let mut out = Vec::new();
        for fc in children(need(op, "FolderChanges")?) {
            let folder = children(fc)
                .find(|c| c.tag_name().name() != "Updates")
                .ok_or_else(|| ProtoError::schema("FolderChange needs a folder id"))
                .and_then(FolderRef::parse)?;
            let updates =
                child(fc, ns::TYPES, "Updates").ok_or_else(|| ProtoError::schema("FolderChange needs Updates"))?;
            out.push(FolderChange { folder, changes: children(updates).map(parse_update).collect() });
        }
        Ok(Request { changes: out })
    }
}

fn parse_update(u: Node<'_, '_>) -> Result<Change, ProtoError> {
    let path = PropertyPath::first_in(u)?;
    let unsupported = || {
        ProtoError::new(ResponseCode::ErrorInvalidPropertyForOperation, "This folder property cannot be changed here.")
    };
    match (u.tag_name().name(), &path) {
        ("SetFolderField", PropertyPath::Field(f)) => {
            let folder = children(u)
                .find(|c| crate::types::FOLDER_ELEMENTS.contains(&c.tag_name().name()))
                .ok_or_else(|| ProtoError::schema("SetFolderField needs a folder element"))?;
            match f.as_str() {
                "folder:DisplayName" => {
                    Ok(Change::SetDisplayName(child(folder, ns::TYPES, "DisplayName").map(text).unwrap_or_default()))
                }
                "folder:FolderClass" => {
                    Ok(Change::SetClass(child(folder, ns::TYPES, "FolderClass").map(text).unwrap_or_default()))
                }
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

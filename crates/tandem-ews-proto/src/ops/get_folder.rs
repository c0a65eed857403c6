//! GetFolder: folders by id or distinguished name.

use tandem_xml::{Node, child, children, text};

use super::{BuildRequest, need};
use crate::render::FolderView;
use crate::reply::{self, MessageError, ReplyError, id_of};
use crate::types::{ExtendedField, FOLDER_ELEMENTS, FolderRef, Shape};
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub shape: Shape,
    pub folders: Vec<FolderRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request {
            shape: Shape::parse(need(op, "FolderShape")?)?,
            folders: FolderRef::parse_all(need(op, "FolderIds")?)?,
        })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "GetFolder";

    fn to_xml(&self) -> String {
        let mut s = format!("<m:GetFolder>{}<m:FolderIds>", self.shape.to_xml("FolderShape"));
        for f in &self.folders {
            s.push_str(&f.to_xml());
        }
        s.push_str("</m:FolderIds></m:GetFolder>");
        s
    }
}

/// Reads a folder element of an answer (what [`crate::render::folder`] writes); properties the
/// shape left out are empty or zero.
pub fn parse_folder(node: Node<'_, '_>) -> Result<FolderView, ProtoError> {
    let t = ns::TYPES;
    let name = node.tag_name().name();
    if !FOLDER_ELEMENTS.contains(&name) {
        return Err(ProtoError::schema(format!("{name} is not a folder")));
    }
    let id = child(node, t, "FolderId").ok_or_else(|| ProtoError::schema(format!("the {name} has no FolderId")))?;
    let (id, change_key) = id_of(id);
    let count = |n: &str| child(node, t, n).map(text).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let mut extended = Vec::new();
    for p in children(node).filter(|c| tandem_xml::is(*c, t, "ExtendedProperty")) {
        let Some(uri) = child(p, t, "ExtendedFieldURI") else { continue };
        let values = match child(p, t, "Values") {
            Some(vs) => children(vs).map(text).collect(),
            None => vec![child(p, t, "Value").map(text).unwrap_or_default()],
        };
        extended.push((ExtendedField::parse(uri)?, values));
    }
    Ok(FolderView {
        id,
        change_key,
        parent: child(node, t, "ParentFolderId").map(id_of),
        class: child(node, t, "FolderClass").map(text).unwrap_or_default(),
        display_name: child(node, t, "DisplayName").map(text).unwrap_or_default(),
        total: count("TotalCount"),
        unread: count("UnreadCount"),
        child_count: count("ChildFolderCount"),
        extended,
    })
}

/// Reads a GetFolder answer: for each folder asked for, the folder or the error.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Vec<Result<FolderView, MessageError>>, ReplyError> {
    let mut out = Vec::new();
    for m in reply::messages(doc, "GetFolder")? {
        out.push(match m.result() {
            Err(e) => Err(e),
            Ok(node) => {
                let folder = child(node, ns::MESSAGES, "Folders")
                    .and_then(|f| children(f).next())
                    .ok_or_else(|| ReplyError::unexpected("GetFolder", "a success without a folder"))?;
                Ok(parse_folder(folder).map_err(|e| ReplyError::unexpected("GetFolder", e.message))?)
            }
        });
    }
    Ok(out)
}

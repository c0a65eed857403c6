//! CreateFolder: new folders under a parent.

use tandem_xml::{Node, child, children, text};

use super::need;
use crate::types::{ExtendedField, FOLDER_ELEMENTS, FolderRef};
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFolder {
    pub element: String,
    pub display_name: String,
    pub class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub parent: FolderRef,
    pub folders: Vec<NewFolder>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let parent = children(need(op, "ParentFolderId")?)
            .next()
            .ok_or_else(|| ProtoError::schema("ParentFolderId is empty"))
            .and_then(FolderRef::parse)?;
        let mut folders = Vec::new();
        for f in children(need(op, "Folders")?) {
            let element = f.tag_name().name().to_owned();
            if !FOLDER_ELEMENTS.contains(&element.as_str()) {
                return Err(ProtoError::schema(format!("{element} is not a folder")));
            }
            let display_name = child(f, ns::TYPES, "DisplayName").map(text).unwrap_or_default();
            let mut class = child(f, ns::TYPES, "FolderClass").map(text);
            for ep in children(f).filter(|c| c.tag_name().name() == "ExtendedProperty") {
                if let Some(uri) = child(ep, ns::TYPES, "ExtendedFieldURI") {
                    let field = ExtendedField::parse(uri)?;
                    if field.tag == Some(0x3613) {
                        class = child(ep, ns::TYPES, "Value").map(text);
                    }
                }
            }
            folders.push(NewFolder { element, display_name, class });
        }
        Ok(Request { parent, folders })
    }
}

/// The default class for a folder element.
pub fn default_class(element: &str) -> &'static str {
    match element {
        "CalendarFolder" => "IPF.Appointment",
        "ContactsFolder" => "IPF.Contact",
        "TasksFolder" => "IPF.Task",
        _ => "IPF.Note",
    }
}

//! GetUserConfiguration: named configuration objects of a folder. Tandem answers OWA.UserOptions
//! on the root folder (DavMail reads the user's time zone from it); other names are not found.

use tandem_xml::{Node, children};

use super::need;
use crate::types::FolderRef;
use crate::{ProtoError, ResponseCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub folder: FolderRef,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let n = need(op, "UserConfigurationName")?;
        let name =
            n.attribute("Name").ok_or_else(|| ProtoError::schema("UserConfigurationName needs a Name"))?.to_owned();
        let folder = children(n)
            .next()
            .ok_or_else(|| ProtoError::new(ResponseCode::ErrorInvalidRequest, "UserConfigurationName needs a folder"))
            .and_then(FolderRef::parse)?;
        Ok(Request { name, folder })
    }
}

/// A UserConfiguration with a string dictionary.
pub fn render(name: &str, folder_id: &str, folder_ck: &str, entries: &[(&str, &str)]) -> String {
    let e = tandem_xml::escape;
    let mut s = format!(
        "<m:UserConfiguration><t:UserConfigurationName Name=\"{}\">{}</t:UserConfigurationName><t:Dictionary>",
        e(name),
        crate::render::id_element("FolderId", folder_id, folder_ck)
    );
    for (k, v) in entries {
        s.push_str(&format!(
            "<t:DictionaryEntry><t:DictionaryKey><t:Type>String</t:Type><t:Value>{}</t:Value></t:DictionaryKey><t:DictionaryValue><t:Type>String</t:Type><t:Value>{}</t:Value></t:DictionaryValue></t:DictionaryEntry>",
            e(k),
            e(v)
        ));
    }
    s.push_str("</t:Dictionary></m:UserConfiguration>");
    s
}

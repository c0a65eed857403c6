//! GetUserConfiguration: a named configuration object of a folder (MS-OXWSUSRCFG): its
//! Dictionary, XmlData and BinaryData, as Create/UpdateUserConfiguration stored them. The types
//! the four operations share live here: the name ([`ConfigName`]) and the parts ([`Parts`]).

use base64::Engine as _;
use tandem_xml::{Node, child, children, text};

use super::{need, opt};
use crate::types::FolderRef;
use crate::{ProtoError, ResponseCode, ns};

/// Largest configuration object accepted (its three parts as sent): Exchange keeps them in one
/// message; this bounds what a mailbox stores per name.
pub const MAX_CONFIGURATION_BYTES: usize = 256 * 1024;

/// `UserConfigurationName`: the Name attribute and the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigName {
    pub name: String,
    pub folder: FolderRef,
}

impl ConfigName {
    pub fn parse(n: Node<'_, '_>) -> Result<ConfigName, ProtoError> {
        let name =
            n.attribute("Name").ok_or_else(|| ProtoError::schema("UserConfigurationName needs a Name"))?.to_owned();
        if name.is_empty() || name.len() > 256 {
            return Err(ProtoError::new(ResponseCode::ErrorInvalidRequest, "The configuration name is not valid."));
        }
        let folder = children(n)
            .next()
            .ok_or_else(|| ProtoError::new(ResponseCode::ErrorInvalidRequest, "UserConfigurationName needs a folder"))
            .and_then(FolderRef::parse)?;
        Ok(ConfigName { name, folder })
    }
}

/// The parts of a configuration object; each `None` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parts {
    /// The `t:Dictionary` element as sent (serialized with the `t:` prefix).
    pub dictionary: Option<String>,
    /// XmlData and BinaryData: base64 text.
    pub xml_data: Option<String>,
    pub binary_data: Option<String>,
}

impl Parts {
    /// Reads the parts of a `UserConfiguration` element; bad base64 is ErrorInvalidRequest.
    pub fn parse(c: Node<'_, '_>) -> Result<Parts, ProtoError> {
        let t = ns::TYPES;
        let mut out = Parts::default();
        if let Some(d) = child(c, t, "Dictionary") {
            let mut s = String::new();
            tandem_xml::serialize(d, t, "t", &mut s);
            out.dictionary = Some(s);
        }
        let b64 = |n: &str| -> Result<Option<String>, ProtoError> {
            let Some(el) = child(c, t, n) else { return Ok(None) };
            let v: String = text(el).split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(&v)
                .map_err(|_| ProtoError::new(ResponseCode::ErrorInvalidRequest, format!("{n} is not base64.")))?;
            Ok(Some(v))
        };
        out.xml_data = b64("XmlData")?;
        out.binary_data = b64("BinaryData")?;
        if out.size() > MAX_CONFIGURATION_BYTES {
            return Err(ProtoError::new(
                ResponseCode::ErrorInvalidRequest,
                format!("A configuration object may hold at most {MAX_CONFIGURATION_BYTES} bytes."),
            ));
        }
        Ok(out)
    }

    fn size(&self) -> usize {
        [&self.dictionary, &self.xml_data, &self.binary_data].iter().map(|p| p.as_ref().map_or(0, String::len)).sum()
    }

    /// `self` with the parts `update` carries replaced (UpdateUserConfiguration).
    pub fn merged(&self, update: &Parts) -> Parts {
        Parts {
            dictionary: update.dictionary.clone().or_else(|| self.dictionary.clone()),
            xml_data: update.xml_data.clone().or_else(|| self.xml_data.clone()),
            binary_data: update.binary_data.clone().or_else(|| self.binary_data.clone()),
        }
    }

    /// The stored form: the parts as elements, in schema order.
    pub fn to_stored(&self) -> String {
        let mut s = self.dictionary.clone().unwrap_or_default();
        if let Some(x) = &self.xml_data {
            s.push_str(&format!("<t:XmlData>{x}</t:XmlData>"));
        }
        if let Some(b) = &self.binary_data {
            s.push_str(&format!("<t:BinaryData>{b}</t:BinaryData>"));
        }
        s
    }

    /// Reads the stored form back; `None` when it does not parse.
    pub fn from_stored(stored: &str) -> Option<Parts> {
        let wrapped = format!("<t:UserConfiguration xmlns:t=\"{}\">{stored}</t:UserConfiguration>", ns::TYPES);
        let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
        Parts::parse(doc.root_element()).ok()
    }

    /// The decoded XmlData, when present and UTF-8.
    pub fn xml_text(&self) -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(self.xml_data.as_deref()?).ok()?;
        String::from_utf8(bytes).ok()
    }
}

/// Which parts GetUserConfiguration returns (`UserConfigurationProperties`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub id: bool,
    pub dictionary: bool,
    pub xml_data: bool,
    pub binary_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub folder: FolderRef,
    pub wanted: Wanted,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let ConfigName { name, folder } = ConfigName::parse(need(op, "UserConfigurationName")?)?;
        let props = opt(op, "UserConfigurationProperties").map(text).unwrap_or_else(|| "All".to_owned());
        let mut wanted = Wanted { id: false, dictionary: false, xml_data: false, binary_data: false };
        for p in props.split_whitespace() {
            match p {
                "All" => wanted = Wanted { id: true, dictionary: true, xml_data: true, binary_data: true },
                "Id" => wanted.id = true,
                "Dictionary" => wanted.dictionary = true,
                "XmlData" => wanted.xml_data = true,
                "BinaryData" => wanted.binary_data = true,
                other => return Err(ProtoError::schema(format!("UserConfigurationProperties `{other}` is not valid"))),
            }
        }
        Ok(Request { name, folder, wanted })
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

/// A stored UserConfiguration: the name and folder, its item id (`Id`), and the parts asked for.
pub fn render_stored(name: &str, folder: (&str, &str), item: (&str, &str), parts: &Parts, wanted: Wanted) -> String {
    let mut s = format!(
        "<m:UserConfiguration><t:UserConfigurationName Name=\"{}\">{}</t:UserConfigurationName>",
        tandem_xml::escape(name),
        crate::render::id_element("FolderId", folder.0, folder.1)
    );
    if wanted.id {
        s.push_str(&crate::render::id_element("ItemId", item.0, item.1));
    }
    let shown = Parts {
        dictionary: parts.dictionary.clone().filter(|_| wanted.dictionary),
        xml_data: parts.xml_data.clone().filter(|_| wanted.xml_data),
        binary_data: parts.binary_data.clone().filter(|_| wanted.binary_data),
    };
    s.push_str(&shown.to_stored());
    s.push_str("</m:UserConfiguration>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_merge_and_refuse_bad_base64() {
        let xml = format!(
            "<m:UserConfiguration xmlns:m=\"{}\" xmlns:t=\"{}\"><t:UserConfigurationName Name=\"WorkHours\"><t:DistinguishedFolderId Id=\"calendar\"/></t:UserConfigurationName><t:XmlData>PFJvb3QvPg==</t:XmlData></m:UserConfiguration>",
            ns::MESSAGES,
            ns::TYPES
        );
        let doc = tandem_xml::parse(xml.as_bytes(), tandem_xml::Limits::default()).unwrap();
        let p = Parts::parse(doc.root_element()).unwrap();
        assert_eq!(p.xml_text().as_deref(), Some("<Root/>"));
        assert_eq!(Parts::from_stored(&p.to_stored()), Some(p.clone()));
        let upd = Parts { binary_data: Some("AA==".into()), ..Parts::default() };
        let m = p.merged(&upd);
        assert_eq!((m.xml_data.as_deref(), m.binary_data.as_deref()), (Some("PFJvb3QvPg=="), Some("AA==")));
        let bad = xml.replace("PFJvb3QvPg==", "***");
        let doc = tandem_xml::parse(bad.as_bytes(), tandem_xml::Limits::default()).unwrap();
        assert_eq!(Parts::parse(doc.root_element()).unwrap_err().code, ResponseCode::ErrorInvalidRequest);
    }
}

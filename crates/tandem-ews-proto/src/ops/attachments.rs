//! CreateAttachment, GetAttachment and DeleteAttachment (file attachments), and the
//! `t:Attachments` element of CreateItem.

use base64::Engine as _;
use tandem_xml::{Node, child, children, text};

use super::need;
use crate::{ProtoError, ResponseCode, ns, parse_bool};

/// A file attachment as a request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub is_inline: bool,
    pub content: Vec<u8>,
}

/// Reads `t:FileAttachment` (an attached item is refused explicitly).
pub fn parse_attachment(node: Node<'_, '_>) -> Result<NewAttachment, ProtoError> {
    let t = ns::TYPES;
    match node.tag_name().name() {
        "FileAttachment" => {}
        "ItemAttachment" | "ReferenceAttachment" => {
            return Err(ProtoError::new(
                ResponseCode::ErrorNotSupported,
                format!("{} is not supported by this server yet.", node.tag_name().name()),
            ));
        }
        other => return Err(ProtoError::schema(format!("{other} is not an attachment"))),
    }
    let raw: String =
        child(node, t, "Content").map(text).unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| ProtoError::schema("attachment Content is not base64"))?;
    Ok(NewAttachment {
        name: child(node, t, "Name").map(text).unwrap_or_default(),
        content_type: child(node, t, "ContentType")
            .map(text)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "application/octet-stream".into()),
        content_id: child(node, t, "ContentId").map(text).filter(|c| !c.is_empty()),
        is_inline: child(node, t, "IsInline").map(text).and_then(|b| parse_bool(&b)).unwrap_or(false),
        content,
    })
}

impl NewAttachment {
    /// `<t:FileAttachment>` as [`parse_attachment`] reads it.
    pub fn to_xml(&self) -> String {
        let mut w = tandem_xml::Writer::new();
        w.start("t:FileAttachment", &[]).leaf("t:Name", &self.name).leaf("t:ContentType", &self.content_type);
        if let Some(cid) = &self.content_id {
            w.leaf("t:ContentId", cid);
        }
        if self.is_inline {
            w.leaf("t:IsInline", "true");
        }
        w.leaf("t:Content", &base64::engine::general_purpose::STANDARD.encode(&self.content));
        w.finish()
    }
}

pub fn parse_all(node: Node<'_, '_>) -> Result<Vec<NewAttachment>, ProtoError> {
    children(node).map(parse_attachment).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub parent: String,
    pub attachments: Vec<Result<NewAttachment, ProtoError>>,
}

impl CreateRequest {
    pub fn parse(op: Node<'_, '_>) -> Result<CreateRequest, ProtoError> {
        let parent = need(op, "ParentItemId")?
            .attribute("Id")
            .ok_or_else(|| ProtoError::schema("ParentItemId needs an Id"))?
            .to_owned();
        Ok(CreateRequest { parent, attachments: children(need(op, "Attachments")?).map(parse_attachment).collect() })
    }
}

/// GetAttachment and DeleteAttachment: the ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdsRequest {
    pub ids: Vec<String>,
}

impl IdsRequest {
    pub fn parse(op: Node<'_, '_>) -> Result<IdsRequest, ProtoError> {
        let ids = children(need(op, "AttachmentIds")?)
            .map(|n| n.attribute("Id").map(str::to_owned).ok_or_else(|| ProtoError::schema("AttachmentId needs an Id")))
            .collect::<Result<_, _>>()?;
        Ok(IdsRequest { ids })
    }
}

/// A stored attachment for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub size: i64,
    pub modified: i64,
    pub is_inline: bool,
    pub content: Option<Vec<u8>>,
}

pub fn render(a: &AttachmentView) -> String {
    let e = tandem_xml::escape;
    let mut s = format!(
        "<t:FileAttachment><t:AttachmentId Id=\"{}\"/><t:Name>{}</t:Name><t:ContentType>{}</t:ContentType>",
        e(&a.id),
        e(&a.name),
        e(&a.content_type)
    );
    if let Some(cid) = &a.content_id {
        s.push_str(&format!("<t:ContentId>{}</t:ContentId>", e(cid)));
    }
    s.push_str(&format!(
        "<t:Size>{}</t:Size><t:LastModifiedTime>{}</t:LastModifiedTime><t:IsInline>{}</t:IsInline>",
        a.size,
        crate::format_datetime(a.modified),
        a.is_inline
    ));
    if let Some(c) = &a.content {
        s.push_str(&format!(
            "<t:IsContactPhoto>false</t:IsContactPhoto><t:Content>{}</t:Content>",
            base64::engine::general_purpose::STANDARD.encode(c)
        ));
    }
    s.push_str("</t:FileAttachment>");
    s
}

//! CreateAttachment, GetAttachment and DeleteAttachment (file and item attachments), and the
//! `t:Attachments` element of CreateItem. An item attachment embeds an item (Message,
//! CalendarItem, Contact, Task, Item…), which may carry attachments of its own, up to
//! [`MAX_NESTING`] levels.

use base64::Engine as _;
use tandem_xml::{Node, child, children, text};

use super::need;
use crate::{ProtoError, ResponseCode, ns, parse_bool};

/// Levels of item attachments one item may hold (an item attached to an item attached to …).
pub const MAX_NESTING: usize = 5;

/// An attachment as a request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub is_inline: bool,
    /// A file's bytes; for an item attachment, the embedded item as a standalone XML element
    /// (`<t:Message xmlns:t="…">…</t:Message>`, its own attachments left out: see `nested`).
    pub content: Vec<u8>,
    /// An item attachment: the embedded item's element name.
    pub item_element: Option<String>,
    /// The attachment's id, when an answer (GetItem, GetAttachment) named it.
    pub id: Option<String>,
    /// An item attachment: the embedded item's own attachments.
    pub nested: Vec<NewAttachment>,
}

/// Reads `t:FileAttachment` or `t:ItemAttachment` (ReferenceAttachment is refused explicitly).
pub fn parse_attachment(node: Node<'_, '_>) -> Result<NewAttachment, ProtoError> {
    parse_attachment_at(node, 1)
}

/// Reads an attachment `depth` levels down (1: the root item's own).
pub(crate) fn parse_attachment_at(node: Node<'_, '_>, depth: usize) -> Result<NewAttachment, ProtoError> {
    let t = ns::TYPES;
    match node.tag_name().name() {
        "FileAttachment" => {}
        "ItemAttachment" => return parse_item_attachment(node, depth),
        "ReferenceAttachment" => {
            return Err(ProtoError::new(
                ResponseCode::ErrorNotSupported,
                "ReferenceAttachment is not supported by this server yet.",
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
        item_element: None,
        id: child(node, t, "AttachmentId").and_then(|a| a.attribute("Id")).map(str::to_owned),
        nested: Vec::new(),
    })
}

fn parse_item_attachment(node: Node<'_, '_>, depth: usize) -> Result<NewAttachment, ProtoError> {
    let t = ns::TYPES;
    if depth > MAX_NESTING {
        return Err(ProtoError::new(
            ResponseCode::ErrorAttachmentNestLevelLimitExceeded,
            format!("Item attachments may be nested {MAX_NESTING} levels deep at most."),
        ));
    }
    let item = children(node)
        .find(|c| c.tag_name().namespace() == Some(t) && crate::types::ITEM_ELEMENTS.contains(&c.tag_name().name()))
        .ok_or_else(|| {
            ProtoError::schema("an ItemAttachment needs an item (Message, CalendarItem, Contact, Task, Item…)")
        })?;
    let element = item.tag_name().name().to_owned();
    // Parsed now so that a bad embedded item fails the attachment, not a later read.
    let data = super::create_item::parse_item_at(item, depth)?;
    let mut xml = format!("<t:{element} xmlns:t=\"{t}\">");
    for c in children(item) {
        if c.tag_name().name() != "Attachments" {
            tandem_xml::serialize(c, t, "t", &mut xml);
        }
    }
    xml.push_str(&format!("</t:{element}>"));
    Ok(NewAttachment {
        name: child(node, t, "Name").map(text).unwrap_or_default(),
        content_type: "message/rfc822".into(),
        content_id: child(node, t, "ContentId").map(text).filter(|c| !c.is_empty()),
        is_inline: child(node, t, "IsInline").map(text).and_then(|b| parse_bool(&b)).unwrap_or(false),
        content: xml.into_bytes(),
        item_element: Some(element),
        id: child(node, t, "AttachmentId").and_then(|a| a.attribute("Id")).map(str::to_owned),
        nested: data.attachments,
    })
}

impl NewAttachment {
    /// A file attachment.
    pub fn file(name: &str, content_type: &str, content: Vec<u8>) -> NewAttachment {
        NewAttachment {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            content_id: None,
            is_inline: false,
            content,
            item_element: None,
            id: None,
            nested: Vec::new(),
        }
    }

    /// Bytes the attachment and everything nested in it hold.
    pub fn total_size(&self) -> usize {
        self.content.len() + self.nested.iter().map(NewAttachment::total_size).sum::<usize>()
    }

    /// `<t:FileAttachment>` or `<t:ItemAttachment>` as [`parse_attachment`] reads it.
    pub fn to_xml(&self) -> String {
        if self.item_element.is_some() {
            let inner = String::from_utf8_lossy(&self.content);
            let nested: String = self.nested.iter().map(NewAttachment::to_xml).collect();
            // The stored element declares its namespace; the written one inherits the request's.
            let decl = format!(" xmlns:t=\"{}\"", ns::TYPES);
            let mut item = inner.replacen(&decl, "", 1);
            if !nested.is_empty()
                && let Some(close) = item.rfind("</t:")
            {
                item.insert_str(close, &format!("<t:Attachments>{nested}</t:Attachments>"));
            }
            let mut w = tandem_xml::Writer::new();
            w.start("t:ItemAttachment", &[]).leaf("t:Name", &self.name);
            if self.is_inline {
                w.leaf("t:IsInline", "true");
            }
            w.raw(&item);
            return w.finish();
        }
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
    parse_all_at(node, 1)
}

pub(crate) fn parse_all_at(node: Node<'_, '_>, depth: usize) -> Result<Vec<NewAttachment>, ProtoError> {
    children(node).map(|c| parse_attachment_at(c, depth)).collect()
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

/// GetAttachment and DeleteAttachment: the ids, and GetAttachment's AttachmentShape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdsRequest {
    pub ids: Vec<String>,
    /// AttachmentShape's IncludeMimeContent: embedded items carry their MimeContent.
    pub include_mime: bool,
}

impl IdsRequest {
    pub fn parse(op: Node<'_, '_>) -> Result<IdsRequest, ProtoError> {
        let ids = children(need(op, "AttachmentIds")?)
            .map(|n| n.attribute("Id").map(str::to_owned).ok_or_else(|| ProtoError::schema("AttachmentId needs an Id")))
            .collect::<Result<_, _>>()?;
        let include_mime = super::opt(op, "AttachmentShape")
            .and_then(|s| child(s, ns::TYPES, "IncludeMimeContent"))
            .map(text)
            .and_then(|b| parse_bool(&b))
            .unwrap_or(false);
        Ok(IdsRequest { ids, include_mime })
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
    /// An item attachment: the embedded item's element (`Message`…).
    pub item_element: Option<String>,
    /// An item attachment read with GetAttachment: the embedded item, rendered.
    pub item: Option<String>,
}

pub fn render(a: &AttachmentView) -> String {
    let e = tandem_xml::escape;
    if a.item_element.is_some() {
        let mut s = format!("<t:ItemAttachment><t:AttachmentId Id=\"{}\"/><t:Name>{}</t:Name>", e(&a.id), e(&a.name));
        if let Some(cid) = &a.content_id {
            s.push_str(&format!("<t:ContentId>{}</t:ContentId>", e(cid)));
        }
        s.push_str(&format!(
            "<t:Size>{}</t:Size><t:LastModifiedTime>{}</t:LastModifiedTime><t:IsInline>{}</t:IsInline>",
            a.size,
            crate::format_datetime(a.modified),
            a.is_inline
        ));
        if let Some(item) = &a.item {
            s.push_str(item);
        }
        s.push_str("</t:ItemAttachment>");
        return s;
    }
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

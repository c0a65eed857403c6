//! SyncFolderItems: the items of a folder as Create/Update/Delete/ReadFlagChange changes since
//! a sync state (none: everything).

use base64::Engine as _;
use tandem_xml::{Node, children, text};

use super::{need, opt};
use crate::types::{FolderRef, Shape};
use crate::{ProtoError, ResponseCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub shape: Shape,
    pub folder: FolderRef,
    /// The change number the client has seen (0 for a first sync).
    pub state: i64,
    pub max: usize,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let folder = children(need(op, "SyncFolderId")?)
            .next()
            .ok_or_else(|| ProtoError::schema("SyncFolderId is empty"))
            .and_then(FolderRef::parse)?;
        let state = match opt(op, "SyncState").map(text).filter(|s| !s.is_empty()) {
            Some(s) => parse_state(&s)?,
            None => 0,
        };
        let max = opt(op, "MaxChangesReturned").map(text).and_then(|m| m.parse().ok()).unwrap_or(512).clamp(1, 512);
        Ok(Request { shape: Shape::parse(need(op, "ItemShape")?)?, folder, state, max })
    }
}

/// A sync state or watermark: base64 of `prefix` and a change number.
pub fn encode_state(change: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("TS1:{change}"))
}

pub fn parse_state(s: &str) -> Result<i64, ProtoError> {
    let bad = || ProtoError::new(ResponseCode::ErrorInvalidSyncStateData, "The sync state is not valid.");
    let raw = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix("TS1:").and_then(|n| n.parse().ok()).filter(|n: &i64| *n >= 0).ok_or_else(bad)
}

/// One change for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncChange {
    /// Rendered item element.
    Create(String),
    Update(String),
    /// (id, change key)
    Delete(String, String),
    ReadFlag(String, String, bool),
}

pub fn render_changes(state: i64, last: bool, changes: &[SyncChange], folders: bool) -> String {
    let mut s = format!(
        "<m:SyncState>{}</m:SyncState><m:{}>{last}</m:{}><m:Changes>",
        encode_state(state),
        if folders { "IncludesLastFolderInRange" } else { "IncludesLastItemInRange" },
        if folders { "IncludesLastFolderInRange" } else { "IncludesLastItemInRange" },
    );
    let id_el = if folders { "FolderId" } else { "ItemId" };
    for c in changes {
        match c {
            SyncChange::Create(x) => s.push_str(&format!("<t:Create>{x}</t:Create>")),
            SyncChange::Update(x) => s.push_str(&format!("<t:Update>{x}</t:Update>")),
            SyncChange::Delete(id, ck) => {
                s.push_str(&format!("<t:Delete>{}</t:Delete>", crate::render::id_element(id_el, id, ck)))
            }
            SyncChange::ReadFlag(id, ck, read) => s.push_str(&format!(
                "<t:ReadFlagChange>{}<t:IsRead>{read}</t:IsRead></t:ReadFlagChange>",
                crate::render::id_element("ItemId", id, ck)
            )),
        }
    }
    s.push_str("</m:Changes>");
    s
}

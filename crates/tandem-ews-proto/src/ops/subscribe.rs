//! Subscribe: pull (GetEvents) and streaming (GetStreamingEvents) subscriptions on folders or
//! all folders. Push subscriptions are answered with ErrorNotSupported.

use tandem_xml::{Node, child, children, text};

use super::sync_folder_items::parse_state;
use crate::types::FolderRef;
use crate::{ProtoError, ResponseCode, ns, parse_bool};

/// Event types a subscription may ask for.
pub const EVENT_TYPES: &[&str] = &[
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub all_folders: bool,
    pub folders: Vec<FolderRef>,
    pub event_types: Vec<String>,
    /// The watermark to start from (None: now).
    pub watermark: Option<i64>,
    /// Minutes without GetEvents before the subscription expires.
    pub timeout_minutes: u64,
    /// A streaming subscription (GetStreamingEvents) rather than a pull one (GetEvents).
    pub streaming: bool,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let t = ns::TYPES;
        if child(op, ns::MESSAGES, "PushSubscriptionRequest").is_some() {
            return Err(ProtoError::new(
                ResponseCode::ErrorNotSupported,
                "Push subscriptions are not supported by this server; use a pull or streaming subscription.",
            ));
        }
        let streaming = child(op, ns::MESSAGES, "StreamingSubscriptionRequest");
        let pull = child(op, ns::MESSAGES, "PullSubscriptionRequest").or(streaming).ok_or_else(|| {
            ProtoError::schema("Subscribe needs a PullSubscriptionRequest or StreamingSubscriptionRequest")
        })?;
        let all_folders = pull.attribute("SubscribeToAllFolders").and_then(parse_bool).unwrap_or(false);
        let folders = match child(pull, t, "FolderIds") {
            Some(f) => FolderRef::parse_all(f)?,
            None => Vec::new(),
        };
        if !all_folders && folders.is_empty() {
            return Err(ProtoError::schema("a subscription needs FolderIds or SubscribeToAllFolders"));
        }
        let event_types: Vec<String> =
            child(pull, t, "EventTypes").map(|e| children(e).map(text).collect()).unwrap_or_default();
        if event_types.is_empty() || event_types.iter().any(|e| !EVENT_TYPES.contains(&e.as_str())) {
            return Err(ProtoError::schema("EventTypes must list known event types"));
        }
        let watermark = match child(pull, t, "Watermark").map(text).filter(|w| !w.is_empty()) {
            Some(w) => Some(
                parse_state(&w)
                    .map_err(|_| ProtoError::new(ResponseCode::ErrorInvalidWatermark, "The watermark is not valid."))?,
            ),
            None => None,
        };
        let timeout_minutes =
            child(pull, t, "Timeout").map(text).and_then(|m| m.parse().ok()).unwrap_or(30).clamp(1, 1440);
        Ok(Request { all_folders, folders, event_types, watermark, timeout_minutes, streaming: streaming.is_some() })
    }
}

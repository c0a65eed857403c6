//! Subscribe: pull (GetEvents) and streaming (GetStreamingEvents) subscriptions on folders or
//! all folders. Push subscriptions are answered with ErrorNotSupported.

use tandem_xml::{Node, child, children, text};

use super::BuildRequest;
use super::sync_folder_items::{encode_state, parse_state};
use crate::reply::{self, MessageError, ReplyError};
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

impl Request {
    /// A streaming subscription to `event_types` on `folders` (all folders when empty).
    pub fn streaming(folders: Vec<FolderRef>, event_types: &[&str]) -> Request {
        Request {
            all_folders: folders.is_empty(),
            folders,
            event_types: event_types.iter().map(|e| (*e).to_owned()).collect(),
            watermark: None,
            timeout_minutes: 30,
            streaming: true,
        }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "Subscribe";

    fn to_xml(&self) -> String {
        let el = if self.streaming { "m:StreamingSubscriptionRequest" } else { "m:PullSubscriptionRequest" };
        let mut s = format!("<m:Subscribe><{el}");
        if self.all_folders {
            s.push_str(" SubscribeToAllFolders=\"true\"");
        }
        s.push('>');
        if !self.folders.is_empty() {
            s.push_str("<t:FolderIds>");
            for f in &self.folders {
                s.push_str(&f.to_xml());
            }
            s.push_str("</t:FolderIds>");
        }
        s.push_str("<t:EventTypes>");
        for e in &self.event_types {
            s.push_str(&format!("<t:EventType>{}</t:EventType>", tandem_xml::escape(e)));
        }
        s.push_str("</t:EventTypes>");
        if !self.streaming {
            if let Some(w) = self.watermark {
                s.push_str(&format!("<t:Watermark>{}</t:Watermark>", encode_state(w)));
            }
            s.push_str(&format!("<t:Timeout>{}</t:Timeout>", self.timeout_minutes));
        }
        s.push_str(&format!("</{el}></m:Subscribe>"));
        s
    }
}

/// A subscription the server made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    /// The watermark to start from (pull subscriptions; opaque to the client).
    pub watermark: Option<String>,
}

/// Reads a Subscribe answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Vec<Result<Subscription, MessageError>>, ReplyError> {
    let mut out = Vec::new();
    for m in reply::messages(doc, "Subscribe")? {
        out.push(match m.result() {
            Err(e) => Err(e),
            Ok(node) => Ok(Subscription {
                id: child(node, ns::MESSAGES, "SubscriptionId")
                    .map(text)
                    .filter(|i| !i.is_empty())
                    .ok_or_else(|| ReplyError::unexpected("Subscribe", "a success without SubscriptionId"))?,
                watermark: child(node, ns::MESSAGES, "Watermark").map(text).filter(|w| !w.is_empty()),
            }),
        });
    }
    Ok(out)
}

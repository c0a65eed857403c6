//! GetStreamingEvents: one long HTTP response carrying a SOAP envelope per batch of events on
//! streaming subscriptions, then `ConnectionStatus` Closed when the connection timeout ends.

use tandem_xml::{Node, child, children, text};

use super::get_events::{Event, render as render_notification};
use super::{BuildRequest, need};
use crate::reply::{self, MessageError, ReplyError, id_of};
use crate::{ProtoError, ResponseCode, ns, parse_bool, parse_datetime, render};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub subscriptions: Vec<String>,
    /// Minutes the connection stays open (1–30).
    pub timeout_minutes: u64,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let subscriptions: Vec<String> = children(need(op, "SubscriptionIds")?).map(text).collect();
        if subscriptions.is_empty() {
            return Err(ProtoError::schema("SubscriptionIds is empty"));
        }
        let timeout_minutes = text(need(op, "ConnectionTimeout")?).parse::<u64>().map_err(|_| {
            ProtoError::new(ResponseCode::ErrorInvalidRequest, "ConnectionTimeout must be a number of minutes.")
        })?;
        if !(1..=30).contains(&timeout_minutes) {
            return Err(ProtoError::new(
                ResponseCode::ErrorInvalidRequest,
                "ConnectionTimeout must be 1 to 30 minutes.",
            ));
        }
        Ok(Request { subscriptions, timeout_minutes })
    }
}

/// One envelope of the stream (in Exchange's streaming framing, [`render::streaming_envelope`]): the connection status, and notifications when there are any.
pub fn envelope(status: &str, notifications: &[(String, i64, Vec<Event>, i64)]) -> String {
    let mut body = String::from(
        "<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>",
    );
    if !notifications.is_empty() {
        body.push_str("<m:Notifications>");
        for (sub, previous, events, last) in notifications {
            body.push_str(&render_notification(sub, *previous, false, events, *last));
        }
        body.push_str("</m:Notifications>");
    }
    body.push_str(&format!("<m:ConnectionStatus>{status}</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>"));
    render::streaming_envelope(&body)
}

/// The answer when a subscription id is unknown or not the caller's.
pub fn error_envelope(code: ResponseCode, message: &str) -> String {
    let body = format!(
        "<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ConnectionStatus>Closed</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>",
        tandem_xml::escape(message),
        code.as_str()
    );
    render::streaming_envelope(&body)
}

/// The answer when some of the requested subscriptions cannot be served: one error message per
/// response code, each naming its subscriptions in `ErrorSubscriptionIds`, and the connection
/// closed. Exchange sends no notifications for the good ones of such a request either.
pub fn refused_envelope(refused: &[(ResponseCode, String, Vec<String>)]) -> String {
    let mut body = String::from("<m:GetStreamingEventsResponse><m:ResponseMessages>");
    for (code, message, ids) in refused {
        body.push_str(&format!(
            "<m:GetStreamingEventsResponseMessage ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ErrorSubscriptionIds>",
            tandem_xml::escape(message),
            code.as_str()
        ));
        for id in ids {
            body.push_str(&format!("<m:SubscriptionId>{}</m:SubscriptionId>", tandem_xml::escape(id)));
        }
        body.push_str("</m:ErrorSubscriptionIds><m:ConnectionStatus>Closed</m:ConnectionStatus></m:GetStreamingEventsResponseMessage>");
    }
    body.push_str("</m:ResponseMessages></m:GetStreamingEventsResponse>");
    render::streaming_envelope(&body)
}

/// The refused subscriptions of a stream's envelope, with each one's response code (empty when
/// the envelope refuses none).
pub fn refused_subscriptions(doc: &tandem_xml::Document<'_>) -> Result<Vec<(String, String)>, ReplyError> {
    let mut out = Vec::new();
    for m in reply::messages(doc, "GetStreamingEvents")? {
        let Err(e) = m.result() else { continue };
        if let Some(list) = child(m.node, ns::MESSAGES, "ErrorSubscriptionIds") {
            out.extend(children(list).map(|id| (text(id), e.code.clone())));
        }
    }
    Ok(out)
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "GetStreamingEvents";

    fn to_xml(&self) -> String {
        let mut s = String::from("<m:GetStreamingEvents><m:SubscriptionIds>");
        for id in &self.subscriptions {
            s.push_str(&format!("<t:SubscriptionId>{}</t:SubscriptionId>", tandem_xml::escape(id)));
        }
        s.push_str(&format!(
            "</m:SubscriptionIds><m:ConnectionTimeout>{}</m:ConnectionTimeout></m:GetStreamingEvents>",
            self.timeout_minutes
        ));
        s
    }
}

/// One event of a notification as a client reads it. Watermarks stay opaque strings: a client
/// only hands them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReport {
    /// CreatedEvent, NewMailEvent, StatusEvent…
    pub kind: String,
    pub watermark: String,
    pub at: Option<i64>,
    pub folder_object: bool,
    /// (Id, ChangeKey) of the item or folder; empty for a StatusEvent.
    pub id: (String, String),
    pub parent: (String, String),
    pub old_parent: Option<(String, String)>,
}

/// The events of one subscription in one envelope of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subscription: String,
    pub previous_watermark: String,
    pub more: bool,
    pub events: Vec<EventReport>,
}

/// One envelope of the stream as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub notifications: Vec<Notification>,
    /// `OK` while the connection stays open, `Closed` on its last envelope.
    pub status: String,
}

fn read_event(e: Node<'_, '_>) -> EventReport {
    let t = ns::TYPES;
    let folder = child(e, t, "FolderId");
    let id = folder.or_else(|| child(e, t, "ItemId")).map(id_of).unwrap_or_default();
    EventReport {
        kind: e.tag_name().name().to_owned(),
        watermark: child(e, t, "Watermark").map(text).unwrap_or_default(),
        at: child(e, t, "TimeStamp").map(text).and_then(|s| parse_datetime(&s)),
        folder_object: folder.is_some(),
        id,
        parent: child(e, t, "ParentFolderId").map(id_of).unwrap_or_default(),
        old_parent: child(e, t, "OldParentFolderId").map(id_of),
    }
}

/// Reads one envelope of a GetStreamingEvents stream; an error message (unknown subscription…)
/// is the inner error.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<Batch, MessageError>, ReplyError> {
    let messages = reply::messages(doc, "GetStreamingEvents")?;
    let m = messages.first().ok_or_else(|| ReplyError::unexpected("GetStreamingEvents", "no response message"))?;
    let node = match m.result() {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let t = ns::TYPES;
    let mut notifications = Vec::new();
    if let Some(list) = child(node, ns::MESSAGES, "Notifications") {
        for n in children(list) {
            notifications.push(Notification {
                subscription: child(n, t, "SubscriptionId").map(text).unwrap_or_default(),
                previous_watermark: child(n, t, "PreviousWatermark").map(text).unwrap_or_default(),
                more: child(n, t, "MoreEvents").map(text).and_then(|m| parse_bool(&m)).unwrap_or(false),
                events: children(n).filter(|c| c.tag_name().name().ends_with("Event")).map(read_event).collect(),
            });
        }
    }
    let status = child(node, ns::MESSAGES, "ConnectionStatus").map(text).unwrap_or_default();
    Ok(Ok(Batch { notifications, status }))
}

/// Splits the complete envelopes off the front of a stream's bytes: each is returned as text and
/// removed from `buf`; a partial envelope stays for the next chunk. The stream writes one
/// envelope after another, each starting with its XML declaration or `<…Envelope`.
pub fn take_envelopes(buf: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(end) = envelope_end(buf) {
        let chunk: Vec<u8> = buf.drain(..end).collect();
        let text = String::from_utf8_lossy(&chunk).trim().to_owned();
        if !text.is_empty() {
            out.push(text);
        }
    }
    out
}

/// The byte just past the first closing `Envelope>` tag (any prefix) in `buf`.
fn envelope_end(buf: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"Envelope>";
    let mut from = 0;
    while let Some(rel) = buf[from..].windows(TAG.len()).position(|w| w == TAG) {
        let at = from + rel;
        // A closing tag: `</Envelope>` or `</prefix:Envelope>`.
        let mut i = at;
        while i > 0 && buf[i - 1] != b'<' && buf[i - 1] != b'/' && buf[i - 1] != b'>' {
            i -= 1;
        }
        let closing = i >= 1 && buf[i - 1] == b'/' && i >= 2 && buf[i - 2] == b'<';
        if closing {
            return Some(at + TAG.len());
        }
        from = at + TAG.len();
    }
    None
}

//! Subscribe: pull (GetEvents), streaming (GetStreamingEvents) and push (the server POSTs
//! SendNotification to the subscriber's URL, `send_notification`) subscriptions on folders or all
//! folders.

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
    /// A push subscription: where and how often the server posts (then `streaming` is false and
    /// `timeout_minutes` unused).
    pub push: Option<Push>,
}

/// What a PushSubscriptionRequest adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// StatusFrequency: minutes (1–1440, default 30) between status notifications when nothing
    /// happens, and the window in which a failed notification is retried.
    pub status_frequency_minutes: u32,
    /// The receiver's callback URL (`http://` or `https://`).
    pub url: String,
}

/// StatusFrequency when the request names none (the schema's default).
pub const DEFAULT_STATUS_FREQUENCY: u32 = 30;
/// Longest callback URL accepted.
pub const MAX_PUSH_URL: usize = 2048;

/// Checks a push callback URL: absolute `http://` or `https://` with a host, no user
/// information, no spaces or control characters, at most [`MAX_PUSH_URL`] bytes.
pub fn check_push_url(url: &str) -> Result<(), ProtoError> {
    let bad = |why: &str| {
        ProtoError::new(
            ResponseCode::ErrorInvalidPushSubscriptionUrl,
            format!("The push subscription URL is invalid: {why}."),
        )
    };
    if url.len() > MAX_PUSH_URL {
        return Err(bad(&format!("longer than {MAX_PUSH_URL} characters")));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| bad("only http and https URLs are accepted"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(bad("user information is not accepted"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(h, port)| if port.is_empty() || port.parse::<u16>().is_err() { "" } else { h })
    };
    if host.is_empty() {
        return Err(bad("it names no host (or a bad port)"));
    }
    Ok(())
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let t = ns::TYPES;
        let streaming = child(op, ns::MESSAGES, "StreamingSubscriptionRequest");
        let push_el = child(op, ns::MESSAGES, "PushSubscriptionRequest");
        let pull = child(op, ns::MESSAGES, "PullSubscriptionRequest").or(streaming).or(push_el).ok_or_else(|| {
            ProtoError::schema(
                "Subscribe needs a PullSubscriptionRequest, PushSubscriptionRequest or StreamingSubscriptionRequest",
            )
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
        // The schema puts Watermark in the types namespace; exchangelib writes it in messages'.
        let watermark_el = child(pull, t, "Watermark").or_else(|| child(pull, ns::MESSAGES, "Watermark"));
        let watermark = match watermark_el.map(text).filter(|w| !w.is_empty()) {
            Some(w) => Some(
                parse_state(&w)
                    .map_err(|_| ProtoError::new(ResponseCode::ErrorInvalidWatermark, "The watermark is not valid."))?,
            ),
            None => None,
        };
        let timeout_minutes =
            child(pull, t, "Timeout").map(text).and_then(|m| m.parse().ok()).unwrap_or(30).clamp(1, 1440);
        let push = match push_el {
            None => None,
            Some(p) => {
                let status_frequency_minutes = match child(p, t, "StatusFrequency").map(text) {
                    None => DEFAULT_STATUS_FREQUENCY,
                    Some(f) => f.trim().parse::<u32>().ok().filter(|f| (1..=1440).contains(f)).ok_or_else(|| {
                        ProtoError::schema("StatusFrequency must be a number of minutes from 1 to 1440")
                    })?,
                };
                let url = child(p, t, "URL").map(text).map(|u| u.trim().to_owned()).unwrap_or_default();
                if url.is_empty() {
                    return Err(ProtoError::schema("a PushSubscriptionRequest needs a URL"));
                }
                // The URL's form is checked by the handler (`check_push_url`), which answers
                // ErrorInvalidPushSubscriptionUrl in the response message as Exchange does.
                Some(Push { status_frequency_minutes, url })
            }
        };
        Ok(Request {
            all_folders,
            folders,
            event_types,
            watermark,
            timeout_minutes,
            streaming: streaming.is_some(),
            push,
        })
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
            push: None,
        }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "Subscribe";

    fn to_xml(&self) -> String {
        let el = match (&self.push, self.streaming) {
            (Some(_), _) => "m:PushSubscriptionRequest",
            (None, true) => "m:StreamingSubscriptionRequest",
            (None, false) => "m:PullSubscriptionRequest",
        };
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
            match &self.push {
                Some(p) => s.push_str(&format!(
                    "<t:StatusFrequency>{}</t:StatusFrequency><t:URL>{}</t:URL>",
                    p.status_frequency_minutes,
                    tandem_xml::escape(&p.url)
                )),
                None => s.push_str(&format!("<t:Timeout>{}</t:Timeout>", self.timeout_minutes)),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_urls_are_bounded() {
        for ok in ["http://127.0.0.1:8080/ews", "https://receiver.example/x?y=1", "http://[::1]:9/", "HTTP://h"] {
            assert!(check_push_url(ok).is_ok(), "{ok}");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_PUSH_URL));
        for bad in [
            "ftp://h/",
            "file:///etc/passwd",
            "http://",
            "http:///x",
            "http://u:p@h/",
            "http://h:99999/",
            "http://h:/",
            "http://h/a b",
            "javascript:alert(1)",
            "h/x",
            long.as_str(),
        ] {
            let e = check_push_url(bad).unwrap_err();
            assert_eq!(e.code, ResponseCode::ErrorInvalidPushSubscriptionUrl, "{bad}");
        }
    }
}

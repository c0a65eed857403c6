//! SendNotification (MS-OXWSNTIF): the request a server POSTs to a push subscription's URL,
//! carrying one Notification per SendNotificationResponseMessage, and the receiver's
//! SendNotificationResult answer (`SubscriptionStatus` OK keeps the subscription, Unsubscribe
//! ends it). Both directions are built and parsed here: the Mailbox builds requests and reads
//! results; a receiver (and the tests) reads requests and builds results.

use tandem_xml::soap::{self, Envelope};
use tandem_xml::{Limits, child, children, children_named, text};

use super::get_events::Event;
use super::sync_folder_items::parse_state;
use crate::{ProtoError, ns};

/// The envelope namespaces of a SendNotification request.
const NAMESPACES: &[(&str, &str)] = &[("m", ns::MESSAGES), ("t", ns::TYPES)];

/// The RequestServerVersion a notification carries (the version this server answers with).
const VERSION: &str = "V2017_07_11";

/// Largest receiver answer read; a SendNotificationResult is a few hundred bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// One notification to post: what `get_events::render` writes for one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub subscription: &'a str,
    pub previous_watermark: i64,
    pub more_events: bool,
    /// Empty: a StatusEvent at `last_watermark`.
    pub events: &'a [Event],
    pub last_watermark: i64,
}

/// The SendNotification request envelope (a Success message per notification).
pub fn request(notifications: &[Outgoing<'_>]) -> String {
    let mut body = String::from("<m:SendNotification><m:ResponseMessages>");
    for n in notifications {
        body.push_str(
            "<m:SendNotificationResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>",
        );
        body.push_str(&super::get_events::render(
            n.subscription,
            n.previous_watermark,
            n.more_events,
            n.events,
            n.last_watermark,
        ));
        body.push_str("</m:SendNotificationResponseMessage>");
    }
    body.push_str("</m:ResponseMessages></m:SendNotification>");
    soap::envelope(NAMESPACES, &format!("<t:RequestServerVersion Version=\"{VERSION}\"/>"), &body)
}

/// One notification as a receiver reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subscription: String,
    pub previous_watermark: String,
    pub more_events: bool,
    /// (event element name, watermark, item or folder id when the event names one).
    pub events: Vec<ReceivedEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// StatusEvent, CreatedEvent, NewMailEvent…
    pub kind: String,
    pub watermark: String,
    pub id: Option<String>,
}

/// Reads a SendNotification request (what a receiver gets).
pub fn parse_request(body: &[u8]) -> Result<Vec<Notification>, ProtoError> {
    let doc = tandem_xml::parse(body, Limits::default()).map_err(|e| ProtoError::schema(e.to_string()))?;
    let env = Envelope::of(&doc).map_err(|e| ProtoError::schema(e.to_string()))?;
    if !tandem_xml::is(env.operation, ns::MESSAGES, "SendNotification") {
        return Err(ProtoError::schema("the body is not a SendNotification"));
    }
    let messages = child(env.operation, ns::MESSAGES, "ResponseMessages")
        .ok_or_else(|| ProtoError::schema("no ResponseMessages"))?;
    let mut out = Vec::new();
    for m in children_named(messages, ns::MESSAGES, "SendNotificationResponseMessage") {
        let Some(n) = child(m, ns::MESSAGES, "Notification") else { continue };
        let subscription = child(n, ns::TYPES, "SubscriptionId").map(text).unwrap_or_default();
        let previous_watermark = child(n, ns::TYPES, "PreviousWatermark").map(text).unwrap_or_default();
        let more_events = child(n, ns::TYPES, "MoreEvents").map(text).is_some_and(|t| t.trim() == "true");
        let events = children(n)
            .filter(|e| e.tag_name().namespace() == Some(ns::TYPES) && e.tag_name().name().ends_with("Event"))
            .map(|e| ReceivedEvent {
                kind: e.tag_name().name().to_owned(),
                watermark: child(e, ns::TYPES, "Watermark").map(text).unwrap_or_default(),
                id: child(e, ns::TYPES, "ItemId")
                    .or_else(|| child(e, ns::TYPES, "FolderId"))
                    .and_then(|i| i.attribute("Id").map(str::to_owned)),
            })
            .collect();
        out.push(Notification { subscription, previous_watermark, more_events, events });
    }
    Ok(out)
}

/// What the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Keep sending.
    Ok,
    /// End the subscription.
    Unsubscribe,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Ok => "OK",
            SubscriptionStatus::Unsubscribe => "Unsubscribe",
        }
    }
}

/// The receiver's answer envelope.
pub fn response(status: SubscriptionStatus) -> String {
    soap::envelope(
        &[("m", ns::MESSAGES)],
        "",
        &format!(
            "<m:SendNotificationResult><m:SubscriptionStatus>{}</m:SubscriptionStatus></m:SendNotificationResult>",
            status.as_str()
        ),
    )
}

/// Reads the receiver's answer. Anything but a SendNotificationResult with OK or Unsubscribe is
/// an error (the server treats it as a failed delivery and retries).
pub fn parse_response(body: &[u8]) -> Result<SubscriptionStatus, ProtoError> {
    let limits = Limits { max_bytes: MAX_RESULT_BYTES, ..Limits::default() };
    let doc = tandem_xml::parse(body, limits).map_err(|e| ProtoError::schema(e.to_string()))?;
    let env = Envelope::of(&doc).map_err(|e| ProtoError::schema(e.to_string()))?;
    if !tandem_xml::is(env.operation, ns::MESSAGES, "SendNotificationResult") {
        return Err(ProtoError::schema("the answer is not a SendNotificationResult"));
    }
    let status = child(env.operation, ns::MESSAGES, "SubscriptionStatus").map(text).unwrap_or_default();
    match status.trim() {
        "OK" => Ok(SubscriptionStatus::Ok),
        "Unsubscribe" => Ok(SubscriptionStatus::Unsubscribe),
        other => Err(ProtoError::schema(format!("SubscriptionStatus {other:?} is neither OK nor Unsubscribe"))),
    }
}

/// The change number a received watermark stands for (tests and receivers compare them).
pub fn watermark_number(w: &str) -> Option<i64> {
    parse_state(w).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_and_results_round_trip() {
        let ev = Event {
            kind: "NewMailEvent",
            watermark: 8,
            at: 1_700_000_000,
            folder_object: false,
            id: ("AAMk".into(), "CQ".into()),
            parent: ("AQMk".into(), "AQ".into()),
            old_parent: None,
        };
        let xml = request(&[
            Outgoing {
                subscription: "s1",
                previous_watermark: 7,
                more_events: false,
                events: &[ev],
                last_watermark: 8,
            },
            Outgoing { subscription: "s2", previous_watermark: 3, more_events: false, events: &[], last_watermark: 3 },
        ]);
        let got = parse_request(xml.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].subscription, "s1");
        assert_eq!(got[0].events[0].kind, "NewMailEvent");
        assert_eq!(got[0].events[0].id.as_deref(), Some("AAMk"));
        assert_eq!(watermark_number(&got[0].events[0].watermark), Some(8));
        assert_eq!(watermark_number(&got[0].previous_watermark), Some(7));
        assert_eq!(got[1].events[0].kind, "StatusEvent");
        for s in [SubscriptionStatus::Ok, SubscriptionStatus::Unsubscribe] {
            assert_eq!(parse_response(response(s).as_bytes()).unwrap(), s);
        }
        // Exchange-style answers from other stacks (default namespace, no prefix).
        let theirs = format!(
            "<Envelope xmlns=\"{}\"><Body><SendNotificationResult xmlns=\"{}\"><SubscriptionStatus>Unsubscribe</SubscriptionStatus></SendNotificationResult></Body></Envelope>",
            soap::SOAP11,
            ns::MESSAGES
        );
        assert_eq!(parse_response(theirs.as_bytes()).unwrap(), SubscriptionStatus::Unsubscribe);
        for bad in ["", "<x/>", "<?xml version=\"1.0\"?><!DOCTYPE x []><x/>"] {
            assert!(parse_response(bad.as_bytes()).is_err(), "{bad}");
        }
        let other = response(SubscriptionStatus::Ok).replace(">OK<", ">Maybe<");
        assert!(parse_response(other.as_bytes()).is_err());
        assert!(parse_request(response(SubscriptionStatus::Ok).as_bytes()).is_err());
    }
}

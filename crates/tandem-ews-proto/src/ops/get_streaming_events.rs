//! GetStreamingEvents: one long HTTP response carrying a SOAP envelope per batch of events on
//! streaming subscriptions, then `ConnectionStatus` Closed when the connection timeout ends.

use tandem_xml::{Node, children, text};

use super::get_events::{Event, render as render_notification};
use super::need;
use crate::{ProtoError, ResponseCode, render};

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

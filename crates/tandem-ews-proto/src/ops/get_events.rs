//! GetEvents and Unsubscribe on pull subscriptions.

use tandem_xml::{Node, text};

use super::sync_folder_items::{encode_state, parse_state};
use super::{BuildRequest, need};
use crate::render::id_element;
use crate::reply::{self, MessageError, ReplyError};
use crate::{ProtoError, ResponseCode, format_datetime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub subscription: String,
    pub watermark: i64,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let subscription = text(need(op, "SubscriptionId")?);
        let watermark = parse_state(&text(need(op, "Watermark")?))
            .map_err(|_| ProtoError::new(ResponseCode::ErrorInvalidWatermark, "The watermark is not valid."))?;
        Ok(Request { subscription, watermark })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeRequest {
    pub subscription: String,
}

impl UnsubscribeRequest {
    pub fn parse(op: Node<'_, '_>) -> Result<UnsubscribeRequest, ProtoError> {
        Ok(UnsubscribeRequest { subscription: text(need(op, "SubscriptionId")?) })
    }
}

impl BuildRequest for UnsubscribeRequest {
    const OPERATION: &'static str = "Unsubscribe";

    fn to_xml(&self) -> String {
        format!(
            "<m:Unsubscribe><m:SubscriptionId>{}</m:SubscriptionId></m:Unsubscribe>",
            tandem_xml::escape(&self.subscription)
        )
    }
}

/// Reads an Unsubscribe answer.
pub fn parse_unsubscribe_response(doc: &tandem_xml::Document<'_>) -> Result<Result<(), MessageError>, ReplyError> {
    let messages = reply::messages(doc, "Unsubscribe")?;
    let m = messages.first().ok_or_else(|| ReplyError::unexpected("Unsubscribe", "no response message"))?;
    Ok(m.result().map(|_| ()))
}

/// One event for the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// CreatedEvent, NewMailEvent…
    pub kind: &'static str,
    pub watermark: i64,
    pub at: i64,
    pub folder_object: bool,
    pub id: (String, String),
    pub parent: (String, String),
    pub old_parent: Option<(String, String)>,
}

/// The Notification element.
pub fn render(subscription: &str, previous: i64, more: bool, events: &[Event], last_watermark: i64) -> String {
    let mut s = format!(
        "<m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>{more}</t:MoreEvents>",
        tandem_xml::escape(subscription),
        encode_state(previous)
    );
    if events.is_empty() {
        s.push_str(&format!(
            "<t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>",
            encode_state(last_watermark)
        ));
    }
    for e in events {
        let id_el = if e.folder_object { "FolderId" } else { "ItemId" };
        s.push_str(&format!(
            "<t:{k}><t:Watermark>{}</t:Watermark><t:TimeStamp>{}</t:TimeStamp>{}{}",
            encode_state(e.watermark),
            format_datetime(e.at),
            id_element(id_el, &e.id.0, &e.id.1),
            id_element("ParentFolderId", &e.parent.0, &e.parent.1),
            k = e.kind
        ));
        if let Some((op, ock)) = &e.old_parent {
            let old_el = if e.folder_object { "OldFolderId" } else { "OldItemId" };
            s.push_str(&id_element(old_el, &e.id.0, &e.id.1));
            s.push_str(&id_element("OldParentFolderId", op, ock));
        }
        s.push_str(&format!("</t:{}>", e.kind));
    }
    s.push_str("</m:Notification>");
    s
}

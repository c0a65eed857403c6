//! `POST /messages`: an IM from the signed-in user, sent as a SIP MESSAGE from them through the
//! SIP core's delivery (`sip::im::send_from_web`): every registered endpoint and open web
//! session of the recipient, else the offline store. The conversation is the MESSAGE's Call-ID;
//! passing it back keeps a reply in the same conversation.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, MAX_TEXT, UcwaState, caller, json_body, resolve_uri};
use crate::sip::im::{WebSend, WebSendError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    to: String,
    text: String,
    #[serde(default)]
    conversation: Option<String>,
}

#[derive(Debug, Serialize)]
struct Accepted {
    conversation: String,
}

/// A conversation id the caller passed back: what a Call-ID may hold, bounded.
fn valid_conversation(c: &str) -> bool {
    !c.is_empty() && c.len() <= 128 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._@!%*+~".contains(&b))
}

pub(super) async fn post_message(State(s): State<Arc<UcwaState>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let req: MessageRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if req.text.trim().is_empty() || req.text.chars().count() > MAX_TEXT {
        return ApiError::bad_request(format!("text is 1 to {MAX_TEXT} characters")).into_response();
    }
    let conversation = match req.conversation {
        Some(c) if valid_conversation(&c) => c,
        Some(_) => return ApiError::bad_request("conversation is not one this API gave").into_response(),
        None => format!("{}@{}", crate::sip::random_token(), s.core.settings.advertised_host),
    };
    let to = match resolve_uri(&s, &req.to).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match crate::sip::im::send_from_web(&s.core, &user, &to, &req.text, &conversation).await {
        Ok(WebSend::Delivered | WebSend::Stored) => {
            metrics::counter!("tandem_ucwa_messages_total").increment(1);
            (StatusCode::ACCEPTED, axum::Json(Accepted { conversation })).into_response()
        }
        Ok(WebSend::Refused) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "RecipientUnavailable",
            "the recipient is offline and their offline message store is full",
        )
        .into_response(),
        Err(WebSendError::UnknownRecipient(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, "UnknownRecipient", format!("no SIP user {to} here")).into_response()
        }
        Err(e) => ApiError::unavailable(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conversation_ids_are_call_id_words() {
        assert!(super::valid_conversation("a1b2@fe.litwareinc.com"));
        assert!(!super::valid_conversation("a b"));
        assert!(!super::valid_conversation("x\r\nVia: evil"));
        assert!(!super::valid_conversation(&"a".repeat(129)));
    }
}

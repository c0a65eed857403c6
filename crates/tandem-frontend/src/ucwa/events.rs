//! `GET /events`: the session's event stream (`text/event-stream`). Events `presence` (a
//! watched presentity changed, or its state when first watched), `message` (an IM to or from
//! the user) and `call` (a click-to-call call's state); a comment line every
//! [`super::KEEPALIVE`]. While it is open the session is an endpoint of the user. The stream ends
//! when its token does (the client reconnects with a fresh one), and is closed when its client
//! reads too slowly to keep up (`sip::web::STREAM_QUEUE`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{ApiError, KEEPALIVE, MAX_STREAMS_PER_USER, UcwaState, caller_until};
use crate::sip::web::WebEvent;

/// Closes the stream's place among the user's endpoints when the client goes away.
struct Open {
    state: Arc<UcwaState>,
    user: String,
    id: u64,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.state.core.presence.web.close_stream(&self.user, self.id);
    }
}

#[derive(Serialize)]
struct MessageEvent<'a> {
    conversation: &'a str,
    from: &'a str,
    to: &'a str,
    text: &'a str,
    time: i64,
}

#[derive(Serialize)]
struct CallEvent<'a> {
    id: &'a str,
    state: &'a str,
}

async fn render(s: &UcwaState, me: &str, event: WebEvent) -> Option<Event> {
    let e = match event {
        WebEvent::Presence { uri } => {
            let v = super::presence::view(s, me, &uri).await;
            Event::default().event("presence").json_data(v)
        }
        WebEvent::Message { conversation, from, to, text, time } => Event::default()
            .event("message")
            .json_data(MessageEvent { conversation: &conversation, from: &from, to: &to, text: &text, time }),
        WebEvent::Call { id, state } => Event::default().event("call").json_data(CallEvent { id: &id, state: &state }),
    };
    e.ok()
}

pub(super) async fn get_events(State(s): State<Arc<UcwaState>>, headers: HeaderMap) -> Response {
    let (user, token_ends) = match caller_until(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let me = user.sip_uri.key();
    let (id, rx) = match s.core.presence.web.open_stream(&me, MAX_STREAMS_PER_USER) {
        Ok(x) => x,
        Err(e) => {
            return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyEventStreams", e.to_string()).into_response();
        }
    };
    metrics::counter!("tandem_ucwa_event_streams_total").increment(1);
    // What the session watched before the stream opened, as it is now.
    for uri in s.core.presence.web.watching(&me) {
        s.core.presence.web.deliver(&me, &WebEvent::Presence { uri });
    }
    let left = Duration::from_secs(u64::try_from(token_ends - tandem_store::now_unix()).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + left;
    let open = Open { state: s.clone(), user: me.clone(), id };
    let events = stream::unfold((rx, open), move |(mut rx, open): (mpsc::Receiver<WebEvent>, Open)| async move {
        loop {
            let next = tokio::select! {
                e = rx.recv() => e,
                _ = tokio::time::sleep_until(deadline) => None,
            };
            let event = next?;
            if let Some(e) = render(&open.state, &open.user, event).await {
                return Some((Ok::<Event, Infallible>(e), (rx, open)));
            }
        }
    });
    let mut r = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keep-alive")).into_response();
    // Proxies must not hold events back.
    r.headers_mut().insert("x-accel-buffering", axum::http::HeaderValue::from_static("no"));
    r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-cache"));
    r
}

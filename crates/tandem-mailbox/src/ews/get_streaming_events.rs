//! GetStreamingEvents: a chunked response with one envelope per batch of events from the change
//! log, polled every 250 ms (calendar → presence wants under a second), and a Closed envelope
//! when the client's connection timeout ends. Streaming subscriptions keep their own watermark.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::get_streaming_events::{Request, envelope, error_envelope};

use super::get_events::collect;
use crate::{Shared, xml_response};

/// How often the change log is read while a stream is open.
const POLL: Duration = Duration::from_millis(250);

pub(crate) async fn handle(s: Arc<Shared>, mailbox: String, req: Request) -> Response {
    let known = s
        .subscriptions
        .lock()
        .map(|subs| {
            req.subscriptions.iter().all(|id| subs.get(id).is_some_and(|x| x.mailbox == mailbox && x.streaming))
        })
        .unwrap_or(false);
    if !known {
        return xml_response(
            StatusCode::OK,
            error_envelope(ResponseCode::ErrorSubscriptionNotFound, "The specified subscription was not found."),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(req.timeout_minutes * 60);
    let state = Stream { s, subs: req.subscriptions, deadline, started: false, closed: false };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.closed {
            return None;
        }
        if !st.started {
            st.started = true;
            return Some((Ok::<_, std::io::Error>(envelope("OK", &[])), st));
        }
        loop {
            if Instant::now() >= st.deadline {
                st.closed = true;
                return Some((Ok(envelope("Closed", &[])), st));
            }
            tokio::time::sleep(POLL).await;
            let mut batch = Vec::new();
            for id in &st.subs {
                let sub = st.s.subscriptions.lock().ok().and_then(|mut subs| {
                    subs.get_mut(id).map(|x| {
                        x.last_poll = Instant::now();
                        x.clone()
                    })
                });
                let Some(sub) = sub else {
                    st.closed = true;
                    return Some((Ok(envelope("Closed", &[])), st));
                };
                match collect(&st.s, &sub, sub.watermark).await {
                    Ok((events, last, _more)) if !events.is_empty() => {
                        if let Ok(mut subs) = st.s.subscriptions.lock()
                            && let Some(x) = subs.get_mut(id)
                        {
                            x.watermark = last;
                        }
                        batch.push((id.clone(), sub.watermark, events, last));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "streaming notifications failed");
                        st.closed = true;
                        return Some((Ok(envelope("Closed", &[])), st));
                    }
                }
            }
            if !batch.is_empty() {
                return Some((Ok(envelope("OK", &batch)), st));
            }
        }
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], Body::from_stream(stream)).into_response()
}

struct Stream {
    s: Arc<Shared>,
    subs: Vec<String>,
    deadline: Instant,
    started: bool,
    closed: bool,
}

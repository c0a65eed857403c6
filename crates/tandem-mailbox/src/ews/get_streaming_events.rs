//! GetStreamingEvents: a chunked response with one envelope per batch of events on one or more
//! of the caller's streaming subscriptions (as Exchange, one connection serves many), and a
//! Closed envelope when the client's connection timeout ends. The connection sleeps until a
//! commit in one of its subscriptions' mailboxes wakes it (`data::notify`), then reads the change
//! log for the subscriptions with news only: an idle connection costs no query. An envelope with
//! no notifications every [`KEEP_ALIVE`] tells the client (and any proxy) the connection lives.
//! Streaming subscriptions keep their own watermark.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::get_streaming_events::{Request, envelope, refused_envelope};
use tokio::time::Instant;

use super::get_events::collect;
use crate::data::notify::{Signal, Waiter};
use crate::{Shared, Subscription, xml_response};

/// How long an open connection stays silent at most.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// One batch of a stream: per subscription, (id, previous watermark, events, last watermark).
type Batch = Vec<(String, i64, Vec<tandem_ews_proto::ops::get_events::Event>, i64)>;

pub(crate) async fn handle(s: Arc<Shared>, owner: String, req: Request) -> Response {
    let mut refused: Vec<(ResponseCode, String, Vec<String>)> = Vec::new();
    let mut served: Vec<(String, Arc<Signal>)> = Vec::new();
    {
        let Ok(subs) = s.subscriptions.lock() else {
            return xml_response(
                StatusCode::OK,
                refused_envelope(&[(ResponseCode::ErrorServerBusy, "Busy.".into(), req.subscriptions)]),
            );
        };
        let mut seen = HashSet::new();
        for id in req.subscriptions {
            if !seen.insert(id.clone()) {
                continue;
            }
            let (code, message) = match subs.get(&id) {
                Some(x) if x.owner == owner && x.streaming => {
                    served.push((id, x.signal.clone()));
                    continue;
                }
                None => (ResponseCode::ErrorSubscriptionNotFound, "The specified subscription was not found."),
                Some(x) if x.owner != owner => {
                    (ResponseCode::ErrorSubscriptionAccessDenied, "The subscription belongs to another caller.")
                }
                Some(x) if x.push.is_some() => {
                    (ResponseCode::ErrorInvalidSubscription, "This is a push subscription; it is posted to its URL.")
                }
                Some(_) => (ResponseCode::ErrorInvalidSubscription, "This is a pull subscription; use GetEvents."),
            };
            match refused.iter_mut().find(|(c, _, _)| *c == code) {
                Some((_, _, ids)) => ids.push(id),
                None => refused.push((code, message.to_owned(), vec![id])),
            }
        }
    }
    if !refused.is_empty() {
        return xml_response(StatusCode::OK, refused_envelope(&refused));
    }
    let waiter = Arc::new(Waiter::new());
    for (_, signal) in &served {
        signal.add_waiter(&waiter);
    }
    let now = Instant::now();
    metrics::gauge!("tandem_ews_streaming_connections").increment(1.0);
    let state = Stream {
        s,
        subs: served,
        waiter,
        deadline: now + Duration::from_secs(req.timeout_minutes * 60),
        keep_alive: now + KEEP_ALIVE,
        started: false,
        closed: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        let chunk = st.next_chunk().await?;
        Some((Ok::<_, std::io::Error>(chunk), st))
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], Body::from_stream(stream)).into_response()
}

struct Stream {
    s: Arc<Shared>,
    subs: Vec<(String, Arc<Signal>)>,
    /// Woken by any commit in the subscriptions' mailboxes (and by their Unsubscribe).
    waiter: Arc<Waiter>,
    deadline: Instant,
    keep_alive: Instant,
    started: bool,
    closed: bool,
}

/// Why a stream ends early.
enum End {
    /// A subscription was cancelled or expired.
    Gone,
    /// Reading the change log failed.
    Failed,
}

impl Stream {
    /// The next envelope to send; `None` after the Closed one.
    async fn next_chunk(&mut self) -> Option<String> {
        if self.closed {
            return None;
        }
        if !self.started {
            self.started = true;
            return Some(envelope("OK", &[]));
        }
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Some(self.close());
            }
            match self.read().await {
                Ok(batch) if !batch.is_empty() => {
                    self.keep_alive = now + KEEP_ALIVE;
                    return Some(envelope("OK", &batch));
                }
                Ok(_) => {}
                Err(End::Gone) => return Some(self.close()),
                Err(End::Failed) => return Some(self.close()),
            }
            if now >= self.keep_alive {
                self.keep_alive = now + KEEP_ALIVE;
                self.touch();
                return Some(envelope("OK", &[]));
            }
            tokio::select! {
                () = self.waiter.notified() => {}
                () = tokio::time::sleep_until(self.deadline.min(self.keep_alive)) => {}
            }
        }
    }

    fn close(&mut self) -> String {
        self.closed = true;
        envelope("Closed", &[])
    }

    /// Reads the events of the subscriptions whose mailbox committed past their watermark.
    async fn read(&mut self) -> Result<Batch, End> {
        let due: Vec<(String, Subscription)> = {
            let subs = self.s.subscriptions.lock().map_err(|_| End::Failed)?;
            let mut due = Vec::new();
            for (id, signal) in &self.subs {
                let sub = subs.get(id).ok_or(End::Gone)?;
                if signal.has_news(sub.watermark) {
                    due.push((id.clone(), sub.clone()));
                }
            }
            due
        };
        let mut batch = Vec::new();
        for (id, sub) in due {
            // Everything up to what the signal knew before the read is committed and so read.
            let known = sub.signal.committed();
            let (events, last, more) = match collect(&self.s, &sub, sub.watermark).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "streaming notifications failed");
                    return Err(End::Failed);
                }
            };
            if let Ok(mut subs) = self.s.subscriptions.lock()
                && let Some(x) = subs.get_mut(&id)
            {
                // Past what was read even when none of it concerned the subscription, so the
                // same rows are not read again at the next commit.
                let read_to = if more { last } else { known.map_or(last, |k| k.max(last)) };
                x.watermark = x.watermark.max(read_to);
                x.last_poll = std::time::Instant::now();
            }
            if more {
                // More than one batch is waiting: come back without sleeping.
                self.waiter.notify_one();
            }
            if !events.is_empty() {
                batch.push((id, sub.watermark, events, last));
            }
        }
        Ok(batch)
    }

    /// Marks the subscriptions used now, so they expire only once no connection serves them.
    fn touch(&self) {
        if let Ok(mut subs) = self.s.subscriptions.lock() {
            let now = std::time::Instant::now();
            for (id, _) in &self.subs {
                if let Some(x) = subs.get_mut(id) {
                    x.last_poll = now;
                }
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        metrics::gauge!("tandem_ews_streaming_connections").decrement(1.0);
        self.touch();
    }
}

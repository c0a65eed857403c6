//! Push subscriptions' deliveries: SendNotification (MS-OXWSNTIF) POSTed to the subscriber's URL.
//!
//! Each push subscription has one task that sleeps on a [`Waiter`] registered with its mailbox's
//! signal, the same wake-up pull and streaming subscriptions use (`data::notify`): a commit wakes
//! it, it reads the change log past its watermark (`get_events::collect`) and posts the events; a
//! StatusEvent goes out when nothing was sent for StatusFrequency minutes. Nothing polls.
//!
//! As Exchange does, a notification the receiver does not acknowledge (no answer within
//! [`tandem_http::client::CALLBACK_TIMEOUT`], an HTTP error, or anything but a
//! SendNotificationResult) is sent again after 30 s, then at 60 s, 120 s… from the first failure,
//! while that stays within StatusFrequency; then the subscription is dropped. A result with
//! `SubscriptionStatus` Unsubscribe ends it; OK keeps it. `mailbox.ews_push_minute_seconds`
//! scales these times for tests (60: Exchange's).
//!
//! Bounds: URLs are checked at Subscribe (`http`/`https`, length); each POST has its own timeout
//! and the answer is read up to 64 KiB; at most [`MAX_CONCURRENT_POSTS`] POSTs are in flight in
//! the role, each subscription sends one at a time, and every subscription has its own task, so a
//! slow or dead receiver delays only its own subscriptions. Push subscriptions count against the
//! same per-account cap as the others (`subscriptions::MAX_PER_ACCOUNT`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tandem_ews_proto::ops::send_notification::{self, MAX_RESULT_BYTES, Outgoing, SubscriptionStatus};
use tandem_types::Role;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::get_events::collect;
use crate::Shared;
use crate::data::notify::Waiter;

/// POSTs in flight at once in the role, all receivers together.
pub(crate) const MAX_CONCURRENT_POSTS: usize = 64;

/// The role's push deliverer: the HTTP client, the POST slots and the timing.
#[derive(Debug)]
pub(crate) struct Pusher {
    client: OnceCell<reqwest::Client>,
    slots: Arc<Semaphore>,
    /// How long one StatusFrequency minute lasts.
    minute: Duration,
    runtime: OnceLock<(TaskTracker, CancellationToken)>,
}

impl Pusher {
    pub fn new(config: &tandem_config::MailboxConfig) -> Pusher {
        Pusher {
            client: OnceCell::new(),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_POSTS)),
            minute: Duration::from_secs(u64::from(config.ews_push_minute_seconds.max(1))),
            runtime: OnceLock::new(),
        }
    }

    /// Runs the deliveries as tasks of the role, stopped with it.
    pub fn attach(&self, tasks: TaskTracker, shutdown: CancellationToken) {
        let _ = self.runtime.set((tasks, shutdown));
    }

    /// How long `minutes` of StatusFrequency last.
    pub fn minutes(&self, minutes: u32) -> Duration {
        self.minute * minutes
    }

    /// The client, trusting the platform's roots and the deployment CA the role is configured
    /// with (`auth.trusted_ca_pem`), built on first use.
    async fn client(&self, s: &Shared) -> Option<&reqwest::Client> {
        self.client
            .get_or_try_init(|| async {
                let key = tandem_trust::partners::setting_trusted_ca(Role::Mailbox);
                let ca = match s.store.setting(key).await {
                    Ok(ca) => ca.filter(|c| !c.trim().is_empty()),
                    Err(e) => {
                        tracing::warn!(error = %e, "push notifications: cannot read the trusted CA; using the system's roots");
                        None
                    }
                };
                tandem_http::client::callback_client(ca.as_deref()).map_err(|e| {
                    tracing::error!(error = %e, "push notifications: cannot build the HTTP client");
                })
            })
            .await
            .ok()
    }
}

/// Starts delivering the push subscription `id` (just added to the table).
pub(crate) fn spawn(s: Arc<Shared>, id: String) {
    let fut = deliver(s.clone(), id);
    match s.push.runtime.get() {
        Some((tasks, shutdown)) => {
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                tokio::select! {
                    () = fut => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
        None => {
            tokio::spawn(fut);
        }
    }
}

/// Why a delivery attempt failed.
#[derive(Debug)]
enum Failure {
    Transport(String),
    Status(u16),
    Answer(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(c) => write!(f, "{c}"),
            Failure::Status(c) => write!(f, "HTTP {c}"),
            Failure::Answer(c) => write!(f, "not a SendNotificationResult: {c}"),
        }
    }
}

async fn deliver(s: Arc<Shared>, id: String) {
    let Some(first) = snapshot(&s, &id) else { return };
    let Some(spec) = first.push.clone() else { return };
    let status_every = s.push.minutes(spec.status_frequency_minutes);
    let waiter = Arc::new(Waiter::new());
    first.signal.add_waiter(&waiter);
    drop(first);
    metrics::gauge!("tandem_ews_push_subscriptions").increment(1.0);
    let mut next_status = Instant::now() + status_every;
    let end = loop {
        let Some(sub) = snapshot(&s, &id) else { break "cancelled" };
        // Read what is committed past the watermark, if the signal says something may be.
        let known = sub.signal.committed();
        let (events, last, more) = if sub.signal.has_news(sub.watermark) {
            match collect(&s, &sub, sub.watermark).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, subscription = %id, "push notifications: cannot read the change log");
                    (Vec::new(), sub.watermark, false)
                }
            }
        } else {
            (Vec::new(), sub.watermark, false)
        };
        let read_to = if more { last } else { known.map_or(last, |k| k.max(last)) };
        let now = Instant::now();
        if events.is_empty() && now < next_status {
            advance(&s, &id, read_to, false);
            tokio::select! {
                () = waiter.notified() => {}
                () = tokio::time::sleep_until(next_status) => {}
            }
            continue;
        }
        let body = send_notification::request(&[Outgoing {
            subscription: &id,
            previous_watermark: sub.watermark,
            more_events: more,
            events: &events,
            last_watermark: if events.is_empty() { read_to } else { last },
        }]);
        drop(sub);
        match post_with_retries(&s, &id, &spec.url, body, status_every).await {
            Ok(SubscriptionStatus::Ok) => {
                let sent = if events.is_empty() { read_to } else { last };
                advance(&s, &id, sent, true);
                next_status = Instant::now() + status_every;
                if more {
                    waiter.notify_one();
                }
            }
            Ok(SubscriptionStatus::Unsubscribe) => break "unsubscribed by the receiver",
            Err(()) => break "the receiver did not answer within StatusFrequency",
        }
    };
    if let Ok(mut subs) = s.subscriptions.lock() {
        subs.remove(&id);
        metrics::gauge!("tandem_ews_subscriptions").set(subs.len() as f64);
    }
    metrics::gauge!("tandem_ews_push_subscriptions").decrement(1.0);
    tracing::info!(subscription = %id, why = end, "push subscription ended");
}

/// The subscription as it stands, if it still exists.
fn snapshot(s: &Shared, id: &str) -> Option<crate::Subscription> {
    s.subscriptions.lock().ok()?.get(id).cloned()
}

/// Moves the watermark to `to`; `delivered` also marks the subscription alive.
fn advance(s: &Shared, id: &str, to: i64, delivered: bool) {
    if let Ok(mut subs) = s.subscriptions.lock()
        && let Some(x) = subs.get_mut(id)
    {
        x.watermark = x.watermark.max(to);
        if delivered {
            x.last_poll = std::time::Instant::now();
        }
    }
}

/// Posts `body` until the receiver acknowledges it: retries after half a minute, then at double
/// the previous offset from the first failure, while the offset stays within `window`.
async fn post_with_retries(
    s: &Shared,
    id: &str,
    url: &str,
    body: String,
    window: Duration,
) -> Result<SubscriptionStatus, ()> {
    let mut first_failure: Option<Instant> = None;
    let mut offset = s.push.minute / 2;
    loop {
        match post_once(s, url, body.clone()).await {
            Ok(status) => {
                metrics::counter!("tandem_ews_push_notifications_total", "result" => "delivered").increment(1);
                return Ok(status);
            }
            Err(e) => {
                metrics::counter!("tandem_ews_push_notifications_total", "result" => "failed").increment(1);
                let since = *first_failure.get_or_insert_with(Instant::now);
                if offset > window {
                    tracing::warn!(subscription = %id, url, error = %e, "push notification not acknowledged; dropping the subscription");
                    return Err(());
                }
                tracing::info!(subscription = %id, url, error = %e, retry_in = ?(since + offset).saturating_duration_since(Instant::now()), "push notification not acknowledged; will retry");
                tokio::time::sleep_until(since + offset).await;
                offset *= 2;
                // An Unsubscribe (or the sweep) while waiting ends the retries.
                if snapshot(s, id).is_none() {
                    return Ok(SubscriptionStatus::Unsubscribe);
                }
            }
        }
    }
}

async fn post_once(s: &Shared, url: &str, body: String) -> Result<SubscriptionStatus, Failure> {
    let client = s.push.client(s).await.ok_or_else(|| Failure::Transport("no HTTP client".into()))?;
    let _slot = s.push.slots.acquire().await.map_err(|_| Failure::Transport("shutting down".into()))?;
    let (status, answer) =
        tandem_http::client::post_limited(client, url, "text/xml; charset=utf-8", body, MAX_RESULT_BYTES)
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
    if !status.is_success() {
        return Err(Failure::Status(status.as_u16()));
    }
    send_notification::parse_response(&answer).map_err(|e| Failure::Answer(e.message))
}

//! The GetStreamingEvents connections the watches share. EWS lets one request carry several
//! SubscriptionIds, so the watches of the users whose mailboxes answer at one EWS URL are read
//! over a few connections of up to [`PER_CONNECTION`] subscriptions each (20,000 watched users
//! are 40 connections, not 20,000). A mailbox that answers a shared request with an error (one
//! that accepts only its caller's own subscriptions) gets one connection per subscription from
//! then on, for [`SHARING_RETRY`]. Subscriptions keep their watermark in the mailbox, so
//! reopening a connection (to add a member, after the connection timeout) loses no event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tandem_ews_client::{EwsClientError, Mailbox};
use tandem_ews_proto::ops::get_streaming_events;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exchange_connector::{ConnectorError, ExchangeConnector, Hop, at};

/// Subscriptions read over one connection at most.
pub(super) const PER_CONNECTION: usize = 500;
/// How long a mailbox that refused a shared request is read one subscription per connection.
const SHARING_RETRY: Duration = Duration::from_secs(600);
/// Membership changes are applied in batches this far apart, so a burst of sign-ins reopens a
/// connection once.
const SETTLE: Duration = Duration::from_millis(100);
/// Minutes a connection stays open before the mailbox closes it (the most EWS allows).
const CONNECTION_MINUTES: u64 = 30;

/// What a watch hears from its subscription's connection.
#[derive(Debug)]
pub(crate) enum Heard {
    /// Events arrived: read the calendar again.
    Changed,
    /// The connection failed for this subscription; `gone` when the mailbox no longer knows it.
    Lost { error: ConnectorError, gone: bool },
}

enum Msg {
    Add {
        id: String,
        mailbox: Mailbox,
        tx: mpsc::Sender<Heard>,
    },
    Remove {
        id: String,
    },
    /// A shared connection at `url` was refused: read it one subscription per connection.
    Unshared {
        url: String,
    },
}

#[derive(Clone)]
struct Member {
    mailbox: Mailbox,
    tx: mpsc::Sender<Heard>,
}

/// One connection's subscriptions and the switch that ends it.
struct Chunk {
    ids: Vec<String>,
    stop: Option<CancellationToken>,
    dirty: bool,
}

#[derive(Default)]
struct Group {
    chunks: Vec<Chunk>,
    unshared_until: Option<Instant>,
}

/// The handle the watches use.
#[derive(Debug, Clone)]
pub(crate) struct Hub {
    tx: mpsc::UnboundedSender<Msg>,
    /// Connections open now (the manager publishes it as a gauge).
    connections: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hub message")
    }
}

impl Hub {
    pub(crate) fn start(connector: Arc<ExchangeConnector>, tasks: &TaskTracker, shutdown: CancellationToken) -> Hub {
        let (tx, rx) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let hub = Hub { tx: tx.clone(), connections: connections.clone() };
        tasks.spawn(run(connector, rx, tx, connections, tasks.clone(), shutdown));
        hub
    }

    pub(super) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Reads `id` (a streaming subscription of `mailbox`) and tells `tx` what arrives.
    pub(crate) fn add(&self, id: &str, mailbox: &Mailbox, tx: mpsc::Sender<Heard>) {
        let _ = self.tx.send(Msg::Add { id: id.to_owned(), mailbox: mailbox.clone(), tx });
    }

    pub(crate) fn remove(&self, id: &str) {
        let _ = self.tx.send(Msg::Remove { id: id.to_owned() });
    }
}

async fn run(
    connector: Arc<ExchangeConnector>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    me: mpsc::UnboundedSender<Msg>,
    connections: Arc<AtomicUsize>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut groups: HashMap<String, Group> = HashMap::new();
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
        };
        tokio::time::sleep(SETTLE).await;
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        for m in batch {
            match m {
                Msg::Add { id, mailbox, tx } => {
                    let g = groups.entry(mailbox.ews_url.clone()).or_default();
                    let shared = g.unshared_until.is_none_or(|t| Instant::now() >= t);
                    let cap = if shared { PER_CONNECTION } else { 1 };
                    match g.chunks.iter_mut().find(|c| c.ids.len() < cap) {
                        Some(c) => {
                            c.ids.push(id.clone());
                            c.dirty = true;
                        }
                        None => g.chunks.push(Chunk { ids: vec![id.clone()], stop: None, dirty: true }),
                    }
                    members.insert(id, Member { mailbox, tx });
                }
                Msg::Remove { id } => {
                    if let Some(m) = members.remove(&id)
                        && let Some(g) = groups.get_mut(&m.mailbox.ews_url)
                    {
                        for c in g.chunks.iter_mut().filter(|c| c.ids.contains(&id)) {
                            c.ids.retain(|x| *x != id);
                            c.dirty = true;
                        }
                    }
                }
                Msg::Unshared { url } => {
                    if let Some(g) = groups.get_mut(&url) {
                        tracing::warn!(url = %url, "calendar presence: the mailbox refuses shared streams; one connection per subscription");
                        g.unshared_until = Some(Instant::now() + SHARING_RETRY);
                        let ids: Vec<String> = g.chunks.iter().flat_map(|c| c.ids.clone()).collect();
                        for c in &mut g.chunks {
                            if let Some(s) = c.stop.take() {
                                s.cancel();
                            }
                        }
                        g.chunks = ids.into_iter().map(|id| Chunk { ids: vec![id], stop: None, dirty: true }).collect();
                    }
                }
            }
        }
        for (url, g) in groups.iter_mut() {
            for c in g.chunks.iter_mut().filter(|c| c.dirty) {
                c.dirty = false;
                if let Some(s) = c.stop.take() {
                    s.cancel();
                }
                let readers: Vec<(String, Member)> =
                    c.ids.iter().filter_map(|id| members.get(id).map(|m| (id.clone(), m.clone()))).collect();
                if readers.is_empty() {
                    continue;
                }
                let stop = shutdown.child_token();
                c.stop = Some(stop.clone());
                tasks.spawn(connection(connector.clone(), url.clone(), readers, me.clone(), stop));
            }
            g.chunks.retain(|c| !c.ids.is_empty());
        }
        groups.retain(|_, g| !g.chunks.is_empty());
        connections.store(groups.values().map(|g| g.chunks.len()).sum(), Ordering::Relaxed);
    }
}

/// One GetStreamingEvents connection for `readers`, reopened at each connection timeout.
async fn connection(
    connector: Arc<ExchangeConnector>,
    url: String,
    readers: Vec<(String, Member)>,
    hub: mpsc::UnboundedSender<Msg>,
    stop: CancellationToken,
) {
    let Some((_, owner)) = readers.first() else { return };
    // The request acts as the first member's user; a mailbox that lets a partner read several
    // users' subscriptions at once answers for all of them.
    let mailbox = owner.mailbox.clone();
    let req = get_streaming_events::Request {
        subscriptions: readers.iter().map(|(id, _)| id.clone()).collect(),
        timeout_minutes: CONNECTION_MINUTES,
    };
    let by_id: HashMap<&str, &Member> = readers.iter().map(|(id, m)| (id.as_str(), m)).collect();
    tracing::debug!(url = %url, subscriptions = readers.len(), "calendar presence: opening a streaming connection");
    loop {
        let opened = tokio::select! {
            _ = stop.cancelled() => return,
            s = connector.client().get_streaming_events(&mailbox, &req) => s,
        };
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => return refused(&readers, &url, &hub, e),
        };
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                n = stream.next() => n,
            };
            match next {
                Some(Ok(batch)) => {
                    for n in batch.notifications.iter().filter(|n| !n.events.is_empty()) {
                        if let Some(m) = by_id.get(n.subscription.as_str()) {
                            // A full channel already holds a Changed: the watch reads once.
                            let _ = m.tx.try_send(Heard::Changed);
                        }
                    }
                }
                None => break,
                Some(Err(e)) => return refused(&readers, &url, &hub, e),
            }
        }
    }
}

/// A connection failed: a shared one refused with an EWS error falls back to one connection per
/// subscription; otherwise its watches hear it (and start over with their backoff).
fn refused(readers: &[(String, Member)], url: &str, hub: &mpsc::UnboundedSender<Msg>, e: EwsClientError) {
    if readers.len() > 1 && e.response_code().is_some() {
        let _ = hub.send(Msg::Unshared { url: url.to_owned() });
        return;
    }
    let gone = gone(&e);
    let error = at(Hop::Ews)(e);
    for (_, m) in readers {
        let copy = ConnectorError { hop: error.hop, message: error.message.clone(), hint: error.hint.clone() };
        let _ = m.tx.try_send(Heard::Lost { error: copy, gone });
    }
}

/// Whether the mailbox no longer knows the subscription (it restarted or expired it).
pub(crate) fn gone(e: &EwsClientError) -> bool {
    e.response_code().is_some_and(|c| c == "ErrorSubscriptionNotFound" || c == "ErrorInvalidSubscription")
}

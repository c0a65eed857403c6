//! Web sessions of the UC web API (`crate::ucwa`) as endpoints of their users.
//!
//! A user with an open event stream is reachable as a SIP endpoint is: an IM to them is handed
//! to every open stream (besides being forked to their registered phones), and a change of a
//! presentity a web session watches is pushed from the same place a SIP watcher's NOTIFY is
//! started (`presence::changed`). The watch lists are indexed here by target, so a change
//! touches only the sessions concerned, and they count as watched presentities for the calendar
//! and contact-list managers, as SIP subscriptions do.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Events queued for one stream before it counts as stuck and is closed (the client reconnects).
pub const STREAM_QUEUE: usize = 256;

/// What a web session is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebEvent {
    /// The presentity `uri` changed: the stream reads what watchers are now shown.
    Presence { uri: String },
    /// An IM to the session's user (or one they sent from another web session).
    Message { conversation: String, from: String, to: String, text: String, time: i64 },
    /// A click-to-call call changed state.
    Call { id: String, state: String },
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    #[error("the user has the most event streams open that are allowed")]
    TooManyStreams,
}

/// Why presentities were not added to a session's watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WatchRefused {
    #[error("the session would watch more than {0} presentities")]
    TooMany(usize),
}

#[derive(Debug)]
struct Session {
    watching: HashSet<String>,
    streams: Vec<(u64, mpsc::Sender<WebEvent>)>,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    by_target: HashMap<String, HashSet<String>>,
}

/// The web sessions, per user (a user's tabs and devices share one watch list).
#[derive(Debug, Default)]
pub struct WebEndpoints {
    inner: Mutex<Inner>,
    next_stream: AtomicU64,
    /// Counts changes to the set of watched targets (see `Presence::targets_generation`).
    generation: AtomicU64,
}

impl WebEndpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the user's session as used now (made when it does not exist).
    pub fn touch(&self, user: &str) {
        let mut st = self.lock();
        let s = st.sessions.entry(user.to_owned()).or_insert_with(|| Session {
            watching: HashSet::new(),
            streams: Vec::new(),
            last_seen: Instant::now(),
        });
        s.last_seen = Instant::now();
    }

    /// Adds presentities to the user's watch, at most `max` in all.
    pub fn watch(&self, user: &str, uris: &[String], max: usize) -> Result<Vec<String>, WatchRefused> {
        self.touch(user);
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(user) else { return Ok(Vec::new()) };
        let new: Vec<String> = uris.iter().filter(|u| !s.watching.contains(*u)).cloned().collect();
        let mut new_unique = new.clone();
        new_unique.sort();
        new_unique.dedup();
        if s.watching.len() + new_unique.len() > max {
            return Err(WatchRefused::TooMany(max));
        }
        s.watching.extend(new_unique.iter().cloned());
        for u in &new_unique {
            st.by_target.entry(u.clone()).or_default().insert(user.to_owned());
        }
        if !new_unique.is_empty() {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        Ok(new_unique)
    }

    /// The presentities the user's session watches.
    pub fn watching(&self, user: &str) -> Vec<String> {
        self.lock().sessions.get(user).map(|s| s.watching.iter().cloned().collect()).unwrap_or_default()
    }

    /// How many presentities the user's session watches.
    pub fn watch_count(&self, user: &str) -> usize {
        self.lock().sessions.get(user).map_or(0, |s| s.watching.len())
    }

    /// Opens an event stream for the user; at most `max_streams` at once.
    pub fn open_stream(
        &self,
        user: &str,
        max_streams: usize,
    ) -> Result<(u64, mpsc::Receiver<WebEvent>), StreamRefused> {
        self.touch(user);
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(user) else { return Err(StreamRefused::TooManyStreams) };
        s.streams.retain(|(_, tx)| !tx.is_closed());
        if s.streams.len() >= max_streams {
            return Err(StreamRefused::TooManyStreams);
        }
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        s.streams.push((id, tx));
        Ok((id, rx))
    }

    /// A stream ended (the client went away).
    pub fn close_stream(&self, user: &str, id: u64) {
        let mut st = self.lock();
        if let Some(s) = st.sessions.get_mut(user) {
            s.streams.retain(|(i, _)| *i != id);
            s.last_seen = Instant::now();
        }
    }

    /// Whether the user has an event stream open.
    pub fn is_online(&self, user: &str) -> bool {
        self.lock().sessions.get(user).is_some_and(|s| s.streams.iter().any(|(_, tx)| !tx.is_closed()))
    }

    /// Hands an event to every open stream of the user; the number that took it. A stream whose
    /// queue is full is closed rather than let grow.
    pub fn deliver(&self, user: &str, event: &WebEvent) -> usize {
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(user) else { return 0 };
        let mut delivered = 0;
        s.streams.retain(|(_, tx)| match tx.try_send(event.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(_) => false,
        });
        delivered
    }

    /// The presentity `uri` changed: every session watching it is told.
    pub(crate) fn presence_changed(&self, uri: &str) {
        let users: Vec<String> =
            self.lock().by_target.get(uri).map(|u| u.iter().cloned().collect()).unwrap_or_default();
        let event = WebEvent::Presence { uri: uri.to_owned() };
        for u in users {
            self.deliver(&u, &event);
        }
    }

    /// The presentities web sessions watch.
    pub(crate) fn watched(&self) -> Vec<String> {
        self.lock().by_target.keys().cloned().collect()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Ends sessions without a stream unused for `idle`; returns their users.
    pub fn expire_idle(&self, idle: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut st = self.lock();
        let gone: Vec<String> = st
            .sessions
            .iter_mut()
            .filter_map(|(u, s)| {
                s.streams.retain(|(_, tx)| !tx.is_closed());
                (s.streams.is_empty() && now.duration_since(s.last_seen) >= idle).then(|| u.clone())
            })
            .collect();
        for u in &gone {
            if let Some(s) = st.sessions.remove(u) {
                for t in s.watching {
                    if let Some(set) = st.by_target.get_mut(&t) {
                        set.remove(u);
                        if set.is_empty() {
                            st.by_target.remove(&t);
                        }
                    }
                }
            }
        }
        if !gone.is_empty() {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        gone
    }

    /// (sessions, open streams, watched presentities), for the dashboard and metrics.
    pub fn counts(&self) -> (usize, usize, usize) {
        let st = self.lock();
        let streams = st.sessions.values().map(|s| s.streams.iter().filter(|(_, tx)| !tx.is_closed()).count()).sum();
        (st.sessions.len(), streams, st.by_target.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_change_reaches_only_the_watchers_streams() {
        let w = WebEndpoints::default();
        let (_, mut alice) = w.open_stream("sip:alice@x", 2).unwrap();
        let (_, mut carol) = w.open_stream("sip:carol@x", 2).unwrap();
        w.watch("sip:alice@x", &["sip:bob@x".into()], 10).unwrap();
        w.presence_changed("sip:bob@x");
        assert_eq!(alice.try_recv().unwrap(), WebEvent::Presence { uri: "sip:bob@x".into() });
        assert!(carol.try_recv().is_err());
        assert_eq!(w.watched(), vec!["sip:bob@x".to_owned()]);
    }

    #[test]
    fn limits_on_watches_and_streams_hold() {
        let w = WebEndpoints::default();
        let uris: Vec<String> = (0..3).map(|i| format!("sip:u{i}@x")).collect();
        assert_eq!(w.watch("sip:a@x", &uris, 2), Err(WatchRefused::TooMany(2)));
        assert_eq!(w.watch_count("sip:a@x"), 0);
        let _s1 = w.open_stream("sip:a@x", 1).unwrap();
        assert_eq!(w.open_stream("sip:a@x", 1).err(), Some(StreamRefused::TooManyStreams));
    }

    #[test]
    fn idle_sessions_without_streams_expire_and_unindex() {
        let w = WebEndpoints::default();
        w.watch("sip:a@x", &["sip:b@x".into()], 5).unwrap();
        let (id, rx) = w.open_stream("sip:c@x", 1).unwrap();
        assert_eq!(w.expire_idle(Duration::ZERO), vec!["sip:a@x".to_owned()]);
        assert!(w.watched().is_empty());
        drop(rx);
        w.close_stream("sip:c@x", id);
        assert_eq!(w.expire_idle(Duration::ZERO), vec!["sip:c@x".to_owned()]);
    }

    #[test]
    fn a_full_stream_is_closed_not_grown() {
        let w = WebEndpoints::default();
        let (_, _rx) = w.open_stream("sip:a@x", 1).unwrap();
        let e = WebEvent::Call { id: "1".into(), state: "ringing".into() };
        for _ in 0..STREAM_QUEUE {
            assert_eq!(w.deliver("sip:a@x", &e), 1);
        }
        assert_eq!(w.deliver("sip:a@x", &e), 0);
        assert!(!w.is_online("sip:a@x"));
    }
}

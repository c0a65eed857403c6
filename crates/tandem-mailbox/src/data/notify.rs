//! Wake-ups for committed changes: how subscriptions learn that a mailbox changed without
//! reading the change log to find out. The write path announces each committed transaction's
//! mailboxes and last change numbers to a [`ChangeFeed`]; [`Wakeups`] is the in-process
//! implementation and the registry subscriptions wait on. A pool of Mailbox nodes would put a bus
//! behind the feed: publish there, and call [`Wakeups::wake`] for what arrives from the others.
//!
//! Memory stays bounded by what is watched: a mailbox has a [`Signal`] only while a subscription
//! holds it (the registry keeps weak references and the last holder's drop removes the entry),
//! and a signal keeps only the waiters still alive. Pull (GetEvents) and streaming
//! (GetStreamingEvents) subscriptions share it: each holds its mailbox's signal, a GetEvents with
//! nothing committed past its watermark answers without a query, and a streaming connection
//! sleeps on one [`Waiter`] that any of its mailboxes' commits wakes.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// Where committed changes are announced, after the commit (never before: a woken reader must
/// find the rows).
pub(crate) trait ChangeFeed: Send + Sync + fmt::Debug {
    /// Changes of `mailbox` up to `change` are committed.
    fn committed(&self, mailbox: &str, change: i64);
}

/// A streaming connection's (later a push subscription's) alarm: one per waiting task, woken by
/// a commit in any mailbox it registered with. A wake-up while nobody waits is kept as a permit,
/// so none is lost between reading the log and going back to sleep.
pub(crate) type Waiter = Notify;

/// The process's registry of watched mailboxes.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    registry: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    mailboxes: Mutex<HashMap<String, Weak<Signal>>>,
}

/// Not yet known: the holder must read the log (or the counters) once.
const UNKNOWN: i64 = i64::MIN;

/// One watched mailbox: the last change number this process knows committed, and the waiters.
pub(crate) struct Signal {
    mailbox: String,
    committed: AtomicI64,
    waiters: Mutex<Vec<Weak<Waiter>>>,
    registry: Weak<Registry>,
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("mailbox", &self.mailbox)
            .field("committed", &self.committed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Wakeups {
    /// The signal of a mailbox, shared by all its subscriptions; it lives while one holds it.
    /// A new signal knows no change yet: the caller tells it what it read ([`Signal::observe`]).
    pub fn signal(&self, mailbox: &str) -> Arc<Signal> {
        let Ok(mut map) = self.registry.mailboxes.lock() else {
            // A poisoned registry (a panic while it was held) still gives a working signal; it
            // is only never woken, so its holders fall back on reading the log.
            return Arc::new(Signal::new(mailbox, Weak::new()));
        };
        if let Some(s) = map.get(mailbox).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(Signal::new(mailbox, Arc::downgrade(&self.registry)));
        map.insert(mailbox.to_owned(), Arc::downgrade(&s));
        s
    }

    /// Records that `mailbox` committed up to `change` and wakes its waiters; nothing to do when
    /// nobody watches it.
    pub fn wake(&self, mailbox: &str, change: i64) {
        let signal = self.registry.mailboxes.lock().ok().and_then(|m| m.get(mailbox).and_then(Weak::upgrade));
        if let Some(s) = signal {
            s.observe(change);
            s.wake_waiters();
        }
    }

    /// Mailboxes watched now (the registry's size).
    pub fn watched(&self) -> usize {
        self.registry.mailboxes.lock().map(|m| m.len()).unwrap_or(0)
    }
}

impl ChangeFeed for Wakeups {
    fn committed(&self, mailbox: &str, change: i64) {
        self.wake(mailbox, change);
    }
}

impl Signal {
    fn new(mailbox: &str, registry: Weak<Registry>) -> Signal {
        Signal {
            mailbox: mailbox.to_owned(),
            committed: AtomicI64::new(UNKNOWN),
            waiters: Mutex::new(Vec::new()),
            registry,
        }
    }

    /// Learns that changes up to `change` are committed (from a commit, or from reading).
    pub fn observe(&self, change: i64) {
        self.committed.fetch_max(change, Ordering::AcqRel);
    }

    /// The last change number known committed, if one is known.
    pub fn committed(&self) -> Option<i64> {
        Some(self.committed.load(Ordering::Acquire)).filter(|c| *c != UNKNOWN)
    }

    /// Whether something may be committed after `watermark`: false only when this process knows
    /// the mailbox's last committed change and it is not later.
    pub fn has_news(&self, watermark: i64) -> bool {
        let c = self.committed.load(Ordering::Acquire);
        c == UNKNOWN || c > watermark
    }

    /// Wakes `waiter` on each later commit of this mailbox (until the waiter is dropped).
    pub fn add_waiter(&self, waiter: &Arc<Waiter>) {
        if let Ok(mut ws) = self.waiters.lock() {
            ws.retain(|w| w.strong_count() > 0);
            if !ws.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(waiter))) {
                ws.push(Arc::downgrade(waiter));
            }
        }
    }

    /// Wakes every live waiter (after a commit, or when a subscription goes away).
    pub fn wake_waiters(&self) {
        if let Ok(mut ws) = self.waiters.lock() {
            ws.retain(|w| match w.upgrade() {
                Some(w) => {
                    w.notify_one();
                    true
                }
                None => false,
            });
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        let Some(registry) = self.registry.upgrade() else { return };
        if let Ok(mut map) = registry.mailboxes.lock()
            && map.get(&self.mailbox).is_some_and(|w| w.strong_count() == 0)
        {
            map.remove(&self.mailbox);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn signals_live_while_held() {
        let w = Wakeups::default();
        let a = w.signal("alice");
        let again = w.signal("alice");
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(w.watched(), 1);
        drop(a);
        assert_eq!(w.watched(), 1);
        drop(again);
        assert_eq!(w.watched(), 0);
        // Nobody watches: a commit costs nothing and leaves nothing behind.
        w.wake("alice", 5);
        assert_eq!(w.watched(), 0);
    }

    #[test]
    fn news_is_known_only_after_observing() {
        let w = Wakeups::default();
        let s = w.signal("bob");
        assert!(s.has_news(100));
        s.observe(7);
        assert!(!s.has_news(7));
        assert!(s.has_news(6));
        w.wake("bob", 9);
        assert!(s.has_news(8));
        s.observe(3);
        assert!(!s.has_news(9));
    }

    #[tokio::test]
    async fn a_commit_wakes_the_waiter_even_before_it_waits() {
        let w = Wakeups::default();
        let s = w.signal("carol");
        let waiter = Arc::new(Waiter::new());
        s.add_waiter(&waiter);
        s.add_waiter(&waiter);
        w.wake("carol", 1);
        tokio::time::timeout(Duration::from_secs(5), waiter.notified()).await.unwrap();
        // Other mailboxes do not wake it.
        w.wake("dave", 1);
        assert!(tokio::time::timeout(Duration::from_millis(50), waiter.notified()).await.is_err());
        drop(waiter);
        w.wake("carol", 2);
        assert!(s.waiters.lock().unwrap().is_empty());
    }
}

//! A read-through cache of directory answers for per-request paths: SIP looks up the sender's
//! credentials for every authenticated request and the target user for every MESSAGE and
//! SUBSCRIBE, and a SQL round trip each was the largest part of a MESSAGE's cost.
//!
//! It stays correct across processes through a generation counter in the directory: every change
//! to users or credentials increments it in the change's own transaction (an admin command in
//! another process included), and a cache reads it at most once per
//! [`GENERATION_CHECK_INTERVAL`], emptying itself when it moved. Changes this process makes empty
//! it at once. Unknown names are cached too (a flood of them costs no SQL), within
//! [`MAX_ENTRIES`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{DigestAlgorithm, User};

/// How stale a cached answer can be after another process changed the directory.
pub const GENERATION_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Entries (users and credentials together) before the cache is emptied and refilled.
pub const MAX_ENTRIES: usize = 100_000;

type DigestKey = (String, String, DigestAlgorithm);

#[derive(Debug, Default)]
struct Inner {
    /// The directory's generation the entries belong to, as last read.
    generation: Option<i64>,
    checked_at: Option<Instant>,
    /// Incremented at each emptying, so an answer read before it is not stored after it.
    epoch: u64,
    users: HashMap<(&'static str, String), Option<User>>,
    digests: HashMap<DigestKey, Option<(User, String)>>,
}

impl Inner {
    fn clear(&mut self) {
        self.users.clear();
        self.digests.clear();
        self.epoch += 1;
    }

    fn make_room(&mut self) {
        if self.users.len() + self.digests.len() >= MAX_ENTRIES {
            self.clear();
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
    /// One generation read at a time; the others go on with the entries they have.
    checking: AtomicBool,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Empties the cache (this process changed the directory).
    pub(crate) fn invalidate(&self) {
        self.lock().clear();
    }

    /// Whether the generation is due to be read; when true the caller reads it and reports with
    /// [`Cache::checked`].
    pub(crate) fn check_due(&self, now: Instant) -> bool {
        let due = self.lock().checked_at.is_none_or(|t| now.duration_since(t) >= GENERATION_CHECK_INTERVAL);
        due && !self.checking.swap(true, Ordering::AcqRel)
    }

    /// The generation as just read (`None`: it could not be read, so nothing cached is trusted).
    pub(crate) fn checked(&self, generation: Option<i64>, now: Instant) {
        {
            let mut inner = self.lock();
            if generation.is_none() || inner.generation != generation {
                inner.clear();
            }
            inner.generation = generation;
            inner.checked_at = Some(now);
        }
        self.checking.store(false, Ordering::Release);
    }

    /// A cached answer for a user key, and the epoch to store a fresh one under.
    pub(crate) fn user(&self, key: &(&'static str, String)) -> Result<Option<User>, u64> {
        let inner = self.lock();
        inner.users.get(key).cloned().ok_or(inner.epoch)
    }

    pub(crate) fn store_user(&self, key: (&'static str, String), found: Option<User>, epoch: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.make_room();
            inner.users.insert(key, found);
        }
    }

    pub(crate) fn digest(&self, key: &DigestKey) -> Result<Option<(User, String)>, u64> {
        let inner = self.lock();
        inner.digests.get(key).cloned().ok_or(inner.epoch)
    }

    pub(crate) fn store_digest(&self, key: DigestKey, found: Option<(User, String)>, epoch: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.make_room();
            inner.digests.insert(key, found);
        }
    }

    pub(crate) fn len(&self) -> usize {
        let inner = self.lock();
        inner.users.len() + inner.digests.len()
    }
}

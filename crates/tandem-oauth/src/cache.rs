//! Token caches. A validated token is remembered until it expires (or the trust configuration
//! changes: every entry carries the configuration generation it was checked against); an issued
//! token is reused until [`crate::REFRESH_BEFORE_EXPIRY_SECS`] before it expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::token::Validated;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still consistent; keep using it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Entries = HashMap<[u8; 32], (Arc<Validated>, u64)>;

/// Validated tokens keyed by the SHA-256 of the token text.
#[derive(Debug)]
pub struct ValidationCache {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl ValidationCache {
    pub fn new(capacity: usize) -> ValidationCache {
        ValidationCache { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    fn key(token: &str) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(d.as_ref());
        k
    }

    /// The earlier result for `token` if it was checked under `generation` and has not expired.
    pub fn get(&self, token: &str, generation: u64, now: i64) -> Option<Arc<Validated>> {
        let key = Self::key(token);
        let entries = lock(&self.entries);
        match entries.get(&key) {
            Some((v, g)) if *g == generation && now < v.expires_at => Some(v.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, token: &str, generation: u64, validated: Arc<Validated>, now: i64) {
        let key = Self::key(token);
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity {
            entries.retain(|_, (v, g)| *g == generation && now < v.expires_at);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (validated, generation));
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tokens we issued, keyed by audience and user, reused until shortly before expiry.
#[derive(Debug, Default)]
pub struct IssuedTokenCache {
    entries: Mutex<HashMap<String, (Arc<str>, i64)>>,
}

impl IssuedTokenCache {
    pub fn new() -> IssuedTokenCache {
        IssuedTokenCache::default()
    }

    /// A cached token for `key` that stays valid for more than the refresh margin.
    pub fn get(&self, key: &str, now: i64) -> Option<Arc<str>> {
        let entries = lock(&self.entries);
        entries.get(key).filter(|(_, exp)| now < exp - crate::REFRESH_BEFORE_EXPIRY_SECS).map(|(t, _)| t.clone())
    }

    pub fn insert(&self, key: &str, token: Arc<str>, expires_at: i64) {
        let mut entries = lock(&self.entries);
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(key.to_owned(), (token, expires_at));
    }

    /// Forgets everything (the signing certificate changed).
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(exp: i64) -> Arc<Validated> {
        Arc::new(Validated {
            partner: "p".into(),
            application_id: "a".into(),
            realm: "r".into(),
            user: None,
            sip: None,
            rights: vec![],
            expires_at: exp,
            claims: serde_json::Value::Null,
        })
    }

    #[test]
    fn validation_cache_honours_expiry_and_generation() {
        let c = ValidationCache::new(2);
        c.insert("t1", 1, v(100), 0);
        assert!(c.get("t1", 1, 99).is_some());
        assert!(c.get("t1", 1, 100).is_none());
        assert!(c.get("t1", 2, 50).is_none());
        assert!(c.get("t2", 1, 50).is_none());
        c.insert("t2", 1, v(100), 0);
        c.insert("t3", 1, v(100), 0);
        assert!(c.len() <= 2);
    }

    #[test]
    fn issued_cache_refreshes_before_expiry() {
        let c = IssuedTokenCache::new();
        c.insert("k", Arc::from("tok"), 1000);
        assert_eq!(c.get("k", 600).as_deref(), Some("tok"));
        assert!(c.get("k", 1000 - crate::REFRESH_BEFORE_EXPIRY_SECS).is_none());
        c.clear();
        assert!(c.get("k", 0).is_none());
    }
}

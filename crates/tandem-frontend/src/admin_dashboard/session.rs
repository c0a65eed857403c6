//! Dashboard sign-in sessions: a random token in a `__Host-` cookie (Secure, HttpOnly,
//! SameSite=Strict, Path=/: sent only over HTTPS, to this host, never from another site, never
//! readable by script), held in memory with an idle and an absolute limit. A token is made at
//! sign-in (never taken from the client, so a session cannot be fixed) and forgotten at
//! sign-out; state-changing requests also carry the session's CSRF token in a header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name (the `__Host-` prefix makes browsers refuse it without Secure, with a
/// Domain, or with another Path).
pub const COOKIE: &str = "__Host-tandem_admin";
/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions held at once (the oldest goes first beyond this).
pub const MAX_SESSIONS: usize = 1000;

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

/// 32 random bytes, hex; `None` when the system generator fails (nobody is signed in then).
pub fn random_secret() -> Option<String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `user`: (cookie token, session).
    pub fn create(&self, user: &str) -> Option<(String, Session)> {
        let token = random_secret()?;
        let now = Instant::now();
        let s = Session { user: user.to_owned(), csrf: random_secret()?, created: now, last_seen: now };
        let mut m = self.lock();
        m.retain(|_, s| now.duration_since(s.last_seen) < IDLE && now.duration_since(s.created) < ABSOLUTE);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(token.clone(), s.clone());
        Some((token, s))
    }

    /// The live session a token names, marked as used.
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut m = self.lock();
        let s = m.get_mut(token)?;
        if now.duration_since(s.last_seen) >= IDLE || now.duration_since(s.created) >= ABSOLUTE {
            m.remove(token);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// The session cookie for `token`.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}", ABSOLUTE.as_secs())
}

/// The cookie that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session token of a request's `Cookie` headers.
pub fn token_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_made_here_and_forgotten_at_sign_out() {
        let s = Sessions::default();
        let (t, sess) = s.create("sip:admin@x").unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, sess.csrf);
        assert_eq!(s.get(&t).unwrap().user, "sip:admin@x");
        assert!(s.get("0".repeat(64).as_str()).is_none(), "a token the client made up is no session");
        s.remove(&t);
        assert!(s.get(&t).is_none());
    }

    #[test]
    fn the_cookie_is_scoped_and_read_back_only_in_its_form() {
        let c = set_cookie(&"a".repeat(64));
        for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(flag), "{flag}");
        }
        let mut h = axum::http::HeaderMap::new();
        h.insert("cookie", format!("x=1; {COOKIE}={}", "b".repeat(64)).parse().unwrap());
        assert_eq!(token_of(&h), Some("b".repeat(64)));
        h.insert("cookie", format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(token_of(&h), None);
    }
}

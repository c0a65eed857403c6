//! HTTP Basic sign-in against the directory, with a short cache: argon2 is deliberately slow
//! and clients such as DavMail send every request twice (unauthenticated, then with Basic).
//! Uncached checks go through [`Directory::sign_in`]: argon2 off the async workers, back-off
//! and lockout per account and per source address, one answer (401) for every refusal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tandem_directory::{Directory, DirectoryError, SignIn, User};

/// How long a successful verification is trusted.
const TTL: Duration = Duration::from_secs(60);
/// Entries kept at most; the cache is cleared when it grows past this.
const MAX_ENTRIES: usize = 10_000;

/// The outcome of checking a request's credentials.
#[derive(Debug)]
// One per request, matched at once: boxing the user would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Authenticated(User),
    /// No or wrong credentials: answer 401 with a Basic challenge.
    Challenge,
}

#[derive(Debug, Default)]
pub struct BasicAuth {
    cache: Mutex<HashMap<[u8; 32], (User, Instant)>>,
}

impl BasicAuth {
    /// Checks the Basic credentials of a request from `source` (the peer address, when known).
    pub async fn check(
        &self,
        directory: &Directory,
        headers: &HeaderMap,
        source: Option<IpAddr>,
    ) -> Result<Outcome, DirectoryError> {
        let Some((login, password)) = tandem_http::basic::credentials(headers) else { return Ok(Outcome::Challenge) };
        let key: [u8; 32] = Sha256::new()
            .chain_update(login.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if let Ok(cache) = self.cache.lock()
            && let Some((user, at)) = cache.get(&key)
            && at.elapsed() < TTL
        {
            return Ok(Outcome::Authenticated(user.clone()));
        }
        match directory.sign_in(&login, &password, source).await? {
            // A mail user signs in too, for Autodiscover to send it on; `dispatch` keeps it
            // out of everything else.
            SignIn::Accepted(user) if user.can_use_mailbox() || user.is_mail_user() => {
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() >= MAX_ENTRIES {
                        cache.clear();
                    }
                    cache.insert(key, (user.clone(), Instant::now()));
                }
                Ok(Outcome::Authenticated(user))
            }
            _ => Ok(Outcome::Challenge),
        }
    }
}

/// 401 with `WWW-Authenticate: Basic realm="…"`; no `Connection: close` (exchangelib would take
/// it for a busy server).
pub fn challenge(realm: &str) -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, "").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

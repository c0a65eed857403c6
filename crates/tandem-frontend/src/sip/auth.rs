//! Digest authentication of SIP requests against the directory (RFC 3261 §22, RFC 8760).
//!
//! Nonces are self-validating (time, a sequence number, a random part and an HMAC under a
//! per-process key), expire after [`NONCE_LIFETIME`], and cannot be replayed: the highest
//! nonce-count used with each nonce is kept in a fixed ring indexed by the sequence number, and a
//! request must raise it. The ring bounds memory whatever the request rate (as Kamailio's
//! one-time-nonce arrays do); a nonce whose slot was reused by a newer one is simply stale.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use tandem_directory::{DigestAlgorithm as StoredAlgorithm, Directory, User};
use tandem_sip_proto::{Challenge, Credentials, DigestAlgorithm, digest_response};

/// How long a nonce may be used.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Nonces tracked at once (4 MiB): at 5,000 challenges a second a nonce stays usable ~50 s.
const NONCE_SLOTS: usize = 1 << 18;

/// The outcome of checking a request's credentials.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Valid credentials of this user.
    Authenticated(Box<User>),
    /// No usable credentials: challenge (with `stale` when only the nonce was old).
    Challenge { stale: bool },
    /// Credentials that are wrong, replayed or for a disabled user: 403, no new challenge.
    Forbidden(&'static str),
}

#[derive(Debug)]
pub struct DigestAuth {
    realm: String,
    key: hmac::Key,
    next: AtomicU64,
    /// Per slot: the sequence number of the nonce that owns it, and the highest nonce-count
    /// used with it (`u32::MAX` once a nonce without qop was used: it is good once).
    slots: Mutex<Vec<(u64, u32)>>,
}

impl DigestAuth {
    pub fn new(realm: &str) -> DigestAuth {
        let mut secret = [0u8; 32];
        // Without randomness nonces would still expire and be HMAC-bound; fill never fails on Linux.
        let _ = aws_lc_rs::rand::fill(&mut secret);
        DigestAuth {
            realm: realm.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            next: AtomicU64::new(1),
            slots: Mutex::new(vec![(0, 0); NONCE_SLOTS]),
        }
    }

    fn now_secs() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn nonce(&self) -> String {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.slots.lock().unwrap_or_else(|p| p.into_inner())[(seq as usize) % NONCE_SLOTS] = (seq, 0);
        let mut random = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut random);
        let body = format!("{:x}.{seq:x}.{}", Self::now_secs(), hex::encode(random));
        let tag = hmac::sign(&self.key, format!("{body}.{}", self.realm).as_bytes());
        format!("{body}.{}", hex::encode(&tag.as_ref()[..16]))
    }

    /// Ok((age, sequence number)) when the nonce is ours; Err otherwise.
    fn check_nonce(&self, nonce: &str) -> Result<(Duration, u64), ()> {
        let (body, tag) = nonce.rsplit_once('.').ok_or(())?;
        let expected = hmac::sign(&self.key, format!("{body}.{}", self.realm).as_bytes());
        let tag = hex::decode(tag).map_err(|_| ())?;
        if tag.len() != 16 || aws_lc_rs::constant_time::verify_slices_are_equal(&tag, &expected.as_ref()[..16]).is_err()
        {
            return Err(());
        }
        let mut parts = body.split('.');
        let issued = u64::from_str_radix(parts.next().ok_or(())?, 16).map_err(|_| ())?;
        let seq = u64::from_str_radix(parts.next().ok_or(())?, 16).map_err(|_| ())?;
        Ok((Duration::from_secs(Self::now_secs().saturating_sub(issued)), seq))
    }

    /// Challenges for both algorithms. MD5 comes first although RFC 8760 §2.4 prefers the
    /// strongest first: deployed clients (sipsak, older libre/baresip) take the first challenge
    /// and fail on an algorithm they do not know, while SHA-256 clients find their own.
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        [DigestAlgorithm::Md5, DigestAlgorithm::Sha256]
            .into_iter()
            .map(|algorithm| {
                Challenge { realm: self.realm.clone(), nonce: self.nonce(), opaque: None, algorithm, stale }.to_header()
            })
            .collect()
    }

    /// Checks the credentials in `header_value` for `method`.
    pub async fn verify(&self, directory: &Directory, method: &str, header_value: Option<&str>) -> AuthOutcome {
        let Some(value) = header_value else { return AuthOutcome::Challenge { stale: false } };
        let Ok(creds) = Credentials::parse(value) else { return AuthOutcome::Challenge { stale: false } };
        if !creds.realm.eq_ignore_ascii_case(&self.realm) {
            return AuthOutcome::Challenge { stale: false };
        }
        let Ok((age, seq)) = self.check_nonce(&creds.nonce) else { return AuthOutcome::Challenge { stale: false } };
        if age > NONCE_LIFETIME {
            return AuthOutcome::Challenge { stale: true };
        }
        let stored = match creds.algorithm {
            DigestAlgorithm::Md5 => StoredAlgorithm::Md5,
            DigestAlgorithm::Sha256 => StoredAlgorithm::Sha256,
        };
        let found = match directory.digest_ha1(&creds.username, &self.realm, stored).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "directory lookup for digest failed");
                return AuthOutcome::Forbidden("directory unavailable");
            }
        };
        let Some((user, ha1)) = found else { return AuthOutcome::Forbidden("unknown or disabled user") };
        let expected = digest_response(&ha1, method, &creds);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), creds.response.as_bytes()).is_err() {
            return AuthOutcome::Forbidden("wrong password");
        }
        // Replay: the nonce-count must grow; without qop a nonce is good once.
        let nc = match (&creds.qop, &creds.nc) {
            (Some(_), Some(nc)) => match u32::from_str_radix(nc, 16) {
                Ok(n) if n > 0 => n,
                _ => return AuthOutcome::Forbidden("bad nonce count"),
            },
            _ => 0,
        };
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[(seq as usize) % NONCE_SLOTS];
        if slot.0 != seq || slot.1 == u32::MAX || (nc != 0 && nc <= slot.1) {
            // Reused slot (an old nonce), or a replay: ask again with a fresh nonce.
            return AuthOutcome::Challenge { stale: true };
        }
        slot.1 = if nc == 0 { u32::MAX } else { nc };
        AuthOutcome::Authenticated(Box::new(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_bound_to_the_key() {
        let a = DigestAuth::new("litwareinc.com");
        let b = DigestAuth::new("litwareinc.com");
        let n = a.nonce();
        assert!(a.check_nonce(&n).is_ok());
        assert!(b.check_nonce(&n).is_err());
        assert!(a.check_nonce("1.2.3").is_err());
        let mut forged = n.clone();
        forged.replace_range(0..1, "0");
        assert!(a.check_nonce(&forged).is_err() || forged == n);
    }
}

//! Digest authentication of SIP requests against the directory (RFC 3261 §22, RFC 8760).
//!
//! Nonces are self-validating (time, a sequence number, a random part and an HMAC under a
//! per-process key), expire after [`NONCE_LIFETIME`], and cannot be replayed: the highest
//! nonce-count used with each nonce is kept in a fixed ring indexed by the sequence number, and a
//! request must raise it. The ring bounds memory whatever the request rate (as Kamailio's
//! one-time-nonce arrays do); a nonce whose slot was reused by a newer one is simply stale.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use tandem_directory::lockout::Verdict;
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
    /// Credentials that are wrong, replayed or for a disabled user: 403, no new challenge. The
    /// cause is for the log only; the answer is the same for every one (see [`FORBIDDEN_REASON`]).
    Forbidden(&'static str),
}

/// The reason phrase of every 403 for credentials: an unknown user, a disabled one and a wrong
/// password read the same, so answers do not tell which accounts exist.
pub const FORBIDDEN_REASON: &str = "Forbidden (authentication failed)";

/// Stands in for the HA1 of a user name the directory does not know, so such a request costs the
/// same digest computation as a known user's.
const DUMMY_HA1: &str = "00000000000000000000000000000000";

#[derive(Debug)]
pub struct DigestAuth {
    realm: String,
    key: hmac::Key,
    /// Challenge order; MD5 alone unless the configuration adds SHA-256.
    algorithms: Vec<DigestAlgorithm>,
    next: AtomicU64,
    /// Per slot: the sequence number of the nonce that owns it, and the highest nonce-count
    /// used with it (`u32::MAX` once a nonce without qop was used: it is good once).
    slots: Mutex<Vec<(u64, u32)>>,
}

impl DigestAuth {
    /// `None` when the system's random-number generator fails: nonces need an unguessable key.
    pub fn new(realm: &str, algorithms: Vec<DigestAlgorithm>) -> Option<DigestAuth> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).ok()?;
        Some(DigestAuth {
            realm: realm.to_owned(),
            algorithms,
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            next: AtomicU64::new(1),
            slots: Mutex::new(vec![(0, 0); NONCE_SLOTS]),
        })
    }

    fn now_secs() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn nonce(&self) -> String {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.slots.lock().unwrap_or_else(|p| p.into_inner())[(seq as usize) % NONCE_SLOTS] = (seq, 0);
        let body = format!("{:x}.{seq:x}.{}", Self::now_secs(), super::random_token());
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

    /// One challenge per configured algorithm, in the configured order. (Offering SHA-256 next
    /// to MD5 breaks Debian's libre/baresip and sipsak, so it is opt-in.)
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        self.algorithms
            .iter()
            .copied()
            .map(|algorithm| {
                Challenge { realm: self.realm.clone(), nonce: self.nonce(), opaque: None, algorithm, stale }.to_header()
            })
            .collect()
    }

    /// Checks the credentials in `header_value` for `method`, sent from `source`. Wrong passwords
    /// count in the directory's lockout (per account and per source, shared with every password
    /// protocol): each imposes a growing wait before the next check, and at the threshold the
    /// account or address is refused without a check, the right password included.
    pub async fn verify(
        &self,
        directory: &Directory,
        method: &str,
        header_value: Option<&str>,
        source: IpAddr,
    ) -> AuthOutcome {
        let Some(value) = header_value else { return AuthOutcome::Challenge { stale: false } };
        let Ok(creds) = Credentials::parse(value) else { return AuthOutcome::Challenge { stale: false } };
        if !creds.realm.eq_ignore_ascii_case(&self.realm) || !self.algorithms.contains(&creds.algorithm) {
            return AuthOutcome::Challenge { stale: false };
        }
        let Ok((age, seq)) = self.check_nonce(&creds.nonce) else { return AuthOutcome::Challenge { stale: false } };
        if age > NONCE_LIFETIME {
            return AuthOutcome::Challenge { stale: true };
        }
        let found = match self.lookup(directory, &creds.username, creds.algorithm).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "directory lookup for digest failed");
                return AuthOutcome::Forbidden("directory unavailable");
            }
        };
        let account = found.as_ref().map_or_else(|| creds.username.to_ascii_lowercase(), |(u, _)| u.name.to_string());
        let lockout = directory.lockout();
        // Through the directory, so a lockout lifted by `tandem user unlock` in another process
        // is lifted here too, and one begun here is recorded for the admin commands.
        let verdict = match directory.lockout_verdict(&account, Some(source)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "directory lockout check failed");
                return AuthOutcome::Forbidden("directory unavailable");
            }
        };
        let account_ref = account.as_str();
        let failed = |why: &'static str| async move {
            if let Err(e) = directory.record_failure(account_ref, Some(source)).await {
                tracing::error!(error = %e, "recording a failed sign-in failed");
            }
            AuthOutcome::Forbidden(why)
        };
        match verdict {
            Verdict::Locked(_) => {
                // Guessing at a locked account is still guessing: it counts for the address, so
                // the source slows down and locks too.
                return failed("locked out").await;
            }
            Verdict::Proceed(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Verdict::Proceed(_) => {}
        }
        let ha1 = found.as_ref().map_or(DUMMY_HA1, |(_, ha1)| ha1.as_str());
        let expected = digest_response(ha1, method, &creds);
        let matches =
            aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), creds.response.as_bytes()).is_ok();
        let user = match found {
            Some((user, _)) if matches => {
                lockout.succeeded(&account);
                user
            }
            Some(_) => return failed("wrong password").await,
            None => return failed("unknown or disabled user").await,
        };
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

impl DigestAuth {
    /// The directory's HA1 and user for a digest user name, through the directory's cache (a
    /// change to the user shows within `tandem_directory::GENERATION_CHECK_INTERVAL`).
    async fn lookup(
        &self,
        directory: &Directory,
        username: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Option<(User, String)>, tandem_directory::DirectoryError> {
        let stored = match algorithm {
            DigestAlgorithm::Md5 => StoredAlgorithm::Md5,
            DigestAlgorithm::Sha256 => StoredAlgorithm::Sha256,
        };
        directory.digest_ha1_cached(username, &self.realm, stored).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_bound_to_the_key() {
        let a = DigestAuth::new("litwareinc.com", vec![DigestAlgorithm::Md5]).unwrap();
        let b = DigestAuth::new("litwareinc.com", vec![DigestAlgorithm::Md5]).unwrap();
        let n = a.nonce();
        assert!(a.check_nonce(&n).is_ok());
        assert!(b.check_nonce(&n).is_err());
        assert!(a.check_nonce("1.2.3").is_err());
        let mut forged = n.clone();
        forged.replace_range(0..1, "0");
        assert!(a.check_nonce(&forged).is_err() || forged == n);
    }
}

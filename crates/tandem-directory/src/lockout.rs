//! Failed-sign-in counters and temporary lockouts, per account and per source address.
//!
//! Active Directory counts bad passwords per account and locks the account for a while at a
//! threshold; that alone lets one address try every account a few times. So there are two
//! counters, one per account and one per source address, each with its own threshold (the
//! policy is [`LockoutConfig`]). Every counted failure makes the next attempt wait (exponential
//! back-off from [`BACKOFF_BASE`], at most [`BACKOFF_MAX`]; an address gets [`SOURCE_GRACE`]
//! failures first, as many users may share it) and at the threshold the key is locked for the lockout duration: its
//! attempts are refused without checking the password, the right one included, as AD does. A
//! counter resets after the observation window without failures; a success clears the
//! account's counter (AD resets badPwdCount) but not the address's. Counters are in memory: per
//! process, lost on restart, bounded to [`MAX_KEYS`] keys; an account's lockout is also recorded
//! in the directory (`Directory::record_failure`), where `tandem user show` reads it and
//! `tandem user unlock` clears it for every process. Any password protocol (HTTP
//! Basic and SIP digest) uses the same [`Lockout`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use tandem_config::LockoutConfig;

/// The wait after the first counted failure; it doubles with each further one.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The longest wait back-off imposes before a password is checked.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Failures from one address that impose no back-off yet: users behind one NAT mistype too.
pub const SOURCE_GRACE: u32 = 5;
/// Keys (accounts plus addresses) tracked at most; past it, idle keys are forgotten first.
pub const MAX_KEYS: usize = 100_000;

/// What to do with a sign-in attempt before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password after waiting this long (zero: at once).
    Proceed(Duration),
    /// Refuse without checking: the account or the address is locked for this much longer.
    Locked(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Source(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
    /// Whether the account's current lock is recorded in the directory yet. Until it is, a
    /// missing record means "not written yet", not "an administrator lifted it".
    recorded: bool,
}

/// The counters, shared by every sign-in path of a process.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new(LockoutConfig::default())
    }
}

impl Lockout {
    pub fn new(policy: LockoutConfig) -> Lockout {
        Lockout { policy, entries: Mutex::new(HashMap::new()) }
    }

    pub fn policy(&self) -> &LockoutConfig {
        &self.policy
    }

    /// The verdict for an attempt on `account` (a canonical account name) from `source`.
    pub fn check(&self, account: &str, source: Option<IpAddr>) -> Verdict {
        self.check_at(account, source, Instant::now())
    }

    /// Counts a wrong password for `account` from `source`; locks either at its threshold.
    /// True when this failure locked the account (so the caller can record the lockout where
    /// administrators and other processes see it).
    pub fn failed(&self, account: &str, source: Option<IpAddr>) -> bool {
        self.failed_at(account, source, Instant::now())
    }

    /// A right password: the account's counter starts again.
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&Key::Account(account.to_ascii_lowercase()));
        }
    }

    /// Clears an account's lockout and counter (Unlock-ADAccount); true when there was one.
    pub fn unlock(&self, account: &str) -> bool {
        let removed = self.entries.lock().ok().and_then(|mut e| e.remove(&Key::Account(account.to_ascii_lowercase())));
        if removed.is_some() {
            tracing::info!(account, "account lockout cleared");
        }
        removed.is_some()
    }

    /// True while `account` is locked out.
    pub fn is_locked(&self, account: &str) -> bool {
        let now = Instant::now();
        self.entries
            .lock()
            .ok()
            .and_then(|e| e.get(&Key::Account(account.to_ascii_lowercase())).and_then(|x| x.locked_until))
            .is_some_and(|until| until > now)
    }

    /// Notes that the account's current lock is recorded in the directory.
    pub fn mark_recorded(&self, account: &str) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(e) = entries.get_mut(&Key::Account(account.to_ascii_lowercase()))
            && e.locked_until.is_some()
        {
            e.recorded = true;
        }
    }

    /// True while `account` is locked out by a lock already recorded in the directory: only
    /// such a lock can have been lifted there by an administrator.
    pub fn is_locked_and_recorded(&self, account: &str) -> bool {
        let now = Instant::now();
        self.entries
            .lock()
            .ok()
            .and_then(|e| e.get(&Key::Account(account.to_ascii_lowercase())).copied())
            .is_some_and(|x| x.recorded && x.locked_until.is_some_and(|until| until > now))
    }

    fn keys(account: &str, source: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::Account(account.to_ascii_lowercase())).chain(source.map(Key::Source))
    }

    fn check_at(&self, account: &str, source: Option<IpAddr>, now: Instant) -> Verdict {
        let Ok(mut entries) = self.entries.lock() else { return Verdict::Proceed(Duration::ZERO) };
        let mut wait = Duration::ZERO;
        for key in Self::keys(account, source) {
            let Some(e) = entries.get(&key).copied() else { continue };
            if let Some(until) = e.locked_until {
                if until > now {
                    return Verdict::Locked(until - now);
                }
                // The lockout is over: the counter starts again, as AD's does.
                entries.remove(&key);
                continue;
            }
            if now.duration_since(e.last_failure) >= self.policy.observation_window {
                entries.remove(&key);
                continue;
            }
            let counted = match key {
                Key::Account(_) => e.failures,
                Key::Source(_) => e.failures.saturating_sub(SOURCE_GRACE),
            };
            if counted > 0 {
                let due = e.last_failure + backoff(counted);
                wait = wait.max(due.saturating_duration_since(now));
            }
        }
        Verdict::Proceed(wait)
    }

    fn failed_at(&self, account: &str, source: Option<IpAddr>, now: Instant) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return false };
        let mut account_locked = false;
        if entries.len() >= MAX_KEYS {
            let window = self.policy.observation_window;
            entries
                .retain(|_, e| e.locked_until.is_some_and(|u| u > now) || now.duration_since(e.last_failure) < window);
            if entries.len() >= MAX_KEYS {
                entries.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
            }
        }
        for key in Self::keys(account, source) {
            let threshold = match key {
                Key::Account(_) => self.policy.threshold,
                Key::Source(_) => self.policy.source_threshold,
            };
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
                recorded: false,
            });
            if now.duration_since(e.last_failure) >= self.policy.observation_window {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
            metrics::counter!("tandem_auth_failures_total", "key" => kind(&key)).increment(1);
            if threshold > 0 && e.failures >= threshold && e.locked_until.is_none_or(|u| u <= now) {
                e.locked_until = Some(now + self.policy.duration);
                e.recorded = false;
                account_locked |= matches!(key, Key::Account(_));
                metrics::counter!("tandem_auth_lockouts_total", "key" => kind(&key)).increment(1);
                match &key {
                    Key::Account(name) => tracing::warn!(
                        account = %name,
                        failures = e.failures,
                        minutes = self.policy.duration.as_secs() / 60,
                        "account locked out after repeated failed sign-ins"
                    ),
                    Key::Source(ip) => tracing::warn!(
                        source = %ip,
                        failures = e.failures,
                        minutes = self.policy.duration.as_secs() / 60,
                        "source address locked out after repeated failed sign-ins"
                    ),
                }
            }
        }
        account_locked
    }
}

fn kind(key: &Key) -> &'static str {
    match key {
        Key::Account(_) => "account",
        Key::Source(_) => "source",
    }
}

/// The wait imposed after `failures` counted failures.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutConfig {
        LockoutConfig {
            threshold: 3,
            observation_window: Duration::from_secs(60),
            duration: Duration::from_secs(600),
            source_threshold: 10,
        }
    }

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));

    #[test]
    fn back_off_grows_then_the_account_locks() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        assert_eq!(l.check_at("alice", IP, t0), Verdict::Proceed(Duration::ZERO));
        l.failed_at("alice", IP, t0);
        assert_eq!(l.check_at("alice", IP, t0), Verdict::Proceed(BACKOFF_BASE));
        l.failed_at("Alice", IP, t0);
        assert_eq!(l.check_at("ALICE", None, t0), Verdict::Proceed(BACKOFF_BASE * 2));
        l.failed_at("alice", IP, t0);
        assert_eq!(l.check_at("alice", None, t0), Verdict::Locked(Duration::from_secs(600)));
        assert!(matches!(l.check_at("alice", None, t0 + Duration::from_secs(599)), Verdict::Locked(_)));
        // Over: the counter starts again.
        assert_eq!(l.check_at("alice", None, t0 + Duration::from_secs(600)), Verdict::Proceed(Duration::ZERO));
        assert_eq!(backoff(100), BACKOFF_MAX);
    }

    #[test]
    fn the_window_resets_and_success_clears_the_account_only() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        l.failed_at("bob", IP, t0);
        l.failed_at("bob", IP, t0);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(l.check_at("bob", None, later), Verdict::Proceed(Duration::ZERO));
        l.failed_at("bob", IP, later);
        assert_eq!(l.check_at("bob", None, later), Verdict::Proceed(BACKOFF_BASE));
        l.succeeded("bob");
        assert_eq!(l.check_at("bob", None, later), Verdict::Proceed(Duration::ZERO));
        // The address still remembers its failures; past the grace they slow every account.
        assert_eq!(l.check_at("bob", IP, later), Verdict::Proceed(Duration::ZERO));
        for n in 0..SOURCE_GRACE {
            l.failed_at(&format!("x{n}"), IP, later);
        }
        assert_eq!(l.check_at("bob", IP, later), Verdict::Proceed(BACKOFF_BASE));
    }

    #[test]
    fn one_address_guessing_many_accounts_is_locked_out() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        for n in 0..10 {
            l.failed_at(&format!("user{n}"), IP, t0);
        }
        assert!(matches!(l.check_at("someone-else", IP, t0), Verdict::Locked(_)));
        assert_eq!(l.check_at("someone-else", None, t0), Verdict::Proceed(Duration::ZERO));
    }

    #[test]
    fn unlock_clears_a_lockout_and_zero_thresholds_never_lock() {
        let l = Lockout::new(policy());
        for _ in 0..3 {
            l.failed("carol", None);
        }
        assert!(l.is_locked("carol"));
        assert!(l.unlock("CAROL"));
        assert!(!l.is_locked("carol"));
        assert!(!l.unlock("carol"));
        let l = Lockout::new(LockoutConfig { threshold: 0, source_threshold: 0, ..policy() });
        let t0 = Instant::now();
        for _ in 0..50 {
            l.failed_at("dave", IP, t0);
        }
        assert_eq!(l.check_at("dave", IP, t0), Verdict::Proceed(BACKOFF_MAX));
    }
}

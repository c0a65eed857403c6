//! The directory: Tandem's Active Directory, shared by both roles.
//!
//! A user has an account name, a display name, a SIP URI (the Front End's identity) and a
//! primary SMTP address (the mailbox's identity), enabled flags, and credentials kept in two
//! forms because two protocols check them: an argon2 PHC string for HTTP Basic (EWS,
//! Autodiscover) and SIP digest HA1 values per realm, algorithm (MD5, SHA-256 per RFC 8760) and
//! digest user name, since a digest cannot be checked against argon2. HA1 values are secrets.
//!
//! Password checks ([`Directory::sign_in`]) run argon2 on the blocking pool, a few at a time,
//! against a dummy hash when the login names nobody (so unknown and known users cost the same
//! and get the same answer), behind the failed-attempt counters of [`lockout`].

use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, phc::PasswordHash};
use md5::Md5;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tandem_store::{Migration, Store, StoreError};
use tandem_types::{SipUri, SmtpAddress, UserName};

pub use tandem_store;

mod cache;
pub mod lockout;

pub use cache::{GENERATION_CHECK_INTERVAL, MAX_ENTRIES as CACHE_MAX_ENTRIES};

use lockout::{Lockout, LockoutConfig, Verdict};

/// Shortest password accepted; Active Directory's default policy asks for 7, we ask for 8.
pub const MIN_PASSWORD_LEN: usize = 8;

/// A directory failure, worded for the administrator who caused it.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("a user with {field} `{value}` already exists; choose another or remove that user first")]
    Duplicate { field: &'static str, value: String },
    #[error("no user `{0}` in the directory; `tandem user list` shows who exists")]
    NotFound(String),
    #[error("the password is too short: use at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("the display name must not be empty")]
    EmptyDisplayName,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(
        "`{0}` has a mailbox here, so it cannot be a mail user; run `tandem user disable {0} --mailbox` first \
         (Disable-Mailbox), as Exchange's Enable-MailUser needs a user without one"
    )]
    HasMailbox(String),
    #[error("the external e-mail address must be another address than the user's own `{0}`")]
    RedirectToSelf(String),
    #[error("stored data for user `{0}` is corrupt: {1}")]
    Corrupt(String, String),
    #[error("directory store: {0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        DirectoryError::Store(StoreError::Sql(e))
    }
}

/// The two SIP digest algorithms a registrar must offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 2] = [DigestAlgorithm::Md5, DigestAlgorithm::Sha256];

    /// The token used in `algorithm=` of a challenge.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `data`, as digest computations need.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 => hex::encode(Md5::digest(data)),
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }

    /// HA1 = H(username ":" realm ":" password) (RFC 2617 §3.2.2.2, RFC 8760).
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hex(format!("{username}:{realm}:{password}").as_bytes())
    }
}

/// A directory user as the roles and the admin commands see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub name: UserName,
    pub display_name: String,
    pub sip_uri: SipUri,
    pub smtp_address: SmtpAddress,
    /// The account itself (Disable-ADAccount clears it): no sign-in anywhere.
    pub enabled: bool,
    /// Enabled for the Front End (Enable-CsUser).
    pub sip_enabled: bool,
    /// Has a mailbox on the mailbox role (Enable-Mailbox).
    pub mailbox_enabled: bool,
    /// Where the user's mailbox lives when it is not here (Enable-MailUser's
    /// ExternalEmailAddress, AD's targetAddress): Autodiscover redirects clients to it.
    pub external_email_address: Option<SmtpAddress>,
    pub created_at: i64,
    pub password_changed_at: i64,
}

impl User {
    /// A mail user: an enabled account with no mailbox here and an address where its mailbox
    /// is (Exchange's MailUser). It may sign in to Autodiscover, which sends it on.
    pub fn is_mail_user(&self) -> bool {
        self.enabled && !self.mailbox_enabled && self.external_email_address.is_some()
    }

    /// May sign in to the Front End.
    pub fn can_use_sip(&self) -> bool {
        self.enabled && self.sip_enabled
    }
    /// May sign in to the mailbox.
    pub fn can_use_mailbox(&self) -> bool {
        self.enabled && self.mailbox_enabled
    }
}

/// What `user add` needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: UserName,
    pub display_name: String,
    pub sip_uri: SipUri,
    pub smtp_address: SmtpAddress,
    pub password: String,
}

/// Which flag `set_enabled` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnabledFlag {
    Account,
    Sip,
    Mailbox,
}

const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        1,
        "directory users",
        "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        sip_uri TEXT NOT NULL,
        sip_key TEXT NOT NULL UNIQUE,
        smtp_address TEXT NOT NULL,
        smtp_key TEXT NOT NULL UNIQUE,
        enabled BIGINT NOT NULL,
        sip_enabled BIGINT NOT NULL,
        mailbox_enabled BIGINT NOT NULL,
        password_argon2 TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        password_changed_at BIGINT NOT NULL
    );
    CREATE TABLE user_digest (
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        digest_username TEXT NOT NULL,
        realm TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        ha1 TEXT NOT NULL,
        PRIMARY KEY (digest_username, realm, algorithm)
    );
    CREATE INDEX user_digest_user ON user_digest (user_name)",
    ),
    Migration::portable(
        2,
        "account lockouts",
        // One row per locked account (or unknown login name, which locks like a real one), so that
        // every process and the admin commands see and clear the same lockout.
        "CREATE TABLE lockouts (
        account TEXT PRIMARY KEY,
        locked_at BIGINT NOT NULL,
        locked_until BIGINT NOT NULL
    )",
    ),
    Migration::portable(
        3,
        "mail users",
        // NULL for every user with a mailbox here; set by `tandem exchange enable-mail-user`.
        "ALTER TABLE users ADD COLUMN external_email_address TEXT",
    ),
    Migration::portable(
        4,
        "directory generation",
        // Incremented by every change to users or credentials, so caches in every process can
        // tell when theirs went stale (see `cache`).
        "CREATE TABLE directory_generation (
        id BIGINT PRIMARY KEY,
        generation BIGINT NOT NULL
    );
    INSERT INTO directory_generation (id, generation) VALUES (1, 0)",
    ),
];

const USER_COLUMNS: &str = "name, display_name, sip_uri, smtp_address, enabled, sip_enabled, mailbox_enabled, \
     external_email_address, created_at, password_changed_at";

/// The directory over its store.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Store,
    lockout: Arc<Lockout>,
    cache: Arc<cache::Cache>,
}

/// The outcome of a password sign-in. Every refusal looks the same to the caller, so nothing
/// tells a client whether the account exists, is disabled or is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
// One per sign-in, matched at once: boxing the user would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum SignIn {
    Accepted(User),
    Refused,
}

/// Argon2 checks running at once: each takes about 19 MiB and a core for tens of milliseconds.
static HASH_SLOTS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| tokio::sync::Semaphore::new(hash_parallelism()));

/// How many argon2 checks run at once: one per core.
fn hash_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// A hash of a random password with the same parameters as real ones, checked when a login
/// names nobody so that the answer takes as long as for a real user.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let password = format!("{:032x}", rand::random::<u128>());
    // The password is long enough and argon2 with default parameters does not fail on it; an
    // empty string would only make unknown logins faster, never accept one.
    hash_password(&password).unwrap_or_default()
});

impl Directory {
    /// Opens the directory database at `url`, creating and migrating it as needed, with the
    /// default lockout policy.
    pub async fn open(url: &str) -> Result<Directory, DirectoryError> {
        Ok(Directory {
            store: Store::open(url, MIGRATIONS).await?,
            lockout: Arc::new(Lockout::default()),
            cache: Arc::default(),
        })
    }

    /// The same directory under another lockout policy (from `tandem.toml`), with fresh counters.
    pub fn with_lockout(mut self, policy: LockoutConfig) -> Directory {
        self.lockout = Arc::new(Lockout::new(policy));
        self
    }

    /// The failed-sign-in counters every password protocol shares.
    pub fn lockout(&self) -> &Lockout {
        &self.lockout
    }

    /// Unlock-ADAccount: clears the lockout and failure count of a user (by account name, SIP
    /// URI or SMTP address), in this process and, through the directory, in every other one.
    /// True when the account was locked or had failures counted here.
    pub async fn unlock(&self, key: &str) -> Result<bool, DirectoryError> {
        let user = self.get(key).await?;
        let account = user.name.as_str().to_ascii_lowercase();
        let removed = sqlx::query("DELETE FROM lockouts WHERE account = $1")
            .bind(&account)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(self.lockout.unlock(&account) || removed > 0)
    }

    /// When the account's lockout ends (Unix seconds), if it is locked out now.
    pub async fn locked_out_until(&self, key: &str) -> Result<Option<i64>, DirectoryError> {
        let user = self.get(key).await?;
        let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM lockouts WHERE account = $1")
            .bind(user.name.as_str().to_ascii_lowercase())
            .fetch_optional(self.store.pool())
            .await?;
        Ok(until.filter(|u| *u > tandem_store::now_unix()))
    }

    /// Every account locked out now, with when its lockout ends (Unix seconds).
    pub async fn lockouts(&self) -> Result<std::collections::HashMap<String, i64>, DirectoryError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT account, locked_until FROM lockouts WHERE locked_until > $1")
                .bind(tandem_store::now_unix())
                .fetch_all(self.store.pool())
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Counts a failed sign-in of `account` (canonical name) from `source`, for every password
    /// protocol; a failure that locks the account records the lockout in the directory.
    pub async fn record_failure(&self, account: &str, source: Option<IpAddr>) -> Result<(), DirectoryError> {
        if self.lockout.failed(account, source) {
            let now = tandem_store::now_unix();
            let until = now.saturating_add(i64::try_from(self.lockout.policy().duration.as_secs()).unwrap_or(i64::MAX));
            let pool = self.store.pool();
            // Ended lockouts go at the same time, so the table holds only current ones.
            sqlx::query("DELETE FROM lockouts WHERE locked_until <= $1").bind(now).execute(pool).await?;
            // One statement, so another attempt reading the record never finds it missing
            // between a delete and an insert.
            sqlx::query(
                "INSERT INTO lockouts (account, locked_at, locked_until) VALUES ($1, $2, $3) \
                 ON CONFLICT (account) DO UPDATE SET locked_at = excluded.locked_at, locked_until = excluded.locked_until",
            )
            .bind(account.to_ascii_lowercase())
            .bind(now)
            .bind(until)
            .execute(pool)
            .await?;
            self.lockout.mark_recorded(account);
        }
        Ok(())
    }

    /// The lockout verdict for an attempt on `account` from `source`. An account lock held in
    /// memory whose directory record an administrator removed (`tandem user unlock` in another
    /// process) is lifted here; the directory is read only while the account is locked. A lock
    /// whose record is still being written stays: attempts in parallel with the one that locked
    /// the account must not read the missing record as an unlock (they used to, and locked it
    /// a second time).
    pub async fn lockout_verdict(&self, account: &str, source: Option<IpAddr>) -> Result<Verdict, DirectoryError> {
        let verdict = self.lockout.check(account, source);
        if matches!(verdict, Verdict::Locked(_)) && self.lockout.is_locked_and_recorded(account) {
            let recorded: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM lockouts WHERE account = $1")
                .bind(account.to_ascii_lowercase())
                .fetch_optional(self.store.pool())
                .await?;
            if recorded.is_none() {
                self.lockout.unlock(account);
                return Ok(self.lockout.check(account, source));
            }
        }
        Ok(verdict)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds a user with both kinds of credential, in one transaction.
    pub async fn add(&self, new: &NewUser) -> Result<User, DirectoryError> {
        if new.display_name.trim().is_empty() {
            return Err(DirectoryError::EmptyDisplayName);
        }
        let argon = hash_off_worker(&new.password).await?;
        // Duplicates are checked first for a clear message; the UNIQUE constraints still guard
        // against a concurrent add.
        for (field, value, sql) in [
            ("name", new.name.to_string(), "SELECT 1 FROM users WHERE name = $1"),
            ("SIP URI", new.sip_uri.key(), "SELECT 1 FROM users WHERE sip_key = $1"),
            ("SMTP address", new.smtp_address.key(), "SELECT 1 FROM users WHERE smtp_key = $1"),
        ] {
            if sqlx::query(sql).bind(&value).fetch_optional(self.store.pool()).await?.is_some() {
                return Err(DirectoryError::Duplicate { field, value });
            }
        }
        let now = tandem_store::now_unix();
        let mut tx = self.store.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (name, display_name, sip_uri, sip_key, smtp_address, smtp_key, enabled, sip_enabled,
                                mailbox_enabled, password_argon2, created_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, 1, 1, $7, $8, $8)",
        )
        .bind(new.name.as_str())
        .bind(new.display_name.trim())
        .bind(new.sip_uri.to_string())
        .bind(new.sip_uri.key())
        .bind(new.smtp_address.to_string())
        .bind(new.smtp_address.key())
        .bind(argon)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            let e = StoreError::from(e);
            return Err(if e.is_unique_violation() {
                DirectoryError::Duplicate { field: "name, SIP URI or SMTP address", value: new.name.to_string() }
            } else {
                e.into()
            });
        }
        write_digests(&mut tx, &new.name, &new.sip_uri, &new.password).await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(user = %new.name, sip = %new.sip_uri, smtp = %new.smtp_address, "user added");
        self.get(new.name.as_str()).await
    }

    pub async fn list(&self) -> Result<Vec<User>, DirectoryError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.store.pool()).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// A user by account name, SIP URI (`sip:…`) or SMTP address (`…@…`).
    pub async fn find(&self, key: &str) -> Result<Option<User>, DirectoryError> {
        let Some((column, value)) = lookup_key(key) else { return Ok(None) };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(self.store.pool()).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Like [`Directory::find`], but absence is an error.
    pub async fn get(&self, key: &str) -> Result<User, DirectoryError> {
        self.find(key).await?.ok_or_else(|| DirectoryError::NotFound(key.to_owned()))
    }

    /// Replaces both kinds of credential at once.
    pub async fn set_password(&self, key: &str, password: &str) -> Result<(), DirectoryError> {
        let user = self.get(key).await?;
        let argon = hash_off_worker(password).await?;
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE users SET password_argon2 = $1, password_changed_at = $2 WHERE name = $3")
            .bind(argon)
            .bind(tandem_store::now_unix())
            .bind(user.name.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_digest WHERE user_name = $1").bind(user.name.as_str()).execute(&mut *tx).await?;
        write_digests(&mut tx, &user.name, &user.sip_uri, password).await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(user = %user.name, "password changed");
        Ok(())
    }

    pub async fn set_enabled(&self, key: &str, flag: EnabledFlag, enabled: bool) -> Result<User, DirectoryError> {
        let user = self.get(key).await?;
        let sql = match flag {
            EnabledFlag::Account => "UPDATE users SET enabled = $1 WHERE name = $2",
            EnabledFlag::Sip => "UPDATE users SET sip_enabled = $1 WHERE name = $2",
            // A mailbox here ends the user's life as a mail user (Enable-Mailbox on a MailUser).
            EnabledFlag::Mailbox if enabled => {
                "UPDATE users SET mailbox_enabled = $1, external_email_address = NULL WHERE name = $2"
            }
            EnabledFlag::Mailbox => "UPDATE users SET mailbox_enabled = $1 WHERE name = $2",
        };
        let mut tx = self.store.begin().await?;
        sqlx::query(sql).bind(i64::from(enabled)).bind(user.name.as_str()).execute(&mut *tx).await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(user = %user.name, ?flag, enabled, "user flag changed");
        self.get(user.name.as_str()).await
    }

    /// Enable-MailUser / Set-MailUser (`Some`) and Disable-MailUser (`None`): where the user's
    /// mailbox lives. Only a user without a mailbox here can be a mail user, as in Exchange.
    pub async fn set_external_email_address(
        &self,
        key: &str,
        address: Option<&SmtpAddress>,
    ) -> Result<User, DirectoryError> {
        let user = self.get(key).await?;
        if address.is_some() && user.mailbox_enabled {
            return Err(DirectoryError::HasMailbox(user.name.to_string()));
        }
        if address.is_some_and(|a| a.key() == user.smtp_address.key()) {
            return Err(DirectoryError::RedirectToSelf(user.smtp_address.to_string()));
        }
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE users SET external_email_address = $1 WHERE name = $2")
            .bind(address.map(ToString::to_string))
            .bind(user.name.as_str())
            .execute(&mut *tx)
            .await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(user = %user.name, external = ?address.map(ToString::to_string), "external e-mail address set");
        self.get(user.name.as_str()).await
    }

    pub async fn remove(&self, key: &str) -> Result<User, DirectoryError> {
        let user = self.get(key).await?;
        let mut tx = self.store.begin().await?;
        sqlx::query("DELETE FROM user_digest WHERE user_name = $1").bind(user.name.as_str()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM users WHERE name = $1").bind(user.name.as_str()).execute(&mut *tx).await?;
        bump_generation(&mut tx).await?;
        tx.commit().await?;
        self.cache.invalidate();
        tracing::info!(user = %user.name, "user removed");
        Ok(user)
    }

    /// Checks a password for HTTP Basic sign-in. `login` is an account name, SMTP address or
    /// `DOMAIN\name`. Returns the user only when the password matches and the account is enabled.
    /// No lockout applies: [`Directory::sign_in`] is the path for clients.
    pub async fn verify_password(&self, login: &str, password: &str) -> Result<Option<User>, DirectoryError> {
        let (user, ok) = self.check_password(login, password).await?;
        Ok(user.filter(|u| ok && u.enabled))
    }

    /// A password sign-in from `source` (when known) under the lockout policy: back-off after
    /// failures, refusal while the account or address is locked, and the same answer (and
    /// about the same time) for unknown users, disabled users and wrong passwords.
    pub async fn sign_in(&self, login: &str, password: &str, source: Option<IpAddr>) -> Result<SignIn, DirectoryError> {
        let login = login.rsplit_once('\\').map(|(_, n)| n).unwrap_or(login);
        let found = self.find_with_hash(login).await?;
        // Unknown logins are counted under their own name, so they lock exactly as real ones.
        let account = found.as_ref().map_or_else(|| login.to_owned(), |(u, _)| u.name.to_string());
        match self.lockout_verdict(&account, source).await? {
            Verdict::Locked(_) => {
                // Guessing at a locked account is still guessing: it counts for the address (as
                // over SIP), so the source slows down and locks too.
                self.record_failure(&account, source).await?;
                return Ok(SignIn::Refused);
            }
            Verdict::Proceed(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Verdict::Proceed(_) => {}
        }
        let (user, phc) = found.map_or((None, None), |(u, h)| (Some(u), Some(h)));
        // Checked again once a hash slot is free: attempts sent in parallel all passed the first
        // check, and must not go on guessing once the ones before them locked the account.
        let still_open = || !matches!(self.lockout.check(&account, source), Verdict::Locked(_));
        let Some(ok) = verify_off_worker(phc, password, still_open).await? else { return Ok(SignIn::Refused) };
        match user {
            Some(u) if ok => {
                self.lockout.succeeded(&account);
                Ok(if u.enabled { SignIn::Accepted(u) } else { SignIn::Refused })
            }
            _ => {
                self.record_failure(&account, source).await?;
                Ok(SignIn::Refused)
            }
        }
    }

    /// The user a login names and whether `password` is theirs (checked against the dummy hash
    /// when there is nobody).
    async fn check_password(&self, login: &str, password: &str) -> Result<(Option<User>, bool), DirectoryError> {
        let login = login.rsplit_once('\\').map(|(_, n)| n).unwrap_or(login);
        let (user, phc) = self.find_with_hash(login).await?.map_or((None, None), |(u, h)| (Some(u), Some(h)));
        let ok = verify_off_worker(phc, password, || true).await?;
        Ok((user, ok.unwrap_or(false)))
    }

    /// Like [`Directory::find`], with the user's argon2 PHC string, in one round trip.
    async fn find_with_hash(&self, key: &str) -> Result<Option<(User, String)>, DirectoryError> {
        let Some((column, value)) = lookup_key(key) else { return Ok(None) };
        let sql = format!("SELECT {USER_COLUMNS}, password_argon2 FROM users WHERE {column} = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(self.store.pool()).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((user_from_row(&row)?, row.try_get("password_argon2")?)))
    }

    /// The stored HA1 for a digest user name (`alice` or `alice@litwareinc.com`), realm and
    /// algorithm, with its user; `None` when there is none or the user may not use SIP.
    pub async fn digest_ha1(
        &self,
        digest_username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Option<(User, String)>, DirectoryError> {
        // One round trip: this runs for every authenticated SIP request.
        let sql = format!(
            "SELECT d.ha1, {} FROM user_digest d JOIN users u ON u.name = d.user_name
             WHERE d.digest_username = $1 AND d.realm = $2 AND d.algorithm = $3",
            USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(digest_username.to_ascii_lowercase())
            .bind(realm.to_ascii_lowercase())
            .bind(algorithm.token())
            .fetch_optional(self.store.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let ha1: String = row.try_get("ha1")?;
        let user = user_from_row(&row)?;
        Ok(user.can_use_sip().then_some((user, ha1)))
    }

    /// [`Directory::find`] through the cache (see `cache`): for per-request paths, where an
    /// answer up to [`GENERATION_CHECK_INTERVAL`] behind another process's change is acceptable.
    pub async fn find_cached(&self, key: &str) -> Result<Option<User>, DirectoryError> {
        let Some(cache_key) = lookup_key(key) else { return Ok(None) };
        self.check_generation().await;
        let epoch = match self.cache.user(&cache_key) {
            Ok(found) => return Ok(found),
            Err(epoch) => epoch,
        };
        let found = self.find(key).await?;
        self.cache.store_user(cache_key, found.clone(), epoch);
        Ok(found)
    }

    /// [`Directory::digest_ha1`] through the cache, as [`Directory::find_cached`].
    pub async fn digest_ha1_cached(
        &self,
        digest_username: &str,
        realm: &str,
        algorithm: DigestAlgorithm,
    ) -> Result<Option<(User, String)>, DirectoryError> {
        let key = (digest_username.to_ascii_lowercase(), realm.to_ascii_lowercase(), algorithm);
        self.check_generation().await;
        let epoch = match self.cache.digest(&key) {
            Ok(found) => return Ok(found),
            Err(epoch) => epoch,
        };
        let found = self.digest_ha1(digest_username, realm, algorithm).await?;
        self.cache.store_digest(key, found.clone(), epoch);
        Ok(found)
    }

    /// Entries the cache holds (for status and tests).
    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    /// Reads the directory's generation when due, emptying the cache when it moved. A failed
    /// read empties it too: the lookups that follow go to the database and report its error.
    async fn check_generation(&self) {
        let now = std::time::Instant::now();
        if !self.cache.check_due(now) {
            return;
        }
        let read: Result<i64, sqlx::Error> =
            sqlx::query_scalar("SELECT generation FROM directory_generation WHERE id = 1")
                .fetch_one(self.store.pool())
                .await;
        match read {
            Ok(g) => self.cache.checked(Some(g), now),
            Err(e) => {
                tracing::warn!(error = %e, "directory generation not read; cache emptied");
                self.cache.checked(None, now);
            }
        }
    }
}

/// Marks a change to users or credentials for every process's cache (inside the change's
/// transaction, so the mark and the change are seen together).
async fn bump_generation(tx: &mut tandem_store::Transaction<'static, tandem_store::Any>) -> Result<(), DirectoryError> {
    sqlx::query("UPDATE directory_generation SET generation = generation + 1 WHERE id = 1").execute(&mut **tx).await?;
    Ok(())
}

/// The column and value a key (account name, `sip:` URI or SMTP address) is looked up by;
/// `None` when it cannot name anybody.
fn lookup_key(key: &str) -> Option<(&'static str, String)> {
    if key.to_ascii_lowercase().starts_with("sip:") {
        key.parse::<SipUri>().ok().map(|u| ("sip_key", u.key()))
    } else if key.contains('@') {
        key.parse::<SmtpAddress>().ok().map(|a| ("smtp_key", a.key()))
    } else {
        Some(("name", key.to_owned()))
    }
}

/// Checks `password` against `phc` (the dummy hash when `None`) on the blocking pool, a few at a
/// time: argon2 would otherwise hold an async worker for tens of milliseconds per guess. A
/// stored hash that does not parse counts as a mismatch (and is logged), as a dummy would.
/// `None` when `proceed`, asked once a slot is free, says the check is no longer wanted.
async fn verify_off_worker(
    phc: Option<String>,
    password: &str,
    proceed: impl FnOnce() -> bool,
) -> Result<Option<bool>, DirectoryError> {
    let _slot = HASH_SLOTS.acquire().await.map_err(|e| DirectoryError::Hash(e.to_string()))?;
    if !proceed() {
        return Ok(None);
    }
    let password = password.to_owned();
    let job = tokio::task::spawn_blocking(move || {
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.clone());
        match PasswordHash::new(&phc) {
            // Verified first, then combined: the dummy must cost the full check.
            Ok(parsed) => verify_with_kept_memory(password.as_bytes(), &parsed) && real,
            Err(e) => {
                tracing::error!(error = %e, "a stored password hash does not parse");
                false
            }
        }
    });
    job.await.map(Some).map_err(|e| DirectoryError::Hash(e.to_string()))
}

/// Argon2 working memory (19 MiB with the default parameters), one buffer per check that may run
/// at once ([`HASH_SLOTS`]), allocated on first use and kept for the life of the process. Letting
/// argon2 allocate its own for every check made glibc keep a freed 19 MiB block in each malloc
/// arena a blocking thread happened to use (its mmap threshold rises past 19 MiB after the first
/// free): RSS grew by about 2 × 19 MiB at each round of Basic sign-ins, up to one block per arena
/// (bench/soak, docs/BENCHMARKS.md). Kept buffers bound it at `HASH_SLOTS` × 19 MiB.
static HASH_MEMORY: Mutex<Vec<Vec<argon2::Block>>> = Mutex::new(Vec::new());

/// The largest buffer put back in [`HASH_MEMORY`]: the default parameters' (hashes this server
/// made). A stored hash asking for more memory gets a buffer of its own, freed after the check.
const KEPT_BLOCKS: usize = argon2::Params::DEFAULT_M_COST as usize;

/// `PasswordVerifier::verify_password` for argon2 PHC strings, with working memory from
/// [`HASH_MEMORY`]: the same computation and the same constant-time comparison of the output.
fn verify_with_kept_memory(password: &[u8], phc: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return false };
    let (Ok(algorithm), Ok(params)) =
        (argon2::Algorithm::try_from(phc.algorithm.as_str()), argon2::Params::try_from(phc))
    else {
        return false;
    };
    let version = match phc.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut memory = HASH_MEMORY.lock().ok().and_then(|mut kept| kept.pop()).unwrap_or_default();
    memory.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        memory.as_mut_slice(),
    );
    // A check whose client left keeps running without its slot: never keep more than the slots.
    if memory.len() <= KEPT_BLOCKS
        && let Ok(mut kept) = HASH_MEMORY.lock()
        && kept.len() < hash_parallelism()
    {
        kept.push(memory);
    }
    // Output's equality is constant-time, like the verifier's.
    hashed.is_ok() && argon2::password_hash::phc::Output::new(&out).is_ok_and(|o| &o == expected)
}

/// Hashes a new password on the blocking pool, at most one per core at once ([`HASH_SLOTS`]):
/// a caller adding many users (`tandem user import`) runs several adds at once and gets every
/// core, and an async worker is never held for the tens of milliseconds argon2 takes.
async fn hash_off_worker(password: &str) -> Result<String, DirectoryError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DirectoryError::WeakPassword);
    }
    let _slot = HASH_SLOTS.acquire().await.map_err(|e| DirectoryError::Hash(e.to_string()))?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| DirectoryError::Hash(e.to_string()))?
}

/// Hashes a password already checked against the policy (`hash_off_worker` checks it before it
/// waits for a slot, so a weak password never queues behind real hashing).
fn hash_password(password: &str) -> Result<String, DirectoryError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| DirectoryError::Hash(e.to_string()))
}

/// HA1 rows for the realm of the user's SIP domain, under both digest user names clients use:
/// the user part (`alice`) and the full address (`alice@litwareinc.com`).
async fn write_digests(
    tx: &mut tandem_store::Transaction<'static, tandem_store::Any>,
    name: &UserName,
    sip: &SipUri,
    password: &str,
) -> Result<(), DirectoryError> {
    let realm = sip.domain().as_str();
    let usernames = [sip.user().to_ascii_lowercase(), format!("{}@{}", sip.user().to_ascii_lowercase(), realm)];
    for username in &usernames {
        for alg in DigestAlgorithm::ALL {
            sqlx::query(
                "INSERT INTO user_digest (user_name, digest_username, realm, algorithm, ha1) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name.as_str())
            .bind(username)
            .bind(realm)
            .bind(alg.token())
            .bind(alg.ha1(username, realm, password))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, DirectoryError> {
    let name: String = row.try_get("name")?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| DirectoryError::Corrupt(name.clone(), format!("{what}: {e}"));
    Ok(User {
        name: name.parse().map_err(|e| corrupt("name", &e))?,
        display_name: row.try_get("display_name")?,
        sip_uri: row.try_get::<String, _>("sip_uri")?.parse().map_err(|e| corrupt("sip_uri", &e))?,
        smtp_address: row.try_get::<String, _>("smtp_address")?.parse().map_err(|e| corrupt("smtp_address", &e))?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        sip_enabled: row.try_get::<i64, _>("sip_enabled")? != 0,
        mailbox_enabled: row.try_get::<i64, _>("mailbox_enabled")? != 0,
        external_email_address: row
            .try_get::<Option<String>, _>("external_email_address")?
            .map(|a| a.parse().map_err(|e| corrupt("external_email_address", &e)))
            .transpose()?,
        created_at: row.try_get("created_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    /// The kept-memory check answers as argon2's own verifier does, for the default parameters,
    /// other variants and costs, and malformed hashes.
    #[test]
    fn kept_memory_verification_agrees_with_argon2() {
        let small = argon2::Params::new(64, 2, 1, None).unwrap();
        let hashers = [
            Argon2::default(),
            Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, small.clone()),
            Argon2::new(argon2::Algorithm::Argon2d, argon2::Version::V0x10, small),
        ];
        for hasher in hashers {
            let phc = hasher.hash_password(b"Right-Pass-2026").unwrap().to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            for (password, right) in [(&b"Right-Pass-2026"[..], true), (b"Wrong-Pass-2026", false), (b"", false)] {
                assert_eq!(Argon2::default().verify_password(password, &parsed).is_ok(), right, "{phc}");
                assert_eq!(verify_with_kept_memory(password, &parsed), right, "{phc}");
            }
        }
        let no_hash = PasswordHash::new("$argon2id$v=19$m=64,t=2,p=1$c29tZXNhbHQ").unwrap();
        assert!(!verify_with_kept_memory(b"x", &no_hash));
    }

    /// However many checks run at once, at most one buffer per slot is kept, none larger than the
    /// default parameters need.
    #[test]
    fn kept_argon2_memory_stays_bounded() {
        let phc = hash_password("Right-Pass-2026").unwrap();
        let big = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(KEPT_BLOCKS as u32 * 2, 1, 1, None).unwrap(),
        )
        .hash_password(b"Right-Pass-2026")
        .unwrap()
        .to_string();
        std::thread::scope(|scope| {
            for n in 0..hash_parallelism() * 3 {
                let phc = if n % 3 == 0 { big.clone() } else { phc.clone() };
                scope.spawn(move || {
                    assert!(verify_with_kept_memory(b"Right-Pass-2026", &PasswordHash::new(&phc).unwrap()))
                });
            }
        });
        let kept = HASH_MEMORY.lock().unwrap();
        assert!(!kept.is_empty());
        assert!(kept.len() <= hash_parallelism(), "{} buffers kept", kept.len());
        assert!(kept.iter().all(|m| m.len() <= KEPT_BLOCKS));
    }

    #[test]
    fn ha1_matches_rfc_examples() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / Circle Of Life.
        assert_eq!(
            DigestAlgorithm::Md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
        // RFC 7616 §3.9.1 uses realm http-auth@example.org and the same credentials.
        assert_eq!(
            DigestAlgorithm::Sha256.ha1("Mufasa", "http-auth@example.org", "Circle of Life"),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }
}

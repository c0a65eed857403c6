//! The directory: Tandem's Active Directory, shared by both roles.
//!
//! A user has an account name, a display name, a SIP URI (the Front End's identity) and a
//! primary SMTP address (the mailbox's identity), enabled flags, and credentials kept in two
//! forms because two protocols check them: an argon2 PHC string for HTTP Basic (EWS,
//! Autodiscover) and SIP digest HA1 values per realm, algorithm (MD5, SHA-256 per RFC 8760) and
//! digest user name, since a digest cannot be checked against argon2. HA1 values are secrets.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use md5::Md5;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tandem_store::{Migration, Store, StoreError};
use tandem_types::{SipUri, SmtpAddress, UserName};

pub use tandem_store;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub created_at: i64,
    pub password_changed_at: i64,
}

impl User {
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

const MIGRATIONS: &[Migration] = &[Migration::portable(
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
)];

const USER_COLUMNS: &str =
    "name, display_name, sip_uri, smtp_address, enabled, sip_enabled, mailbox_enabled, created_at, password_changed_at";

/// The directory over its store.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Store,
}

impl Directory {
    /// Opens the directory database at `url`, creating and migrating it as needed.
    pub async fn open(url: &str) -> Result<Directory, DirectoryError> {
        Ok(Directory { store: Store::open(url, MIGRATIONS).await? })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds a user with both kinds of credential, in one transaction.
    pub async fn add(&self, new: &NewUser) -> Result<User, DirectoryError> {
        if new.display_name.trim().is_empty() {
            return Err(DirectoryError::EmptyDisplayName);
        }
        let argon = hash_password(&new.password)?;
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
        tx.commit().await?;
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
        let (column, value) = if key.to_ascii_lowercase().starts_with("sip:") {
            match key.parse::<SipUri>() {
                Ok(u) => ("sip_key", u.key()),
                Err(_) => return Ok(None),
            }
        } else if key.contains('@') {
            match key.parse::<SmtpAddress>() {
                Ok(a) => ("smtp_key", a.key()),
                Err(_) => return Ok(None),
            }
        } else {
            ("name", key.to_owned())
        };
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
        let argon = hash_password(password)?;
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE users SET password_argon2 = $1, password_changed_at = $2 WHERE name = $3")
            .bind(argon)
            .bind(tandem_store::now_unix())
            .bind(user.name.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_digest WHERE user_name = $1").bind(user.name.as_str()).execute(&mut *tx).await?;
        write_digests(&mut tx, &user.name, &user.sip_uri, password).await?;
        tx.commit().await?;
        tracing::info!(user = %user.name, "password changed");
        Ok(())
    }

    pub async fn set_enabled(&self, key: &str, flag: EnabledFlag, enabled: bool) -> Result<User, DirectoryError> {
        let user = self.get(key).await?;
        let sql = match flag {
            EnabledFlag::Account => "UPDATE users SET enabled = $1 WHERE name = $2",
            EnabledFlag::Sip => "UPDATE users SET sip_enabled = $1 WHERE name = $2",
            EnabledFlag::Mailbox => "UPDATE users SET mailbox_enabled = $1 WHERE name = $2",
        };
        sqlx::query(sql).bind(i64::from(enabled)).bind(user.name.as_str()).execute(self.store.pool()).await?;
        tracing::info!(user = %user.name, ?flag, enabled, "user flag changed");
        self.get(user.name.as_str()).await
    }

    pub async fn remove(&self, key: &str) -> Result<User, DirectoryError> {
        let user = self.get(key).await?;
        let mut tx = self.store.begin().await?;
        sqlx::query("DELETE FROM user_digest WHERE user_name = $1").bind(user.name.as_str()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM users WHERE name = $1").bind(user.name.as_str()).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(user = %user.name, "user removed");
        Ok(user)
    }

    /// Checks a password for HTTP Basic sign-in. `login` is an account name, SMTP address or
    /// `DOMAIN\name`. Returns the user only when the password matches and the account is enabled.
    pub async fn verify_password(&self, login: &str, password: &str) -> Result<Option<User>, DirectoryError> {
        let login = login.rsplit_once('\\').map(|(_, n)| n).unwrap_or(login);
        let Some(user) = self.find(login).await? else { return Ok(None) };
        let row = sqlx::query("SELECT password_argon2 FROM users WHERE name = $1")
            .bind(user.name.as_str())
            .fetch_one(self.store.pool())
            .await?;
        let phc: String = row.try_get("password_argon2")?;
        let parsed =
            PasswordHash::new(&phc).map_err(|e| DirectoryError::Corrupt(user.name.to_string(), e.to_string()))?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok((ok && user.enabled).then_some(user))
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
}

fn hash_password(password: &str) -> Result<String, DirectoryError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DirectoryError::WeakPassword);
    }
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
        created_at: row.try_get("created_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

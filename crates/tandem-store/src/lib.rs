//! The one storage surface of Tandem: SQLite embedded by default, PostgreSQL for a pool.
//!
//! Each owner (the directory, the mailbox role, the Front End role) opens its own [`Store`] with
//! its own migrations, so the roles never share a database. Queries are runtime SQL through
//! sqlx's `Any` driver with `$n` placeholders, which both backends accept; integers are `BIGINT`
//! and booleans are stored as 0/1 so one query text serves both. Where the dialects differ, a
//! migration carries one script per backend. Embedded database files are owner-only (0600) in
//! an owner-only folder (0700), checked at every open.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Row};

mod permissions;
#[cfg(feature = "testing")]
pub mod testing;

pub use permissions::{DIR_MODE, FILE_MODE, secure_data_dir};

pub use sqlx::{Any, AnyPool as Pool, Transaction};

/// What went wrong in the store. Callers add what they were doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create the folder {path} for the database: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("cannot restrict {path} to its owner: {source}")]
    Permissions { path: String, source: std::io::Error },
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: i64, name: &'static str, source: sqlx::Error },
    #[error("the database is at schema version {found}, newer than this tandem knows ({known}); upgrade tandem")]
    TooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

impl StoreError {
    /// True when SQLite reported the database busy or locked (another process is writing).
    pub fn is_busy(&self) -> bool {
        let db = match self {
            StoreError::Sql(sqlx::Error::Database(db))
            | StoreError::Migration { source: sqlx::Error::Database(db), .. } => db,
            _ => return false,
        };
        db.code().is_some_and(|c| c == "5" || c == "6" || c == "517") || db.message().contains("database is locked")
    }

    /// True when the error is a unique-constraint violation, which callers turn into a
    /// "already exists" message.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(db)) => {
                db.is_unique_violation()
                    || db.code().is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
                    || db.message().contains("UNIQUE constraint failed")
            }
            _ => false,
        }
    }
}

/// The two kinds of database a store can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One schema step. Scripts may hold several statements separated by `;` at line ends.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    /// A step whose SQL is the same for both backends.
    pub const fn portable(version: i64, name: &'static str, sql: &'static str) -> Migration {
        Migration { version, name, sqlite: sql, postgres: sql }
    }
}

/// Base tables every store has: the applied migrations and a small settings map that admin
/// commands write and running roles read, so settings apply without a restart.
const BASE: Migration = Migration::portable(
    0,
    "store base",
    "CREATE TABLE IF NOT EXISTS tandem_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        changed_at BIGINT NOT NULL
    )",
);

/// A handle on one owner's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
}

impl Store {
    /// Opens (creating when embedded) the database at `url` and brings its schema up to date.
    /// `url` is `sqlite:///path/file.db` or `postgres://…`.
    pub async fn open(url: &str, migrations: &[Migration]) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        let open_err = |source| StoreError::Open { url: redact(url), source };
        let connect_url = match backend {
            Backend::Sqlite => {
                let path = url.strip_prefix("sqlite://").unwrap_or(url);
                if !path.starts_with(':') {
                    permissions::secure_sqlite(Path::new(path))?;
                }
                format!("sqlite://{path}?mode=rwc")
            }
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&connect_url)
            .map_err(open_err)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // With WAL, NORMAL syncs at checkpoints instead of every commit: a
                        // committed write survives a crash or kill -9 of the process (it is in
                        // the WAL), only a power cut can lose the last commits. Without it every
                        // REGISTER would wait for an fsync.
                        sqlx::query("PRAGMA synchronous=NORMAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout=10000").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        if backend == Backend::Sqlite {
            // WAL lets the admin CLI write while a running role reads; it is a property of the
            // file, so setting it once per open is enough.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await.map_err(open_err)?;
        }
        let store = Store { pool, backend, url: redact(url) };
        // Two processes may open one SQLite file at once (`tandem up` starting while `tandem status`
        // polls it). A migration's read-then-write transaction can then fail at once with
        // SQLITE_BUSY instead of waiting; every step is its own transaction and skips what is
        // done, so trying again after a pause is safe.
        let mut attempt = 0;
        loop {
            match store.migrate(migrations).await {
                Err(e) if backend == Backend::Sqlite && attempt < 50 && e.is_busy() => {
                    attempt += 1;
                    tracing::debug!(store = %store.url, attempt, "database busy during migration; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with any password removed, for logs and status output.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a transaction: every multi-row write goes through one, so a failure leaves nothing.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction that reads before it writes. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that later upgrades fails with "database is
    /// locked" when another process (an admin command, a second role) writes meanwhile.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A probe for readiness endpoints: each call pings the database and words a failure.
    pub fn ping_probe(
        &self,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> + Send + Sync + 'static
    {
        let store = self.clone();
        move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(version), -1) AS v FROM tandem_schema").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("v")?)
    }

    async fn migrate(&self, migrations: &[Migration]) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tandem_schema (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )",
        )
        .execute(&self.pool)
        .await?;
        let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
        let found = self.schema_version().await?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for m in std::iter::once(&BASE).chain(migrations) {
            let mut tx = self.begin_write().await?;
            if self.backend == Backend::Postgres {
                // Nodes of a pool may start together: one migrates, the others wait here.
                sqlx::query("SELECT pg_advisory_xact_lock(7265746)").execute(&mut *tx).await?;
            }
            let done = sqlx::query("SELECT 1 FROM tandem_schema WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if done {
                continue;
            }
            let script = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let fail = |source| StoreError::Migration { version: m.version, name: m.name, source };
            for statement in split_statements(script) {
                sqlx::query(statement).execute(&mut *tx).await.map_err(fail)?;
            }
            sqlx::query("INSERT INTO tandem_schema (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(now_unix())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            tracing::debug!(store = %self.url, version = m.version, name = m.name, "migration applied");
        }
        Ok(())
    }

    /// A value from the settings map.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM tandem_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }

    /// Sets a value in the settings map, replacing any earlier one.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tandem_settings (name, value, changed_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
        )
        .bind(name)
        .bind(value)
        .bind(now_unix())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Seconds since the Unix epoch; stored as BIGINT in both backends.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn split_statements(script: &'static str) -> impl Iterator<Item = &'static str> {
    script.split(";\n").map(|s| s.trim().trim_end_matches(';').trim()).filter(|s| !s.is_empty())
}

/// Removes the password from a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    }

    #[test]
    fn splits_scripts() {
        let v: Vec<_> = split_statements("CREATE a;\nCREATE b;\n\n").collect();
        assert_eq!(v, ["CREATE a", "CREATE b"]);
    }
}

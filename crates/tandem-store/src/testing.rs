//! Fresh databases for test batteries, so one battery runs against SQLite and PostgreSQL alike.
//!
//! PostgreSQL is reached at `TANDEM_TEST_POSTGRES_URL` (default: the machine's local server,
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each call creates a uniquely named database and
//! drops it when the guard goes; a battery fails, never skips, when the server is down.

use sqlx::{Connection, PgConnection};

/// The server tests use unless `TANDEM_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL to open it with.
    pub url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Holds the folder so it lives as long as the database.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

fn admin_url() -> String {
    std::env::var("TANDEM_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned())
}

impl TestDatabase {
    /// A new SQLite file in its own temporary folder.
    pub fn sqlite() -> TestDatabase {
        #[allow(clippy::expect_used)] // a test harness without a temp dir cannot run at all
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDatabase { url, kind: Kind::Sqlite { _dir: dir } }
    }

    /// A new, empty PostgreSQL database on the test server.
    pub async fn postgres() -> Result<TestDatabase, sqlx::Error> {
        let admin = admin_url();
        let name = format!("tandem_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await?;
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await?;
        conn.close().await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Ok(TestDatabase { url: format!("{base}/{name}"), kind: Kind::Postgres { admin_url: admin, name } })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any runtime guarantee; a short-lived thread with its own runtime
            // removes the database and is joined, so nothing is left behind.
            let handle = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                        let drop_sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(drop_sql)).execute(&mut conn).await;
                    }
                });
            });
            let _ = handle.join();
        }
    }
}

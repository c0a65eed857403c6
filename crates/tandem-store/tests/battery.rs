//! The store battery: the same checks against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::Row;
use tandem_store::testing::TestDatabase;
use tandem_store::{Migration, Store};

const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        1,
        "notes",
        "CREATE TABLE notes (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL, data BYTEA);
         CREATE UNIQUE INDEX notes_owner_body ON notes (owner, body)",
    ),
    Migration {
        version: 2,
        name: "notes flag",
        sqlite: "ALTER TABLE notes ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0",
        postgres: "ALTER TABLE notes ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0",
    },
];

async fn battery(db: &TestDatabase) {
    let store = Store::open(&db.url, MIGRATIONS).await.expect("open");
    assert_eq!(store.schema_version().await.unwrap(), 2);
    store.ping().await.unwrap();
    if store.backend() == tandem_store::Backend::Sqlite {
        // WAL with synchronous=NORMAL on every pooled connection (1 = NORMAL).
        let mode: i64 = sqlx::query("PRAGMA synchronous").fetch_one(store.pool()).await.unwrap().get(0);
        assert_eq!(mode, 1);
        let journal: String = sqlx::query("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap().get(0);
        assert_eq!(journal, "wal");
    }

    // Re-opening applies nothing twice.
    store.close().await;
    let store = Store::open(&db.url, MIGRATIONS).await.expect("reopen");
    assert_eq!(store.schema_version().await.unwrap(), 2);

    // A database newer than the code is refused.
    let older = Store::open(&db.url, &MIGRATIONS[..1]).await.unwrap_err();
    assert!(older.to_string().contains("newer"), "{older}");

    // Settings: absent, set, replaced.
    assert_eq!(store.setting("x").await.unwrap(), None);
    store.set_setting("x", "1").await.unwrap();
    store.set_setting("x", "zwei ünïcode").await.unwrap();
    assert_eq!(store.setting("x").await.unwrap().as_deref(), Some("zwei ünïcode"));

    // Round trip of the types every owner uses: BIGINT, TEXT, BYTEA/BLOB, 0/1 booleans.
    let blob: Vec<u8> = (0..=255).collect();
    sqlx::query("INSERT INTO notes (id, owner, body, data, flagged) VALUES ($1, $2, $3, $4, $5)")
        .bind(i64::MAX)
        .bind("alice")
        .bind("héllo 'quoted' \"text\"")
        .bind(blob.clone())
        .bind(1_i64)
        .execute(store.pool())
        .await
        .unwrap();
    let row = sqlx::query("SELECT id, body, data, flagged FROM notes WHERE owner = $1")
        .bind("alice")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("id"), i64::MAX);
    assert_eq!(row.get::<String, _>("body"), "héllo 'quoted' \"text\"");
    assert_eq!(row.get::<Vec<u8>, _>("data"), blob);
    assert_eq!(row.get::<i64, _>("flagged"), 1);

    // Unique violations are recognisable, on both backends.
    let dup = sqlx::query("INSERT INTO notes (id, owner, body) VALUES (2, 'alice', $1)")
        .bind("héllo 'quoted' \"text\"")
        .execute(store.pool())
        .await
        .map_err(tandem_store::StoreError::from)
        .unwrap_err();
    assert!(dup.is_unique_violation(), "{dup}");

    // A failed transaction leaves nothing half-written.
    let mut tx = store.begin().await.unwrap();
    sqlx::query("INSERT INTO notes (id, owner, body) VALUES (10, 'bob', 'one')").execute(&mut *tx).await.unwrap();
    let second = sqlx::query("INSERT INTO notes (id, owner, body) VALUES (10, 'bob', 'two')").execute(&mut *tx).await;
    assert!(second.is_err());
    drop(tx); // rolled back
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notes WHERE owner = 'bob'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 0);

    // Concurrent writers through the pool all land.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32_i64 {
        let store = store.clone();
        tasks.spawn(async move {
            sqlx::query("INSERT INTO notes (id, owner, body) VALUES ($1, 'carol', $2)")
                .bind(100 + i)
                .bind(format!("note {i}"))
                .execute(store.pool())
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notes WHERE owner = 'carol'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 32);
    store.close().await;
}

#[tokio::test]
async fn store_battery_sqlite() {
    battery(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn store_battery_postgres() {
    let db = TestDatabase::postgres()
        .await
        .expect("PostgreSQL must be reachable for the store battery (set TANDEM_TEST_POSTGRES_URL)");
    battery(&db).await;
}

//! Embedded databases are owner-only: created 0600 in a 0700 folder, and restricted at open
//! when found open to others (the data directory 0755 and databases 0644 of issue 9).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tandem_store::{Migration, Store};

const M: &[Migration] = &[Migration::portable(1, "t", "CREATE TABLE t (x BIGINT)")];

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn databases_are_created_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("tandem-data");
    let db = data.join("directory.db");
    let store = Store::open(&format!("sqlite://{}", db.display()), M).await.unwrap();
    sqlx::query("INSERT INTO t (x) VALUES (1)").execute(store.pool()).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    for companion in ["directory.db-wal", "directory.db-shm"] {
        let p = data.join(companion);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{companion}");
        }
    }
    store.close().await;
}

#[tokio::test]
async fn open_databases_and_folders_are_restricted_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("tandem-data");
    let db = data.join("mailbox.db");
    let url = format!("sqlite://{}", db.display());
    Store::open(&url, M).await.unwrap().close().await;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    Store::open(&url, M).await.unwrap().close().await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);

    // The data directory on its own, for where it is created outside a store.
    let other = tmp.path().join("a").join("b");
    tandem_store::secure_data_dir(&other).unwrap();
    assert_eq!(mode(&other), 0o700);
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o775)).unwrap();
    tandem_store::secure_data_dir(&other).unwrap();
    assert_eq!(mode(&other), 0o700);
}

#[tokio::test]
async fn shared_folders_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let db = shared.join("x.db");
    Store::open(&format!("sqlite://{}", db.display()), M).await.unwrap().close().await;
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(mode(&db), 0o600);
}

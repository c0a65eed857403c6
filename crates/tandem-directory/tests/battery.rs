//! The directory battery, against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_directory::{DigestAlgorithm, Directory, DirectoryError, EnabledFlag, NewUser};
use tandem_store::testing::TestDatabase;

fn alice() -> NewUser {
    NewUser {
        name: "alice".parse().unwrap(),
        display_name: "Alice Anderson".into(),
        sip_uri: "sip:alice@litwareinc.com".parse().unwrap(),
        smtp_address: "alice@litwareinc.com".parse().unwrap(),
        password: "correct horse".into(),
    }
}

async fn battery(db: &TestDatabase) {
    let dir = Directory::open(&db.url).await.unwrap();
    let a = dir.add(&alice()).await.unwrap();
    assert!(a.can_use_sip() && a.can_use_mailbox());

    // Duplicates on every unique key, compared case-insensitively, each named.
    let mut dup = alice();
    dup.name = "alice2".parse().unwrap();
    dup.smtp_address = "other@litwareinc.com".parse().unwrap();
    dup.sip_uri = "sip:ALICE@litwareinc.com".parse().unwrap();
    assert!(matches!(dir.add(&dup).await, Err(DirectoryError::Duplicate { field: "SIP URI", .. })));
    dup.sip_uri = "sip:alice2@litwareinc.com".parse().unwrap();
    dup.smtp_address = "Alice@LitwareInc.com".parse().unwrap();
    assert!(matches!(dir.add(&dup).await, Err(DirectoryError::Duplicate { field: "SMTP address", .. })));
    assert!(matches!(dir.add(&alice()).await, Err(DirectoryError::Duplicate { field: "name", .. })));
    let mut weak = alice();
    weak.name = "weak".parse().unwrap();
    weak.password = "short".into();
    assert!(matches!(dir.add(&weak).await, Err(DirectoryError::WeakPassword)));
    assert_eq!(dir.list().await.unwrap().len(), 1, "failed adds leave nothing behind");

    // Lookups by every key.
    for key in ["alice", "sip:Alice@litwareinc.com", "ALICE@litwareinc.com"] {
        assert_eq!(dir.get(key).await.unwrap().name.as_str(), "alice", "{key}");
    }
    assert!(dir.find("nobody").await.unwrap().is_none());
    assert!(matches!(dir.get("nobody").await, Err(DirectoryError::NotFound(_))));

    // HTTP Basic with argon2; DOMAIN\name and address forms.
    assert!(dir.verify_password("alice", "correct horse").await.unwrap().is_some());
    assert!(dir.verify_password("LITWAREINC\\alice", "correct horse").await.unwrap().is_some());
    assert!(dir.verify_password("alice@litwareinc.com", "correct horse").await.unwrap().is_some());
    assert!(dir.verify_password("alice", "wrong horse!").await.unwrap().is_none());

    // SIP digest HA1 under both user names and both algorithms.
    for user in ["alice", "alice@litwareinc.com"] {
        for alg in DigestAlgorithm::ALL {
            let (u, ha1) = dir.digest_ha1(user, "litwareinc.com", alg).await.unwrap().expect("ha1");
            assert_eq!(u.name.as_str(), "alice");
            assert_eq!(ha1, alg.ha1(user, "litwareinc.com", "correct horse"));
        }
    }
    assert!(dir.digest_ha1("alice", "other.com", DigestAlgorithm::Md5).await.unwrap().is_none());

    // New password replaces both kinds.
    dir.set_password("alice", "battery staple").await.unwrap();
    assert!(dir.verify_password("alice", "correct horse").await.unwrap().is_none());
    assert!(dir.verify_password("alice", "battery staple").await.unwrap().is_some());
    let (_, ha1) = dir.digest_ha1("alice", "litwareinc.com", DigestAlgorithm::Md5).await.unwrap().unwrap();
    assert_eq!(ha1, DigestAlgorithm::Md5.ha1("alice", "litwareinc.com", "battery staple"));

    // Disabled accounts sign in nowhere; SIP-only disable keeps the mailbox.
    dir.set_enabled("alice", EnabledFlag::Sip, false).await.unwrap();
    assert!(dir.digest_ha1("alice", "litwareinc.com", DigestAlgorithm::Md5).await.unwrap().is_none());
    assert!(dir.verify_password("alice", "battery staple").await.unwrap().is_some());
    dir.set_enabled("alice", EnabledFlag::Sip, true).await.unwrap();
    dir.set_enabled("alice", EnabledFlag::Account, false).await.unwrap();
    assert!(dir.verify_password("alice", "battery staple").await.unwrap().is_none());
    assert!(dir.digest_ha1("alice", "litwareinc.com", DigestAlgorithm::Md5).await.unwrap().is_none());

    // Mail users: only without a mailbox here, never pointing at themselves; a mailbox enabled
    // again ends it.
    dir.set_enabled("alice", EnabledFlag::Account, true).await.unwrap();
    let fabrikam: tandem_types::SmtpAddress = "alice@fabrikam.com".parse().unwrap();
    assert!(matches!(
        dir.set_external_email_address("alice", Some(&fabrikam)).await,
        Err(DirectoryError::HasMailbox(_))
    ));
    dir.set_enabled("alice", EnabledFlag::Mailbox, false).await.unwrap();
    let own: tandem_types::SmtpAddress = "ALICE@litwareinc.com".parse().unwrap();
    assert!(matches!(
        dir.set_external_email_address("alice", Some(&own)).await,
        Err(DirectoryError::RedirectToSelf(_))
    ));
    let mail_user = dir.set_external_email_address("alice", Some(&fabrikam)).await.unwrap();
    assert!(mail_user.is_mail_user() && !mail_user.can_use_mailbox());
    assert_eq!(dir.get("alice@litwareinc.com").await.unwrap().external_email_address, Some(fabrikam.clone()));
    assert!(dir.verify_password("alice", "battery staple").await.unwrap().is_some(), "a mail user signs in");
    assert!(dir.set_external_email_address("alice", None).await.unwrap().external_email_address.is_none());
    dir.set_external_email_address("alice", Some(&fabrikam)).await.unwrap();
    let mailbox_again = dir.set_enabled("alice", EnabledFlag::Mailbox, true).await.unwrap();
    assert!(mailbox_again.external_email_address.is_none() && mailbox_again.can_use_mailbox());

    // Removal takes the credentials too; the names become free again.
    dir.remove("alice").await.unwrap();
    assert!(dir.list().await.unwrap().is_empty());
    assert!(dir.digest_ha1("alice", "litwareinc.com", DigestAlgorithm::Md5).await.unwrap().is_none());
    dir.add(&alice()).await.unwrap();

    // Reopening keeps everything.
    dir.store().close().await;
    let again = Directory::open(&db.url).await.unwrap();
    assert_eq!(again.list().await.unwrap().len(), 1);
}

/// The cache of per-request lookups: this process's changes show at once, another process's
/// (a second `Directory` on the same database, as an admin command is) within the generation
/// check interval; unknown names are cached as unknown until a user by that name is added.
async fn cache_battery(db: &TestDatabase) {
    let server = Directory::open(&db.url).await.unwrap();
    let admin = Directory::open(&db.url).await.unwrap();
    server.add(&alice()).await.unwrap();
    let md5 = DigestAlgorithm::Md5;
    let user = server.find_cached("sip:Alice@litwareinc.com").await.unwrap().expect("alice");
    assert_eq!(user.name.as_str(), "alice");
    assert!(server.digest_ha1_cached("alice", "litwareinc.com", md5).await.unwrap().is_some());
    assert!(server.find_cached("sip:bob@litwareinc.com").await.unwrap().is_none());
    assert_eq!(server.cached_entries(), 3);

    // A change in this process: seen at once.
    server.set_enabled("alice", EnabledFlag::Sip, false).await.unwrap();
    assert!(!server.find_cached("alice").await.unwrap().unwrap().sip_enabled);
    assert!(server.digest_ha1_cached("alice", "litwareinc.com", md5).await.unwrap().is_none());
    server.set_enabled("alice", EnabledFlag::Sip, true).await.unwrap();
    assert!(server.digest_ha1_cached("alice", "litwareinc.com", md5).await.unwrap().is_some());

    // Changes in another process: seen once the generation has been read again.
    admin.set_password("alice", "battery staple").await.unwrap();
    let mut bob = alice();
    bob.name = "bob".parse().unwrap();
    bob.sip_uri = "sip:bob@litwareinc.com".parse().unwrap();
    bob.smtp_address = "bob@litwareinc.com".parse().unwrap();
    admin.add(&bob).await.unwrap();
    tokio::time::sleep(tandem_directory::GENERATION_CHECK_INTERVAL + std::time::Duration::from_millis(100)).await;
    let (_, ha1) = server.digest_ha1_cached("alice", "litwareinc.com", md5).await.unwrap().unwrap();
    assert_eq!(ha1, md5.ha1("alice", "litwareinc.com", "battery staple"));
    assert!(server.find_cached("sip:bob@litwareinc.com").await.unwrap().is_some(), "no longer unknown");
    admin.remove("bob").await.unwrap();
    tokio::time::sleep(tandem_directory::GENERATION_CHECK_INTERVAL + std::time::Duration::from_millis(100)).await;
    assert!(server.find_cached("bob").await.unwrap().is_none(), "removed elsewhere");
}

#[tokio::test]
async fn directory_battery_sqlite() {
    battery(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn directory_cache_sqlite() {
    cache_battery(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn directory_cache_postgres() {
    let db = TestDatabase::postgres().await.expect("PostgreSQL must be reachable (TANDEM_TEST_POSTGRES_URL)");
    cache_battery(&db).await;
}

#[tokio::test]
async fn directory_battery_postgres() {
    let db = TestDatabase::postgres().await.expect("PostgreSQL must be reachable (TANDEM_TEST_POSTGRES_URL)");
    battery(&db).await;
}

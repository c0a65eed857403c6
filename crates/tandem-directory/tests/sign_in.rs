//! Password sign-in under the lockout policy: back-off, lockout (also against the right
//! password), unlock, the same answer and similar time for unknown and known users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use tandem_directory::lockout::{BACKOFF_BASE, LockoutConfig, Verdict};
use tandem_directory::{Directory, NewUser, SignIn};
use tandem_store::testing::TestDatabase;

/// The tests here time argon2 checks, which share one process-wide pool of hash slots: they run
/// one at a time so that one test's hashes never count in another's measurement.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SOURCE: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)));

async fn directory() -> (TestDatabase, Directory) {
    let db = TestDatabase::sqlite();
    let dir = Directory::open(&db.url).await.unwrap().with_lockout(LockoutConfig {
        threshold: 3,
        observation_window: Duration::from_secs(60),
        duration: Duration::from_secs(600),
        source_threshold: 50,
    });
    dir.add(&NewUser {
        name: "alice".parse().unwrap(),
        display_name: "Alice".into(),
        sip_uri: "sip:alice@litwareinc.com".parse().unwrap(),
        smtp_address: "alice@litwareinc.com".parse().unwrap(),
        password: "correct horse".into(),
    })
    .await
    .unwrap();
    (db, dir)
}

#[tokio::test]
async fn failures_back_off_then_lock_until_unlocked() {
    let _serial = SERIAL.lock().await;
    let (_db, dir) = directory().await;
    assert!(matches!(dir.sign_in("alice", "correct horse", SOURCE).await.unwrap(), SignIn::Accepted(_)));
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(dir.sign_in("LITWAREINC\\alice", "wrong horse!", SOURCE).await.unwrap(), SignIn::Refused);
    }
    // Waits of 0, 250 and 500 ms before the second and third checks.
    assert!(started.elapsed() >= BACKOFF_BASE * 3, "{:?}", started.elapsed());
    assert!(dir.lockout().is_locked("alice"));
    // Locked: the right password is refused too, under any of the user's names.
    assert_eq!(dir.sign_in("alice@litwareinc.com", "correct horse", None).await.unwrap(), SignIn::Refused);
    assert!(dir.unlock("sip:alice@litwareinc.com").await.unwrap());
    assert!(matches!(dir.sign_in("alice", "correct horse", None).await.unwrap(), SignIn::Accepted(_)));
    // verify_password (admin checks) is untouched by the counters.
    assert!(dir.verify_password("alice", "correct horse").await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_users_get_the_same_answer_in_about_the_same_time() {
    let _serial = SERIAL.lock().await;
    let (_db, dir) = directory().await;
    let dir = dir.with_lockout(LockoutConfig { threshold: 0, source_threshold: 0, ..LockoutConfig::default() });
    // Warm the dummy hash.
    assert_eq!(dir.sign_in("nobody", "whatever!", None).await.unwrap(), SignIn::Refused);
    let mut known = Duration::MAX;
    let mut unknown = Duration::MAX;
    // The fastest of five each, so a busy machine's noise does not decide.
    for n in 0..5 {
        // Distinct accounts and no source: no back-off in the measurement (the unlock, a
        // directory write, stays outside it).
        dir.unlock("alice").await.unwrap();
        let t = Instant::now();
        assert_eq!(dir.sign_in("alice", "wrong horse!", None).await.unwrap(), SignIn::Refused);
        known = known.min(t.elapsed());
        let t = Instant::now();
        assert_eq!(dir.sign_in(&format!("nobody{n}"), "wrong horse!", None).await.unwrap(), SignIn::Refused);
        unknown = unknown.min(t.elapsed());
    }
    assert!(unknown * 2 > known && known * 2 > unknown, "known {known:?}, unknown {unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_stop_at_the_threshold() {
    let _serial = SERIAL.lock().await;
    let (_db, dir) = directory().await;
    let started = Instant::now();
    let guesses: Vec<_> = (0..40)
        .map(|n| {
            let dir = dir.clone();
            tokio::spawn(async move { dir.sign_in("alice", &format!("guess number {n}"), SOURCE).await.unwrap() })
        })
        .collect();
    for g in guesses {
        assert_eq!(g.await.unwrap(), SignIn::Refused);
    }
    assert!(dir.lockout().is_locked("alice"));
    // At most one hash slot per core past the threshold of 3: far fewer than 40 argon2 checks.
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) as u32;
    let one = {
        let t = Instant::now();
        dir.verify_password("alice", "wrong horse!").await.unwrap();
        t.elapsed()
    };
    assert!(started.elapsed() < one * (3 + 2 * cores + 4), "{:?} for 40 guesses, {one:?} for one", started.elapsed());
}

/// A lockout is recorded in the directory: an admin command in another process sees it
/// (`tandem user show`, `user list --json`) and `tandem user unlock` there lifts it here.
async fn lockout_is_shared_through_the_directory(db: TestDatabase) {
    let policy = LockoutConfig {
        threshold: 2,
        observation_window: Duration::from_secs(60),
        duration: Duration::from_secs(600),
        source_threshold: 50,
    };
    let role = Directory::open(&db.url).await.unwrap().with_lockout(policy);
    role.add(&NewUser {
        name: "bob".parse().unwrap(),
        display_name: "Bob".into(),
        sip_uri: "sip:bob@litwareinc.com".parse().unwrap(),
        smtp_address: "bob@litwareinc.com".parse().unwrap(),
        password: "correct horse".into(),
    })
    .await
    .unwrap();
    let admin = Directory::open(&db.url).await.unwrap();
    assert_eq!(admin.locked_out_until("bob").await.unwrap(), None);
    for _ in 0..2 {
        assert_eq!(role.sign_in("bob", "wrong horse!", SOURCE).await.unwrap(), SignIn::Refused);
    }
    let until = admin.locked_out_until("bob@litwareinc.com").await.unwrap().expect("recorded");
    assert!(until > tandem_store::now_unix() + 500, "{until}");
    assert_eq!(admin.lockouts().await.unwrap().get("bob"), Some(&until));
    assert_eq!(role.sign_in("bob", "correct horse", None).await.unwrap(), SignIn::Refused);
    // Unlocked by the other process: the role's own counters follow the directory.
    assert!(admin.unlock("bob").await.unwrap());
    assert_eq!(admin.locked_out_until("bob").await.unwrap(), None);
    assert!(admin.lockouts().await.unwrap().is_empty());
    assert!(matches!(role.sign_in("bob", "correct horse", None).await.unwrap(), SignIn::Accepted(_)));
    // A failure the role records directly (the SIP digest path) counts the same way.
    role.record_failure("bob", SOURCE).await.unwrap();
    role.record_failure("bob", SOURCE).await.unwrap();
    assert!(admin.locked_out_until("bob").await.unwrap().is_some());
    assert!(!admin.unlock("bob").await.unwrap() || admin.locked_out_until("bob").await.unwrap().is_none());
    // A lock not yet recorded (an attempt in parallel with the one that locked the account
    // reads the directory before that one's write lands) is not read as an unlock.
    assert!(matches!(role.sign_in("bob", "correct horse", None).await.unwrap(), SignIn::Accepted(_)));
    role.lockout().failed("bob", SOURCE);
    assert!(role.lockout().failed("bob", SOURCE), "the second failure locks");
    assert_eq!(admin.locked_out_until("bob").await.unwrap(), None, "not recorded yet");
    assert!(matches!(role.lockout_verdict("bob", None).await.unwrap(), Verdict::Locked(_)));
    assert_eq!(role.sign_in("bob", "correct horse", None).await.unwrap(), SignIn::Refused);
}

#[tokio::test]
async fn lockout_is_shared_through_the_directory_sqlite() {
    let _serial = SERIAL.lock().await;
    lockout_is_shared_through_the_directory(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn lockout_is_shared_through_the_directory_postgres() {
    let _serial = SERIAL.lock().await;
    lockout_is_shared_through_the_directory(TestDatabase::postgres().await.expect("PostgreSQL for the battery")).await;
}

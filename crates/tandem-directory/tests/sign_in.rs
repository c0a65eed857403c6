//! Password sign-in under the lockout policy: back-off, lockout (also against the right
//! password), unlock, the same answer and similar time for unknown and known users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use tandem_directory::lockout::{BACKOFF_BASE, LockoutConfig};
use tandem_directory::{Directory, NewUser, SignIn};
use tandem_store::testing::TestDatabase;

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
    let (_db, dir) = directory().await;
    let dir = dir.with_lockout(LockoutConfig { threshold: 0, source_threshold: 0, ..LockoutConfig::default() });
    // Warm the dummy hash.
    assert_eq!(dir.sign_in("nobody", "whatever!", None).await.unwrap(), SignIn::Refused);
    let mut known = Duration::MAX;
    let mut unknown = Duration::MAX;
    for n in 0..3 {
        let t = Instant::now();
        // Distinct accounts and no source: no back-off in the measurement.
        dir.unlock("alice").await.unwrap();
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

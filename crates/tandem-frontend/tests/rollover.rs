//! Both signing certificates roll over by themselves while the Exchange connector writes to and
//! reads from a real Mailbox with S2S tokens, and not one call fails.
//!
//! A real Mailbox role and the Front End's real `/metadata/json/1` listener run on loopback; the
//! Mailbox trusts the Front End through a partner application made from that URL (as
//! Configure-EnterprisePartnerApplication does). The renewal task runs with the clock moved
//! 1,770 days ahead (a five-year certificate has 55 days left, inside the 60-day window), an
//! overlap of a few seconds and a quick check interval: each certificate gets a successor
//! published as next, promoted on its effective date, and the old one retired after the overlap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tandem_config::CertificatesConfig;
use tandem_frontend::testing::{DOMAIN, TwoRoles};
use tandem_trust::partners;
use tandem_trust::renewal::{self, Managed};
use tandem_trust::rollover::Policy;
use tandem_trust::{frontend as fe, mailbox as mbx};
use tandem_types::Role;

const WORKERS: usize = 3;

/// (current, next, previous) thumbprints of both certificates.
async fn slots(mstore: &tandem_store::Store, fstore: &tandem_store::Store) -> [[Option<String>; 3]; 2] {
    let a = mbx::auth_config(mstore).await.unwrap();
    let f = fe::certificates(fstore).await.unwrap();
    let t = |c: &Option<mbx::AuthCertificate>| c.as_ref().map(|c| c.thumbprint.clone());
    let u = |c: &Option<fe::StoredCertificate>| c.as_ref().map(|c| c.thumbprint.clone());
    [[t(&a.current), t(&a.next), t(&a.previous)], [u(&f.current), u(&f.next), u(&f.previous)]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_certificates_roll_over_under_load_with_no_failed_call() {
    let roles = TwoRoles::start(&["alice", "bob"]).await;
    let (mstore, fstore) = (roles.mailbox_store.clone(), roles.frontend_store.clone());
    let (tasks, shutdown) = (roles.tasks.clone(), roles.shutdown.clone());
    let connector = Arc::new(roles.connector());

    // The load: workers writing and reading back items as alice and bob until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (connector, stop, calls, failures) = (connector.clone(), stop.clone(), calls.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let smtp = format!("{}@{DOMAIN}", if w % 2 == 0 { "alice" } else { "bob" });
            let mut errors = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let subject = format!("rollover {w}/{n}");
                let r = async {
                    let item = connector.create_item(&smtp, "conversationhistory", &subject, "load").await?;
                    let read = connector.get_item_subject(&smtp, &item).await?;
                    Ok::<_, tandem_frontend::exchange_connector::ConnectorError>(read == subject)
                }
                .await;
                calls.fetch_add(2, Ordering::Relaxed);
                match r {
                    Ok(true) => {}
                    Ok(false) => errors.push(format!("{subject}: read back another subject")),
                    Err(e) => errors.push(format!("{subject}: {e}")),
                }
                if !errors.is_empty() {
                    failures.fetch_add(errors.len(), Ordering::Relaxed);
                    errors.truncate(5);
                    return errors;
                }
            }
            errors
        }));
    }
    // Warm up with the first certificates.
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls.load(Ordering::Relaxed) < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(calls.load(Ordering::Relaxed) >= 20, "the load does not run");
    let before = slots(&mstore, &fstore).await;

    // The rollover, time moved by configuration: 55 days left, successors valid 10 years.
    let policy = Policy::of(&CertificatesConfig {
        overlap_seconds: 8,
        signing_validity_days: 3650,
        clock_offset_days: 1770,
        ..CertificatesConfig::default()
    });
    let managed = vec![
        Managed::Mailbox { store: mstore.clone(), organization: DOMAIN.into() },
        Managed::Frontend { store: fstore.clone(), sip_domain: DOMAIN.into() },
    ];
    renewal::spawn(managed, policy, Duration::from_millis(250), &tasks, shutdown.clone());

    // Published as next, then current with the old one previous, then the old one gone.
    let mut seen_next = [false; 2];
    let mut seen_previous = [false; 2];
    let mut calls_at_promotion = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = slots(&mstore, &fstore).await;
        for r in 0..2 {
            seen_next[r] |= s[r][1].is_some();
            if s[r][0] != before[r][0] && s[r][2] == before[r][0] {
                seen_previous[r] = true;
                calls_at_promotion.get_or_insert(calls.load(Ordering::Relaxed));
            }
        }
        let done = (0..2).all(|r| s[r][0] != before[r][0] && s[r][1].is_none() && s[r][2].is_none());
        if done || failures.load(Ordering::Relaxed) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the rollover did not complete: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if failures.load(Ordering::Relaxed) > 0 {
        stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for w in workers {
            errors.extend(w.await.unwrap());
        }
        panic!("failed S2S calls during the rollover: {errors:#?}");
    }
    assert_eq!(seen_next, [true, true], "each successor was published as next first");
    assert_eq!(seen_previous, [true, true], "each old certificate was kept as previous");

    // The previous keys are gone from both documents; the partners refresh now (as their
    // 5-minute refresh would), and the load goes on with the new certificates only.
    partners::refresh(&mstore, Role::Mailbox).await.unwrap();
    partners::refresh(&fstore, Role::Frontend).await.unwrap();
    let lync = partners::list(&mstore, Role::Mailbox).await.unwrap().remove(0).trusted().unwrap();
    assert_eq!(lync.keys.len(), 1, "the Front End now publishes one key");
    let after = slots(&mstore, &fstore).await;
    assert_eq!(Some(lync.keys[0].thumbprint.clone()), after[1][0]);
    let exchange = partners::list(&fstore, Role::Frontend).await.unwrap().remove(0).trusted().unwrap();
    assert_eq!(Some(exchange.keys[0].thumbprint.clone()), after[0][0], "the Front End knows the new Auth certificate");
    let at_refresh = calls.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while calls.load(Ordering::Relaxed) < at_refresh + 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await.unwrap());
    }
    assert!(errors.is_empty(), "failed S2S calls: {errors:#?}");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let total = calls.load(Ordering::Relaxed);
    assert!(total >= at_refresh + 20, "calls went on after the rollover ({at_refresh} -> {total})");
    assert!(calls_at_promotion.is_some_and(|c| c < at_refresh));

    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
}

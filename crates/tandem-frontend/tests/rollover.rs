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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tandem_config::{CertificatesConfig, MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_frontend::exchange_connector::ExchangeConnector;
use tandem_pki::{Pki, ServerCertSpec};
use tandem_trust::partners::{self, EnterpriseApp};
use tandem_trust::renewal::{self, Managed};
use tandem_trust::rollover::Policy;
use tandem_trust::{frontend as fe, mailbox as mbx};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DOMAIN: &str = "litwareinc.com";
const WORKERS: usize = 3;

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.parse().unwrap(),
        display_name: format!("{name} user"),
        sip_uri: format!("sip:{name}@{DOMAIN}").parse().unwrap(),
        smtp_address: format!("{name}@{DOMAIN}").parse().unwrap(),
        password: "correct horse".into(),
    }
}

fn spec(name: &str, host: &str) -> ServerCertSpec {
    ServerCertSpec {
        name: name.into(),
        common_name: format!("{host}.{DOMAIN}"),
        organization: DOMAIN.into(),
        dns_names: vec![format!("{host}.{DOMAIN}"), format!("autodiscover.{DOMAIN}")],
        ip_addresses: vec!["127.0.0.1".parse().unwrap()],
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::open(&format!("sqlite://{}", tmp.path().join("dir.db").display())).await.unwrap();
    dir.add(&user("alice")).await.unwrap();
    dir.add(&user("bob")).await.unwrap();
    let (mbx_port, fe_port) = (free_port(), free_port());
    let config = MailboxConfig {
        ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
        ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
        enabled: true,
        fqdn: format!("mail.{DOMAIN}").parse().unwrap(),
        autodiscover_fqdn: format!("autodiscover.{DOMAIN}").parse().unwrap(),
        https_listen: SocketAddr::from(([127, 0, 0, 1], mbx_port)),
        store: StoreLocation::Sqlite(tmp.path().join("mbx.db")),
        https_limits: Default::default(),
        ews_limits: Default::default(),
    };
    let mstore = tandem_mailbox::open_store(&config).await.unwrap();
    let fstore =
        tandem_frontend::store::open(&format!("sqlite://{}", tmp.path().join("fe.db").display())).await.unwrap();

    // Certificates as first start makes them: TLS from the local CA, signing ones for 5 years.
    let pki = Pki::new(tmp.path().join("pki"));
    let (ids, _) = pki.ensure(DOMAIN, &[spec("mailbox", "mail"), spec("frontend", "pool")]).unwrap();
    let ca = std::fs::read_to_string(pki.ca_cert_path()).unwrap();
    mbx::ensure_auth_certificate(&mstore, DOMAIN, 1825).await.unwrap();
    fe::ensure_default_certificate(&fstore, DOMAIN, None, 1825).await.unwrap();
    for (store, role) in [(&mstore, Role::Mailbox), (&fstore, Role::Frontend)] {
        store.set_setting(partners::setting_trusted_ca(role), &ca).await.unwrap();
    }
    let mut oc = fe::configuration(&fstore, DOMAIN).await.unwrap();
    oc.exchange_autodiscover_url =
        Some(format!("https://autodiscover.{DOMAIN}:{mbx_port}/autodiscover/autodiscover.svc"));
    fe::set_configuration(&fstore, &oc).await.unwrap();

    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let slot = |i: usize| tandem_http::CertSlot::new(ids[i].chain.clone(), ids[i].key.clone_key()).unwrap();
    tandem_mailbox::start(&config, dir, slot(0), &tasks, shutdown.clone()).await.unwrap();
    tandem_http::start_role_https(
        Role::Frontend,
        SocketAddr::from(([127, 0, 0, 1], fe_port)),
        slot(1),
        fe::routes(fstore.clone(), DOMAIN, &format!("pool.{DOMAIN}")),
        vec![],
        Default::default(),
        &tasks,
        shutdown.clone(),
    )
    .await
    .unwrap();

    // Step 6 in both directions, through the real metadata URLs.
    let fe_url = format!("https://127.0.0.1:{fe_port}/metadata/json/1");
    let mbx_url = format!("https://127.0.0.1:{mbx_port}/autodiscover/metadata/json/1");
    let client = partners::metadata_client(&mstore, Role::Mailbox).await.unwrap();
    let (lync, _) = partners::enterprise_partner(&client, &fe_url, EnterpriseApp::Lync).await.unwrap();
    partners::save_list(&mstore, Role::Mailbox, &[lync]).await.unwrap();
    let (exchange, _) = partners::download(&client, "microsoft.exchange", &mbx_url).await.unwrap();
    partners::save_list(&fstore, Role::Frontend, &[exchange]).await.unwrap();

    let mut http =
        reqwest::Client::builder().tls_certs_only(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap());
    for host in [format!("mail.{DOMAIN}"), format!("autodiscover.{DOMAIN}")] {
        http = http.resolve(&host, SocketAddr::from(([127, 0, 0, 1], mbx_port)));
    }
    let connector = Arc::new(ExchangeConnector::new(fstore.clone(), DOMAIN, http.build().unwrap()));

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

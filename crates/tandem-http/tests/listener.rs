//! The HTTPS listener: operations endpoints over real TLS, certificate swap while running, and
//! a clean stop on the shutdown signal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rustls::pki_types::{CertificateDer, ServerName};
use tandem_http::{CertSlot, readiness, start_role_https};
use tandem_pki::{Pki, ServerCertSpec};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn spec(name: &str) -> ServerCertSpec {
    ServerCertSpec {
        name: name.into(),
        common_name: format!("{name}.litwareinc.com"),
        organization: "litwareinc.com".into(),
        dns_names: vec![format!("{name}.litwareinc.com")],
        ip_addresses: vec!["127.0.0.1".parse().unwrap()],
    }
}

async fn peer_cert(addr: std::net::SocketAddr, ca: &CertificateDer<'static>) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(ServerName::IpAddress(addr.ip().into()), tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn serves_operations_swaps_certificates_and_stops() {
    // Test harnesses install the one provider, as main does.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let (ids, _) = pki.ensure("litwareinc.com", &[spec("one"), spec("two")]).unwrap();
    let ca = ids[0].chain[1].clone();
    let slot = CertSlot::new(ids[0].chain.clone(), ids[0].key.clone_key()).unwrap();

    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = ready.clone();
    let checks = vec![(
        "probe",
        readiness(move || {
            let ok = flag.load(std::sync::atomic::Ordering::SeqCst);
            async move { if ok { Ok(()) } else { Err("switched off".to_owned()) } }
        }),
    )];
    let routes = Router::new().route("/hello", get(|| async { "hello" }));
    let addr = start_role_https(
        Role::Mailbox,
        "127.0.0.1:0".parse().unwrap(),
        slot.clone(),
        routes,
        checks,
        Default::default(),
        &tasks,
        shutdown.clone(),
    )
    .await
    .unwrap();

    let client =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_der(&ca).unwrap()]).build().unwrap();
    let base = format!("https://{addr}");
    assert_eq!(client.get(format!("{base}/hello")).send().await.unwrap().text().await.unwrap(), "hello");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let not_ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    assert!(not_ready.text().await.unwrap().contains("switched off"));
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tandem_http_requests_total"), "{metrics}");

    // Swap: new handshakes see the new certificate, without a restart.
    assert_eq!(peer_cert(addr, &ca).await, ids[0].chain[0]);
    slot.replace(ids[1].chain.clone(), ids[1].key.clone_key()).unwrap();
    assert_eq!(peer_cert(addr, &ca).await, ids[1].chain[0]);

    // Stop: the listener closes and every task ends.
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.expect("tasks stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
}

/// One address holding its whole share of idle connections is refused further ones at once,
/// while a client from another address still gets its answer.
#[tokio::test]
async fn idle_connections_from_one_source_do_not_shut_out_others() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let (ids, _) = pki.ensure("litwareinc.com", &[spec("one")]).unwrap();
    let ca = ids[0].chain[1].clone();
    let slot = CertSlot::new(ids[0].chain.clone(), ids[0].key.clone_key()).unwrap();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let routes = Router::new().route("/hello", get(|| async { "hello" }));
    let limits = tandem_http::HttpsLimits { max_connections_per_source: 40, ..Default::default() };
    let addr = start_role_https(
        Role::Mailbox,
        "127.0.0.1:0".parse().unwrap(),
        slot,
        routes,
        vec![],
        limits,
        &tasks,
        shutdown.clone(),
    )
    .await
    .unwrap();

    // Idle connections from 127.0.0.2 up to its cap (they never start TLS).
    let from = |ip: [u8; 4]| {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(std::net::SocketAddr::from((ip, 0))).unwrap();
        s
    };
    let mut idle = Vec::new();
    for _ in 0..limits.max_connections_per_source {
        idle.push(from([127, 0, 0, 2]).connect(addr).await.unwrap());
    }
    // Give the listener time to take them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One more from that address is closed at once: reading it ends with EOF or a reset.
    let mut extra = from([127, 0, 0, 2]).connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut extra, &mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    // Another address is served.
    let client =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_der(&ca).unwrap()]).build().unwrap();
    let r = client.get(format!("https://{addr}/hello")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "hello");
    // A place freed is a place again.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = from([127, 0, 0, 2]).connect(addr).await.unwrap();
    let read =
        tokio::time::timeout(Duration::from_millis(500), tokio::io::AsyncReadExt::read(&mut again, &mut buf)).await;
    assert!(read.is_err(), "the freed place was not given again: {read:?}");
    shutdown.cancel();
}

/// A connection that carries nothing while no request is in progress is closed after the idle
/// timeout, whether it never sent a request (after its TLS handshake) or finished one; a request
/// whose handler works longer than the timeout still gets its answer.
#[tokio::test]
async fn idle_connections_are_closed_and_slow_requests_are_not() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let (ids, _) = pki.ensure("litwareinc.com", &[spec("one")]).unwrap();
    let ca = ids[0].chain[1].clone();
    let slot = CertSlot::new(ids[0].chain.clone(), ids[0].key.clone_key()).unwrap();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let routes = Router::new().route("/hello", get(|| async { "hello" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            "slow"
        }),
    );
    let limits = tandem_http::HttpsLimits { idle_timeout: Duration::from_secs(1), ..Default::default() };
    let addr = start_role_https(
        Role::Mailbox,
        "127.0.0.1:0".parse().unwrap(),
        slot,
        routes,
        vec![],
        limits,
        &tasks,
        shutdown.clone(),
    )
    .await
    .unwrap();

    // A handshake, then silence: closed after about a second (not the 30 s header timeout).
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::IpAddress(addr.ip().into()), tcp).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut tls, &mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "an idle connection was not closed: {read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed too early: {:?}", started.elapsed());

    // Kept alive after a request, then idle: closed too.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut tls = connector.connect(ServerName::IpAddress(addr.ip().into()), tcp).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tls, b"GET /hello HTTP/1.1\r\nHost: one\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a kept-alive idle connection was not closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("hello"), "{text}");

    // A handler working 2.5 s with a 1 s idle timeout: the answer arrives.
    let client =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_der(&ca).unwrap()]).build().unwrap();
    let r = client.get(format!("https://{addr}/slow")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "slow");
    shutdown.cancel();
}

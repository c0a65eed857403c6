//! The client against a real Mailbox role over HTTPS: S2S tokens minted as the Front End mints
//! them, Autodiscover to the EWS URL, then every operation the client offers, so what the
//! client builds the Mailbox serves and what the Mailbox answers the client reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tandem_config::{MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_ews_client::{EwsClient, EwsClientError, Mailbox, Probe, RedirectPolicy, TokenFuture, TokenProvider};
use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::get_user_availability::{self, View};
use tandem_ews_proto::ops::{delete_item, find_item, get_folder, get_item, get_streaming_events, subscribe};
use tandem_ews_proto::types::{BaseShape, FolderRef, ItemRef, Shape};
use tandem_oauth::token::{Audience, UserIdentity, mint_user_token};
use tandem_oauth::{EXCHANGE_APP_ID, LYNC_APP_ID, PartnerApplication, SigningKey, TrustLevel};
use tandem_pki::{Pki, ServerCertSpec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DOMAIN: &str = "litwareinc.com";

/// Tokens as the Front End's issuer makes them (or garbage, to see a refusal).
struct Minted {
    key: Option<SigningKey>,
}

impl TokenProvider for Minted {
    fn bearer<'a>(&'a self, audience: &'a str, smtp: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            let Some(key) = &self.key else { return Ok(Arc::from("abc.def.ghi")) };
            let aud = Audience::new(EXCHANGE_APP_ID, audience, DOMAIN);
            let user = UserIdentity { smtp: smtp.to_owned(), sip: None };
            let t = mint_user_token(key, LYNC_APP_ID, DOMAIN, &aud, &user, tandem_store::now_unix(), 600)?;
            Ok(Arc::from(t))
        })
    }
}

fn signing() -> SigningKey {
    let p = tandem_pki::signing::self_signed("pool", DOMAIN, &[], time::Duration::days(30)).unwrap();
    SigningKey::from_pem(&p.cert_pem, &p.key_pem).unwrap()
}

fn lync_partner(key: &SigningKey) -> PartnerApplication {
    let doc = tandem_oauth::metadata::build(
        "Lync",
        LYNC_APP_ID,
        DOMAIN,
        &[key.certificate()],
        "https://pool/metadata/json/1",
    );
    PartnerApplication {
        name: "Lync".into(),
        application_identifier: LYNC_APP_ID.into(),
        auth_metadata_url: None,
        realm: None,
        enabled: true,
        application_trust_level: TrustLevel::Full,
        accept_security_identifier_information: false,
        linked_account: None,
        application_type: Some("Lync".into()),
        roles: vec!["UserApplication".into()],
        metadata: Some(serde_json::to_string(&doc).unwrap()),
        metadata_fetched_at: Some(0),
        metadata_error: None,
    }
}

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.parse().unwrap(),
        display_name: format!("{name} user"),
        sip_uri: format!("sip:{name}@{DOMAIN}").parse().unwrap(),
        smtp_address: format!("{name}@{DOMAIN}").parse().unwrap(),
        password: "correct horse".into(),
    }
}

struct Running {
    _tmp: tempfile::TempDir,
    http: reqwest::Client,
    port: u16,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

async fn start_mailbox(key: &SigningKey) -> Running {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let dir = Directory::open(&format!("sqlite://{}", tmp.path().join("dir.db").display())).await.unwrap();
    dir.add(&user("alice")).await.unwrap();
    dir.add(&user("bob")).await.unwrap();
    // Mail users (Enable-MailUser): one sent on to alice, one to another organisation, two
    // sent on to each other.
    for (name, target) in [
        ("legacy", format!("alice@{DOMAIN}")),
        ("carol", "carol@fabrikam.com".to_owned()),
        ("ping", format!("pong@{DOMAIN}")),
        ("pong", format!("ping@{DOMAIN}")),
    ] {
        dir.add(&user(name)).await.unwrap();
        dir.set_enabled(name, tandem_directory::EnabledFlag::Mailbox, false).await.unwrap();
        dir.set_external_email_address(name, Some(&target.parse().unwrap())).await.unwrap();
    }
    // A free port, so the URLs Autodiscover derives from the configuration are the real ones.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = MailboxConfig {
        ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
        ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
        retention_sweep_seconds: tandem_config::DEFAULT_RETENTION_SWEEP_SECONDS,
        enabled: true,
        fqdn: format!("mail.{DOMAIN}").parse().unwrap(),
        autodiscover_fqdn: format!("autodiscover.{DOMAIN}").parse().unwrap(),
        https_listen: SocketAddr::from(([127, 0, 0, 1], port)),
        store: StoreLocation::Sqlite(tmp.path().join("mbx.db")),
        https_limits: Default::default(),
        ews_limits: Default::default(),
    };
    let store = tandem_mailbox::open_store(&config).await.unwrap();
    tandem_trust::partners::save_list(&store, tandem_types::Role::Mailbox, &[lync_partner(key)]).await.unwrap();

    let pki = Pki::new(tmp.path().join("pki"));
    let spec = ServerCertSpec {
        name: "mailbox".into(),
        common_name: format!("mail.{DOMAIN}"),
        organization: DOMAIN.into(),
        dns_names: vec![format!("mail.{DOMAIN}"), format!("autodiscover.{DOMAIN}")],
        ip_addresses: vec!["127.0.0.1".parse().unwrap()],
    };
    let (ids, _) = pki.ensure(DOMAIN, &[spec]).unwrap();
    let slot = tandem_http::CertSlot::new(ids[0].chain.clone(), ids[0].key.clone_key()).unwrap();
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    tandem_mailbox::start(&config, dir, slot, &tasks, shutdown.clone()).await.unwrap();

    let ca = std::fs::read(pki.ca_cert_path()).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap());
    for host in [format!("mail.{DOMAIN}"), format!("autodiscover.{DOMAIN}")] {
        b = b.resolve(&host, SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Running { _tmp: tmp, http: b.build().unwrap(), port, shutdown, tasks }
}

#[tokio::test]
async fn the_client_drives_a_running_mailbox() {
    let key = signing();
    let mbx = start_mailbox(&key).await;
    let client = EwsClient::new(mbx.http.clone(), Arc::new(Minted { key: Some(key) }));
    let autod = format!("https://autodiscover.{DOMAIN}:{}/autodiscover/autodiscover.svc", mbx.port);
    let alice = format!("alice@{DOMAIN}");

    // Autodiscover: the EWS URL, then the same answer from the cache.
    let mailbox = client.discover(&autod, &alice, &RedirectPolicy::default()).await.unwrap();
    // The Mailbox names its listen address when it listens on one address only.
    assert_eq!(mailbox.ews_url, format!("https://127.0.0.1:{}/EWS/Exchange.asmx", mbx.port));
    assert_eq!(client.discover(&autod, &alice, &RedirectPolicy::default()).await.unwrap(), mailbox);
    let nobody = client.discover(&autod, &format!("nobody@{DOMAIN}"), &RedirectPolicy::default()).await.unwrap_err();
    // A token acting as someone without a mailbox is refused outright.
    assert!(matches!(&nobody, EwsClientError::Status { status: 403, .. }), "{nobody}");

    // A streaming subscription first, so the write below shows up as an event.
    let sub = client
        .subscribe(
            &mailbox,
            &subscribe::Request::streaming(vec![FolderRef::distinguished("conversationhistory")], &["CreatedEvent"]),
        )
        .await
        .unwrap();
    let mut stream = client
        .get_streaming_events(
            &mailbox,
            &get_streaming_events::Request { subscriptions: vec![sub.id.clone()], timeout_minutes: 1 },
        )
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!((first.status.as_str(), first.notifications.len()), ("OK", 0));

    // Write, read back, find, count.
    let item = ItemData::new("Message").with_item_class("IPM.Note").with_subject("Tom & Jerry").with_body("Text", "hi");
    let req = create_item::Request::save(FolderRef::distinguished("conversationhistory"), vec![item]);
    let ids = client.create_item(&mailbox, &req).await.unwrap();
    assert_eq!(ids.len(), 1);
    let batch = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
    let event = &batch.notifications[0].events[0];
    assert_eq!((event.kind.as_str(), event.id.0.as_str()), ("CreatedEvent", ids[0].id.as_str()));
    drop(stream);

    let got = client.get_item(&mailbox, &get_item::Request::new(Shape::base(BaseShape::Default), ids.clone())).await;
    let got = got.unwrap();
    assert_eq!(got[0].1.subject.as_deref(), Some("Tom & Jerry"));
    let found = client
        .find_item(
            &mailbox,
            &find_item::Request::new(
                Shape::base(BaseShape::Default),
                vec![FolderRef::distinguished("conversationhistory")],
            ),
        )
        .await
        .unwrap();
    assert_eq!((found[0].total, found[0].items[0].0.id.as_str()), (1, ids[0].id.as_str()));
    let folders = client
        .get_folder(
            &mailbox,
            &get_folder::Request {
                shape: Shape::base(BaseShape::Default),
                folders: vec![FolderRef::distinguished("conversationhistory")],
            },
        )
        .await
        .unwrap();
    assert_eq!(folders[0].total, 1);

    // Free/busy and out-of-office as the Front End reads them for presence.
    let now = tandem_store::now_unix() / 1800 * 1800;
    let fb = client
        .get_user_availability(
            &mailbox,
            &get_user_availability::Request::new(
                vec![alice.clone(), format!("nobody@{DOMAIN}")],
                now,
                now + 3600,
                30,
                View::DetailedMerged,
            ),
        )
        .await
        .unwrap();
    assert_eq!(fb[0].as_ref().unwrap().merged.as_deref(), Some("00"));
    assert!(fb[1].is_err());
    let oof = client.get_user_oof_settings(&mailbox, &alice).await.unwrap();
    assert_eq!(oof.state, "Disabled");

    // Delete; then the id is gone, and the EWS code says so.
    client.delete_item(&mailbox, &delete_item::Request::new(DeleteType::HardDelete, ids.clone())).await.unwrap();
    let gone = client.get_item(&mailbox, &get_item::Request::new(Shape::base(BaseShape::IdOnly), ids)).await;
    assert_eq!(gone.unwrap_err().response_code(), Some("ErrorItemNotFound"));
    client.unsubscribe(&mailbox, &sub.id).await.unwrap();
    let again = client.unsubscribe(&mailbox, &sub.id).await.unwrap_err();
    assert_eq!(again.response_code(), Some("ErrorSubscriptionNotFound"));
    let missing = ItemRef { id: "AAAA".into(), change_key: None };
    let bad = client.get_item(&mailbox, &get_item::Request::new(Shape::base(BaseShape::IdOnly), vec![missing])).await;
    assert!(bad.unwrap_err().response_code().is_some());

    // Probes report how a service answers, credentials or not.
    let ews = client.probe(&mailbox.ews_url, Probe::EwsInbox, None).await.unwrap();
    assert_eq!(ews.status, 401);
    let ad = client.probe(&autod, Probe::Autodiscover { mailbox: &alice }, Some("abc.def.ghi")).await.unwrap();
    assert_eq!(ad.status, 401);
    assert!(ad.diagnostics.unwrap().starts_with("2000001;reason="));

    mbx.shutdown.cancel();
    mbx.tasks.close();
}

#[tokio::test]
async fn autodiscover_redirects_are_followed_as_the_allowed_domains_rule_says() {
    let key = signing();
    let mbx = start_mailbox(&key).await;
    let client = EwsClient::new(mbx.http.clone(), Arc::new(Minted { key: Some(key) }));
    let autod = format!("https://autodiscover.{DOMAIN}:{}/autodiscover/autodiscover.svc", mbx.port);
    let closed = RedirectPolicy::default();

    // RedirectAddress within the domain: the same URL, the new address, alice's mailbox.
    let found = client.discover(&autod, &format!("legacy@{DOMAIN}"), &closed).await.unwrap();
    assert_eq!(found.smtp, format!("alice@{DOMAIN}"));
    assert_eq!(found.ews_url, format!("https://127.0.0.1:{}/EWS/Exchange.asmx", mbx.port));
    // A mail user's token reaches Autodiscover only: EWS refuses to act as it.
    let as_mail_user = Mailbox { smtp: format!("legacy@{DOMAIN}"), ews_url: found.ews_url.clone() };
    let e = client.get_user_oof_settings(&as_mail_user, &as_mail_user.smtp).await.unwrap_err();
    assert!(matches!(e, EwsClientError::Status { status: 403, .. }), "{e}");

    // To another organisation: refused unless its Autodiscover host is allowed.
    let carol = format!("carol@{DOMAIN}");
    let e = client.discover(&autod, &carol, &closed).await.unwrap_err();
    let EwsClientError::RedirectRefused { target, url, reason, .. } = &e else { panic!("{e}") };
    assert_eq!(target, "carol@fabrikam.com");
    assert_eq!(url, "https://autodiscover.fabrikam.com/autodiscover/autodiscover.svc");
    assert!(reason.contains("ExchangeAutodiscoverAllowedDomains") && reason.contains("*.fabrikam.com"), "{reason}");
    let open = RedirectPolicy::from_allowed_domains(Some("*.litwareinc.com;*.fabrikam.com"));
    let e = client.discover(&autod, &carol, &open).await.unwrap_err();
    // Followed: the test's resolver knows no such host, so the hop fails there.
    assert!(matches!(&e, EwsClientError::Transport { url, .. } if url.contains("autodiscover.fabrikam.com")), "{e}");

    // A circle of redirects ends with an error, not a loop.
    let e = client.discover(&autod, &format!("ping@{DOMAIN}"), &closed).await.unwrap_err();
    assert!(matches!(e, EwsClientError::TooManyRedirects { looped: true, .. }), "{e}");

    mbx.shutdown.cancel();
    mbx.tasks.close();
}

#[tokio::test]
async fn refusals_and_limits_are_typed() {
    let key = signing();
    let mbx = start_mailbox(&key).await;
    let autod = format!("https://autodiscover.{DOMAIN}:{}/autodiscover/autodiscover.svc", mbx.port);
    let alice = format!("alice@{DOMAIN}");

    let forged = EwsClient::new(mbx.http.clone(), Arc::new(Minted { key: None }));
    let e = forged.discover(&autod, &alice, &RedirectPolicy::default()).await.unwrap_err();
    let EwsClientError::Unauthorized { diagnostics: Some(d), .. } = &e else { panic!("{e}") };
    assert!(d.starts_with("2000001;reason="), "{d}");

    let tiny = EwsClient::with_limits(
        mbx.http.clone(),
        Arc::new(Minted { key: Some(key) }),
        tandem_ews_client::Limits { max_answer_bytes: 64, timeout: Duration::from_secs(10) },
    );
    let e = tiny.discover(&autod, &alice, &RedirectPolicy::default()).await.unwrap_err();
    assert!(matches!(e, EwsClientError::TooLarge { limit: 64, .. }), "{e}");

    let nowhere = Mailbox { smtp: alice.clone(), ews_url: "https://unknown.invalid/EWS/Exchange.asmx".into() };
    let e = tiny.get_user_oof_settings(&nowhere, &alice).await.unwrap_err();
    assert!(matches!(e, EwsClientError::Transport { .. }), "{e}");

    mbx.shutdown.cancel();
    mbx.tasks.close();
}

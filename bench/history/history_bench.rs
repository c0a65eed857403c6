//! Conversation history writer throughput (issue 13, deliverable 8: "history items written per
//! second"): N ended conversations of M messages between two users are queued in a Front End
//! store, and the writer (`HistoryWriter`, what the running Front End's writer task runs) puts
//! every transcript into both users' Conversation History of a real Mailbox on loopback, through
//! Autodiscover and EWS with S2S tokens: per item a FindItem look-up (the continuation of an
//! interrupted write) and a CreateItem. Prints JSON: items, seconds, items per second.
//!
//!   bench/history/run.sh [--conversations N] [--messages M]
//!
//! The set-up (Mailbox, the Front End's metadata listener, partner applications both ways) is
//! the one of `crates/tandem-frontend/tests/rollover.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Instant;

use tandem_config::{MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_frontend::conversation_history::{HistoryWriter, Settings};
use tandem_frontend::store::{
    ConversationKind, ConversationMessage, ConversationRow, FrontendStore, HistoryConfigRow, HistoryWrite, ItemTarget,
};
use tandem_pki::{Pki, ServerCertSpec};
use tandem_trust::partners::{self, EnterpriseApp};
use tandem_trust::{frontend as fe, mailbox as mbx};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DOMAIN: &str = "litwareinc.com";
const ALICE: &str = "sip:alice@litwareinc.com";
const BOB: &str = "sip:bob@litwareinc.com";

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

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let conversations = arg("--conversations", 500);
    let messages = arg("--messages", 10);
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
    tandem_mailbox::start(&config, dir.clone(), slot(0), &tasks, shutdown.clone()).await.unwrap();
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
    let http = http.build().unwrap();

    // The queue: N ended conversations, each with M messages and an item per participant.
    let queue = FrontendStore::new(fstore.clone());
    let target = |owner: &str| ItemTarget { owner: owner.into(), folder: "conversationhistory".into() };
    for c in 0..conversations {
        let id = format!("bench-{c}");
        let mut writes = Vec::with_capacity(messages + 1);
        for m in 0..messages {
            let seq = m as i64;
            writes.push(HistoryWrite::Message {
                conversation: ConversationRow {
                    id: id.clone(),
                    kind: ConversationKind::Im,
                    participants: [ALICE.into(), BOB.into()],
                    initiator: ALICE.into(),
                    started_at: 1_798_243_200_000,
                    last_at: 1_798_243_200_000 + seq * 1000,
                    message_count: seq + 1,
                    ..ConversationRow::default()
                },
                message: ConversationMessage {
                    conversation_id: id.clone(),
                    seq,
                    sent_at: 1_798_243_200_000 + seq * 1000,
                    sender: if m % 2 == 0 { ALICE.into() } else { BOB.into() },
                    text: format!("message {m} of conversation {c}: a line of chat about the quarterly numbers"),
                },
            });
        }
        writes.push(HistoryWrite::End {
            conversation_id: id,
            targets: vec![target(ALICE), target(BOB)],
            at: 0,
            last_at: None,
        });
        queue.apply_history(&writes).await.unwrap();
    }
    let writer = HistoryWriter::new(
        fstore.clone(),
        dir.clone(),
        DOMAIN,
        http,
        Settings::of(&HistoryConfigRow::default(), tandem_config::DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS),
    );
    let started = Instant::now();
    let (mut items, mut errors) = (0, std::collections::BTreeMap::<String, usize>::new());
    loop {
        let n = writer.write_due().await;
        for p in queue.pending_history_items().await.unwrap() {
            if let Some(e) = p.last_error {
                *errors.entry(e.chars().take(160).collect()).or_default() += 1;
            }
        }
        if n == 0 {
            if queue.pending_history_items().await.unwrap().is_empty() {
                break;
            }
            // Failed writes wait out their backoff.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        items += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let left = queue.pending_history_items().await.unwrap().len();
    assert_eq!(left, 0, "every item is written");
    let written = 2 * conversations;
    println!(
        "{{\"conversations\": {conversations}, \"messages_per_conversation\": {messages}, \"items\": {written}, \"attempts\": {items}, \"seconds\": {seconds:.3}, \"items_per_second\": {:.1}}}",
        written as f64 / seconds
    );
    for (e, n) in errors {
        eprintln!("failed attempts seen pending {n}x: {e}");
    }
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
}

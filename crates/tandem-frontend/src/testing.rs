//! Both roles on loopback for the Front End's tests and benchmarks (feature `testing`): a
//! directory with the given users, a real Mailbox, the Front End's metadata listener, the
//! certificates first start makes, and the seed's trust set up in both directions through the
//! real metadata URLs — so the Exchange connector reaches the mailbox exactly as `tandem up`'s
//! does. Test support only: a failure panics with what failed.
#![allow(clippy::expect_used)]

use std::net::SocketAddr;

use tandem_config::{MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_pki::{Pki, ServerCertSpec};
use tandem_store::Store;
use tandem_trust::partners::{self, EnterpriseApp};
use tandem_trust::{frontend as fe, mailbox as mbx};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exchange_connector::ExchangeConnector;

pub const DOMAIN: &str = "litwareinc.com";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse";
/// The two users of the history tests and benchmark.
pub const ALICE: &str = "sip:alice@litwareinc.com";
pub const BOB: &str = "sip:bob@litwareinc.com";

/// Message `seq` of the IM conversation `id` between [`ALICE`] (who started it) and [`BOB`],
/// a second after the previous one, as the Front End queues it for the history writer.
pub fn im_line(id: &str, seq: i64, sender: &str, text: &str) -> crate::store::HistoryWrite {
    use crate::store::{ConversationKind, ConversationMessage, ConversationRow, HistoryWrite};
    HistoryWrite::Message {
        conversation: ConversationRow {
            id: id.into(),
            kind: ConversationKind::Im,
            participants: [ALICE.into(), BOB.into()],
            initiator: ALICE.into(),
            started_at: 1_798_243_200_000,
            last_at: 1_798_243_200_000 + seq * 1000,
            message_count: seq + 1,
            ..ConversationRow::default()
        },
        message: ConversationMessage {
            conversation_id: id.into(),
            seq,
            sent_at: 1_798_243_200_000 + seq * 1000,
            sender: sender.into(),
            text: text.into(),
        },
    }
}

/// A user of the test domain.
pub fn user(name: &str) -> NewUser {
    NewUser {
        name: name.parse().expect("a valid account name"),
        display_name: format!("{name} user"),
        sip_uri: format!("sip:{name}@{DOMAIN}").parse().expect("a valid SIP URI"),
        smtp_address: format!("{name}@{DOMAIN}").parse().expect("a valid address"),
        password: PASSWORD.into(),
    }
}

fn spec(name: &str, host: &str) -> ServerCertSpec {
    ServerCertSpec {
        name: name.into(),
        common_name: format!("{host}.{DOMAIN}"),
        organization: DOMAIN.into(),
        dns_names: vec![format!("{host}.{DOMAIN}"), format!("autodiscover.{DOMAIN}")],
        ip_addresses: vec!["127.0.0.1".parse().expect("an address")],
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// The running pair; dropped with its temporary folder.
#[derive(Debug)]
pub struct TwoRoles {
    pub tmp: tempfile::TempDir,
    pub directory: Directory,
    pub mailbox_store: Store,
    pub frontend_store: Store,
    pub mailbox_port: u16,
    pub frontend_port: u16,
    /// The deployment CA, PEM.
    pub ca_pem: String,
    /// Trusts the CA and resolves the mailbox's names to its listener.
    pub http: reqwest::Client,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl TwoRoles {
    /// Starts both roles with `users` in the directory.
    pub async fn start(users: &[&str]) -> TwoRoles {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tmp = tempfile::tempdir().expect("a temporary folder");
        let db = |name: &str| format!("sqlite://{}", tmp.path().join(name).display());
        let directory = Directory::open(&db("dir.db")).await.expect("the directory");
        for u in users {
            directory.add(&user(u)).await.expect("a test user");
        }
        let (mailbox_port, frontend_port) = (free_port(), free_port());
        let config = MailboxConfig {
            ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
            ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
            retention_sweep_seconds: tandem_config::DEFAULT_RETENTION_SWEEP_SECONDS,
            enabled: true,
            fqdn: format!("mail.{DOMAIN}").parse().expect("a name"),
            autodiscover_fqdn: format!("autodiscover.{DOMAIN}").parse().expect("a name"),
            https_listen: SocketAddr::from(([127, 0, 0, 1], mailbox_port)),
            store: StoreLocation::Sqlite(tmp.path().join("mbx.db")),
            https_limits: Default::default(),
            ews_limits: Default::default(),
        };
        let mailbox_store = tandem_mailbox::open_store(&config).await.expect("the mailbox store");
        let frontend_store = crate::store::open(&db("fe.db")).await.expect("the Front End store");

        // Certificates as first start makes them: TLS from the local CA, signing ones for 5 years.
        let pki = Pki::new(tmp.path().join("pki"));
        let (ids, _) = pki.ensure(DOMAIN, &[spec("mailbox", "mail"), spec("frontend", "pool")]).expect("certificates");
        let ca_pem = std::fs::read_to_string(pki.ca_cert_path()).expect("the CA");
        mbx::ensure_auth_certificate(&mailbox_store, DOMAIN, 1825).await.expect("the Auth certificate");
        fe::ensure_default_certificate(&frontend_store, DOMAIN, None, 1825).await.expect("the OAuthTokenIssuer");
        for (store, role) in [(&mailbox_store, Role::Mailbox), (&frontend_store, Role::Frontend)] {
            store.set_setting(partners::setting_trusted_ca(role), &ca_pem).await.expect("the trusted CA");
        }
        let mut oc = fe::configuration(&frontend_store, DOMAIN).await.expect("the OAuth configuration");
        oc.exchange_autodiscover_url =
            Some(format!("https://autodiscover.{DOMAIN}:{mailbox_port}/autodiscover/autodiscover.svc"));
        fe::set_configuration(&frontend_store, &oc).await.expect("the OAuth configuration");

        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let slot = |i: usize| tandem_http::CertSlot::new(ids[i].chain.clone(), ids[i].key.clone_key()).expect("a slot");
        tandem_mailbox::start(&config, directory.clone(), slot(0), &tasks, shutdown.clone())
            .await
            .expect("the mailbox");
        tandem_http::start_role_https(
            Role::Frontend,
            SocketAddr::from(([127, 0, 0, 1], frontend_port)),
            slot(1),
            fe::routes(frontend_store.clone(), DOMAIN, &format!("pool.{DOMAIN}")),
            vec![],
            Default::default(),
            &tasks,
            shutdown.clone(),
        )
        .await
        .expect("the Front End's metadata listener");

        // Step 6 in both directions, through the real metadata URLs.
        let fe_url = format!("https://127.0.0.1:{frontend_port}/metadata/json/1");
        let mbx_url = format!("https://127.0.0.1:{mailbox_port}/autodiscover/metadata/json/1");
        let client = partners::metadata_client(&mailbox_store, Role::Mailbox).await.expect("a metadata client");
        let (lync, _) = partners::enterprise_partner(&client, &fe_url, EnterpriseApp::Lync).await.expect("Lync");
        partners::save_list(&mailbox_store, Role::Mailbox, &[lync]).await.expect("the partner list");
        let (exchange, _) =
            partners::download(&client, "microsoft.exchange", &mbx_url).await.expect("Exchange's metadata");
        partners::save_list(&frontend_store, Role::Frontend, &[exchange]).await.expect("the partner list");

        let mut http = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).expect("the CA"));
        for host in [format!("mail.{DOMAIN}"), format!("autodiscover.{DOMAIN}")] {
            http = http.resolve(&host, SocketAddr::from(([127, 0, 0, 1], mailbox_port)));
        }
        let http = http.build().expect("an HTTPS client");
        TwoRoles {
            tmp,
            directory,
            mailbox_store,
            frontend_store,
            mailbox_port,
            frontend_port,
            ca_pem,
            http,
            tasks,
            shutdown,
        }
    }

    /// A connector of the Front End's, as the running role builds it.
    pub fn connector(&self) -> ExchangeConnector {
        ExchangeConnector::new(self.frontend_store.clone(), DOMAIN, self.http.clone())
    }

    /// Stops both roles and waits for their tasks.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

//! The Front End role: our Skype for Business Server Front End pool.
//!
//! It owns registrations, presence, subscriptions and conferences (its own database, never shared
//! with the mailbox) and reaches mailbox data only through Autodiscover and EWS with
//! server-to-server tokens. It runs the SIP server (registrar, proxy, IM, presence; see [`sip`])
//! on UDP, TCP and TLS, and an HTTPS listener with the operations endpoints (`/metadata/json/1`
//! and the web client will live there).

pub mod admin;
pub mod admin_dashboard;
pub mod calendar_presence;
pub mod conference;
pub mod conversation_history;
pub mod exchange_connector;
pub mod media;
pub mod meetings_api;
pub mod sip;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ucs;
pub mod ucwa;
pub mod voicemail;
pub mod xcap;

use std::net::SocketAddr;
use std::sync::Arc;

use tandem_config::FrontendConfig;
use tandem_directory::Directory;
use tandem_http::{CertSlot, ReadinessCheck};
use tandem_store::Store;
use tandem_types::{DomainName, Role};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Paths the Front End serves over HTTPS (defined with the deployment's endpoints in
/// `tandem-config`); `tandem status` prints them.
pub use tandem_config::paths::frontend as paths;

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("Front End store: {0}")]
    Store(#[from] tandem_store::StoreError),
    #[error("Front End HTTPS: {0}")]
    Http(#[from] tandem_http::HttpError),
    #[error("Front End SIP: {0}")]
    Sip(#[from] sip::StartError),
}

/// A started Front End role.
#[derive(Debug)]
pub struct RunningFrontend {
    pub https_addr: SocketAddr,
    pub store: Store,
    pub sip: Arc<sip::SipCore>,
    /// The one path to the mailboxes (calendar presence, the contact list, XCAP).
    pub connector: Arc<exchange_connector::ExchangeConnector>,
    /// The administrator's dashboard at `/admin/` (the binary attaches the deployment report).
    pub dashboard: Arc<admin_dashboard::Dashboard>,
}

/// Opens the Front End store and starts its HTTPS listener in `tasks`. `exchange_http` reaches
/// the mailboxes: it must trust their certificates and resolve the deployment's names.
pub async fn start(
    domain: &DomainName,
    config: &FrontendConfig,
    directory: Directory,
    cert: Arc<CertSlot>,
    exchange_http: reqwest::Client,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<RunningFrontend, FrontendError> {
    let store = store::open(&config.store.url()).await?;
    let sip_udp = config.sip_udp_listen;
    let checks: Vec<(&'static str, ReadinessCheck)> = vec![
        ("frontend_store", tandem_http::readiness(store.ping_probe())),
        ("directory", tandem_http::readiness(directory.store().ping_probe())),
        ("sip", tandem_http::readiness(move || sip::probe_options(sip_udp))),
    ];
    let settings = sip::SipSettings {
        domain: domain.to_string(),
        names: vec![config.pool_fqdn.to_string(), config.sip_fqdn.to_string()],
        udp: config.sip_udp_listen,
        tcp: config.sip_tcp_listen,
        tls: config.sip_tls_listen,
        advertised_host: if config.sip_udp_listen.ip().is_unspecified() {
            config.pool_fqdn.to_string()
        } else {
            config.sip_udp_listen.ip().to_string()
        },
        requests_per_second_per_source: config.sip_requests_per_second_per_source,
        digest_algorithms: config
            .sip_digest_algorithms
            .iter()
            .filter_map(|a| tandem_sip_proto::DigestAlgorithm::parse(a))
            .collect(),
    };
    let sip_tls = tokio_rustls::TlsAcceptor::from(tandem_http::tls_config(cert.clone())?);
    let policy = sip::SipPolicy::from_config(config);
    let sip =
        sip::start_with(settings, policy, directory.clone(), store.clone(), sip_tls, tasks, shutdown.clone()).await?;
    tandem_trust::partners::spawn_refresh(store.clone(), Role::Frontend, tasks, shutdown.clone());
    let connector = Arc::new(exchange_connector::ExchangeConnector::new(store.clone(), domain.as_str(), exchange_http));
    let dashboard =
        admin_dashboard::Dashboard::new(sip.clone(), directory.clone(), store::FrontendStore::new(store.clone()));
    dashboard.spawn_sampler(tasks, shutdown.clone());
    let https_addr = tandem_http::start_role_https(
        Role::Frontend,
        config.https_listen,
        cert,
        sip::websocket_routes(sip.clone())
            .merge(tandem_trust::frontend::routes(store.clone(), domain.as_str(), config.pool_fqdn.as_str()))
            .merge(xcap::routes(
                directory.clone(),
                connector.clone(),
                store::FrontendStore::new(store.clone()),
                domain.as_str(),
            ))
            .merge(meetings_api::routes(
                tandem_trust::bearer::AuthState::frontend(store.clone(), config, domain.as_str()),
                store::FrontendStore::new(store.clone()),
                directory.clone(),
                &web_base(config),
                sip.clone(),
            ))
            .merge(admin_dashboard::routes(dashboard.clone()))
            .merge(ucwa::routes(
                sip.clone(),
                directory.clone(),
                connector.clone(),
                store::FrontendStore::new(store.clone()),
                tandem_trust::bearer::AuthState::frontend(store.clone(), config, domain.as_str()),
                tasks,
                shutdown.clone(),
            )),
        checks,
        config.https_limits,
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningFrontend { https_addr, store, sip, connector, dashboard })
}

/// The Front End's HTTPS base URL as clients reach it (join URLs start with it), as `tandem
/// status` shows it: the listener's address, or the pool FQDN when it listens on every address.
pub fn web_base(config: &FrontendConfig) -> String {
    let host = match config.https_listen.ip() {
        ip if ip.is_unspecified() => config.pool_fqdn.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    match config.https_listen.port() {
        443 => format!("https://{host}"),
        port => format!("https://{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_websocket_path_is_the_advertised_one() {
        assert_eq!(super::sip::WEBSOCKET_PATH, super::paths::SIP_WEBSOCKET);
    }
}

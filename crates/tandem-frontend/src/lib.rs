//! The Front End role: our Skype for Business Server Front End pool.
//!
//! It owns registrations, presence, subscriptions and conferences (its own database, never shared
//! with the mailbox) and reaches mailbox data only through Autodiscover and EWS with
//! server-to-server tokens. Today it runs its HTTPS listener (`/metadata/json/1` and the web client
//! will live there) with the operations endpoints and its store; SIP listeners arrive with the
//! Front End issue, on the addresses already in its configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tandem_config::FrontendConfig;
use tandem_directory::Directory;
use tandem_http::{CertSlot, ReadinessCheck};
use tandem_store::{Migration, Store};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Paths the Front End serves over HTTPS; `tandem status` prints them.
pub mod paths {
    pub const AUTH_METADATA: &str = "/metadata/json/1";
    pub const WEB_CLIENT: &str = "/web/";
}

/// The Front End database schema, in order.
const MIGRATIONS: &[Migration] = &[];

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("Front End store: {0}")]
    Store(#[from] tandem_store::StoreError),
    #[error("Front End HTTPS: {0}")]
    Http(#[from] tandem_http::HttpError),
}

/// A started Front End role.
#[derive(Debug)]
pub struct RunningFrontend {
    pub https_addr: SocketAddr,
    pub store: Store,
}

/// Opens the Front End store and starts its HTTPS listener in `tasks`.
pub async fn start(
    config: &FrontendConfig,
    directory: Directory,
    cert: Arc<CertSlot>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<RunningFrontend, FrontendError> {
    let store = Store::open(&config.store.url(), MIGRATIONS).await?;
    let checks: Vec<(&'static str, ReadinessCheck)> =
        vec![("frontend_store", Arc::new(store.ping_probe())), ("directory", Arc::new(directory.store().ping_probe()))];
    let https_addr = tandem_http::start_role_https(
        Role::Frontend,
        config.https_listen,
        cert,
        Router::new(),
        checks,
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningFrontend { https_addr, store })
}

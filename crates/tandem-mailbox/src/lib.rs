//! The Mailbox role: our Exchange Server.
//!
//! It owns the mailboxes (its own database, never shared with the Front End) and will serve
//! Autodiscover (`/autodiscover/autodiscover.svc` and `.xml`), Exchange Web Services
//! (`/EWS/Exchange.asmx`) and its auth metadata document (`/autodiscover/metadata/json/1`) on one
//! HTTPS listener for `mail.<domain>` and `autodiscover.<domain>`. Today it runs that listener with
//! the operations endpoints and its store; the protocol handlers arrive with the Mailbox issue.

pub mod auth_config;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tandem_config::MailboxConfig;
use tandem_directory::Directory;
use tandem_http::{CertSlot, ReadinessCheck};
use tandem_store::{Migration, Store};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Paths the mailbox serves, relative to its HTTPS base URL; `tandem status` prints them.
pub mod paths {
    pub const EWS: &str = "/EWS/Exchange.asmx";
    pub const AUTODISCOVER_SVC: &str = "/autodiscover/autodiscover.svc";
    pub const AUTODISCOVER_XML: &str = "/autodiscover/autodiscover.xml";
    pub const AUTH_METADATA: &str = "/autodiscover/metadata/json/1";
}

/// The mailbox database schema, in order.
const MIGRATIONS: &[Migration] = &[];

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("mailbox store: {0}")]
    Store(#[from] tandem_store::StoreError),
    #[error("mailbox HTTPS: {0}")]
    Http(#[from] tandem_http::HttpError),
}

/// A started mailbox role.
#[derive(Debug)]
pub struct RunningMailbox {
    pub https_addr: SocketAddr,
    pub store: Store,
}

/// Opens the mailbox store and starts the HTTPS listener in `tasks`.
pub async fn start(
    config: &MailboxConfig,
    directory: Directory,
    cert: Arc<CertSlot>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<RunningMailbox, MailboxError> {
    let store = Store::open(&config.store.url(), MIGRATIONS).await?;
    let checks: Vec<(&'static str, ReadinessCheck)> =
        vec![("mailbox_store", Arc::new(store.ping_probe())), ("directory", Arc::new(directory.store().ping_probe()))];
    // S2S trust: EWS calls auth_config::validate_bearer(&auth, headers) for every request.
    let auth = auth_config::AuthState::new(store.clone(), config);
    auth_config::spawn_metadata_refresh(store.clone(), tasks, shutdown.clone());
    let https_addr = tandem_http::start_role_https(
        Role::Mailbox,
        config.https_listen,
        cert,
        Router::new().merge(auth_config::routes(auth.clone())),
        checks,
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningMailbox { https_addr, store })
}

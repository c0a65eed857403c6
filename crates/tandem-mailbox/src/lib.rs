//! The Mailbox role: our Exchange Server.
//!
//! It owns the mailboxes (its own database, never shared with the Front End) and serves
//! Autodiscover (`/autodiscover/autodiscover.svc` SOAP and `/autodiscover/autodiscover.xml` POX)
//! and Exchange Web Services (`/EWS/Exchange.asmx`) on one HTTPS listener for `mail.<domain>`
//! and `autodiscover.<domain>`, with HTTP Basic sign-in against the directory. Paths are matched
//! without regard to case, as IIS does. Handlers live one per operation under `autodiscover/`
//! and `ews/`, mirroring the modules of `tandem-ews-proto`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_config::MailboxConfig;
use tandem_directory::{Directory, User};
use tandem_http::{CertSlot, ReadinessCheck};
use tandem_store::{Migration, Store};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod auth;
mod autodiscover;
pub mod client_access;
mod data;
pub mod ediscovery;
mod ews;
pub mod holds;
mod offload;
pub mod photos;
mod throttle;

pub use data::DataError;

/// Paths the mailbox serves, relative to its HTTPS base URL (defined with the deployment's
/// endpoints in `tandem-config`); `tandem status` prints them.
pub use tandem_config::paths::mailbox as paths;

/// The mailbox database schema, in order.
pub(crate) const MIGRATIONS: &[Migration] = data::schema::MIGRATIONS;

/// Largest request body accepted (MIME content of big messages is the largest legitimate one).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

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

/// Opens (creating and migrating) the mailbox store, for the role and for admin commands.
pub async fn open_store(config: &MailboxConfig) -> Result<Store, tandem_store::StoreError> {
    Store::open(&config.store.url(), MIGRATIONS).await
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Store,
    pub data: data::Data,
    pub directory: Directory,
    pub auth: auth::BasicAuth,
    /// Server-to-server tokens (Authorization: Bearer), checked per MS-XOAUTH.
    pub s2s: Arc<tandem_trust::bearer::AuthState>,
    pub defaults: client_access::Defaults,
    /// Pull, streaming and push subscriptions by id.
    pub subscriptions: std::sync::Mutex<ews::subscriptions::SubscriptionTable>,
    /// Delivers push subscriptions' notifications (SendNotification to their URLs).
    pub push: ews::send_notification::Pusher,
    /// EWS requests in progress per user (EwsMaxConcurrency).
    pub concurrency: throttle::Concurrency,
}

/// A subscription (EWS Subscribe): what it watches, who may read it, when it was last polled.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub mailbox: String,
    /// Who may read and cancel it: [`Call::owner`] of the caller that made it.
    pub owner: String,
    /// Its mailbox's wake-up signal: what is committed, and whom to wake.
    pub signal: Arc<data::notify::Signal>,
    /// None: every folder.
    pub folders: Option<Vec<String>>,
    pub event_types: Vec<String>,
    pub timeout: std::time::Duration,
    pub last_poll: std::time::Instant,
    pub streaming: bool,
    /// Push subscriptions: where to post and how often (`ews::send_notification` delivers).
    pub push: Option<tandem_ews_proto::ops::subscribe::Push>,
    /// Streaming and push subscriptions: the change number last sent.
    pub watermark: i64,
}

pub(crate) type AppState = Arc<Shared>;

/// The role's routes (without the operations endpoints), for the listener and for tests.
pub fn routes(config: &MailboxConfig, store: Store, directory: Directory) -> Router {
    router(shared(config, store, directory))
}

/// The state every handler shares.
fn shared(config: &MailboxConfig, store: Store, directory: Directory) -> AppState {
    let s2s = tandem_trust::bearer::AuthState::mailbox(store.clone(), config);
    Arc::new(Shared {
        s2s: s2s.clone(),
        data: data::Data::new(store.clone()),
        store,
        directory,
        auth: auth::BasicAuth::default(),
        defaults: client_access::Defaults::of(config),
        subscriptions: std::sync::Mutex::new(ews::subscriptions::SubscriptionTable::new(config.ews_limits)),
        push: ews::send_notification::Pusher::new(config),
        concurrency: throttle::Concurrency::new(config.ews_max_concurrency),
    })
}

/// The routes over a shared state.
fn router(shared: AppState) -> Router {
    let s2s = shared.s2s.clone();
    Router::new()
        .route(paths::EWS, axum::routing::any(dispatch))
        .route(paths::AUTODISCOVER_SVC, axum::routing::any(dispatch))
        .route(paths::AUTODISCOVER_XML, axum::routing::any(dispatch))
        .route(PHOTO_REST, axum::routing::any(dispatch))
        .fallback(dispatch)
        .with_state(shared)
        .layer(axum::middleware::from_fn(autodiscover::advertise_endpoints))
        .merge(tandem_trust::mailbox::routes(s2s))
}

/// Opens the mailbox store and starts the HTTPS listener in `tasks`.
pub async fn start(
    config: &MailboxConfig,
    directory: Directory,
    cert: Arc<CertSlot>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<RunningMailbox, MailboxError> {
    let store = open_store(config).await?;
    let checks: Vec<(&'static str, ReadinessCheck)> = vec![
        ("mailbox_store", tandem_http::readiness(store.ping_probe())),
        ("directory", tandem_http::readiness(directory.store().ping_probe())),
    ];
    tandem_trust::partners::spawn_refresh(store.clone(), Role::Mailbox, tasks, shutdown.clone());
    let shared = shared(config, store.clone(), directory.clone());
    shared.push.attach(tasks.clone(), shutdown.clone());
    spawn_index_backlog(data::Data::new(store.clone()), tasks, shutdown.clone());
    spawn_retention_sweep(shared.clone(), config.retention_sweep_seconds, tasks, shutdown.clone());
    let router = router(shared);
    let https_addr = tandem_http::start_role_https(
        Role::Mailbox,
        config.https_listen,
        cert,
        router,
        checks,
        config.https_limits,
        tasks,
        shutdown,
    )
    .await?;
    Ok(RunningMailbox { https_addr, store })
}

/// Every `seconds`, purges what Recoverable Items kept past each mailbox's retention, unless the
/// mailbox is on hold (`holds::sweep`); the first pass comes one interval after start.
fn spawn_retention_sweep(shared: AppState, seconds: u32, tasks: &TaskTracker, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let period = std::time::Duration::from_secs(u64::from(seconds.max(1)));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let pass = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = holds::sweep(&shared.data, tandem_store::now_unix()) => n,
            };
            match pass {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!("tandem_mailbox_retention_purged_total").increment(n as u64);
                    tracing::info!(items = n, "retention: purged items past their mailbox's RetainDeletedItemsFor");
                }
                Err(e) => tracing::warn!(error = %e, "retention: the sweep failed; it runs again next interval"),
            }
        }
    });
}

/// Indexes, in the background, the items a mailbox store kept from before the full-text index
/// existed (an upgrade in place), a batch per transaction, so searches find them too.
fn spawn_index_backlog(data: data::Data, tasks: &TaskTracker, shutdown: CancellationToken) {
    tasks.spawn(async move {
        // After the first pass that found nothing left, a start costs one meta-row read.
        match data.search_backlog_done().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "search index: cannot read whether the backlog pass is done; running it");
            }
        }
        let mut total = 0;
        loop {
            let step = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = data.index_backlog(500) => n,
            };
            match step {
                Ok(0) => {
                    if let Err(e) = data.mark_search_backlog_done().await {
                        tracing::warn!(error = %e, "search index: cannot record that the backlog pass is done");
                    }
                    break;
                }
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(error = %e, "search index: cannot index the items stored before it; searches miss them");
                    return;
                }
            }
        }
        if total > 0 {
            tracing::info!(items = total, "search index: indexed the items stored before it");
        }
    });
}

/// The REST form of GetUserPhoto, below the EWS URL (`…/Exchange.asmx/s/GetUserPhoto`).
pub const PHOTO_REST: &str = "/EWS/Exchange.asmx/s/GetUserPhoto";

/// Which service a path names (compared without case, as IIS does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ews,
    AutodiscoverSoap,
    AutodiscoverPox,
    /// `GET …/Exchange.asmx/s/GetUserPhoto?email=…&size=…`
    PhotoRest,
}

pub(crate) fn service_of(path: &str) -> Option<Service> {
    let p = path.trim_end_matches('/').to_ascii_lowercase();
    if p == paths::EWS.to_ascii_lowercase() {
        Some(Service::Ews)
    } else if p == PHOTO_REST.to_ascii_lowercase() {
        Some(Service::PhotoRest)
    } else if p == paths::AUTODISCOVER_SVC {
        Some(Service::AutodiscoverSoap)
    } else if p == paths::AUTODISCOVER_XML {
        Some(Service::AutodiscoverPox)
    } else {
        None
    }
}

/// A request that passed sign-in.
#[derive(Debug)]
pub(crate) struct Call {
    pub user: User,
    /// The partner application when the caller came with a server-to-server token.
    pub partner: Option<String>,
    pub body: Bytes,
    /// The request's `If-None-Match` (GetUserPhoto answers an unchanged photo without it).
    pub if_none_match: Option<String>,
}

impl Call {
    /// Who owns what this caller subscribes to. A partner application (the Front End) owns its
    /// subscriptions whichever user each token acts as, as a service account does in Exchange,
    /// so one GetStreamingEvents connection serves the many users it watches; a user signed in
    /// with a password owns its own.
    pub fn owner(&self) -> String {
        match &self.partner {
            Some(app) => format!("partner:{app}"),
            None => format!("user:{}", self.user.name),
        }
    }
}

async fn dispatch(State(s): State<AppState>, req: Request) -> Response {
    let Some(service) = service_of(req.uri().path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let method = req.method().clone();
    let (parts, body) = req.into_parts();
    let (user, partner) = match tandem_trust::bearer::validate_bearer(&s.s2s, &parts.headers).await {
        Err(refusal) => return refusal.into_response(),
        Ok(Some(token)) => match s2s_user(&s, &token, service).await {
            Ok(u) => (u, Some(format!("{}@{}", token.application_id, token.realm))),
            Err(resp) => return resp,
        },
        Ok(None) => match s.auth.check(&s.directory, &parts.headers, peer_ip(&parts.extensions)).await {
            Ok(auth::Outcome::Authenticated(u)) => (u, None),
            Ok(auth::Outcome::Challenge) => {
                let mut resp = auth::challenge(&s.defaults.fqdn);
                resp.headers_mut().append(header::WWW_AUTHENTICATE, s.s2s.challenge().await.challenge);
                return resp;
            }
            Err(e) => {
                tracing::error!(error = %e, "directory failure during sign-in");
                return (StatusCode::SERVICE_UNAVAILABLE, "the directory is not available\n").into_response();
            }
        },
    };
    if !user.can_use_mailbox() && !is_autodiscover(service) {
        // A mail user: its mailbox is elsewhere, and only Autodiscover says where.
        let mut resp = auth::challenge(&s.defaults.fqdn);
        resp.headers_mut().append(header::WWW_AUTHENTICATE, s.s2s.challenge().await.challenge);
        return resp;
    }
    let if_none_match = parts.headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if service == Service::PhotoRest {
        if method != Method::GET && method != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "").into_response();
        }
        return ews::get_user_photo::rest(&s, &user, &parts.uri, if_none_match.as_deref(), method == Method::HEAD)
            .await;
    }
    if method == Method::GET || method == Method::HEAD {
        // DavMail probes the EWS URL with GET and needs 401 or 200; a signed-in GET gets a page.
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Tandem Mailbox\n")
            .into_response();
    }
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD, POST")], "").into_response();
    }
    // Held from here (the body upload included) to the answer.
    let slot = if service == Service::Ews {
        match s.concurrency.enter(user.name.as_str()) {
            Some(slot) => Some(slot),
            None => {
                metrics::counter!("tandem_ews_throttled_total").increment(1);
                return xml_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    tandem_ews_proto::render::server_busy_fault(throttle::BACK_OFF_MILLISECONDS),
                );
            }
        }
    } else {
        None
    };
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let fault = autodiscover_or_ews_too_large(service);
            return xml_response(StatusCode::PAYLOAD_TOO_LARGE, fault);
        }
    };
    let call = Call { user, partner, body, if_none_match };
    match service {
        Service::AutodiscoverSoap => autodiscover::soap(&s, call).await,
        Service::AutodiscoverPox => autodiscover::pox::handle(&s, call).await,
        Service::Ews => ews::handle(&s, call, slot).await,
        Service::PhotoRest => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// The client's address, which tandem-http's listener attaches to every request.
fn peer_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The mailbox user an accepted S2S token acts as: it must name an enabled user with a mailbox.
fn is_autodiscover(service: Service) -> bool {
    matches!(service, Service::AutodiscoverSoap | Service::AutodiscoverPox)
}

/// The user a server-to-server token acts as: one with a mailbox here, or a mail user asking
/// Autodiscover where its mailbox is.
async fn s2s_user(s: &Shared, token: &tandem_oauth::Validated, service: Service) -> Result<User, Response> {
    let Some(smtp) = token.user.as_deref() else {
        return Err((StatusCode::FORBIDDEN, "an app-only token names no mailbox\n").into_response());
    };
    match s.directory.find(smtp).await {
        Ok(Some(u)) if u.can_use_mailbox() || (u.is_mail_user() && is_autodiscover(service)) => Ok(u),
        Ok(_) => Err((StatusCode::FORBIDDEN, format!("{smtp} has no enabled mailbox here\n")).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "directory failure during S2S sign-in");
            Err((StatusCode::SERVICE_UNAVAILABLE, "the directory is not available\n").into_response())
        }
    }
}

fn autodiscover_or_ews_too_large(_service: Service) -> String {
    tandem_xml::soap::fault(
        tandem_xml::soap::FaultCode::Client,
        &format!("The request is larger than the {MAX_REQUEST_BYTES} bytes allowed."),
        "",
        "",
        &[],
    )
}

/// A `text/xml; charset=utf-8` response.
pub(crate) fn xml_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_ignore_case() {
        assert_eq!(service_of("/ews/exchange.asmx"), Some(Service::Ews));
        assert_eq!(service_of("/EWS/Exchange.asmx"), Some(Service::Ews));
        assert_eq!(service_of("/Autodiscover/Autodiscover.xml"), Some(Service::AutodiscoverPox));
        assert_eq!(service_of("/AutoDiscover/AutoDiscover.svc"), Some(Service::AutodiscoverSoap));
        assert_eq!(service_of("/owa"), None);
        assert_eq!(service_of("/ews/Exchange.asmx/s/GetUserPhoto"), Some(Service::PhotoRest));
    }
}

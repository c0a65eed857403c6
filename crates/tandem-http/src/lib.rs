//! HTTPS plumbing both roles share: a TLS listener whose certificate can be swapped while it
//! runs, the operations endpoints (`/healthz`, `/readyz`, `/metrics`) and request metrics.
//!
//! Connections are tasks of the caller's [`TaskTracker`] and stop on its [`CancellationToken`]:
//! the listener stops accepting at once, open connections finish their request and close.

pub mod basic;
pub mod client;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tandem_types::Role;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The listener's bounds (connections in all and per source address, handshake, header-read and
/// idle timeouts): `[mailbox]`/`[frontend]` `https_*` in tandem.toml, defaults in
/// `tandem_config::DEFAULT_HTTPS_*`.
pub use tandem_config::HttpsLimits;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}; is another process using it? change the address in tandem.toml")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the TLS certificate or key cannot be used: {0}")]
    Tls(#[from] rustls::Error),
}

/// The certificate a listener presents, replaceable while it runs (renewal, rollover).
#[derive(Debug)]
pub struct CertSlot {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertSlot {
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Arc<CertSlot>, HttpError> {
        Ok(Arc::new(CertSlot { current: RwLock::new(Arc::new(certified_key(chain, key)?)) }))
    }

    /// Presents a new certificate to every new handshake from now on.
    pub fn replace(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<(), HttpError> {
        let new = Arc::new(certified_key(chain, key)?);
        match self.current.write() {
            Ok(mut slot) => *slot = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }

    fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

fn certified_key(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<CertifiedKey, HttpError> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider.key_provider.load_private_key(key)?;
    Ok(CertifiedKey::new(chain, signing))
}

/// A TLS server configuration offering HTTP/2 and HTTP/1.1 with the slot's certificate.
pub fn tls_config(slot: Arc<CertSlot>) -> Result<Arc<ServerConfig>, HttpError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Binds first (so a taken port is reported before anything runs), then serves in `tasks`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })
}

/// Serves `router` over TLS on `listener` until `shutdown` fires.
pub fn serve_https(
    role: Role,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    limits: HttpsLimits,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let conn_tasks = tasks.clone();
    let slots = ConnectionSlots::new(&limits);
    tasks.spawn(async move {
        let mut last_refusal_log: Option<Instant> = None;
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and similar: back off instead of spinning.
                        tracing::warn!(%role, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some(slot) = slots.take(peer.ip()) else {
                let cap = if slots.total() >= slots.max_total { "listener" } else { "source" };
                metrics::counter!("tandem_https_connections_refused_total", "role" => role.as_str(), "cap" => cap)
                    .increment(1);
                if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(%role, %peer, cap, "HTTPS connection refused: too many connections");
                    last_refusal_log = Some(Instant::now());
                }
                drop(tcp);
                continue;
            };
            // Without TCP_NODELAY the last small segment of a multi-record response waits for the
            // client's delayed ACK (~40 ms per EWS call); a failure here only costs latency.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%role, %peer, error = %e, "cannot set TCP_NODELAY");
            }
            let acceptor = acceptor.clone();
            let activity = Arc::new(Activity::new());
            // Handlers that need the peer (SIP over WebSocket) read it as ConnectInfo.
            let router = router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
                .layer(middleware::from_fn_with_state(activity.clone(), in_flight));
            let shutdown = shutdown.clone();
            conn_tasks.spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%role, %peer, error = %e, "TLS handshake failed");
                        metrics::counter!("tandem_tls_handshake_failures_total", "role" => role.as_str()).increment(1);
                        return;
                    }
                    Err(_) => return,
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
                // Idle time counts from the end of the handshake, which has its own timeout.
                activity.touch();
                let io = Tracked { inner: tls, activity: activity.clone() };
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => if let Err(e) = r { tracing::debug!(%role, %peer, error = %e, "connection ended with an error") },
                    () = activity.idle_for(limits.idle_timeout) => {
                        tracing::debug!(%role, %peer, "idle HTTPS connection closed");
                        metrics::counter!("tandem_https_idle_closed_total", "role" => role.as_str()).increment(1);
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                    }
                    _ = shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                    }
                }
            });
        }
        tracing::debug!(%role, "HTTPS listener stopped");
    });
}

/// When a connection last carried a byte, and how many of its requests are being handled: a
/// connection is idle when nothing moved for a while and no handler is working for it (a long
/// request without output is not idle; an upgraded one has left hyper, and this watch, behind).
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last byte read or written.
    last: std::sync::atomic::AtomicU64,
    in_flight: std::sync::atomic::AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Resolves once the connection has been idle for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(std::sync::atomic::Ordering::Relaxed));
            let idle = self.epoch.elapsed().saturating_sub(last);
            let busy = self.in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0;
            if !busy && idle >= limit {
                return;
            }
            // A busy connection is looked at again after a full period; an idle one when its
            // period would end.
            let wait = if busy { limit } else { limit - idle };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

/// Counts a request as in progress until its handler has answered.
async fn in_flight(State(activity): State<Arc<Activity>>, req: Request, next: Next) -> Response {
    struct Guard(Arc<Activity>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            self.0.touch();
        }
    }
    activity.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _guard = Guard(activity);
    next.run(req).await
}

/// A connection's I/O, noting every byte that moves in [`Activity`].
#[derive(Debug)]
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connections a listener holds, in total and per source address.
#[derive(Debug, Clone)]
struct ConnectionSlots {
    counts: Arc<std::sync::Mutex<SlotCounts>>,
    max_total: usize,
    max_per_source: usize,
}

#[derive(Debug, Default)]
struct SlotCounts {
    total: usize,
    per_source: std::collections::HashMap<std::net::IpAddr, usize>,
}

/// One connection's place; given back when the connection ends.
#[derive(Debug)]
struct ConnectionSlot {
    slots: ConnectionSlots,
    source: std::net::IpAddr,
}

impl ConnectionSlots {
    fn new(limits: &HttpsLimits) -> ConnectionSlots {
        let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        ConnectionSlots {
            counts: Arc::default(),
            max_total: size(limits.max_connections),
            max_per_source: size(limits.max_connections_per_source),
        }
    }

    fn take(&self, source: std::net::IpAddr) -> Option<ConnectionSlot> {
        let mut c = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = c.per_source.get(&source).copied().unwrap_or(0);
        if c.total >= self.max_total || mine >= self.max_per_source {
            return None;
        }
        c.total += 1;
        c.per_source.insert(source, mine + 1);
        Some(ConnectionSlot { slots: self.clone(), source })
    }

    fn total(&self) -> usize {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.slots.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.per_source.remove(&self.source);
            }
        }
    }
}

/// How often the recorder folds recorded histogram samples into its summaries.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder; both roles in one process share it and label by role.
///
/// A recorder built this way keeps every histogram sample (two per HTTPS request) in a queue
/// until it renders or runs upkeep; on a server nobody scrapes that queue only grows. A thread of
/// its own drains it every [`METRICS_UPKEEP_INTERVAL`], whatever runtime (or none) is running.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); ours still renders what it has.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = spawned {
                // Only scrapes drain the samples then; the server still works.
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histogram samples are kept until /metrics is read");
            }
            handle
        })
        .clone()
}

/// A readiness probe: resolves to `Ok` when the role can serve, or the reason it cannot.
pub type ReadinessCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), NotReady>> + Send>> + Send + Sync>;

/// Why a readiness check failed: the check's own error, shown as is in `/readyz`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NotReady(Box<dyn std::error::Error + Send + Sync>);

impl NotReady {
    /// Wraps any error (or a message: `String` and `&str` convert too).
    pub fn new(reason: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> NotReady {
        NotReady(reason.into())
    }
}

#[derive(Clone)]
struct OpsState {
    role: Role,
    checks: Arc<Vec<(&'static str, ReadinessCheck)>>,
    metrics: PrometheusHandle,
    started: Instant,
}

/// `/healthz` (alive), `/readyz` (every check passes) and `/metrics`, plus request metrics on
/// every route of the returned router once merged with the role's own routes.
pub fn with_operations(role: Role, routes: Router, checks: Vec<(&'static str, ReadinessCheck)>) -> Router {
    let state = OpsState { role, checks: Arc::new(checks), metrics: metrics_handle(), started: Instant::now() };
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(state);
    routes.merge(ops).layer(middleware::from_fn_with_state(role, count_requests))
}

async fn healthz(State(s): State<OpsState>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "role": s.role.as_str(),
        "status": "alive",
        "uptime_seconds": s.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn readyz(State(s): State<OpsState>) -> Response {
    let mut results = serde_json::Map::new();
    let mut ready = true;
    for (name, check) in s.checks.iter() {
        let outcome = tokio::time::timeout(Duration::from_secs(5), check()).await;
        let text = match outcome {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(e)) => {
                ready = false;
                e.to_string()
            }
            Err(_) => {
                ready = false;
                "timed out after 5 s".to_owned()
            }
        };
        results.insert((*name).to_owned(), text.into());
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "role": s.role.as_str(), "ready": ready, "checks": results });
    (status, axum::Json(body)).into_response()
}

async fn render_metrics(State(s): State<OpsState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}

async fn count_requests(State(role): State<Role>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("tandem_http_requests_total", "role" => role.as_str(), "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("tandem_http_request_seconds", "role" => role.as_str(), "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Binds `addr` and serves a role's `routes` with the operations endpoints. Returns the bound
/// address (which differs from `addr` when its port is 0).
#[allow(clippy::too_many_arguments)] // each is a separate part of a role's listener; no natural grouping
pub async fn start_role_https(
    role: Role,
    addr: SocketAddr,
    cert: Arc<CertSlot>,
    routes: Router,
    checks: Vec<(&'static str, ReadinessCheck)>,
    limits: HttpsLimits,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<SocketAddr, HttpError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(|source| HttpError::Bind { addr, source })?;
    serve_https(role, listener, tls_config(cert)?, with_operations(role, routes, checks), limits, tasks, shutdown);
    tracing::info!(%role, addr = %local, "HTTPS listening");
    Ok(local)
}

/// Wraps an async closure as a [`ReadinessCheck`]; its error may be any error type (or a
/// message), so each check keeps its own.
pub fn readiness<F, Fut, E>(f: F) -> ReadinessCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    Arc::new(move || {
        let fut = f();
        Box::pin(async move { fut.await.map_err(NotReady::new) })
    })
}

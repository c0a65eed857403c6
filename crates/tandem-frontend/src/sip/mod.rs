//! The Front End's SIP server: registrar, stateful forking proxy, IM and presence.
//!
//! Transports deliver parsed messages to one channel; each request is handled in its own task of
//! the role's task set, and travels one way: `dispatch` matches its transaction, authenticates it
//! and resolves its address of record once, then hands the registrar, IM or presence handler the
//! request, the user and a responder, or gives it to the proxy. Shared state (transactions,
//! bindings, publications, subscriptions) sits behind short-held mutexes, never across an await;
//! what outlives the process goes through the role's data layer (`crate::store`).

mod answer;
mod auth;
pub mod conference;
mod dispatch;
pub(crate) mod im;
pub mod overload;
pub(crate) mod presence;
mod proxy;
mod registrar;
pub(crate) mod third_party_call;
pub mod transport;
mod txn;
pub mod web;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_directory::Directory;
use tandem_sip_proto::{HeaderView, Host, Message, Method, Response, Transport, Uri};
use tandem_store::Store;

use crate::store::FrontendStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::auth::DigestAuth;
pub use self::presence::Presence;
pub(crate) use self::proxy::FinalObserver;
pub use self::registrar::{Binding, Location};
use self::transport::{Flow, Inbound, Outbound};

/// Methods this server knows, for Allow headers.
pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH, REGISTER, PRACK, UPDATE, INFO, REFER";
/// Requests queued from the transports before new UDP datagrams are dropped.
const INBOUND_QUEUE: usize = 8192;
/// How often timers (retransmissions, expiries, coalesced NOTIFYs) are looked at.
const TICK: Duration = Duration::from_millis(100);

/// The Front End SIP settings derived from the configuration.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// The SIP domain, also the digest realm.
    pub domain: String,
    /// Host names that mean this server in a Request-URI or Route.
    pub names: Vec<String>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
    /// The host to put in Via, Record-Route and Contact (the listen IP, or the pool FQDN when
    /// listening on every address).
    pub advertised_host: String,
    /// Requests per second one source address may send (burst: twice this); 0 = unlimited.
    pub requests_per_second_per_source: u32,
    /// Digest algorithms challenged with, in order.
    pub digest_algorithms: Vec<tandem_sip_proto::DigestAlgorithm>,
}

/// Limits and routing choices from `tandem.toml` (`frontend.sip_*`); the default is the
/// configuration's defaults.
#[derive(Debug, Clone)]
pub struct SipPolicy {
    pub nat_detection: tandem_config::NatDetection,
    /// Concurrent stream connections per listener (TCP, TLS, WebSocket).
    pub max_stream_connections: usize,
    pub max_stream_connections_per_source: usize,
    pub stream_idle_timeout: Duration,
    pub max_subscriptions_per_user: usize,
    pub max_offline_messages_per_user: i64,
    /// Endpoints one user may have registered at once (MaxEndpointsPerUser).
    pub max_endpoints_per_user: usize,
    /// Overload control: new requests that waited longer are refused with 503 (zero: off).
    pub max_queue_delay: Duration,
}

impl Default for SipPolicy {
    /// The configuration's named defaults.
    fn default() -> Self {
        use tandem_config as c;
        SipPolicy {
            nat_detection: c::DEFAULT_SIP_NAT_DETECTION,
            max_stream_connections: c::DEFAULT_SIP_MAX_STREAM_CONNECTIONS as usize,
            max_stream_connections_per_source: c::DEFAULT_SIP_MAX_STREAM_CONNECTIONS_PER_SOURCE as usize,
            stream_idle_timeout: Duration::from_secs(u64::from(c::DEFAULT_SIP_STREAM_IDLE_TIMEOUT_SECS)),
            max_subscriptions_per_user: c::DEFAULT_SIP_MAX_SUBSCRIPTIONS_PER_USER as usize,
            max_offline_messages_per_user: i64::from(c::DEFAULT_SIP_MAX_OFFLINE_MESSAGES_PER_USER),
            max_endpoints_per_user: c::DEFAULT_SIP_MAX_ENDPOINTS_PER_USER as usize,
            max_queue_delay: Duration::from_millis(u64::from(c::DEFAULT_SIP_MAX_QUEUE_DELAY_MS)),
        }
    }
}

impl SipPolicy {
    /// The policy a Front End configuration sets.
    pub fn from_config(f: &tandem_config::FrontendConfig) -> SipPolicy {
        SipPolicy {
            nat_detection: f.sip_nat_detection,
            max_stream_connections: f.sip_max_stream_connections as usize,
            max_stream_connections_per_source: f.sip_max_stream_connections_per_source as usize,
            stream_idle_timeout: Duration::from_secs(u64::from(f.sip_stream_idle_timeout_secs)),
            max_subscriptions_per_user: f.sip_max_subscriptions_per_user as usize,
            max_offline_messages_per_user: i64::from(f.sip_max_offline_messages_per_user),
            max_endpoints_per_user: f.sip_max_endpoints_per_user as usize,
            max_queue_delay: Duration::from_millis(u64::from(f.sip_max_queue_delay_ms)),
        }
    }
}

/// State shared by every request handler.
#[derive(Debug)]
pub struct SipCore {
    pub settings: SipSettings,
    pub policy: SipPolicy,
    directory: Directory,
    store: FrontendStore,
    out: Arc<Outbound>,
    auth: DigestAuth,
    txns: Arc<Mutex<proxy::Transactions>>,
    pub location: Location,
    pub presence: Presence,
    limiter: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    pub overload: overload::Overload,
    tasks: TaskTracker,
    /// Where relayed MESSAGEs and calls' outcomes go for conversation history (see
    /// `crate::conversation_history`).
    pub(crate) conversations: crate::conversation_history::Tap,
    /// The voicemail user agent's media side, attached when voicemail runs (`voicemail::attach`).
    pub(crate) voicemail: std::sync::OnceLock<Arc<crate::voicemail::Service>>,
    /// Calls the voicemail user agent holds, by Call-ID.
    vm_dialogs: Mutex<HashMap<String, answer::VmDialog>>,
    /// The conference focus, attached when conferencing runs (`crate::conference::spawn`).
    pub(crate) focus: std::sync::OnceLock<Arc<conference::Focus>>,
    /// Click-to-call calls connected by third-party call control.
    pub(crate) tpcc: third_party_call::Calls,
}

/// Starts the SIP listeners and the core with the default [`SipPolicy`].
pub async fn start(
    settings: SipSettings,
    directory: Directory,
    store: Store,
    tls: tokio_rustls::TlsAcceptor,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Arc<SipCore>, StartError> {
    start_with(settings, SipPolicy::default(), directory, store, tls, tasks, shutdown).await
}

/// Starts the SIP listeners and the core; returns the core for status and tests.
pub async fn start_with(
    settings: SipSettings,
    policy: SipPolicy,
    directory: Directory,
    store: Store,
    tls: tokio_rustls::TlsAcceptor,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Arc<SipCore>, StartError> {
    if tokens().is_none() {
        return Err(StartError::Random);
    }
    let auth = DigestAuth::new(&settings.domain, settings.digest_algorithms.clone()).ok_or(StartError::Random)?;
    let listeners = transport::bind(settings.udp, settings.tcp, settings.tls).await?;
    // Port 0 in the configuration (tests) means "any": advertise what was really bound.
    let mut settings = settings;
    if let Ok(a) = listeners.udp.local_addr() {
        settings.udp = a;
    }
    if let Ok(a) = listeners.tcp.local_addr() {
        settings.tcp = a;
    }
    if let Ok(a) = listeners.tls.local_addr() {
        settings.tls = a;
    }
    let (tx, mut rx) = mpsc::channel::<Inbound>(INBOUND_QUEUE);
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<Flow>();
    let stream_limits = transport::StreamLimits {
        per_listener: policy.max_stream_connections,
        per_source: policy.max_stream_connections_per_source,
        idle: policy.stream_idle_timeout,
    };
    let out = Outbound::new(tasks.clone(), shutdown.clone(), tx, closed_tx, stream_limits);
    let store = FrontendStore::new(store);
    let location = Location::load(&store).await?;
    let core = Arc::new(SipCore {
        auth,
        settings,
        policy: policy.clone(),
        directory,
        store,
        out: out.clone(),
        txns: Arc::new(Mutex::new(proxy::Transactions::default())),
        location,
        presence: Presence::default(),
        limiter: Mutex::new(HashMap::new()),
        overload: overload::Overload::new(policy.max_queue_delay),
        tasks: tasks.clone(),
        conversations: Default::default(),
        voicemail: Default::default(),
        vm_dialogs: Mutex::new(HashMap::new()),
        focus: Default::default(),
        tpcc: Default::default(),
    });
    transport::serve(listeners, tls, &out);

    let dispatcher = core.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let lanes = Arc::new(Lanes::default());
        loop {
            let inbound = tokio::select! {
                _ = stop.cancelled() => break,
                m = rx.recv() => match m { Some(m) => m, None => break },
            };
            lanes.submit(&dispatcher, inbound);
        }
    });
    let janitor = core.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        loop {
            let flow = tokio::select! {
                _ = stop.cancelled() => break,
                f = closed_rx.recv() => match f { Some(f) => f, None => break },
            };
            registrar::flow_closed(&janitor, &flow).await;
        }
    });
    let ticker = core.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let mut flush = tokio::time::interval(registrar::FLUSH_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => ticker.on_tick().await,
                _ = flush.tick() => registrar::flush(&ticker).await,
            }
        }
        // Nothing acknowledged is left unwritten at a clean stop.
        registrar::flush(&ticker).await;
    });
    tracing::info!(udp = %core.settings.udp, tcp = %core.settings.tcp, tls = %core.settings.tls, "SIP listening");
    Ok(core)
}

/// Messages of one call (Call-ID) are handled one after another, in arrival order, so a 180
/// relayed for a call never overtakes its 200; messages of different calls run in parallel. Each
/// busy Call-ID has a lane (a queue and the task draining it); the task ends when its queue is
/// empty, and the next message of that call opens a new lane.
#[derive(Debug, Default)]
struct Lanes {
    open: Mutex<HashMap<String, mpsc::UnboundedSender<Inbound>>>,
}

impl Lanes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Inbound>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(self: &Arc<Self>, core: &Arc<SipCore>, inbound: Inbound) {
        let key = match &inbound.message {
            Message::Request(r) => r.call_id().map(str::to_owned),
            Message::Response(r) => r.call_id().map(str::to_owned),
        }
        .unwrap_or_else(|| inbound.flow.describe());
        let mut open = self.lock();
        // A lane drains under this lock before it closes, so a send here is never lost.
        let inbound = match open.get(&key) {
            Some(lane) => match lane.send(inbound) {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => back,
            },
            None => inbound,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        open.insert(key.clone(), tx);
        drop(open);
        let tasks = core.tasks.clone();
        let (core, lanes) = (core.clone(), self.clone());
        let fut = async move {
            let mut next = Some(inbound);
            while let Some(m) = next {
                core.clone().dispatch(m).await;
                let mut open = lanes.lock();
                next = rx.try_recv().ok();
                if next.is_none() {
                    open.remove(&key);
                }
            }
        };
        tasks.spawn(fut);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] transport::BindError),
    #[error("the system random-number generator failed; SIP cannot make nonces or tags")]
    Random,
    #[error("registrations cannot be loaded: {0}")]
    Store(#[from] crate::store::DataError),
}

impl SipCore {
    /// The directory SIP authenticates against (its lockout state is shared with HTTP sign-in).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    async fn dispatch(self: Arc<Self>, inbound: Inbound) {
        let Inbound { message, flow, received } = inbound;
        match message {
            Message::Request(req) => {
                if !self.admit(flow.peer().ip()) {
                    metrics::counter!("tandem_sip_dropped_total", "reason" => "rate").increment(1);
                    if req.method != Method::Ack && !flow.transport().is_reliable() {
                        // UDP floods are dropped silently; streams get 503 so clients back off.
                        return;
                    }
                    if req.method != Method::Ack {
                        let r = req.response(503).with_header("Retry-After", "5");
                        self.reply_stateless(&flow, r).await;
                    }
                    return;
                }
                let method = req.method.known_name().unwrap_or("other");
                metrics::counter!("tandem_sip_requests_total", "method" => method).increment(1);
                // Boxed: the handlers' futures (INVITE with call answering, REGISTER, presence)
                // would otherwise be inlined into every lane task, and spawning a task copies
                // its future (measured: ~200 k instructions per REGISTER call more, unboxed).
                Box::pin(self.on_request(req, flow, received)).await;
            }
            Message::Response(resp) => Box::pin(self.on_response(resp)).await,
        }
    }

    /// Token bucket per source address.
    fn admit(&self, ip: IpAddr) -> bool {
        let rate = f64::from(self.settings.requests_per_second_per_source);
        if rate == 0.0 {
            return true;
        }
        let burst = rate * 2.0;
        let mut buckets = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(10));
        }
        let (tokens, at) = buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a host names this server or its domain, whatever the port.
    fn is_our_host(&self, host: &Host) -> bool {
        match host {
            Host::Name(n) => {
                n == &self.settings.domain || self.settings.names.iter().any(|x| x == n) || n == "localhost"
            }
            Host::Ip(ip) => {
                let ours = [self.settings.udp.ip(), self.settings.tcp.ip(), self.settings.tls.ip()];
                ours.contains(ip) || (ip.is_loopback() && ours.iter().any(|o| o.is_unspecified() || o.is_loopback()))
            }
        }
    }

    /// Whether a URI's host and port name this server itself (a Route, an in-dialog target):
    /// stricter than [`Self::is_our_host`], since clients on this machine share its IP.
    fn is_us(&self, host: &Host, port: Option<u16>) -> bool {
        let ports = [self.settings.udp.port(), self.settings.tcp.port(), self.settings.tls.port()];
        self.is_our_host(host) && port.is_none_or(|p| ports.contains(&p))
    }

    /// The address of record a URI names, when it is a user of this domain. Identity headers
    /// (From, To) name the domain; the port some clients add is ignored there.
    fn local_aor(&self, uri: &Uri) -> Option<String> {
        let user = uri.user.as_deref()?;
        if self.is_our_host(&uri.host) {
            Some(format!("sip:{}@{}", user.to_ascii_lowercase(), self.settings.domain))
        } else {
            None
        }
    }

    /// `sip:host:port;transport=x` of this server for a transport.
    fn own_uri(&self, transport: Transport) -> String {
        let (port, param) = match transport {
            Transport::Udp => (self.settings.udp.port(), ""),
            Transport::Tcp => (self.settings.tcp.port(), ";transport=tcp"),
            _ => (self.settings.tls.port(), ";transport=tls"),
        };
        format!("sip:{}:{port}{param}", self.settings.advertised_host)
    }

    /// Sends a response outside any transaction (errors before a transaction exists).
    async fn reply_stateless(&self, flow: &Flow, response: Response) {
        if let Err(e) = self.out.send(flow, response.to_bytes()).await {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    async fn on_tick(self: &Arc<Self>) {
        proxy::on_tick(self).await;
        presence::on_tick(self).await;
        registrar::on_tick(self).await;
    }
}

/// Unpredictable tokens without a system call each: HMAC-SHA-256 of a counter under a key drawn
/// once from the system's random-number generator. `None` when that generator failed; [`start`]
/// then refuses to run, so no handler ever asks for a token without a key.
struct Tokens {
    key: aws_lc_rs::hmac::Key,
    next: std::sync::atomic::AtomicU64,
}

fn tokens() -> Option<&'static Tokens> {
    static TOKENS: std::sync::OnceLock<Option<Tokens>> = std::sync::OnceLock::new();
    TOKENS
        .get_or_init(|| {
            let mut seed = [0u8; 32];
            aws_lc_rs::rand::fill(&mut seed).ok()?;
            Some(Tokens {
                key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &seed),
                next: std::sync::atomic::AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// A random token for tags, branches and ETags (18 hex digits).
pub fn random_token() -> String {
    match tokens() {
        Some(t) => {
            let n = t.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tag = aws_lc_rs::hmac::sign(&t.key, &n.to_be_bytes());
            hex::encode(&tag.as_ref()[..9])
        }
        // Unreachable in a running server: `start` fails first when the generator does.
        None => String::new(),
    }
}

/// Readiness: an OPTIONS over UDP to our own listener must be answered 200 within two seconds.
pub async fn probe_options(listen: SocketAddr) -> Result<(), String> {
    let target = if listen.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), listen.port())
    } else {
        listen
    };
    let bind: SocketAddr =
        if target.is_ipv4() { ([127, 0, 0, 1], 0).into() } else { (std::net::Ipv6Addr::LOCALHOST, 0).into() };
    let socket = tokio::net::UdpSocket::bind(bind).await.map_err(|e| format!("no probe socket: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let branch = format!("z9hG4bK{}", random_token());
    let request = format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:readiness@{target}>;tag={tag}\r\nTo: <sip:{target}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        tag = random_token()
    );
    socket.send_to(request.as_bytes(), target).await.map_err(|e| format!("SIP UDP {target}: {e}"))?;
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .map_err(|_| format!("SIP UDP {target}: no answer to OPTIONS within 2 s"))?
        .map_err(|e| format!("SIP UDP {target}: {e}"))?;
    match tandem_sip_proto::parse_datagram(&buf[..n], &Default::default()) {
        Ok(Some(Message::Response(r))) if r.status == 200 => Ok(()),
        Ok(Some(Message::Response(r))) => Err(format!("SIP UDP {target}: OPTIONS answered {}", r.status)),
        _ => Err(format!("SIP UDP {target}: unreadable answer to OPTIONS")),
    }
}

/// The HTTPS route for SIP over WebSocket (RFC 7118, subprotocol `sip`).
pub fn websocket_routes(core: Arc<SipCore>) -> axum::Router {
    use axum::extract::ws::WebSocketUpgrade;
    use axum::extract::{ConnectInfo, State};
    use axum::response::IntoResponse;
    async fn upgrade(
        State(core): State<Arc<SipCore>>,
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        ws: WebSocketUpgrade,
    ) -> axum::response::Response {
        let out = core.out.clone();
        let Some(slot) = out.admit(Transport::Wss, peer) else {
            let busy = [(axum::http::header::RETRY_AFTER, "30")];
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, busy, "too many SIP connections\n").into_response();
        };
        ws.protocols(["sip"])
            .max_message_size(transport::WEBSOCKET_MAX_MESSAGE)
            .max_frame_size(transport::WEBSOCKET_MAX_MESSAGE)
            .on_upgrade(move |socket| async move {
                out.adopt_websocket(socket, peer, slot);
            })
            .into_response()
    }
    axum::Router::new().route(WEBSOCKET_PATH, axum::routing::get(upgrade)).with_state(core)
}

/// Where browsers and WebSocket SIP clients connect on the Front End's HTTPS listener.
pub const WEBSOCKET_PATH: &str = "/sip-ws";

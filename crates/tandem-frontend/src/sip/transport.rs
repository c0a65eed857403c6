//! SIP transports: UDP, TCP and TLS listeners, the flows messages arrive on, and sending back
//! over the same flow (a client behind NAT or on TCP can only be reached that way).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use tandem_sip_proto::{Limits, Message, StreamItem, StreamParser, Transport, parse_datagram};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Messages queued for one stream connection before it counts as stuck and is closed.
const STREAM_QUEUE: usize = 512;
/// The largest SIP message over WebSocket, as over any transport (the parser's limit); axum's
/// default would buffer 64 MiB per message before anyone signed in.
pub const WEBSOCKET_MAX_MESSAGE: usize = 65_535;
/// At most one "connection refused" warning per this interval, so a flood does not flood the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Bounds on stream connections (`frontend.sip_max_stream_connections*`,
/// `frontend.sip_stream_idle_timeout_secs`).
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Concurrent connections accepted per listener: TCP, TLS and WebSocket each.
    pub per_listener: usize,
    pub per_source: usize,
    /// A stream with no traffic in either direction (CRLF keep-alives count) for this long is
    /// closed.
    pub idle: Duration,
}

/// Counts of accepted stream connections, per listener and per source address.
#[derive(Debug, Default)]
struct Admitted {
    per_listener: HashMap<Transport, usize>,
    per_source: HashMap<IpAddr, usize>,
}

/// A place among the accepted connections; given back when the connection ends.
#[derive(Debug)]
pub struct Slot {
    owner: std::sync::Weak<Outbound>,
    transport: Transport,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(owner) = self.owner.upgrade() else { return };
        let mut a = lock(&owner.admitted);
        if let Some(n) = a.per_listener.get_mut(&self.transport) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = a.per_source.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                a.per_source.remove(&self.ip);
            }
        }
    }
}

/// Where a message came from, and so how to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flow {
    Udp { peer: SocketAddr },
    Stream { id: u64, transport: Transport, peer: SocketAddr },
}

impl Flow {
    pub fn peer(&self) -> SocketAddr {
        match self {
            Flow::Udp { peer } | Flow::Stream { peer, .. } => *peer,
        }
    }

    pub fn transport(&self) -> Transport {
        match self {
            Flow::Udp { .. } => Transport::Udp,
            Flow::Stream { transport, .. } => *transport,
        }
    }

    /// Stored with a registration so it can be rebuilt after a restart (streams are gone then).
    pub fn describe(&self) -> String {
        format!("{} {}", self.transport().as_str(), self.peer())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the connection to {0} is closed")]
    Closed(SocketAddr),
    #[error("cannot send to {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("no UDP socket to send from")]
    NoSocket,
}

/// A received message and its flow, handed to the core.
#[derive(Debug)]
pub struct Inbound {
    pub message: Message,
    pub flow: Flow,
    /// When the message was read off its transport: overload control measures the wait from here.
    pub received: Instant,
}

/// An open stream connection: its peer and the queue its writer drains.
type StreamHandle = (SocketAddr, mpsc::Sender<Vec<u8>>);

/// Sending side of every transport.
#[derive(Debug)]
pub struct Outbound {
    udp: Mutex<Option<Arc<UdpSocket>>>,
    streams: Mutex<HashMap<u64, StreamHandle>>,
    next_id: AtomicU64,
    limits: Limits,
    streams_limits: StreamLimits,
    admitted: Mutex<Admitted>,
    last_refusal_log: Mutex<Option<Instant>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    inbound: mpsc::Sender<Inbound>,
    /// Stream flows that closed, so registrations over them can end (RFC 5626 §4.4.1).
    closed: mpsc::UnboundedSender<Flow>,
}

impl Outbound {
    pub fn new(
        tasks: TaskTracker,
        shutdown: CancellationToken,
        inbound: mpsc::Sender<Inbound>,
        closed: mpsc::UnboundedSender<Flow>,
        streams_limits: StreamLimits,
    ) -> Arc<Outbound> {
        Arc::new(Outbound {
            udp: Mutex::new(None),
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            limits: Limits::default(),
            streams_limits,
            admitted: Mutex::new(Admitted::default()),
            last_refusal_log: Mutex::new(None),
            tasks,
            shutdown,
            inbound,
            closed,
        })
    }

    fn udp_socket(&self) -> Option<Arc<UdpSocket>> {
        self.udp.lock().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Sends bytes on a flow.
    pub async fn send(&self, flow: &Flow, bytes: Vec<u8>) -> Result<(), SendError> {
        match flow {
            Flow::Udp { peer } => {
                let socket = self.udp_socket().ok_or(SendError::NoSocket)?;
                socket.send_to(&bytes, peer).await.map_err(|e| SendError::Io(*peer, e))?;
                metrics::counter!("tandem_sip_messages_sent_total", "transport" => "udp").increment(1);
                Ok(())
            }
            Flow::Stream { id, peer, transport } => {
                let sender = lock(&self.streams).get(id).map(|(_, s)| s.clone());
                let sender = sender.ok_or(SendError::Closed(*peer))?;
                if sender.try_send(bytes).is_err() {
                    return Err(SendError::Closed(*peer));
                }
                metrics::counter!("tandem_sip_messages_sent_total", "transport" => transport.as_str()).increment(1);
                Ok(())
            }
        }
    }

    /// A flow to `addr`: an open stream connection to it if there is one, else a new TCP
    /// connection for TCP, else UDP.
    pub async fn flow_to(self: &Arc<Self>, addr: SocketAddr, transport: Transport) -> Result<Flow, SendError> {
        if transport == Transport::Udp {
            return Ok(Flow::Udp { peer: addr });
        }
        let existing = lock(&self.streams).iter().find(|(_, (peer, _))| *peer == addr).map(|(id, _)| *id);
        if let Some(id) = existing {
            return Ok(Flow::Stream { id, transport, peer: addr });
        }
        if transport != Transport::Tcp {
            // We do not open TLS or WebSocket connections to clients; they connect to us.
            return Err(SendError::Closed(addr));
        }
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| SendError::Io(addr, std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| SendError::Io(addr, e))?;
        let _ = stream.set_nodelay(true);
        // A connection we open is not counted against the listeners' caps.
        Ok(self.adopt_stream(stream, addr, Transport::Tcp, None))
    }

    /// Admits a new connection on a listener, or refuses it (`None`: close it at once) when the
    /// listener or its source address is at its cap.
    pub fn admit(self: &Arc<Self>, transport: Transport, peer: SocketAddr) -> Option<Slot> {
        let limits = self.streams_limits;
        let ip = peer.ip();
        let refused = {
            let mut a = lock(&self.admitted);
            let listener = a.per_listener.get(&transport).copied().unwrap_or(0);
            let source = a.per_source.get(&ip).copied().unwrap_or(0);
            if listener >= limits.per_listener {
                Some(("listener", limits.per_listener))
            } else if source >= limits.per_source {
                Some(("source", limits.per_source))
            } else {
                *a.per_listener.entry(transport).or_default() += 1;
                *a.per_source.entry(ip).or_default() += 1;
                None
            }
        };
        let Some((cap, limit)) = refused else {
            return Some(Slot { owner: Arc::downgrade(self), transport, ip });
        };
        metrics::counter!("tandem_sip_connections_refused_total", "cap" => cap).increment(1);
        let now = Instant::now();
        let mut last = lock(&self.last_refusal_log);
        if last.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL) {
            *last = Some(now);
            tracing::warn!(
                %peer,
                transport = transport.as_str(),
                cap,
                limit,
                "SIP connection refused: too many connections (frontend.sip_max_stream_connections{})",
                if cap == "source" { "_per_source" } else { "" }
            );
        }
        None
    }

    fn adopt_stream<S>(self: &Arc<Self>, stream: S, peer: SocketAddr, transport: Transport, slot: Option<Slot>) -> Flow
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        lock(&self.streams).insert(id, (peer, tx.clone()));
        let flow = Flow::Stream { id, transport, peer };
        let run = StreamConnection {
            owner: Arc::downgrade(self),
            flow: flow.clone(),
            limits: self.limits,
            idle: self.streams_limits.idle,
            inbound: self.inbound.clone(),
            pong: tx,
            shutdown: self.shutdown.clone(),
            _slot: slot,
        };
        self.tasks.spawn(run.run(stream, rx));
        flow
    }

    /// Takes over an upgraded WebSocket (RFC 7118): each WebSocket message is one SIP message.
    pub fn adopt_websocket(
        self: &Arc<Self>,
        socket: axum::extract::ws::WebSocket,
        peer: SocketAddr,
        slot: Slot,
    ) -> Flow {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        lock(&self.streams).insert(id, (peer, tx));
        let flow = Flow::Stream { id, transport: Transport::Wss, peer };
        let run = WebSocketConnection {
            owner: Arc::downgrade(self),
            flow: flow.clone(),
            limits: self.limits,
            idle: self.streams_limits.idle,
            inbound: self.inbound.clone(),
            shutdown: self.shutdown.clone(),
            _slot: slot,
        };
        self.tasks.spawn(run.run(socket, rx));
        flow
    }

    fn forget(&self, id: u64) {
        if let Some((peer, _)) = lock(&self.streams).remove(&id) {
            let transport = Transport::Tcp; // only the id matters for matching
            let _ = self.closed.send(Flow::Stream { id, transport, peer });
        }
    }

    pub fn open_streams(&self) -> usize {
        lock(&self.streams).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct StreamConnection {
    /// Weak, so a connection never keeps the transport alive.
    owner: std::sync::Weak<Outbound>,
    flow: Flow,
    limits: Limits,
    idle: Duration,
    inbound: mpsc::Sender<Inbound>,
    pong: mpsc::Sender<Vec<u8>>,
    shutdown: CancellationToken,
    /// The connection's place under the caps, given back when it ends.
    _slot: Option<Slot>,
}

impl StreamConnection {
    async fn run<S>(self, stream: S, mut outgoing: mpsc::Receiver<Vec<u8>>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut parser = StreamParser::new(self.limits);
        let mut buf = vec![0u8; 16 * 1024];
        let Flow::Stream { id, .. } = self.flow else { return };
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                out = outgoing.recv() => match out {
                    Some(bytes) => if writer.write_all(&bytes).await.is_err() { break },
                    None => break,
                },
                read = tokio::time::timeout(self.idle, reader.read(&mut buf)) => {
                    let n = match read {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(n)) => n,
                    };
                    parser.push(&buf[..n]);
                    if !self.drain(&mut parser).await {
                        break;
                    }
                }
            }
        }
        let _ = writer.shutdown().await;
        if let Some(owner) = self.owner.upgrade() {
            owner.forget(id);
        }
    }

    /// Hands every complete message to the core; false when the stream must close.
    async fn drain(&self, parser: &mut StreamParser) -> bool {
        loop {
            match parser.next_item() {
                Ok(None) => return true,
                Ok(Some(StreamItem::Ping)) => {
                    let _ = self.pong.try_send(b"\r\n".to_vec());
                }
                Ok(Some(StreamItem::Message(message))) => {
                    metrics::counter!("tandem_sip_messages_received_total", "transport" => self.flow.transport().as_str()).increment(1);
                    if self
                        .inbound
                        .send(Inbound { message: *message, flow: self.flow.clone(), received: Instant::now() })
                        .await
                        .is_err()
                    {
                        return false;
                    }
                }
                Err(rejected) => {
                    metrics::counter!("tandem_sip_parse_errors_total", "transport" => self.flow.transport().as_str())
                        .increment(1);
                    tracing::debug!(peer = %self.flow.peer(), error = %rejected.error, "bad SIP message on a stream");
                    match rejected.reply {
                        Some(reply) => {
                            let _ = self.pong.try_send(reply.to_bytes());
                        }
                        // Framing is lost: the stream cannot continue.
                        None => return false,
                    }
                }
            }
        }
    }
}

struct WebSocketConnection {
    owner: std::sync::Weak<Outbound>,
    flow: Flow,
    limits: Limits,
    idle: Duration,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
    _slot: Slot,
}

impl WebSocketConnection {
    async fn run(self, mut socket: axum::extract::ws::WebSocket, mut outgoing: mpsc::Receiver<Vec<u8>>) {
        use axum::extract::ws::Message as Ws;
        let Flow::Stream { id, .. } = self.flow else { return };
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                out = outgoing.recv() => {
                    let Some(bytes) = out else { break };
                    // SIP is UTF-8 text in practice; a body that is not goes as a binary frame.
                    let frame = match String::from_utf8(bytes) {
                        Ok(text) => Ws::Text(text.into()),
                        Err(e) => Ws::Binary(e.into_bytes().into()),
                    };
                    if socket.send(frame).await.is_err() { break }
                }
                incoming = tokio::time::timeout(self.idle, socket.recv()) => {
                    let data: Vec<u8> = match incoming {
                        Ok(Some(Ok(Ws::Text(t)))) => t.as_bytes().to_vec(),
                        Ok(Some(Ok(Ws::Binary(b)))) => b.to_vec(),
                        Ok(Some(Ok(Ws::Ping(_) | Ws::Pong(_)))) => continue,
                        _ => break,
                    };
                    match parse_datagram(&data, &self.limits) {
                        Ok(None) => {}
                        Ok(Some(message)) => {
                            metrics::counter!("tandem_sip_messages_received_total", "transport" => "WSS").increment(1);
                            if self.inbound.send(Inbound { message, flow: self.flow.clone(), received: Instant::now() }).await.is_err() {
                                break;
                            }
                        }
                        Err(rejected) => {
                            metrics::counter!("tandem_sip_parse_errors_total", "transport" => "WSS").increment(1);
                            if let Some(reply) = rejected.reply
                                && let Ok(text) = String::from_utf8(reply.to_bytes())
                                && socket.send(Ws::Text(text.into())).await.is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            }
        }
        if let Some(owner) = self.owner.upgrade() {
            owner.forget(id);
        }
    }
}

/// Bound sockets, before serving starts (so a taken port is reported at once).
#[derive(Debug)]
pub struct Listeners {
    pub udp: Arc<UdpSocket>,
    pub tcp: TcpListener,
    pub tls: TcpListener,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for SIP on {transport} {addr}: {source}; is another SIP server running? change frontend.sip_{lower}_listen in tandem.toml", lower = transport.to_ascii_lowercase())]
pub struct BindError {
    pub transport: &'static str,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

pub async fn bind(udp: SocketAddr, tcp: SocketAddr, tls: SocketAddr) -> Result<Listeners, BindError> {
    let udp_socket = UdpSocket::bind(udp).await.map_err(|source| BindError { transport: "UDP", addr: udp, source })?;
    let tcp_listener =
        TcpListener::bind(tcp).await.map_err(|source| BindError { transport: "TCP", addr: tcp, source })?;
    let tls_listener =
        TcpListener::bind(tls).await.map_err(|source| BindError { transport: "TLS", addr: tls, source })?;
    Ok(Listeners { udp: Arc::new(udp_socket), tcp: tcp_listener, tls: tls_listener })
}

/// Starts receiving on every listener; messages go to the `inbound` channel of `outbound`.
pub fn serve(listeners: Listeners, tls: TlsAcceptor, outbound: &Arc<Outbound>) {
    *lock(&outbound.udp) = Some(listeners.udp.clone());

    let (tasks, shutdown) = (outbound.tasks.clone(), outbound.shutdown.clone());
    let udp = listeners.udp;
    let inbound = outbound.inbound.clone();
    let limits = outbound.limits;
    let udp_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, peer) = tokio::select! {
                _ = udp_shutdown.cancelled() => break,
                r = udp.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    // ICMP port unreachable from an earlier send shows up here on Linux; ignore.
                    Err(_) => continue,
                },
            };
            let received = Instant::now();
            if n == buf.len() {
                metrics::counter!("tandem_sip_parse_errors_total", "transport" => "UDP").increment(1);
                continue; // truncated: larger than any SIP datagram we accept
            }
            match parse_datagram(&buf[..n], &limits) {
                Ok(None) => {}
                Ok(Some(message)) => {
                    metrics::counter!("tandem_sip_messages_received_total", "transport" => "UDP").increment(1);
                    if inbound.try_send(Inbound { message, flow: Flow::Udp { peer }, received }).is_err() {
                        // The core is saturated: UDP senders retransmit, so dropping is safe.
                        metrics::counter!("tandem_sip_dropped_total", "reason" => "overload").increment(1);
                    }
                }
                Err(rejected) => {
                    metrics::counter!("tandem_sip_parse_errors_total", "transport" => "UDP").increment(1);
                    if let Some(reply) = rejected.reply {
                        let _ = udp.send_to(&reply.to_bytes(), peer).await;
                    }
                }
            }
        }
    });

    for (listener, transport) in [(listeners.tcp, Transport::Tcp), (listeners.tls, Transport::Tls)] {
        let out = outbound.clone();
        let acceptor = tls.clone();
        let stop = shutdown.clone();
        let conn_tasks = tasks.clone();
        tasks.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue; }
                    },
                };
                // Over a cap: closed at once, before any buffer or handshake is spent on it.
                let Some(slot) = out.admit(transport, peer) else { continue };
                let _ = stream.set_nodelay(true);
                if transport == Transport::Tcp {
                    out.adopt_stream(stream, peer, Transport::Tcp, Some(slot));
                } else {
                    let acceptor = acceptor.clone();
                    let out = out.clone();
                    conn_tasks.spawn(async move {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                out.adopt_stream(tls, peer, Transport::Tls, Some(slot));
                            }
                            _ => tracing::debug!(%peer, "SIP TLS handshake failed"),
                        }
                    });
                }
            }
        });
    }
}

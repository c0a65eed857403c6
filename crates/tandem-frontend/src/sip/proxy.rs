//! The stateful forking proxy (RFC 3261 §16) on top of the transaction tables.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_sip_proto::{HeaderView, Method, Request, Response, Scheme, Transport, Uri, Via};
use tokio::sync::oneshot;

use super::transport::{Flow, Outbound};
use super::txn::{ClientTxn, Owner, ServerKey, ServerTxn, TIMEOUT};
use super::{SipCore, random_token};

/// RFC 3261 §18.1.1: requests larger than this go over TCP when they can (the path MTU unknown).
pub const UDP_MTU_BOUND: usize = 1300;
/// The largest UDP payload over IPv4 (65,535 − 8 − 20): a larger datagram cannot be sent.
pub const UDP_MAX_PAYLOAD: usize = 65_507;
/// Room for the Via (and Max-Forwards) a request gets after its size is taken.
const VIA_ALLOWANCE: usize = 200;

/// One proxied request and its branches.
#[derive(Debug)]
pub struct ProxyContext {
    server_key: ServerKey,
    upstream: Flow,
    invite: bool,
    pending: HashSet<String>,
    best: Option<Response>,
    /// A final response went upstream already (a 2xx for INVITE may still follow from others).
    answered: bool,
    created: Instant,
    /// Call answering: where an unanswered call goes instead of its best failure.
    divert: Option<Divert>,
    /// The caller CANCELled: nothing diverts.
    caller_cancelled: bool,
}

/// A call to a UM-enabled user: the INVITE as it came, and when ringing stops.
#[derive(Debug)]
pub(super) struct Divert {
    pub request: Request,
    pub um: crate::store::UmMailboxRow,
    pub deadline: Instant,
    /// The ring time ran out and the branches were CANCELled.
    pub rang_out: bool,
}

#[derive(Debug, Default)]
pub struct Transactions {
    server: HashMap<ServerKey, ServerTxn>,
    /// Keyed by `branch|METHOD`, since a CANCEL shares its INVITE's branch.
    client: HashMap<String, ClientTxn>,
    contexts: HashMap<u64, ProxyContext>,
    next_context: u64,
    /// Told the final status their server transaction answers (see [`FinalObserver`]).
    observers: HashMap<ServerKey, FinalObserver>,
}

/// Called once with the final status a server transaction answers: conversation history learns
/// whether a relayed MESSAGE was accepted by an endpoint and whether a call was answered.
pub(crate) struct FinalObserver(pub(super) Box<dyn FnOnce(u16) + Send>);

impl FinalObserver {
    pub(crate) fn new(f: impl FnOnce(u16) + Send + 'static) -> FinalObserver {
        FinalObserver(Box::new(f))
    }
}

impl std::fmt::Debug for FinalObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FinalObserver")
    }
}

fn client_key(branch: &str, method: &Method) -> String {
    format!("{branch}|{method}")
}

/// Preference among final responses when no branch succeeded (RFC 3261 §16.7 step 6, simplified):
/// 6xx wins, then the lowest class, and within 4xx a specific answer beats 408/480.
fn better(a: &Response, b: &Response) -> bool {
    let rank = |r: &Response| match r.status {
        600..=699 => 0,
        401 | 407 => 1,
        486 | 404 | 403 => 2,
        400..=499 if r.status != 408 && r.status != 480 => 3,
        480 => 4,
        300..=399 => 5,
        408 => 6,
        _ => 7,
    };
    rank(a) < rank(b)
}

impl SipCore {
    fn txns(&self) -> std::sync::MutexGuard<'_, Transactions> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `None`: no such transaction. `Some(None)`: known, nothing sent yet, absorb silently.
    pub(super) fn replay_for(&self, key: &ServerKey) -> Option<Option<(Flow, Vec<u8>)>> {
        let t = self.txns();
        let txn = t.server.get(key)?;
        Some(txn.replay().map(|(f, b)| (f.clone(), b.to_vec())))
    }

    /// `observer` hears the final status the server transaction `key` answers.
    pub(super) fn observe_final(&self, key: &ServerKey, observer: FinalObserver) {
        self.txns().observers.insert(key.clone(), observer);
    }

    /// The observer of `key`'s final status, taken (the voicemail user agent tells it the
    /// status the call would have ended with: a call voicemail answered is a missed call).
    pub(super) fn take_observer(&self, key: &ServerKey) -> Option<FinalObserver> {
        self.txns().observers.remove(key)
    }

    pub(super) fn begin_server(&self, key: &ServerKey, flow: &Flow, invite: bool) {
        self.txns().server.entry(key.clone()).or_insert_with(|| ServerTxn::new(flow.clone(), invite));
    }

    /// Sends a response within its server transaction.
    pub(super) async fn respond(&self, key: &ServerKey, flow: &Flow, response: Response) {
        send_response(&self.txns, &self.out, key, flow, response).await;
    }

    /// `key`: the INVITE transaction the ACK would end (its branch and sent-by).
    pub(super) async fn on_ack(self: &Arc<Self>, req: Request, key: ServerKey) {
        {
            let mut t = self.txns();
            if let Some(txn) = t.server.remove(&key) {
                match txn.on_ack() {
                    Ok(next) => {
                        t.server.insert(key, next);
                        return;
                    }
                    Err(_) => {
                        // Not a non-2xx ACK: it is the end-to-end ACK of a 2xx; route it below.
                    }
                }
            }
        }
        // The ACK of the voicemail user agent's 200 ends here.
        if self.is_vm_dialog(&req) {
            self.vm_acked(&req);
            return;
        }
        // So does the ACK of the conference focus's.
        if self.is_focus_dialog(&req) {
            self.focus_acked(&req);
            return;
        }
        // ACK for a 2xx: stateless, along Route or to the Request-URI.
        let mut req = req;
        if let Some(top) = req.headers.values("Route").first().map(|s| s.to_string())
            && let Ok(na) = tandem_sip_proto::NameAddr::parse(&top)
            && self.is_us(&na.uri.host, na.uri.port)
        {
            req.headers.pop_first_value("Route");
        }
        let target = match req.headers.values("Route").first().and_then(|r| tandem_sip_proto::NameAddr::parse(r).ok()) {
            Some(na) => na.uri,
            None => req.uri.clone(),
        };
        let known = self.location.flow_for_contact(&target);
        let Some(out_flow) = self.flow_for(&target, known).await else { return };
        let incoming_branch = req.branch().unwrap_or_default();
        self.prepare_forward(
            &mut req,
            out_flow.transport(),
            &format!("z9hG4bKa{}", short_hash(&incoming_branch)),
            false,
        );
        let _ = self.out.send(&out_flow, req.to_bytes()).await;
    }

    pub(super) async fn on_cancel(self: &Arc<Self>, req: &Request, flow: &Flow, key: &ServerKey) {
        let invite_key = ServerKey { method: Method::Invite, ..key.clone() };
        let cancels: Option<Vec<(Request, Flow)>> = {
            let mut t = self.txns();
            if !t.server.contains_key(&invite_key) {
                None
            } else {
                if let Some(c) = t.contexts.values_mut().find(|c| c.server_key == invite_key) {
                    c.caller_cancelled = true;
                }
                let ctx = t.contexts.values().find(|c| c.server_key == invite_key);
                Some(
                    ctx.map(|c| {
                        c.pending
                            .iter()
                            .filter_map(|b| t.client.get(&client_key(b, &Method::Invite)))
                            .map(|ct| (cancel_for(&ct.request), ct.flow.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                )
            }
        };
        let Some(cancels) = cancels else {
            self.respond(key, flow, req.response(481)).await;
            return;
        };
        self.respond(key, flow, req.response(200)).await;
        for (cancel, out_flow) in cancels {
            self.send_client(cancel, out_flow, Owner::Local(None)).await;
        }
    }

    /// Rewrites a request for the next hop: Max-Forwards, our Via, optional Record-Route.
    fn prepare_forward(&self, req: &mut Request, transport: Transport, branch: &str, record_route: bool) {
        let mf = req.headers.get("Max-Forwards").and_then(|m| m.trim().parse::<u8>().ok()).unwrap_or(71);
        req.headers.set("Max-Forwards", mf.saturating_sub(1).to_string());
        let port = match transport {
            Transport::Udp => self.settings.udp.port(),
            Transport::Tcp => self.settings.tcp.port(),
            _ => self.settings.tls.port(),
        };
        req.headers.push_front(
            "Via",
            format!("SIP/2.0/{} {}:{port};branch={branch};rport", transport.as_str(), self.settings.advertised_host),
        );
        if record_route {
            req.headers.push_front("Record-Route", format!("<{};lr>", self.own_uri(transport)));
        }
    }

    /// Where to send a request for `target`: a known flow, or the URI's address.
    pub(super) async fn flow_for(self: &Arc<Self>, target: &Uri, known: Option<Flow>) -> Option<Flow> {
        if let Some(f) = known {
            return Some(f);
        }
        let (addr, transport) = resolve(target).await?;
        self.out.flow_to(addr, transport).await.ok()
    }

    /// Forwards to every target (parallel forking) and relays the best answer upstream.
    pub(super) async fn forward(
        self: &Arc<Self>,
        req: Request,
        upstream: Flow,
        key: ServerKey,
        targets: Vec<(Uri, Option<Flow>)>,
    ) {
        Box::pin(self.forward_or_divert(req, upstream, key, targets, None)).await;
    }

    /// [`Self::forward`], with call answering when `divert` is given: at its deadline the
    /// branches are CANCELled, and a call no branch answered goes to the voicemail user agent.
    pub(super) async fn forward_or_divert(
        self: &Arc<Self>,
        req: Request,
        upstream: Flow,
        key: ServerKey,
        targets: Vec<(Uri, Option<Flow>)>,
        divert: Option<Divert>,
    ) {
        let invite = req.method == Method::Invite;
        if invite {
            self.respond(&key, &upstream, req.response(100)).await;
        }
        let dialog_creating = matches!(req.method, Method::Invite | Method::Subscribe | Method::Refer)
            && req.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_none();
        let context = {
            let mut t = self.txns();
            t.next_context += 1;
            let id = t.next_context;
            t.contexts.insert(
                id,
                ProxyContext {
                    server_key: key.clone(),
                    upstream: upstream.clone(),
                    invite,
                    pending: HashSet::new(),
                    best: None,
                    answered: false,
                    created: Instant::now(),
                    divert,
                    caller_cancelled: false,
                },
            );
            id
        };
        let mut sent = 0;
        for (target, known) in targets {
            let Some(flow) = self.flow_for(&target, known).await else { continue };
            let mut fwd = req.clone();
            fwd.uri = target;
            let branch = format!("z9hG4bK{}", random_token());
            self.prepare_forward(&mut fwd, flow.transport(), &branch, dialog_creating);
            self.txns().contexts.get_mut(&context).map(|c| c.pending.insert(branch.clone()));
            if self.send_client(fwd, flow, Owner::Proxy { context }).await {
                sent += 1;
            } else if let Some(c) = self.txns().contexts.get_mut(&context) {
                c.pending.remove(&branch);
            }
        }
        if sent == 0 {
            let ctx = self.txns().contexts.remove(&context);
            if let Some(d) = ctx.and_then(|c| c.divert) {
                Box::pin(self.answer_with_voicemail(d.request, upstream, key, d.um, super::answer::Why::NoEndpoint))
                    .await;
                return;
            }
            self.respond(&key, &upstream, req.response(480).with_to_tag(&random_token())).await;
        }
    }

    /// Starts a client transaction; false when the request could not be sent at all.
    pub(super) async fn send_client(&self, req: Request, flow: Flow, owner: Owner) -> bool {
        let Some(branch) = req.branch() else { return false };
        let txn = ClientTxn::new(req, flow.clone(), owner);
        let bytes = txn.bytes.clone();
        let method = txn.method.clone();
        self.txns().client.insert(client_key(&branch, &method), txn);
        match self.out.send(&flow, bytes).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "request not sent");
                self.txns().client.remove(&client_key(&branch, &method));
                false
            }
        }
    }

    /// Sends a request this server originates and waits for its final response.
    pub(super) async fn request(&self, mut req: Request, flow: Flow) -> Option<Response> {
        let branch = format!("z9hG4bK{}", random_token());
        let size = req.to_bytes().len() + VIA_ALLOWANCE;
        let flow = match flow {
            // RFC 3261 §18.1.1: a request within 200 bytes of the path MTU, or larger than
            // 1300 bytes when the MTU is unknown, goes over a congestion-controlled transport:
            // TCP to the same address (the connection is kept and reused for the next one).
            // When none can be opened (a UDP-only client) it may still go over UDP, as the
            // section allows — but only what a datagram holds; more is refused below, never
            // handed to the socket to fail.
            Flow::Udp { peer } if size > UDP_MTU_BOUND => match self.out.flow_to(peer, Transport::Tcp).await {
                Ok(f) => {
                    metrics::counter!("tandem_sip_requests_moved_to_tcp_total").increment(1);
                    f
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, size, "no TCP connection to a UDP client; the request stays on UDP");
                    flow
                }
            },
            f => f,
        };
        if flow.transport() == Transport::Udp && size > UDP_MAX_PAYLOAD {
            metrics::counter!("tandem_sip_requests_too_large_for_udp_total").increment(1);
            tracing::warn!(
                peer = %flow.peer(),
                size,
                method = %req.method.as_str(),
                "a request too large for a UDP datagram was not sent: the client takes no TCP connection \
                 (RFC 3261 §18.1.1); sign it in over TCP or TLS"
            );
            return None;
        }
        let port = match flow.transport() {
            Transport::Udp => self.settings.udp.port(),
            Transport::Tcp => self.settings.tcp.port(),
            _ => self.settings.tls.port(),
        };
        req.headers.push_front(
            "Via",
            format!(
                "SIP/2.0/{} {}:{port};branch={branch};rport",
                flow.transport().as_str(),
                self.settings.advertised_host
            ),
        );
        if !req.headers.has("Max-Forwards") {
            req.headers.push("Max-Forwards", "70");
        }
        let (tx, rx) = oneshot::channel();
        if !self.send_client(req, flow, Owner::Local(Some(tx))).await {
            return None;
        }
        tokio::time::timeout(TIMEOUT + Duration::from_secs(1), rx).await.ok().and_then(Result::ok)
    }

    pub(super) async fn on_response(self: &Arc<Self>, mut resp: Response) {
        let Ok(via) = resp.top_via() else { return };
        let Some(branch) = via.branch().map(str::to_owned) else { return };
        let Ok(cseq) = resp.cseq() else { return };
        let ckey = client_key(&branch, &cseq.method);
        enum Next {
            Provisional(Option<(ServerKey, Flow)>),
            Final(Owner, Request, Flow),
            Stateless,
        }
        let next = {
            let mut guard = self.txns();
            let t = &mut *guard;
            match t.client.get_mut(&ckey) {
                Some(ct) if resp.status < 200 => {
                    ct.on_provisional();
                    let up = match &ct.owner {
                        Owner::Proxy { context } => {
                            t.contexts.get(context).map(|c| (c.server_key.clone(), c.upstream.clone()))
                        }
                        Owner::Local(_) => None,
                    };
                    Next::Provisional(up)
                }
                Some(_) => match t.client.remove(&ckey) {
                    Some(ct) => Next::Final(ct.owner, ct.request, ct.flow),
                    None => return,
                },
                None => Next::Stateless,
            }
        };
        match next {
            Next::Provisional(None) => {}
            Next::Provisional(Some((key, upstream))) => {
                if resp.status > 100 {
                    resp.headers.pop_first_value("Via");
                    self.respond(&key, &upstream, resp).await;
                }
            }
            Next::Final(owner, request, down_flow) => {
                if request.method == Method::Invite && resp.status >= 300 {
                    let ack = ack_for(&request, &resp);
                    let _ = self.out.send(&down_flow, ack.to_bytes()).await;
                }
                match owner {
                    Owner::Local(Some(tx)) => {
                        let _ = tx.send(resp);
                    }
                    Owner::Local(None) => {}
                    Owner::Proxy { context } => self.branch_final(context, &branch, resp).await,
                }
            }
            Next::Stateless => {
                // A 2xx retransmission for an INVITE whose transaction ended: forward by Via.
                let ours = via.host.to_string() == self.settings.advertised_host;
                if !ours {
                    return;
                }
                resp.headers.pop_first_value("Via");
                let Ok(next_via) = resp.top_via() else { return };
                let Some(addr) = via_address(&next_via) else { return };
                if let Ok(flow) = self.out.flow_to(addr, next_via.transport).await {
                    let _ = self.out.send(&flow, resp.to_bytes()).await;
                }
            }
        }
    }

    /// A branch's final response: relay, or keep as a candidate until every branch is done.
    async fn branch_final(self: &Arc<Self>, context: u64, branch: &str, mut resp: Response) {
        resp.headers.pop_first_value("Via");
        let mut cancels = Vec::new();
        let mut to_voicemail = None;
        let send: Option<(ServerKey, Flow, Response)> = {
            let mut t = self.txns();
            let Some(ctx) = t.contexts.get_mut(&context) else { return };
            ctx.pending.remove(branch);
            let mut out = None;
            if (200..300).contains(&resp.status) {
                if ctx.invite || !ctx.answered {
                    ctx.answered = true;
                    out = Some((ctx.server_key.clone(), ctx.upstream.clone(), resp));
                }
                if ctx.invite {
                    let pending: Vec<String> = ctx.pending.iter().cloned().collect();
                    for b in pending {
                        if let Some(ct) = t.client.get(&client_key(&b, &Method::Invite)) {
                            cancels.push((cancel_for(&ct.request), ct.flow.clone()));
                        }
                    }
                }
            } else if !ctx.answered {
                let replace = ctx.best.as_ref().is_none_or(|b| better(&resp, b));
                if replace {
                    ctx.best = Some(resp);
                }
            }
            let Some(ctx) = t.contexts.get_mut(&context) else { return };
            if ctx.pending.is_empty() {
                let done = t.contexts.remove(&context);
                if out.is_none()
                    && let Some(ctx) = done
                    && !ctx.answered
                    && let Some(best) = ctx.best
                {
                    match ctx.divert {
                        Some(d) if !ctx.caller_cancelled && super::answer::diverts(best.status, d.rang_out) => {
                            let why = if d.rang_out || best.status == 408 || best.status == 487 {
                                super::answer::Why::NoAnswer
                            } else {
                                super::answer::Why::Busy
                            };
                            to_voicemail = Some((d, ctx.server_key, ctx.upstream, why));
                        }
                        _ => out = Some((ctx.server_key, ctx.upstream, best)),
                    }
                }
            }
            out
        };
        if let Some((d, key, upstream, why)) = to_voicemail {
            Box::pin(self.answer_with_voicemail(d.request, upstream, key, d.um, why)).await;
            return;
        }
        for (cancel, flow) in cancels {
            self.send_client(cancel, flow, Owner::Local(None)).await;
        }
        if let Some((key, upstream, resp)) = send {
            self.respond(&key, &upstream, resp).await;
        }
    }
}

/// Sends a response within its server transaction, which records it for retransmissions; a
/// response the transaction's state does not allow (a second final one) is not sent.
pub(super) async fn send_response(
    txns: &Mutex<Transactions>,
    out: &Outbound,
    key: &ServerKey,
    flow: &Flow,
    response: Response,
) {
    let bytes = response.to_bytes();
    let observer = {
        let mut t = txns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(txn) = t.server.remove(key) {
            match txn.on_send(&response, &bytes) {
                Ok(Some(next)) => {
                    t.server.insert(key.clone(), next);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, status = response.status, "response not sent");
                    return;
                }
            }
        }
        if response.status >= 200 && !t.observers.is_empty() { t.observers.remove(key) } else { None }
    };
    if let Some(FinalObserver(tell)) = observer {
        tell(response.status);
    }
    if let Err(e) = out.send(flow, bytes).await {
        tracing::debug!(error = %e, "response not delivered");
    }
}

/// Timers: client retransmissions and time-outs, server final-response resends, clean-up.
pub(super) async fn on_tick(core: &Arc<SipCore>) {
    let now = Instant::now();
    let mut resend: Vec<(Flow, Vec<u8>)> = Vec::new();
    let mut timeouts: Vec<(u64, String, Request)> = Vec::new();
    let mut ring_out: Vec<(Request, Flow)> = Vec::new();
    {
        let mut t = core.txns();
        let mut dead = Vec::new();
        for (k, ct) in t.client.iter_mut() {
            if ct.timed_out(now) {
                dead.push(k.clone());
            } else if let Some(bytes) = ct.due_retransmit(now) {
                resend.push((ct.flow.clone(), bytes));
            }
        }
        for k in dead {
            if let Some(ct) = t.client.remove(&k)
                && let Owner::Proxy { context } = ct.owner
            {
                let branch = k.split('|').next().unwrap_or_default().to_owned();
                timeouts.push((context, branch, ct.request));
            }
        }
        t.server.retain(|_, s| !s.expired(now));
        let Transactions { observers, server, .. } = &mut *t;
        observers.retain(|k, _| server.contains_key(k));
        for s in t.server.values_mut() {
            if let ServerTxn::Completed(c) = s
                && let Some((at, interval)) = c.resend
                && now >= at
            {
                let next = (interval * 2).min(super::txn::T2);
                c.resend = Some((now + next, next));
                resend.push((c.flow.clone(), c.final_bytes.clone()));
            }
        }
        // Call answering: ringing stops at the deadline; the 487s then divert (branch_final).
        let Transactions { contexts, client, .. } = &mut *t;
        for c in contexts.values_mut() {
            if let Some(d) = &mut c.divert
                && !d.rang_out
                && !c.answered
                && !c.caller_cancelled
                && now >= d.deadline
            {
                d.rang_out = true;
                for b in &c.pending {
                    if let Some(ct) = client.get(&client_key(b, &Method::Invite)) {
                        ring_out.push((cancel_for(&ct.request), ct.flow.clone()));
                    }
                }
            }
        }
        // Contexts whose branches all vanished without an answer (should not happen; belt and braces).
        t.contexts.retain(|_, c| !(c.pending.is_empty() && now.duration_since(c.created) > Duration::from_secs(300)));
    }
    for (flow, bytes) in resend {
        let _ = core.out.send(&flow, bytes).await;
    }
    for (cancel, flow) in ring_out {
        core.send_client(cancel, flow, Owner::Local(None)).await;
    }
    for (context, branch, request) in timeouts {
        // `request` is the forwarded copy: its answer already carries our Via on top, like a real
        // one, and branch_final pops it. The sender then gets a 408 with its own Vias only (a
        // response with an extra Via is discarded by a client, RFC 3261 §8.1.3.3).
        core.branch_final(context, &branch, request.response(408)).await;
    }
}

/// A CANCEL for a forwarded INVITE (RFC 3261 §9.1): same Request-URI, top Via, Call-ID, From,
/// To, CSeq number and Route.
fn cancel_for(invite: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(v) = invite.headers.values("Via").first() {
        c.headers.push("Via", v.to_string());
    }
    for name in ["Route", "From", "To", "Call-ID"] {
        for line in invite.headers.get_all(name) {
            c.headers.push(name, line);
        }
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    c.headers.push("CSeq", format!("{seq} CANCEL"));
    c.headers.push("Max-Forwards", "70");
    c
}

/// The hop-by-hop ACK for a non-2xx final response to a forwarded INVITE (RFC 3261 §17.1.1.3).
fn ack_for(invite: &Request, resp: &Response) -> Request {
    let mut a = Request::new(Method::Ack, invite.uri.clone());
    if let Some(v) = invite.headers.values("Via").first() {
        a.headers.push("Via", v.to_string());
    }
    for name in ["Route", "From", "Call-ID"] {
        for line in invite.headers.get_all(name) {
            a.headers.push(name, line);
        }
    }
    if let Some(to) = resp.headers.get("To") {
        a.headers.push("To", to);
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    a.headers.push("CSeq", format!("{seq} ACK"));
    a.headers.push("Max-Forwards", "70");
    a
}

/// The address a response goes to for a Via: `received`/`rport` when present.
fn via_address(via: &Via) -> Option<SocketAddr> {
    let ip = via.params.get("received").and_then(|r| r.parse().ok()).or(match &via.host {
        tandem_sip_proto::Host::Ip(ip) => Some(*ip),
        tandem_sip_proto::Host::Name(_) => None,
    })?;
    let port = via.params.get("rport").and_then(|p| p.parse().ok()).unwrap_or(via.default_port());
    Some(SocketAddr::new(ip, port))
}

/// Address and transport for a URI (RFC 3263 without NAPTR/SRV: the host's A record).
pub(super) async fn resolve(uri: &Uri) -> Option<(SocketAddr, Transport)> {
    let transport = match (uri.transport(), uri.scheme) {
        (Some(t), _) => Transport::parse(t)?,
        (None, Scheme::Sips) => Transport::Tls,
        _ => Transport::Udp,
    };
    let port = uri.port.unwrap_or(if transport == Transport::Tls { 5061 } else { 5060 });
    let addr = match &uri.host {
        tandem_sip_proto::Host::Ip(ip) => SocketAddr::new(*ip, port),
        tandem_sip_proto::Host::Name(n) => {
            let mut addrs = tokio::net::lookup_host((n.as_str(), port)).await.ok()?;
            addrs.next()?
        }
    };
    Some((addr, transport))
}

fn short_hash(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    hex::encode(&d.as_ref()[..8])
}

pub(super) fn received_params(via: &mut Via, peer: SocketAddr) {
    via.params.set("received", Some(&peer.ip().to_string()));
    via.params.set("rport", Some(&peer.port().to_string()));
}

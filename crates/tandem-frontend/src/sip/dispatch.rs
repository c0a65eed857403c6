//! The one way a request travels: transport → dispatch → handler → responder.
//!
//! Dispatch does everything requests share once, before any handler runs: transaction matching
//! and retransmissions, hop-by-hop checks, loose routing, digest authentication (401 for
//! REGISTER, 407 otherwise), the rule that only this domain's users use the server and that the
//! authenticated user is the From (the To for REGISTER), and the resolution of the address of
//! record a request is for. The registrar, IM and presence handlers then get a [`Ctx`] (the
//! request, the authenticated user and a [`Responder`] bound to the server transaction) and the
//! target address of record, and never call back to authenticate, resolve or answer.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tandem_directory::User;
use tandem_sip_proto::{HeaderView, Method, Request, Response};

use super::auth::{AuthOutcome, FORBIDDEN_REASON};
use super::proxy::{self, Transactions};
use super::transport::{Flow, Outbound};
use super::{ALLOW, SipCore, im, overload, presence, random_token, registrar, txn};

/// What a handler gets for a request that dispatch has authenticated.
#[derive(Debug)]
pub(super) struct Ctx {
    pub req: Request,
    /// The user the request's credentials belong to.
    pub user: User,
    pub reply: Responder,
}

/// Answers one request within its server transaction (so retransmissions are replayed).
#[derive(Debug)]
pub(super) struct Responder {
    key: txn::ServerKey,
    flow: Flow,
    txns: Arc<Mutex<Transactions>>,
    out: Arc<Outbound>,
}

impl Responder {
    /// Sends a response; several may go (provisional ones, then a final one).
    pub async fn send(&self, response: Response) {
        proxy::send_response(&self.txns, &self.out, &self.key, &self.flow, response).await;
    }

    /// Where the request came from (and its answers go).
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The transaction and upstream flow, for handing the request to the proxy.
    pub fn into_transaction(self) -> (txn::ServerKey, Flow) {
        (self.key, self.flow)
    }
}

/// Whether a request carries digest credentials of either kind.
fn has_credentials(req: &Request) -> bool {
    req.headers.has("Authorization") || req.headers.has("Proxy-Authorization")
}

impl SipCore {
    /// A responder for the server transaction `key`.
    fn responder(&self, key: txn::ServerKey, flow: Flow) -> Responder {
        Responder { key, flow, txns: self.txns.clone(), out: self.out.clone() }
    }

    /// Challenges or authenticates a request (401 for REGISTER, 407 otherwise); `None` when a
    /// response was already sent.
    async fn authenticate(&self, req: &Request, reply: &Responder) -> Option<User> {
        let (header, challenge_name, status) = if req.method == Method::Register {
            ("Authorization", "WWW-Authenticate", 401)
        } else {
            ("Proxy-Authorization", "Proxy-Authenticate", 407)
        };
        // Clients sometimes answer a 407 with Authorization and vice versa; accept either.
        let value = req.headers.get(header).or_else(|| {
            req.headers.get(if header == "Authorization" { "Proxy-Authorization" } else { "Authorization" })
        });
        match self.auth.verify(&self.directory, req.method.as_str(), value, reply.flow.peer().ip()).await {
            AuthOutcome::Authenticated(user) => Some(*user),
            AuthOutcome::Challenge { stale } => {
                let mut r = req.response(status).with_to_tag(&random_token());
                for c in self.auth.challenges(stale) {
                    r.headers.push(challenge_name, c);
                }
                reply.send(r).await;
                None
            }
            AuthOutcome::Forbidden(why) => {
                metrics::counter!("tandem_sip_auth_failures_total").increment(1);
                tracing::info!(peer = %reply.flow.peer(), method = %req.method, why, "digest authentication refused");
                let mut r = req.response(403).with_to_tag(&random_token());
                r.reason = FORBIDDEN_REASON.into();
                reply.send(r).await;
                None
            }
        }
    }

    /// Every request enters here (ACK and CANCEL included).
    pub(super) async fn on_request(self: &Arc<Self>, req: Request, flow: Flow, received: Instant) {
        // The top Via is parsed once: the transaction key and the received parameters.
        let method = if req.method == Method::Ack { Method::Invite } else { req.method.clone() };
        let Some((mut via, key)) = req.top_via().ok().and_then(|via| {
            let key = txn::ServerKey::of_via(&via, method)?;
            Some((via, key))
        }) else {
            self.reply_stateless(&flow, req.response(400)).await;
            return;
        };
        // RFC 3581: note where the request really came from, for responses routed back by Via.
        let mut req = req;
        proxy::received_params(&mut via, flow.peer());
        req.headers.pop_first_value("Via");
        req.headers.push_front("Via", via.to_string());
        if req.method == Method::Ack {
            self.on_ack(req, key).await;
            return;
        }
        // A retransmission: replay, never process twice.
        if let Some(replay) = self.replay_for(&key) {
            if let Some((f, bytes)) = replay {
                let _ = self.out.send(&f, bytes).await;
            }
            return;
        }
        self.begin_server(&key, &flow, req.method == Method::Invite);
        // Overload: refused within its transaction, so a retransmission gets the same 503.
        if self.overload.refuses(&req, received, Instant::now()) {
            self.respond(&key, &flow, overload::refusal(&req)).await;
            return;
        }
        if let Some(mf) = req.headers.get("Max-Forwards").and_then(|m| m.trim().parse::<u8>().ok())
            && mf == 0
            && req.method != Method::Options
        {
            self.respond(&key, &flow, req.response(483)).await;
            return;
        }
        if let Some(require) = req.headers.get("Proxy-Require") {
            let r = req.response(420).with_header("Unsupported", require.to_owned());
            self.respond(&key, &flow, r).await;
            return;
        }
        if req.method == Method::Cancel {
            self.on_cancel(&req, &flow, &key).await;
            return;
        }
        // Loose routing: a Route naming us is consumed (RFC 3261 §16.4).
        if let Some(top) = req.headers.values("Route").first().map(|s| s.to_string())
            && let Ok(na) = tandem_sip_proto::NameAddr::parse(&top)
            && self.is_us(&na.uri.host, na.uri.port)
        {
            req.headers.pop_first_value("Route");
        }
        let in_dialog = req.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_some();
        if in_dialog {
            Box::pin(self.in_dialog(req, flow, key)).await;
            return;
        }
        match req.method {
            Method::Register => Box::pin(self.register(req, flow, key)).await,
            Method::Options if req.uri.user.is_none() && self.is_our_host(&req.uri.host) => {
                let r = req
                    .response(200)
                    .with_to_tag(&random_token())
                    .with_header("Allow", ALLOW)
                    .with_header("Accept", "application/sdp, application/pidf+xml, text/plain")
                    .with_header("Supported", "path, outbound")
                    .with_header("Server", concat!("tandem/", env!("CARGO_PKG_VERSION")));
                self.respond(&key, &flow, r).await;
            }
            _ => Box::pin(self.out_of_dialog(req, flow, key)).await,
        }
    }

    /// Removes the credentials meant for this server before a request travels on (RFC 3261
    /// §22.3; Kamailio's `consume_credentials`): the callee must never see the caller's digest.
    fn consume_credentials(&self, req: &mut Request) {
        for name in ["Proxy-Authorization", "Authorization"] {
            let keep: Vec<String> = req
                .headers
                .get_all(name)
                .filter(|v| {
                    tandem_sip_proto::Credentials::parse(v)
                        .map_or(true, |c| !c.realm.eq_ignore_ascii_case(&self.settings.domain))
                })
                .map(str::to_owned)
                .collect();
            req.headers.remove(name);
            for v in keep {
                req.headers.push(name, v);
            }
        }
    }

    /// REGISTER: only a user of this domain, authenticated as the To it registers.
    async fn register(self: &Arc<Self>, req: Request, flow: Flow, key: txn::ServerKey) {
        let reply = self.responder(key, flow);
        let Ok(to) = req.to() else {
            reply.send(req.response(400)).await;
            return;
        };
        let Some(aor) = self.local_aor(&to.uri) else {
            let mut r = req.response(404).with_to_tag(&random_token());
            r.reason = "Not Found (not a user of this domain)".into();
            reply.send(r).await;
            return;
        };
        let Some(user) = self.authenticate(&req, &reply).await else { return };
        if user.sip_uri.key() != aor {
            let mut r = req.response(403).with_to_tag(&random_token());
            r.reason = "Forbidden (To does not match the authenticated user)".into();
            reply.send(r).await;
            return;
        }
        if let Some(done) = registrar::register(
            &self.location,
            self.policy.nat_detection,
            self.policy.max_endpoints_per_user,
            Ctx { req, user, reply },
        )
        .await
        {
            presence::registration_changed(self, &done.aor).await;
            if done.added {
                im::deliver_stored(self.clone(), done.aor);
            }
        }
    }

    /// Requests that start something: authenticate the sender, then route by method.
    async fn out_of_dialog(self: &Arc<Self>, req: Request, flow: Flow, key: txn::ServerKey) {
        let reply = self.responder(key, flow);
        let Ok(from) = req.from() else {
            reply.send(req.response(400)).await;
            return;
        };
        if self.local_aor(&from.uri).is_none() {
            // No federation: only this domain's users may use the server.
            let mut r = req.response(403).with_to_tag(&random_token());
            r.reason = "Forbidden (sender is not in this domain)".into();
            reply.send(r).await;
            return;
        }
        let Some(user) = self.authenticate(&req, &reply).await else { return };
        let mut req = req;
        self.consume_credentials(&mut req);
        if self.local_aor(&from.uri) != Some(user.sip_uri.key()) {
            let mut r = req.response(403).with_to_tag(&random_token());
            r.reason = "Forbidden (From does not match the authenticated user)".into();
            reply.send(r).await;
            return;
        }
        if let Some(id) = crate::conference::focus_id(&req.uri)
            && self.is_our_host(&req.uri.host)
        {
            let (key, flow) = reply.into_transaction();
            Box::pin(self.to_focus(id, req, user, key, flow)).await;
            return;
        }
        let target = self.local_aor(&req.uri);
        let method = req.method.clone();
        if method == Method::Invite
            && self.voicemail.get().is_some()
            && target.as_deref() == Some(&format!("sip:{}@{}", super::answer::ACCESS_USER, self.settings.domain))
        {
            // Calling in: the caller's own voicemail, as the digest authenticated them.
            let (key, flow) = reply.into_transaction();
            match self.store.um_mailbox(&user.sip_uri.key()).await {
                Ok(Some(um)) => {
                    Box::pin(self.answer_with_voicemail(req, flow, key, um, super::answer::Why::Access)).await
                }
                _ => {
                    let mut r = req.response(403).with_to_tag(&random_token());
                    r.reason = "Forbidden (not UM-enabled: no voicemail to listen to)".into();
                    self.respond(&key, &flow, r).await;
                }
            }
            return;
        }
        let ctx = Ctx { req, user, reply };
        match method {
            Method::Publish => presence::publish(self, ctx, target).await,
            Method::Subscribe => presence::subscribe(self, ctx, target).await,
            Method::Message => im::message(self, ctx, target).await,
            _ => {
                let (key, flow) = ctx.reply.into_transaction();
                if method == Method::Invite
                    && let Some(callee) = &target
                    && let Some(o) = self.conversations.on_call(
                        ctx.req.call_id().unwrap_or_default(),
                        &ctx.user.sip_uri.key(),
                        callee,
                    )
                {
                    // The call's outcome (answered, or missed) goes to the mailbox.
                    self.observe_final(&key, o);
                }
                self.route_to_user(ctx.req, flow, key).await;
            }
        }
    }

    /// Forwards a request to every registered contact of the Request-URI's user.
    async fn route_to_user(self: &Arc<Self>, req: Request, flow: Flow, key: txn::ServerKey) {
        let Some(aor) = self.local_aor(&req.uri) else {
            // Not a user of ours and no Route: we are no open relay.
            let r = req.response(if req.uri.user.is_some() { 404 } else { 405 }).with_header("Allow", ALLOW);
            self.respond(&key, &flow, r).await;
            return;
        };
        let targets = self.location.targets(&aor);
        // Call answering: a UM-enabled callee's unanswered call goes to voicemail. The row is
        // read per call, so enable-um-mailbox and set-um-mailbox apply at the next one.
        let um = match (&req.method, self.voicemail.get()) {
            (Method::Invite, Some(_)) => match self.store.um_mailbox(&aor).await {
                Ok(um) => um,
                Err(e) => {
                    tracing::warn!(%aor, error = %e, "the UM mailbox cannot be read; the call rings without voicemail");
                    None
                }
            },
            _ => None,
        };
        if let Some(um) = um {
            if targets.is_empty() {
                Box::pin(self.answer_with_voicemail(req, flow, key, um, super::answer::Why::NoEndpoint)).await;
                return;
            }
            let ring = self.voicemail.get().map(|v| v.settings.ring_time(&um)).unwrap_or_default();
            let divert =
                super::proxy::Divert { request: req.clone(), um, deadline: Instant::now() + ring, rang_out: false };
            Box::pin(self.forward_or_divert(req, flow, key, targets, Some(divert))).await;
            return;
        }
        if targets.is_empty() {
            let status = match self.directory.find_cached(&aor).await {
                Ok(Some(u)) if u.can_use_sip() => 480,
                _ => 404,
            };
            self.respond(&key, &flow, req.response(status).with_to_tag(&random_token())).await;
            return;
        }
        self.forward(req, flow, key, targets).await;
    }

    /// In-dialog requests: ours (presence NOTIFY/SUBSCRIBE dialogs) or forwarded to the target.
    async fn in_dialog(self: &Arc<Self>, req: Request, flow: Flow, key: txn::ServerKey) {
        if self.is_vm_dialog(&req) {
            Box::pin(self.vm_in_dialog(req, flow, key)).await;
            return;
        }
        if self.is_focus_dialog(&req) {
            Box::pin(self.focus_in_dialog(req, flow, key)).await;
            return;
        }
        if self.is_tpcc_dialog(&req) {
            Box::pin(self.tpcc_in_dialog(req, flow, key)).await;
            return;
        }
        if req.method == Method::Bye
            && let Some(call_id) = req.call_id()
        {
            // A call log ends with its call.
            self.conversations.call_ended(call_id);
        }
        if req.method == Method::Subscribe && self.presence.owns_dialog(&req) {
            // A refresh or an end of a subscription we serve. Over the flow that made it (and
            // with the dialog's unguessable identifiers) it is the same watcher, as Kamailio
            // and Skype for Business treat in-dialog requests; from anywhere else, or with
            // credentials, it is authenticated like the first one.
            let reply = self.responder(key, flow);
            let same_flow = match self.presence.dialog_watcher_on(&req, reply.flow()) {
                Some(watcher) if !has_credentials(&req) => match self.directory.find_cached(&watcher).await {
                    Ok(Some(u)) if u.can_use_sip() => Some(u),
                    _ => None,
                },
                _ => None,
            };
            let user = match same_flow {
                Some(u) => u,
                None => match self.authenticate(&req, &reply).await {
                    Some(u) => u,
                    None => return,
                },
            };
            let target = self.local_aor(&req.uri);
            presence::subscribe(self, Ctx { req, user, reply }, target).await;
            return;
        }
        if let Some(next) = req.headers.values("Route").first().map(|s| s.to_string()) {
            // Strict routers are not supported; a loose next hop is forwarded to as is.
            if let Ok(na) = tandem_sip_proto::NameAddr::parse(&next) {
                let target = na.uri;
                self.forward(req, flow, key, vec![(target, None)]).await;
                return;
            }
        }
        if req.uri.user.is_some() && self.is_us(&req.uri.host, req.uri.port) {
            self.route_to_user(req, flow, key).await;
            return;
        }
        if self.is_us(&req.uri.host, req.uri.port) && req.uri.user.is_none() {
            let r = req.response(481);
            self.respond(&key, &flow, r).await;
            return;
        }
        let target = req.uri.clone();
        let known = self.location.flow_for_contact(&target);
        self.forward(req, flow, key, vec![(target, known)]).await;
    }
}

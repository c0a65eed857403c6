//! Click-to-call by third-party call control (RFC 3725 §4.1, flow I): the Front End calls the
//! user's own registered phone with an INVITE without SDP; the phone's answer carries its offer,
//! which the Front End sends to the target in a second INVITE; the target's answer goes back to
//! the phone in the ACK. Media then flows between the two endpoints; the Front End stays in both
//! dialogs as a back-to-back user agent for signalling only, and a BYE from either side ends the
//! other.
//!
//! Kept simple: the phone must answer within the client transaction's time (Timer B, 32 s), the
//! target must be a registered user of this deployment (its first binding is called), and a
//! re-INVITE inside the call (hold, session refresh) is refused with 488.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tandem_sip_proto::{HeaderView, Method, NameAddr, Request, Response, Uri};

use super::transport::Flow;
use super::txn::ServerKey;
use super::{ALLOW, SipCore, random_token};

/// Told a call's id and new state.
pub type OnState = Arc<dyn Fn(&str, &str) + Send + Sync>;
type LegMap = HashMap<(String, String), Arc<Mutex<Call>>>;

/// One of the two dialogs this server holds as the caller (UAC).
#[derive(Debug, Clone)]
struct Leg {
    call_id: String,
    /// From of our requests (with our tag).
    ours: String,
    /// To of our requests (with their tag).
    theirs: String,
    our_tag: String,
    remote_target: Uri,
    flow: Flow,
    cseq: u32,
}

impl Leg {
    fn bye(&mut self) -> Request {
        self.cseq += 1;
        let mut r = Request::new(Method::Bye, self.remote_target.clone());
        r.headers.push("From", self.ours.clone());
        r.headers.push("To", self.theirs.clone());
        r.headers.push("Call-ID", self.call_id.clone());
        r.headers.push("CSeq", format!("{} BYE", self.cseq));
        r
    }
}

/// A connected call: its two legs and whom to tell of its end.
struct Call {
    id: String,
    legs: [Leg; 2],
    on_state: OnState,
}

/// The calls this server connected, by (Call-ID, our tag) of each leg.
#[derive(Default)]
pub struct Calls {
    by_leg: Mutex<LegMap>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").field("legs", &self.lock().len()).finish()
    }
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, LegMap> {
        self.by_leg.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connected calls.
    pub fn count(&self) -> usize {
        self.lock().len() / 2
    }
}

/// How a click-to-call ended before it was connected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailed {
    #[error("the caller has no registered phone")]
    NoPhone,
    #[error("the phone did not answer ({0})")]
    PhoneDidNotAnswer(String),
    #[error("the phone's answer carries no SDP offer")]
    NoOffer,
    #[error("{0} is not a registered user here")]
    TargetUnreachable(String),
    #[error("the target did not answer ({0})")]
    TargetDidNotAnswer(String),
}

fn key_of(leg: &Leg) -> (String, String) {
    (leg.call_id.clone(), leg.our_tag.clone())
}

impl SipCore {
    /// Whether an in-dialog request belongs to a click-to-call call.
    pub(super) fn is_tpcc_dialog(&self, req: &Request) -> bool {
        let (Some(call_id), Ok(to)) = (req.call_id(), req.to()) else { return false };
        let Some(tag) = to.tag() else { return false };
        self.tpcc.lock().contains_key(&(call_id.to_owned(), tag.to_owned()))
    }

    /// A request inside a click-to-call dialog: a BYE ends the other leg too.
    pub(super) async fn tpcc_in_dialog(self: &Arc<Self>, req: Request, flow: Flow, key: ServerKey) {
        let status = match req.method {
            Method::Bye => 200,
            Method::Info | Method::Options | Method::Update | Method::Notify => 200,
            Method::Invite => 488,
            _ => 405,
        };
        self.respond(&key, &flow, req.response(status).with_header("Allow", ALLOW)).await;
        if req.method != Method::Bye {
            return;
        }
        let (Some(call_id), Ok(to)) = (req.call_id(), req.to()) else { return };
        let Some(tag) = to.tag() else { return };
        let call = self.tpcc.lock().remove(&(call_id.to_owned(), tag.to_owned()));
        let Some(call) = call else { return };
        let (other, id, on_state) = {
            let mut c = call.lock().unwrap_or_else(|p| p.into_inner());
            let i = usize::from(c.legs[0].call_id != call_id);
            let other = c.legs[1 - i].bye();
            let leg_flow = c.legs[1 - i].flow.clone();
            self.tpcc.lock().remove(&key_of(&c.legs[1 - i]));
            ((other, leg_flow), c.id.clone(), c.on_state.clone())
        };
        on_state(&id, "ended");
        self.conversations.call_ended(call_id);
        let _ = self.request(other.0, other.1).await;
    }

    /// Sends an ACK for a 2xx (a request of its own, without a transaction).
    async fn send_ack(&self, leg: &Leg, cseq: u32, body: Option<(&str, Vec<u8>)>) {
        let mut ack = Request::new(Method::Ack, leg.remote_target.clone());
        let port = match leg.flow.transport() {
            tandem_sip_proto::Transport::Udp => self.settings.udp.port(),
            tandem_sip_proto::Transport::Tcp => self.settings.tcp.port(),
            _ => self.settings.tls.port(),
        };
        ack.headers.push(
            "Via",
            format!(
                "SIP/2.0/{} {}:{port};branch=z9hG4bK{};rport",
                leg.flow.transport().as_str(),
                self.settings.advertised_host,
                random_token()
            ),
        );
        ack.headers.push("Max-Forwards", "70");
        ack.headers.push("From", leg.ours.clone());
        ack.headers.push("To", leg.theirs.clone());
        ack.headers.push("Call-ID", leg.call_id.clone());
        ack.headers.push("CSeq", format!("{cseq} ACK"));
        if let Some((ctype, b)) = body {
            ack.headers.push("Content-Type", ctype.to_owned());
            ack.body = b;
        }
        if let Err(e) = self.out.send(&leg.flow, ack.to_bytes()).await {
            tracing::debug!(error = %e, "ACK not sent");
        }
    }

    /// An INVITE from `from` (display, URI) to `target` over `flow`, with an optional offer; the
    /// dialog it made when answered 2xx, with the answer.
    async fn invite_leg(
        &self,
        from: (&str, &str),
        target_aor: &str,
        contact: &Uri,
        flow: Flow,
        offer: Option<(String, Vec<u8>)>,
    ) -> Result<(Leg, Response), String> {
        let our_tag = random_token();
        let call_id = format!("{}@{}", random_token(), self.settings.advertised_host);
        let ours = format!("\"{}\" <{}>;tag={our_tag}", from.0.replace('"', ""), from.1);
        let mut req = Request::new(Method::Invite, contact.clone());
        req.headers.push("From", ours.clone());
        req.headers.push("To", format!("<{target_aor}>"));
        req.headers.push("Call-ID", call_id.clone());
        req.headers.push("CSeq", "1 INVITE");
        req.headers.push("Contact", format!("<{}>", self.own_uri(flow.transport())));
        req.headers.push("Allow", ALLOW);
        if let Some((ctype, body)) = offer {
            req.headers.push("Content-Type", ctype);
            req.body = body;
        }
        let resp = self.request(req, flow.clone()).await.ok_or_else(|| "no answer in time".to_owned())?;
        if !(200..300).contains(&resp.status) {
            return Err(format!("{} {}", resp.status, resp.reason));
        }
        let remote_target = resp
            .headers
            .values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|n| n.uri)
            .unwrap_or_else(|| contact.clone());
        let theirs = resp.headers.get("To").unwrap_or_default().to_owned();
        let leg = Leg { call_id, ours, theirs, our_tag, remote_target, flow, cseq: 1 };
        Ok((leg, resp))
    }

    /// Rings `caller`'s own phone, then connects it to `target`; `on_state(id, state)` is told
    /// `ringing`, `connecting`, `connected`, and `ended` or `failed`.
    pub(crate) async fn click_to_call(
        self: &Arc<Self>,
        id: &str,
        caller: (&str, &str),
        target: (&str, &str),
        on_state: OnState,
    ) -> Result<(), CallFailed> {
        let result = self.connect(id, caller, target, on_state.clone()).await;
        if let Err(e) = &result {
            metrics::counter!("tandem_ucwa_calls_total", "outcome" => "failed").increment(1);
            tracing::info!(call = id, error = %e, "click-to-call failed");
            on_state(id, "failed");
        } else {
            metrics::counter!("tandem_ucwa_calls_total", "outcome" => "connected").increment(1);
        }
        result
    }

    async fn connect(
        self: &Arc<Self>,
        id: &str,
        (caller_name, caller_aor): (&str, &str),
        (target_name, target_aor): (&str, &str),
        on_state: OnState,
    ) -> Result<(), CallFailed> {
        let phone = self.location.lookup(caller_aor).into_iter().last().ok_or(CallFailed::NoPhone)?;
        let phone_flow = self.flow_for(&phone.contact_uri, phone.route()).await.ok_or(CallFailed::NoPhone)?;
        let callee = self
            .location
            .lookup(target_aor)
            .into_iter()
            .last()
            .ok_or_else(|| CallFailed::TargetUnreachable(target_aor.to_owned()))?;
        on_state(id, "ringing");
        // The phone shows whom it is being connected to.
        let (mut a, a_ok) = self
            .invite_leg((target_name, target_aor), caller_aor, &phone.contact_uri, phone_flow, None)
            .await
            .map_err(CallFailed::PhoneDidNotAnswer)?;
        let ctype = a_ok.content_type().unwrap_or("").to_owned();
        if a_ok.body.is_empty() || !ctype.to_ascii_lowercase().starts_with("application/sdp") {
            self.send_ack(&a, 1, None).await;
            let _ = self.request(a.bye(), a.flow.clone()).await;
            return Err(CallFailed::NoOffer);
        }
        on_state(id, "connecting");
        let Some(b_flow) = self.flow_for(&callee.contact_uri, callee.route()).await else {
            self.send_ack(&a, 1, None).await;
            let _ = self.request(a.bye(), a.flow.clone()).await;
            return Err(CallFailed::TargetUnreachable(target_aor.to_owned()));
        };
        let b = self
            .invite_leg(
                (caller_name, caller_aor),
                target_aor,
                &callee.contact_uri,
                b_flow,
                Some((ctype, a_ok.body.clone())),
            )
            .await;
        let (b, b_ok) = match b {
            Ok(x) => x,
            Err(why) => {
                self.send_ack(&a, 1, None).await;
                let _ = self.request(a.bye(), a.flow.clone()).await;
                return Err(CallFailed::TargetDidNotAnswer(why));
            }
        };
        self.send_ack(&b, 1, None).await;
        let answer_type = b_ok.content_type().unwrap_or("application/sdp").to_owned();
        self.send_ack(&a, 1, Some((&answer_type, b_ok.body.clone()))).await;
        let call =
            Arc::new(Mutex::new(Call { id: id.to_owned(), legs: [a.clone(), b.clone()], on_state: on_state.clone() }));
        {
            let mut m = self.tpcc.lock();
            m.insert(key_of(&a), call.clone());
            m.insert(key_of(&b), call);
        }
        on_state(id, "connected");
        Ok(())
    }
}

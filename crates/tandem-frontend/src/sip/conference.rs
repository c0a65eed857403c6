//! The conference focus (RFC 4579) as Skype for Business's: requests whose Request-URI is a
//! conference's focus URI (`…;gruu;opaque=app:conf:focus:id:ID`) end here.
//!
//! - INVITE joins: the organizer, and whoever the conference's access level lets in (invited
//!   attendees, or the whole organisation), enter; anyone else is answered 200 too but waits in
//!   the lobby, held (no audio mixed to or from them) until the organizer admits them. The SDP
//!   answer gives the leg a port of the media range; the mixing thread (`conference::media`)
//!   mixes every admitted leg N−1. BYE leaves. A full conference is 486, no port 503, an unknown
//!   conference 404.
//! - REFER from the organizer (in the dialog or to the focus URI) is RFC 4579's way of acting on
//!   a participant: `Refer-To: <sip:bob@…>` admits Bob from the lobby, `Refer-To:
//!   <sip:bob@…;method=BYE>` removes him, and `Refer-To: <focus URI;method=BYE>` ends the
//!   conference (everyone gets a BYE).
//! - SUBSCRIBE `Event: conference` gets RFC 4575 NOTIFYs: full state, then partial state as
//!   people join, wait, are admitted and leave.
//! - MESSAGE from a participant is relayed to every other admitted participant, From the
//!   sender, as Skype for Business's IM conferencing shows who wrote.
//!
//! The record is read from the store at each join, so lobby settings and removals apply without
//! a restart; a sweep ends live conferences whose record is gone and drops expired watchers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_directory::User;
use tandem_media::mixer::LegConfig;
use tandem_sip_proto::conference_info::{self, ConfUser, ConferenceInfo, DocState, Endpoint, EndpointStatus};
use tandem_sip_proto::sdp::{self, Session};
use tandem_sip_proto::{HeaderView, Method, NameAddr, Request, Response, Transport, Uri};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::transport::Flow;
use super::txn::ServerKey;
use super::{ALLOW, SipCore, random_token};
use crate::conference::media::{Command, Engine, Event, LegKey};
use crate::media::ports::PortPool;
use crate::store::{AccessLevel, ConferenceRow};

/// People in one conference at most (Skype for Business's meeting size).
pub const MAX_PARTICIPANTS: usize = 250;
/// Dialogs one user may hold with one conference (a flood of joins from one account is 486).
pub const MAX_ENDPOINTS_PER_USER: usize = 4;
/// Watchers of one conference at most.
pub const MAX_WATCHERS: usize = 64;
/// A `conference` subscription's longest life.
const MAX_SUBSCRIPTION_SECS: u64 = 3600;
/// How often removed conferences and expired watchers are looked for.
const SWEEP: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Participant {
    aor: String,
    display: Option<String>,
    call_id: String,
    local_tag: String,
    /// Their From (with their tag) and our To (with ours), for requests we send them.
    their_side: String,
    our_side: String,
    remote_target: Uri,
    flow: Flow,
    cseq: u32,
    leg: LegKey,
    lobby: bool,
    muted: bool,
    /// The SDP answer, sent again for a re-INVITE.
    answer: Vec<u8>,
    acked: Arc<AtomicBool>,
    /// The digit before this one (for `*6`, mute or unmute oneself).
    last_digit: Option<char>,
}

#[derive(Debug)]
struct Watcher {
    call_id: String,
    local_tag: String,
    their_side: String,
    our_side: String,
    remote_target: Uri,
    flow: Flow,
    cseq: u32,
    version: u32,
    expires_at: Instant,
}

#[derive(Debug)]
struct Live {
    row: ConferenceRow,
    participants: Vec<Participant>,
    watchers: Vec<Watcher>,
}

/// The focus's live state, attached to the SIP core when conferencing runs (`conference::spawn`).
#[derive(Debug)]
pub struct Focus {
    ports: Arc<PortPool>,
    media_ip: IpAddr,
    engine: Engine,
    live: Mutex<HashMap<String, Live>>,
    /// Call-ID → conference id, for every dialog of the focus (participants and watchers).
    dialogs: Mutex<HashMap<String, String>>,
    next_leg: AtomicU64,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Focus {
    /// The engine's counters (legs, late ticks) for metrics and the benchmark.
    pub fn media_stats(&self) -> &crate::conference::media::EngineStats {
        &self.engine.stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dialogs(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.dialogs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Conferences live now and how many are in each.
    pub fn live_conferences(&self) -> Vec<(String, usize)> {
        self.lock().iter().map(|(id, l)| (id.clone(), l.participants.len())).collect()
    }
}

/// Starts the focus on a running core: the mixing thread, the sweep, the digit handler.
pub(crate) fn attach(
    core: &Arc<SipCore>,
    ports: Arc<PortPool>,
    media_ip: IpAddr,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> std::io::Result<Arc<Focus>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::start(tx)?;
    let focus = Arc::new(Focus {
        ports,
        media_ip,
        engine,
        live: Mutex::new(HashMap::new()),
        dialogs: Mutex::new(HashMap::new()),
        next_leg: AtomicU64::new(1),
        tasks: tasks.clone(),
        shutdown: shutdown.clone(),
    });
    if core.focus.set(focus.clone()).is_err() {
        return Err(std::io::Error::other("the conference focus was started twice"));
    }
    let c = core.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = sweep.tick() => c.sweep_conferences().await,
                e = rx.recv() => match e {
                    Some(Event::Digit { conference, leg, digit }) => c.conference_digit(&conference, leg, digit),
                    None => break,
                },
            }
        }
        // A clean stop ends every conference with a BYE.
        let ids: Vec<String> = c.focus.get().map(|f| f.lock().keys().cloned().collect()).unwrap_or_default();
        for id in ids {
            c.end_conference(&id);
        }
    });
    Ok(focus)
}

/// Who enters without the lobby.
fn bypasses_lobby(row: &ConferenceRow, aor: &str) -> bool {
    aor == row.organizer
        || match row.access_level {
            AccessLevel::Locked => false,
            AccessLevel::Invited => row.attendees.iter().any(|a| a == aor),
            // Every request here is from an authenticated user of this domain.
            AccessLevel::SameEnterprise | AccessLevel::Everyone => true,
        }
}

fn warning(core: &SipCore, r: Response, text: &str) -> Response {
    r.with_header("Warning", format!("399 {} \"{}\"", core.settings.advertised_host, text.replace('"', "'")))
}

impl SipCore {
    fn focus_contact(&self, row: &ConferenceRow, transport: Transport) -> String {
        let user = row.organizer.strip_prefix("sip:").and_then(|r| r.split_once('@')).map_or("", |(u, _)| u);
        let (port, param) = match transport {
            Transport::Udp => (self.settings.udp.port(), String::new()),
            Transport::Tcp => (self.settings.tcp.port(), ";transport=tcp".to_owned()),
            t => (self.settings.tls.port(), format!(";transport={}", t.as_str().to_ascii_lowercase())),
        };
        format!(
            "<sip:{user}@{}:{port}{param};gruu;opaque={}{}>;isfocus",
            self.settings.advertised_host,
            crate::conference::FOCUS_OPAQUE_PREFIX,
            row.id
        )
    }

    /// Whether an in-dialog request (or ACK) belongs to a dialog of the focus.
    pub(super) fn is_focus_dialog(&self, req: &Request) -> bool {
        let (Some(focus), Some(call_id)) = (self.focus.get(), req.call_id()) else { return false };
        focus.dialogs().contains_key(call_id)
    }

    /// The ACK of a join's 200: its resends stop.
    pub(super) fn focus_acked(&self, req: &Request) {
        let (Some(focus), Some(call_id)) = (self.focus.get(), req.call_id()) else { return };
        let Some(id) = focus.dialogs().get(call_id).cloned() else { return };
        if let Some(l) = focus.lock().get(&id)
            && let Some(p) = l.participants.iter().find(|p| p.call_id == call_id)
        {
            p.acked.store(true, Ordering::Relaxed);
        }
    }

    /// A request to a focus URI, from an authenticated user of this domain.
    pub(super) async fn to_focus(self: &Arc<Self>, id: String, req: Request, user: User, key: ServerKey, flow: Flow) {
        let Some(focus) = self.focus.get().cloned() else {
            self.respond(&key, &flow, req.response(480).with_to_tag(&random_token())).await;
            return;
        };
        let row = match self.store.conference(&id).await {
            Ok(Some(row)) if row.focus_uri_matches(&req.uri) => row,
            Ok(_) => {
                let r = req.response(404).with_to_tag(&random_token());
                self.respond(&key, &flow, warning(self, r, "no such conference")).await;
                return;
            }
            Err(e) => {
                tracing::warn!(conference = %id, error = %e, "the conference cannot be read");
                let r = req.response(500).with_header("Retry-After", "5");
                self.respond(&key, &flow, r).await;
                return;
            }
        };
        let aor = user.sip_uri.key();
        let name = Some(user.display_name.clone()).filter(|n| !n.trim().is_empty());
        match req.method {
            Method::Invite => self.join(&focus, row, req, aor, name, key, flow).await,
            Method::Subscribe => self.watch(&focus, row, req, &aor, key, flow).await,
            Method::Message => self.relay_message(&focus, &row.id, req, &aor, key, flow).await,
            Method::Refer => self.organizer_refer(&focus, &row, req, &aor, None, key, flow).await,
            Method::Options => {
                let r = req.response(200).with_to_tag(&random_token()).with_header("Allow", ALLOW);
                self.respond(&key, &flow, r).await;
            }
            _ => {
                let r = req.response(405).with_to_tag(&random_token()).with_header("Allow", ALLOW);
                self.respond(&key, &flow, r).await;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn join(
        self: &Arc<Self>,
        focus: &Arc<Focus>,
        row: ConferenceRow,
        req: Request,
        aor: String,
        display: Option<String>,
        key: ServerKey,
        flow: Flow,
    ) {
        let Some(call_id) = req.call_id().map(str::to_owned) else {
            self.respond(&key, &flow, req.response(400)).await;
            return;
        };
        // A retransmission of an INVITE already answered: the 200's resends answer it.
        if focus.dialogs().contains_key(&call_id) {
            return;
        }
        let local_tag = random_token();
        let refuse = |status: u16, text: &str| warning(self, req.response(status).with_to_tag(&local_tag), text);
        let crowded = focus.lock().get(&row.id).and_then(|l| {
            if l.participants.len() >= MAX_PARTICIPANTS {
                Some("the conference is full")
            } else if l.participants.iter().filter(|p| p.aor == aor).count() >= MAX_ENDPOINTS_PER_USER {
                Some("too many endpoints of this user in the conference")
            } else {
                None
            }
        });
        if let Some(why) = crowded {
            self.respond(&key, &flow, refuse(486, why)).await;
            return;
        }
        let is_sdp = req.content_type().is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        if req.body.is_empty() || !is_sdp {
            self.respond(&key, &flow, refuse(488, "the focus needs an SDP offer in the INVITE")).await;
            return;
        }
        let offer = match Session::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                self.respond(&key, &flow, refuse(400, &format!("malformed SDP: {e}"))).await;
                return;
            }
        };
        let Some(remote_ip) = offer.audio_target().and_then(|(a, _)| a.parse::<IpAddr>().ok()) else {
            self.respond(&key, &flow, refuse(488, "the offer has no audio stream at an IP address")).await;
            return;
        };
        let advertised = advertised_ip(focus.media_ip, remote_ip);
        if let Err(e) = sdp::answer(&offer, &advertised.to_string(), 9, 1) {
            let status = if e == sdp::SdpError::NoCommonCodec { 488 } else { 400 };
            self.respond(&key, &flow, refuse(status, &e.to_string())).await;
            return;
        }
        let (socket, lease) = match focus.ports.bind().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "the focus cannot take a participant: no RTP port");
                let r = refuse(503, &e.to_string()).with_header("Retry-After", "30");
                self.respond(&key, &flow, r).await;
                return;
            }
        };
        let session_id = u64::from(lease.port) << 32 | u64::from(tandem_store::now_unix() as u32);
        let (answer, negotiated) = match sdp::answer(&offer, &advertised.to_string(), lease.port, session_id) {
            Ok(x) => x,
            Err(e) => {
                self.respond(&key, &flow, refuse(488, &e.to_string())).await;
                return;
            }
        };
        let socket = match socket.into_std() {
            Ok(s) => s,
            Err(e) => {
                self.respond(&key, &flow, refuse(503, &format!("RTP socket: {e}"))).await;
                return;
            }
        };
        let lobby = !bypasses_lobby(&row, &aor);
        let leg = focus.next_leg.fetch_add(1, Ordering::Relaxed);
        let ssrc = u32::from_str_radix(random_token().get(..8).unwrap_or("1"), 16).unwrap_or(1);
        let config = LegConfig {
            law: crate::voicemail::Service::law_of(&negotiated.codec.encoding),
            event_pt: negotiated.telephone_event,
            ssrc,
        };
        focus.engine.send(Command::AddLeg {
            conference: row.id.clone(),
            leg,
            socket,
            lease,
            remote: SocketAddr::new(remote_ip, negotiated.remote.1),
            config,
            held: lobby,
        });
        let from = req.from().ok();
        let remote_target = req
            .headers
            .get("Contact")
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|c| c.uri)
            .unwrap_or_else(|| from.as_ref().map(|f| f.uri.clone()).unwrap_or_else(|| req.uri.clone()));
        let answer = answer.render().into_bytes();
        let ok = req
            .response(200)
            .with_to_tag(&local_tag)
            .with_header("Contact", self.focus_contact(&row, flow.transport()))
            .with_header("Allow", ALLOW)
            .with_header("Server", concat!("tandem-focus/", env!("CARGO_PKG_VERSION")))
            .with_body("application/sdp", answer.clone());
        let acked = Arc::new(AtomicBool::new(false));
        let participant = Participant {
            aor: aor.clone(),
            display,
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            their_side: req.headers.get("From").unwrap_or_default().to_owned(),
            our_side: req.headers.get("To").map(|t| format!("{t};tag={local_tag}")).unwrap_or_default(),
            remote_target,
            flow: flow.clone(),
            cseq: 1,
            leg,
            lobby,
            muted: false,
            answer,
            acked: acked.clone(),
            last_digit: None,
        };
        focus.dialogs().insert(call_id.clone(), row.id.clone());
        let id = row.id.clone();
        focus
            .lock()
            .entry(id.clone())
            .or_insert_with(|| Live { row, participants: Vec::new(), watchers: Vec::new() })
            .participants
            .push(participant);
        metrics::counter!("tandem_conference_joins_total", "lobby" => if lobby { "yes" } else { "no" }).increment(1);
        tracing::info!(conference = %id, participant = %aor, lobby, codec = %negotiated.codec.encoding, "joined");
        let ok_bytes = ok.to_bytes();
        self.respond(&key, &flow, ok).await;
        if !flow.transport().is_reliable() {
            // RFC 3261 §13.3.1.4: the 2xx is resent until the ACK, for at most 64·T1.
            let (core, stop) = (self.clone(), focus.shutdown.clone());
            focus.tasks.spawn(async move {
                let mut wait = super::txn::T1;
                let mut spent = Duration::ZERO;
                while spent < super::txn::T1 * 64 {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    spent += wait;
                    if acked.load(Ordering::Relaxed) {
                        return;
                    }
                    let _ = core.out.send(&flow, ok_bytes.clone()).await;
                    wait = (wait * 2).min(super::txn::T2);
                }
            });
        }
        self.notify_watchers(&id, &[aor]);
    }

    /// Requests within a dialog of the focus.
    pub(super) async fn focus_in_dialog(self: &Arc<Self>, req: Request, flow: Flow, key: ServerKey) {
        let Some(focus) = self.focus.get().cloned() else { return };
        let call_id = req.call_id().unwrap_or_default().to_owned();
        let Some(id) = focus.dialogs().get(&call_id).cloned() else {
            self.respond(&key, &flow, req.response(481)).await;
            return;
        };
        // Who this dialog is, as it was authenticated when it began.
        let found = focus.lock().get(&id).map(|l| {
            let p = l.participants.iter().find(|p| p.call_id == call_id);
            let w = l.watchers.iter().any(|w| w.call_id == call_id);
            (p.map(|p| p.aor.clone()), p.map(|p| p.answer.clone()), w, l.row.clone())
        });
        let Some((aor, answer, is_watcher, row)) = found else {
            self.respond(&key, &flow, req.response(481)).await;
            return;
        };
        match (req.method.clone(), aor) {
            (Method::Bye, Some(aor)) => {
                self.respond(&key, &flow, req.response(200)).await;
                self.leave(&focus, &id, &call_id);
                tracing::info!(conference = %id, participant = %aor, "left");
            }
            (Method::Invite, Some(_)) => {
                // A re-INVITE (session refresh, hold): the same answer, with a new version.
                let r = req
                    .response(200)
                    .with_header("Contact", self.focus_contact(&row, flow.transport()))
                    .with_header("Allow", ALLOW)
                    .with_body("application/sdp", answer.unwrap_or_default());
                self.respond(&key, &flow, r).await;
            }
            (Method::Message, Some(aor)) => self.relay_message(&focus, &id, req, &aor, key, flow).await,
            (Method::Refer, Some(aor)) => {
                self.organizer_refer(&focus, &row, req, &aor, Some(&call_id), key, flow).await
            }
            (Method::Subscribe, _) if is_watcher => self.refresh_watch(&focus, &id, req, key, flow).await,
            (Method::Info | Method::Update | Method::Options, _) => {
                self.respond(&key, &flow, req.response(200)).await;
            }
            _ => {
                let r = req.response(405).with_header("Allow", ALLOW);
                self.respond(&key, &flow, r).await;
            }
        }
    }

    /// A participant's dialog ends: its leg goes and watchers hear of it.
    fn leave(self: &Arc<Self>, focus: &Arc<Focus>, id: &str, call_id: &str) {
        focus.dialogs().remove(call_id);
        let gone = {
            let mut live = focus.lock();
            let Some(l) = live.get_mut(id) else { return };
            let Some(at) = l.participants.iter().position(|p| p.call_id == call_id) else { return };
            let p = l.participants.remove(at);
            focus.engine.send(Command::RemoveLeg { conference: id.to_owned(), leg: p.leg });
            p.aor
        };
        self.notify_watchers(id, &[gone]);
    }

    /// Ends a live conference: a BYE to every participant, a last NOTIFY to every watcher.
    /// Returns how many participants it had (0 when it was not live). The meeting API calls it
    /// when a meeting is cancelled; the sweep when the record was removed.
    pub fn end_conference(self: &Arc<Self>, id: &str) -> usize {
        let Some(focus) = self.focus.get() else { return 0 };
        let id = id.to_ascii_uppercase();
        let Some(mut live) = focus.lock().remove(&id) else { return 0 };
        let count = live.participants.len();
        {
            let mut dialogs = focus.dialogs();
            for p in &live.participants {
                dialogs.remove(&p.call_id);
            }
            for w in &live.watchers {
                dialogs.remove(&w.call_id);
            }
        }
        for p in live.participants.drain(..) {
            focus.engine.send(Command::RemoveLeg { conference: id.clone(), leg: p.leg });
            let mut bye = Request::new(Method::Bye, p.remote_target.clone());
            bye.headers.push("From", p.our_side.clone());
            bye.headers.push("To", p.their_side.clone());
            bye.headers.push("Call-ID", p.call_id.clone());
            bye.headers.push("CSeq", format!("{} BYE", p.cseq + 1));
            bye.headers.push("Reason", "SIP;cause=200;text=\"The conference has ended\"");
            let core = self.clone();
            focus.tasks.spawn(async move {
                let _ = core.request(bye, p.flow).await;
            });
        }
        let mut watchers = std::mem::take(&mut live.watchers);
        for w in &mut watchers {
            let doc = ConferenceInfo {
                entity: live.row.focus_uri.clone(),
                version: w.version + 1,
                state: DocState::Full,
                subject: Some(live.row.subject.clone()).filter(|s| !s.is_empty()),
                user_count: 0,
                active: false,
                users: Vec::new(),
            };
            w.version += 1;
            w.cseq += 1;
            self.send_conference_notify(w, doc.render(), "terminated;reason=noresource");
        }
        tracing::info!(conference = %id, participants = count, "conference ended");
        metrics::counter!("tandem_conferences_ended_total").increment(1);
        count
    }

    /// Ends live conferences whose record is gone; drops expired watchers.
    async fn sweep_conferences(self: &Arc<Self>) {
        let Some(focus) = self.focus.get() else { return };
        let ids: Vec<String> = focus.lock().keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        match self.store.existing_conference_ids(&ids).await {
            Ok(existing) => {
                for id in ids.iter().filter(|i| !existing.contains(i)) {
                    self.end_conference(id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "the conference sweep cannot read the store"),
        }
        let now = Instant::now();
        let mut live = focus.lock();
        let mut dialogs = focus.dialogs();
        for l in live.values_mut() {
            l.watchers.retain(|w| {
                let keep = w.expires_at > now;
                if !keep {
                    dialogs.remove(&w.call_id);
                }
                keep
            });
        }
        live.retain(|_, l| !l.participants.is_empty() || !l.watchers.is_empty());
    }

    /// `*6` mutes or unmutes oneself, as on Skype for Business's dial-in conferencing.
    fn conference_digit(self: &Arc<Self>, id: &str, leg: LegKey, digit: char) {
        let Some(focus) = self.focus.get() else { return };
        let changed = {
            let mut live = focus.lock();
            let Some(p) = live.get_mut(id).and_then(|l| l.participants.iter_mut().find(|p| p.leg == leg)) else {
                return;
            };
            let toggle = p.last_digit == Some('*') && digit == '6';
            p.last_digit = Some(digit);
            if toggle {
                p.muted = !p.muted;
                focus.engine.send(Command::SetMuted { conference: id.to_owned(), leg, muted: p.muted });
                Some(p.aor.clone())
            } else {
                None
            }
        };
        if let Some(aor) = changed {
            self.notify_watchers(id, &[aor]);
        }
    }

    /// REFER from a participant or to the focus URI: only the organizer acts on others.
    #[allow(clippy::too_many_arguments)]
    async fn organizer_refer(
        self: &Arc<Self>,
        focus: &Arc<Focus>,
        row: &ConferenceRow,
        req: Request,
        aor: &str,
        dialog: Option<&str>,
        key: ServerKey,
        flow: Flow,
    ) {
        let tag = dialog.map_or_else(random_token, |_| String::new());
        let with_tag = |r: Response| if tag.is_empty() { r } else { r.with_to_tag(&tag) };
        if aor != row.organizer {
            let r = with_tag(req.response(403));
            self.respond(&key, &flow, warning(self, r, "only the organizer admits, removes or ends")).await;
            return;
        }
        let Some(target) = req.headers.get("Refer-To").and_then(|r| NameAddr::parse(r).ok()) else {
            self.respond(&key, &flow, with_tag(req.response(400))).await;
            return;
        };
        let method = target.uri.param("method").map(str::to_ascii_uppercase);
        let ends = crate::conference::focus_id(&target.uri).as_deref() == Some(row.id.as_str());
        let target_aor = self.local_aor(&target.uri);
        let id = row.id.clone();
        let outcome = match (method.as_deref(), ends) {
            (Some("BYE"), true) => {
                self.end_conference(&id);
                Ok(())
            }
            (Some("BYE"), false) => {
                let calls: Vec<(String, Uri, String, String, Flow, u32)> = focus
                    .lock()
                    .get(&id)
                    .map(|l| {
                        l.participants
                            .iter()
                            .filter(|p| Some(&p.aor) == target_aor.as_ref())
                            .map(|p| {
                                (
                                    p.call_id.clone(),
                                    p.remote_target.clone(),
                                    p.our_side.clone(),
                                    p.their_side.clone(),
                                    p.flow.clone(),
                                    p.cseq,
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if calls.is_empty() {
                    Err("not in the conference")
                } else {
                    for (call_id, target, ours, theirs, f, cseq) in calls {
                        self.leave(focus, &id, &call_id);
                        let mut bye = Request::new(Method::Bye, target);
                        bye.headers.push("From", ours);
                        bye.headers.push("To", theirs);
                        bye.headers.push("Call-ID", call_id);
                        bye.headers.push("CSeq", format!("{} BYE", cseq + 1));
                        bye.headers.push("Reason", "SIP;cause=200;text=\"Removed by the organizer\"");
                        let core = self.clone();
                        focus.tasks.spawn(async move {
                            let _ = core.request(bye, f).await;
                        });
                    }
                    Ok(())
                }
            }
            (None | Some("INVITE"), false) => {
                let mut admitted = false;
                if let Some(l) = focus.lock().get_mut(&id) {
                    for p in l.participants.iter_mut().filter(|p| Some(&p.aor) == target_aor.as_ref() && p.lobby) {
                        p.lobby = false;
                        admitted = true;
                        focus.engine.send(Command::SetHeld { conference: id.clone(), leg: p.leg, held: false });
                    }
                }
                if admitted {
                    tracing::info!(conference = %id, participant = ?target_aor, "admitted from the lobby");
                    Ok(())
                } else {
                    // Dialling out to someone not here is not done by this focus.
                    Err("not waiting in the lobby")
                }
            }
            _ => Err("Refer-To names neither a participant nor this conference"),
        };
        match outcome {
            Ok(()) => {
                let r = with_tag(req.response(202)).with_header("Refer-Sub", "false");
                self.respond(&key, &flow, r).await;
                if let Some(a) = target_aor {
                    self.notify_watchers(&id, &[a]);
                }
            }
            Err(why) => {
                let r = with_tag(req.response(404));
                self.respond(&key, &flow, warning(self, r, why)).await;
            }
        }
    }

    /// MESSAGE from a participant: 200, and a copy to every other admitted participant.
    async fn relay_message(
        self: &Arc<Self>,
        focus: &Arc<Focus>,
        id: &str,
        req: Request,
        aor: &str,
        key: ServerKey,
        flow: Flow,
    ) {
        let targets: Option<Vec<(String, Uri, Flow)>> = {
            let live = focus.lock();
            live.get(id).and_then(|l| {
                let sender_in = l.participants.iter().any(|p| p.aor == aor && !p.lobby);
                sender_in.then(|| {
                    l.participants
                        .iter()
                        .filter(|p| p.aor != aor && !p.lobby)
                        .map(|p| (p.aor.clone(), p.remote_target.clone(), p.flow.clone()))
                        .collect()
                })
            })
        };
        let in_dialog = req.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_some();
        let tagged = |r: Response| if in_dialog { r } else { r.with_to_tag(&random_token()) };
        let Some(targets) = targets else {
            let r = tagged(req.response(403));
            self.respond(&key, &flow, warning(self, r, "only participants in the conference send it messages")).await;
            return;
        };
        self.respond(&key, &flow, tagged(req.response(200))).await;
        let from_display = req.from().ok().and_then(|f| f.display_name);
        let from = match from_display {
            Some(d) => format!("\"{}\" <{aor}>;tag={}", d.replace('"', ""), random_token()),
            None => format!("<{aor}>;tag={}", random_token()),
        };
        let ctype = req.content_type().unwrap_or("text/plain").to_owned();
        metrics::counter!("tandem_conference_messages_total").increment(1);
        for (to, target, f) in targets {
            let mut m = Request::new(Method::Message, target);
            m.headers.push("From", from.clone());
            m.headers.push("To", format!("<{to}>"));
            m.headers.push("Call-ID", random_token());
            m.headers.push("CSeq", "1 MESSAGE");
            // Which conference it was said in (the focus URI, as Skype for Business's IMMCU names it).
            m.headers.push("Referred-By", format!("<{}>", focus_uri_of(focus, id)));
            m.headers.push("Content-Type", ctype.clone());
            m.body = req.body.clone();
            let core = self.clone();
            focus.tasks.spawn(async move {
                let _ = core.request(m, f).await;
            });
        }
    }

    /// SUBSCRIBE `Event: conference` to the focus URI.
    async fn watch(
        self: &Arc<Self>,
        focus: &Arc<Focus>,
        row: ConferenceRow,
        req: Request,
        aor: &str,
        key: ServerKey,
        flow: Flow,
    ) {
        let local_tag = random_token();
        let event = req.headers.get("Event").unwrap_or_default().split(';').next().unwrap_or("").trim().to_owned();
        if !event.eq_ignore_ascii_case("conference") {
            let r = req.response(489).with_to_tag(&local_tag).with_header("Allow-Events", "conference");
            self.respond(&key, &flow, r).await;
            return;
        }
        let participant = focus.lock().get(&row.id).is_some_and(|l| l.participants.iter().any(|p| p.aor == aor));
        if !participant && !bypasses_lobby(&row, aor) {
            let r = req.response(403).with_to_tag(&local_tag);
            self.respond(&key, &flow, warning(self, r, "not invited to this conference")).await;
            return;
        }
        let expires = requested_expires(&req);
        let Some(call_id) = req.call_id().map(str::to_owned) else {
            self.respond(&key, &flow, req.response(400)).await;
            return;
        };
        let id = row.id.clone();
        let full = focus.lock().get(&id).is_some_and(|l| l.watchers.len() >= MAX_WATCHERS);
        if full {
            let r = req.response(503).with_to_tag(&local_tag).with_header("Retry-After", "60");
            self.respond(&key, &flow, r).await;
            return;
        }
        {
            let mut live = focus.lock();
            let l = live.entry(id.clone()).or_insert_with(|| Live {
                row: row.clone(),
                participants: Vec::new(),
                watchers: Vec::new(),
            });
            if expires > 0 {
                let remote_target = req
                    .headers
                    .get("Contact")
                    .and_then(|c| NameAddr::parse(c).ok())
                    .map(|c| c.uri)
                    .unwrap_or_else(|| req.from().map(|f| f.uri).unwrap_or_else(|_| req.uri.clone()));
                l.watchers.push(Watcher {
                    call_id: call_id.clone(),
                    local_tag: local_tag.clone(),
                    their_side: req.headers.get("From").unwrap_or_default().to_owned(),
                    our_side: req.headers.get("To").map(|t| format!("{t};tag={local_tag}")).unwrap_or_default(),
                    remote_target,
                    flow: flow.clone(),
                    cseq: 0,
                    version: 0,
                    expires_at: Instant::now() + Duration::from_secs(expires),
                });
                focus.dialogs().insert(call_id.clone(), id.clone());
            }
        }
        let r = req
            .response(200)
            .with_to_tag(&local_tag)
            .with_header("Expires", expires.to_string())
            .with_header("Contact", self.focus_contact(&row, flow.transport()));
        self.respond(&key, &flow, r).await;
        if expires == 0 {
            // A fetch: one full NOTIFY that ends the subscription.
            let mut w = Watcher {
                call_id,
                local_tag: local_tag.clone(),
                their_side: req.headers.get("From").unwrap_or_default().to_owned(),
                our_side: req.headers.get("To").map(|t| format!("{t};tag={local_tag}")).unwrap_or_default(),
                remote_target: req.from().map(|f| f.uri).unwrap_or_else(|_| req.uri.clone()),
                flow,
                cseq: 1,
                version: 1,
                expires_at: Instant::now(),
            };
            let doc = self.conference_document(focus, &id, None, w.version);
            if let Some(doc) = doc {
                w.version = doc.version;
                self.send_conference_notify(&w, doc.render(), "terminated;reason=timeout");
            }
            return;
        }
        self.notify_one(&id, &call_id, None);
    }

    /// A refresh (or an end, with Expires: 0) of a `conference` subscription.
    async fn refresh_watch(self: &Arc<Self>, focus: &Arc<Focus>, id: &str, req: Request, key: ServerKey, flow: Flow) {
        let expires = requested_expires(&req);
        let call_id = req.call_id().unwrap_or_default().to_owned();
        if let Some(l) = focus.lock().get_mut(id)
            && let Some(w) = l.watchers.iter_mut().find(|w| w.call_id == call_id)
        {
            w.expires_at = Instant::now() + Duration::from_secs(expires);
        }
        self.respond(&key, &flow, req.response(200).with_header("Expires", expires.to_string())).await;
        if expires == 0 {
            let w = {
                let mut live = focus.lock();
                live.get_mut(id).and_then(|l| {
                    let at = l.watchers.iter().position(|w| w.call_id == call_id)?;
                    Some(l.watchers.remove(at))
                })
            };
            focus.dialogs().remove(&call_id);
            if let Some(mut w) = w {
                w.cseq += 1;
                w.version += 1;
                if let Some(doc) = self.conference_document(focus, id, None, w.version) {
                    self.send_conference_notify(&w, doc.render(), "terminated;reason=timeout");
                }
            }
            return;
        }
        self.notify_one(id, &call_id, None);
    }

    /// The roster as a document: full state (`changed` None) or the named users only.
    fn conference_document(
        &self,
        focus: &Focus,
        id: &str,
        changed: Option<&[String]>,
        version: u32,
    ) -> Option<ConferenceInfo> {
        let live = focus.lock();
        let l = live.get(id)?;
        let mut users: Vec<ConfUser> = Vec::new();
        let mut order: Vec<&str> = l.participants.iter().map(|p| p.aor.as_str()).collect();
        order.dedup();
        let mut seen = std::collections::HashSet::new();
        for aor in l.participants.iter().map(|p| p.aor.as_str()) {
            if !seen.insert(aor) || changed.is_some_and(|c| !c.iter().any(|x| x == aor)) {
                continue;
            }
            let endpoints: Vec<&Participant> = l.participants.iter().filter(|p| p.aor == aor).collect();
            users.push(ConfUser {
                entity: aor.to_owned(),
                display_text: endpoints.iter().find_map(|p| p.display.clone()),
                roles: vec![if aor == l.row.organizer { "presenter" } else { "attendee" }.to_owned()],
                deleted: false,
                endpoints: endpoints
                    .iter()
                    .map(|p| Endpoint {
                        entity: format!("{};tag={}", p.aor, p.local_tag),
                        status: if p.lobby { EndpointStatus::Pending } else { EndpointStatus::Connected },
                        dialed_in: true,
                        audio_mixed: !p.lobby && !p.muted,
                    })
                    .collect(),
            });
        }
        if let Some(c) = changed {
            for aor in c.iter().filter(|a| !seen.contains(a.as_str())) {
                users.push(ConfUser {
                    entity: aor.clone(),
                    display_text: None,
                    roles: Vec::new(),
                    deleted: true,
                    endpoints: Vec::new(),
                });
            }
        }
        Some(ConferenceInfo {
            entity: l.row.focus_uri.clone(),
            version,
            state: if changed.is_some() { DocState::Partial } else { DocState::Full },
            subject: Some(l.row.subject.clone()).filter(|s| !s.is_empty()),
            user_count: seen.len(),
            active: true,
            users,
        })
    }

    /// A NOTIFY to one watcher: full state (`changed` None) or partial.
    fn notify_one(self: &Arc<Self>, id: &str, call_id: &str, changed: Option<&[String]>) {
        let Some(focus) = self.focus.get() else { return };
        let (watcher_copy, version) = {
            let mut live = focus.lock();
            let Some(w) = live.get_mut(id).and_then(|l| l.watchers.iter_mut().find(|w| w.call_id == call_id)) else {
                return;
            };
            w.version += 1;
            w.cseq += 1;
            let remaining = w.expires_at.saturating_duration_since(Instant::now()).as_secs();
            (
                (
                    Watcher {
                        call_id: w.call_id.clone(),
                        local_tag: w.local_tag.clone(),
                        their_side: w.their_side.clone(),
                        our_side: w.our_side.clone(),
                        remote_target: w.remote_target.clone(),
                        flow: w.flow.clone(),
                        cseq: w.cseq,
                        version: w.version,
                        expires_at: w.expires_at,
                    },
                    remaining,
                ),
                w.version,
            )
        };
        let Some(doc) = self.conference_document(focus, id, changed, version) else { return };
        let (w, remaining) = watcher_copy;
        self.send_conference_notify(&w, doc.render(), &format!("active;expires={remaining}"));
    }

    /// Partial-state NOTIFYs to every watcher of a conference about `changed` users.
    fn notify_watchers(self: &Arc<Self>, id: &str, changed: &[String]) {
        let Some(focus) = self.focus.get() else { return };
        let calls: Vec<String> =
            focus.lock().get(id).map(|l| l.watchers.iter().map(|w| w.call_id.clone()).collect()).unwrap_or_default();
        for c in calls {
            self.notify_one(id, &c, Some(changed));
        }
    }

    fn send_conference_notify(self: &Arc<Self>, w: &Watcher, body: Vec<u8>, state: &str) {
        let Some(focus) = self.focus.get() else { return };
        let mut req = Request::new(Method::Notify, w.remote_target.clone());
        req.headers.push("From", w.our_side.clone());
        req.headers.push("To", w.their_side.clone());
        req.headers.push("Call-ID", w.call_id.clone());
        req.headers.push("CSeq", format!("{} NOTIFY", w.cseq));
        req.headers.push("Contact", format!("<{}>", self.own_uri(w.flow.transport())));
        req.headers.push("Event", "conference");
        req.headers.push("Subscription-State", state.to_owned());
        req.headers.push("Content-Type", conference_info::CONTENT_TYPE);
        req.body = body;
        metrics::counter!("tandem_conference_notify_total").increment(1);
        let (core, flow, call_id) = (self.clone(), w.flow.clone(), w.call_id.clone());
        let focus = focus.clone();
        focus.tasks.clone().spawn(async move {
            let resp = core.request(req, flow).await;
            if resp.as_ref().is_none_or(|r| matches!(r.status, 481 | 408 | 404 | 410 | 489)) {
                let mut live = focus.lock();
                for l in live.values_mut() {
                    l.watchers.retain(|w| w.call_id != call_id);
                }
                drop(live);
                // Only watchers' dialogs: a participant's dialog is not ended by its NOTIFY.
                let still_participant =
                    focus.lock().values().any(|l| l.participants.iter().any(|p| p.call_id == call_id));
                if !still_participant {
                    focus.dialogs().remove(&call_id);
                }
            }
        });
    }
}

fn focus_uri_of(focus: &Focus, id: &str) -> String {
    focus.lock().get(id).map(|l| l.row.focus_uri.clone()).unwrap_or_default()
}

fn requested_expires(req: &Request) -> u64 {
    req.headers
        .get("Expires")
        .and_then(|e| e.trim().parse::<u64>().ok())
        .unwrap_or(MAX_SUBSCRIPTION_SECS)
        .min(MAX_SUBSCRIPTION_SECS)
}

/// The address for the SDP answer to a participant whose media is at `remote`.
fn advertised_ip(media_ip: IpAddr, remote: IpAddr) -> IpAddr {
    if !media_ip.is_unspecified() {
        return media_ip;
    }
    // Connecting a UDP socket sends nothing; it only picks the route and its source.
    let probe = || -> std::io::Result<IpAddr> {
        let bind: SocketAddr = if remote.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let s = std::net::UdpSocket::bind(bind)?;
        s.connect(SocketAddr::new(remote, 9))?;
        Ok(s.local_addr()?.ip())
    };
    probe().unwrap_or(remote)
}

impl ConferenceRow {
    /// Whether a Request-URI names this conference's focus: its organizer's user and id.
    fn focus_uri_matches(&self, uri: &Uri) -> bool {
        let user = self.organizer.strip_prefix("sip:").and_then(|r| r.split_once('@')).map(|(u, _)| u);
        uri.user.as_deref().map(str::to_ascii_lowercase).as_deref() == user
            && crate::conference::focus_id(uri).as_deref() == Some(self.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(level: AccessLevel) -> ConferenceRow {
        ConferenceRow {
            id: "AB12CD34".into(),
            focus_uri: "sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:AB12CD34".into(),
            join_url: String::new(),
            conference_number: "1234567".into(),
            organizer: "sip:alice@litwareinc.com".into(),
            subject: String::new(),
            starts_at: None,
            ends_at: None,
            attendees: vec!["sip:bob@litwareinc.com".into()],
            mailbox_uid: None,
            access_level: level,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_lobby_follows_the_access_level() {
        let (alice, bob, eve) = ("sip:alice@litwareinc.com", "sip:bob@litwareinc.com", "sip:eve@litwareinc.com");
        let locked = row(AccessLevel::Locked);
        assert!(bypasses_lobby(&locked, alice) && !bypasses_lobby(&locked, bob));
        let invited = row(AccessLevel::Invited);
        assert!(bypasses_lobby(&invited, bob) && !bypasses_lobby(&invited, eve));
        assert!(bypasses_lobby(&row(AccessLevel::SameEnterprise), eve));
        let uri = Uri::parse("sip:Alice@litwareinc.com;gruu;opaque=app:conf:focus:id:AB12CD34").unwrap();
        assert!(invited.focus_uri_matches(&uri));
        let other = Uri::parse("sip:bob@litwareinc.com;gruu;opaque=app:conf:focus:id:AB12CD34").unwrap();
        assert!(!invited.focus_uri_matches(&other), "another organizer's URI with the id is not this focus");
    }
}

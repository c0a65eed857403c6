//! Presence (RFC 3856, RFC 3903, RFC 6665) and watcher information (RFC 3857).
//!
//! A user's endpoints publish PIDF documents; the presentity shown to watchers is their
//! aggregate (on-the-phone > busy > away > available), "available" when registered without a
//! publication, and offline when nothing is left. Watchers of the same organisation are allowed
//! (Skype for Business with privacy mode off, its default: everyone in the organisation sees a
//! user's presence, contacts or not); a watcher on the owner's block list is told "offline"
//! (polite blocking, as Skype for Business does). The block list is the Front End store's
//! (`presence_blocks`) together with the "Blocked Contacts" group of the owner's contact list in
//! the mailbox: while someone watches a user, the Front End follows that user's list (see
//! `crate::calendar_presence::contact_list`), a new subscription's first NOTIFY waits for the
//! list's first read (at most [`LIST_WAIT`]), and a contact blocked or unblocked later is sent the
//! changed view at once. NOTIFYs to one subscription are at most one per [`NOTIFY_MIN_INTERVAL`]; changes in
//! between are coalesced into the next one.
//!
//! A user's contact list is a resource list (RFC 4662) at `sip:<user>-contacts@<domain>`: the
//! owner subscribes with `Supported: eventlist` and gets `multipart/related` NOTIFYs, an RLMI
//! document and one PIDF part per contact — full state first and whenever the list changes,
//! then partial state naming only the contacts whose presence changed. The list itself is the
//! user's Unified Contact Store in the mailbox, read through EWS and kept current by a streaming
//! subscription (see `crate::calendar_presence::contact_list`); [`Presence::set_contact_list`]
//! is where it arrives.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_sip_proto::pidf::{self, Availability, PresenceSummary};
use tandem_sip_proto::rlmi::{self, Instance, InstanceState, Part, Resource, ResourceList};
use tandem_sip_proto::{HeaderView, Method, NameAddr, Request, Uri};

use super::dispatch::Ctx;
use super::transport::Flow;
use super::{SipCore, random_token};

pub const NOTIFY_MIN_INTERVAL: Duration = Duration::from_millis(250);
pub const MIN_EXPIRES: u32 = 60;
pub const DEFAULT_EXPIRES: u32 = 3600;
pub const MAX_EXPIRES: u32 = 7200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Package {
    Presence,
    WatcherInfo,
    /// RFC 3842 message waiting: the user's own voicemail counts (`crate::voicemail::mwi`).
    MessageSummary,
}

impl Package {
    fn parse(event: &str) -> Option<Package> {
        let name = event.split(';').next().unwrap_or("").trim();
        match name {
            n if n.eq_ignore_ascii_case("presence") => Some(Package::Presence),
            n if n.eq_ignore_ascii_case("presence.winfo") => Some(Package::WatcherInfo),
            n if n.eq_ignore_ascii_case("message-summary") => Some(Package::MessageSummary),
            _ => None,
        }
    }
    fn event(self) -> &'static str {
        match self {
            Package::Presence => "presence",
            Package::WatcherInfo => "presence.winfo",
            Package::MessageSummary => "message-summary",
        }
    }
}

#[derive(Debug, Clone)]
struct Publication {
    /// The endpoint that published (`None`: the user's web session, `crate::ucwa`): one current
    /// publication per endpoint is aggregated.
    source: Option<Flow>,
    etag: String,
    summary: PresenceSummary,
    expires_at: Instant,
}

#[derive(Debug, Clone)]
struct Subscription {
    package: Package,
    target: String,
    watcher: String,
    call_id: String,
    our_tag: String,
    /// From of our NOTIFYs: the SUBSCRIBE's To with our tag.
    our_side: String,
    /// To of our NOTIFYs: the SUBSCRIBE's From.
    their_side: String,
    remote_target: Uri,
    flow: Flow,
    route_set: Vec<String>,
    cseq: u32,
    expires_at: Instant,
    last_sent: Option<Instant>,
    blocked: bool,
    version: u32,
    /// A resource-list subscription to the watcher's own contact list (`target` is the owner).
    list: bool,
    /// The next list NOTIFY carries full state (the first one, and after the list changed).
    full: bool,
    /// The contacts whose presence changed since the last list NOTIFY (partial state).
    pending: HashSet<String>,
    created: Instant,
    /// A SUBSCRIBE (the first or a refresh) is owed its NOTIFY even when nothing changed.
    owed: bool,
    /// A hash of the last document sent, so a change that changed nothing sends nothing.
    last_document: Option<u64>,
    /// The first NOTIFY waits for the target's contact list (its blocked group), as a list
    /// subscription's waits for the list.
    await_list: bool,
}

/// How long a new list subscription waits for the mailbox's list before its first NOTIFY goes
/// out with what is known (an empty list); a presence subscription to a user whose list was not
/// read yet waits as long for its blocked group.
pub const LIST_WAIT: Duration = Duration::from_secs(5);

/// One contact of a list: SIP URI and display name.
pub type ListEntry = (String, String);

/// A subscription's dialog: Call-ID and our tag.
type Key = (String, String);

/// The presence state with the indexes that keep every per-request step independent of how many
/// subscriptions the server holds (a SUBSCRIBE, a change of presence and a timer tick each touch
/// only the subscriptions concerned).
#[derive(Debug, Default)]
struct State {
    publications: HashMap<String, Vec<Publication>>,
    /// When publications end: (expiry, address of record). A refreshed or removed publication
    /// leaves its old entry behind, found stale when its time comes.
    publication_expiry: BTreeSet<(Instant, String)>,
    subscriptions: HashMap<Key, Subscription>,
    /// How many subscriptions each watcher holds (the per-user cap).
    by_watcher: HashMap<String, usize>,
    /// Subscriptions to one presentity, per package (list subscriptions are under `by_list`).
    by_target: HashMap<(String, Package), HashSet<Key>>,
    /// Resource-list subscriptions per list owner.
    by_list: HashMap<String, HashSet<Key>>,
    /// When subscriptions end.
    by_expiry: BTreeSet<(Instant, Key)>,
    /// Subscriptions with a NOTIFY due (a change or a SUBSCRIBE not yet notified).
    dirty: HashSet<Key>,
    /// Each list owner's contacts as last read from the mailbox.
    lists: HashMap<String, Vec<ListEntry>>,
    /// The owners whose lists name each contact.
    in_lists: HashMap<String, HashSet<String>>,
    /// Each list owner's blocked group, as last read.
    list_blocks: HashMap<String, HashSet<String>>,
    /// Counts changes to the watched presentities and list owners (the keys of `by_target` and
    /// `by_list`, and the lists' members), so the calendar manager rebuilds what it watches only
    /// when that changed.
    targets_generation: u64,
}

impl State {
    fn insert_subscription(&mut self, key: Key, sub: Subscription) {
        *self.by_watcher.entry(sub.watcher.clone()).or_default() += 1;
        let new_target = if sub.list {
            let set = self.by_list.entry(sub.target.clone()).or_default();
            set.insert(key.clone());
            set.len() == 1
        } else {
            let set = self.by_target.entry((sub.target.clone(), sub.package)).or_default();
            set.insert(key.clone());
            set.len() == 1
        };
        if new_target {
            self.targets_generation += 1;
        }
        self.by_expiry.insert((sub.expires_at, key.clone()));
        self.dirty.insert(key.clone());
        self.subscriptions.insert(key, sub);
    }

    fn remove_subscription(&mut self, key: &Key) -> Option<Subscription> {
        let sub = self.subscriptions.remove(key)?;
        if let Some(n) = self.by_watcher.get_mut(&sub.watcher) {
            *n -= 1;
            if *n == 0 {
                self.by_watcher.remove(&sub.watcher);
            }
        }
        if sub.list {
            if let Some(set) = self.by_list.get_mut(&sub.target) {
                set.remove(key);
                if set.is_empty() {
                    self.by_list.remove(&sub.target);
                    self.targets_generation += 1;
                }
            }
        } else {
            let t = (sub.target.clone(), sub.package);
            if let Some(set) = self.by_target.get_mut(&t) {
                set.remove(key);
                if set.is_empty() {
                    self.by_target.remove(&t);
                    self.targets_generation += 1;
                }
            }
        }
        self.by_expiry.remove(&(sub.expires_at, key.clone()));
        self.dirty.remove(key);
        Some(sub)
    }

    /// Moves a subscription's end.
    fn set_expiry(&mut self, key: &Key, expires_at: Instant) {
        let Some(sub) = self.subscriptions.get_mut(key) else { return };
        self.by_expiry.remove(&(sub.expires_at, key.clone()));
        sub.expires_at = expires_at;
        self.by_expiry.insert((expires_at, key.clone()));
    }

    /// Replaces an owner's list (`None`: forgets it), keeping `in_lists` in step.
    fn set_list(&mut self, owner: &str, entries: Option<Vec<ListEntry>>) {
        self.targets_generation += 1;
        if let Some(old) = self.lists.remove(owner) {
            for (uri, _) in old {
                if let Some(owners) = self.in_lists.get_mut(&uri) {
                    owners.remove(owner);
                    if owners.is_empty() {
                        self.in_lists.remove(&uri);
                    }
                }
            }
        }
        if entries.is_none() {
            self.list_blocks.remove(owner);
        }
        if let Some(entries) = entries {
            for (uri, _) in &entries {
                self.in_lists.entry(uri.clone()).or_default().insert(owner.to_owned());
            }
            self.lists.insert(owner.to_owned(), entries);
        }
    }

    /// Whether a subscription's watcher is told "offline": the store's block list (read at the
    /// subscription's start) or the owner's blocked group.
    fn blocked(&self, sub: &Subscription) -> bool {
        sub.blocked || (!sub.list && self.list_blocks.get(&sub.target).is_some_and(|b| b.contains(&sub.watcher)))
    }
}

#[derive(Debug, Default)]
pub struct Presence {
    state: Mutex<State>,
    /// (owner, watcher) → whether the owner blocks the watcher, and when that was read.
    blocks: Mutex<HashMap<(String, String), (Instant, bool)>>,
    /// What each watched user's calendar says (see `crate::calendar_presence`).
    pub(crate) calendar: crate::calendar_presence::Board,
    /// Whether contact lists are followed in the mailbox (the Front End has an Exchange
    /// connector): only then does a first NOTIFY wait for the target's blocked group.
    lists_followed: std::sync::atomic::AtomicBool,
    /// Wakes the contact-list manager when a list is wanted that is not followed yet.
    pub(crate) lists_wanted: tokio::sync::Notify,
    /// Voicemail counts (new, old) per user, as the mailbox watch last read them.
    voice_counts: Mutex<HashMap<String, (u32, u32)>>,
    /// The UC web API's sessions: watchers and IM endpoints beside the SIP ones.
    pub web: super::web::WebEndpoints,
}

impl Presence {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an in-dialog SUBSCRIBE belongs to a subscription this server holds.
    pub fn owns_dialog(&self, req: &Request) -> bool {
        let (Some(call_id), Ok(to)) = (req.call_id(), req.to()) else { return false };
        let Some(tag) = to.tag() else { return false };
        self.lock().subscriptions.contains_key(&(call_id.to_owned(), tag.to_owned()))
    }

    /// The watcher of the subscription an in-dialog request belongs to, when it came over the
    /// flow the subscription was made on (the same source address and port, or the same
    /// connection): a flow that authenticated the subscription's start stands for its watcher.
    pub(super) fn dialog_watcher_on(&self, req: &Request, flow: &Flow) -> Option<String> {
        let (call_id, to) = (req.call_id()?, req.to().ok()?);
        let tag = to.tag()?;
        let st = self.lock();
        let sub = st.subscriptions.get(&(call_id.to_owned(), tag.to_owned()))?;
        (sub.flow == *flow).then(|| sub.watcher.clone())
    }

    pub fn subscription_count(&self) -> usize {
        self.lock().subscriptions.len()
    }

    /// The users whose contact list is followed: who subscribes to their list, and whose
    /// presence someone watches (the list's blocked group decides what a watcher is told).
    pub(crate) fn list_owners(&self) -> Vec<String> {
        let st = self.lock();
        let mut out: Vec<String> = st.by_list.keys().cloned().collect();
        out.extend(st.by_target.keys().filter(|(_, p)| *p == Package::Presence).map(|(t, _)| t.clone()));
        drop(st);
        out.extend(self.web.watched());
        out.sort();
        out.dedup();
        out
    }

    /// The users someone subscribes to message-summary for: their Inbox is watched.
    pub(crate) fn message_summary_targets(&self) -> Vec<String> {
        let st = self.lock();
        let mut out: Vec<String> =
            st.by_target.keys().filter(|(_, p)| *p == Package::MessageSummary).map(|(t, _)| t.clone()).collect();
        out.sort();
        out
    }

    /// A user's voicemail counts (new, old), when the mailbox was read.
    pub(crate) fn voice_counts(&self, aor: &str) -> Option<(u32, u32)> {
        self.voice_counts.lock().unwrap_or_else(|p| p.into_inner()).get(aor).copied()
    }

    /// Turns on following contact lists (first NOTIFYs wait for the target's blocked group).
    pub(crate) fn follow_lists(&self) {
        self.lists_followed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the owner's list blocks `watcher`, as last read.
    pub fn list_blocks(&self, owner: &str, watcher: &str) -> bool {
        self.lock().list_blocks.get(owner).is_some_and(|b| b.contains(watcher))
    }

    /// A list owner's contacts as last read, if read.
    pub fn contact_list(&self, owner: &str) -> Option<Vec<ListEntry>> {
        self.lock().lists.get(owner).cloned()
    }

    /// Forgets an owner's list (nobody subscribes to it any more).
    pub(crate) fn drop_contact_list(&self, owner: &str) {
        self.lock().set_list(owner, None);
    }

    /// The endpoints' aggregate for `aor`, and whether any endpoint publishes.
    pub(crate) fn endpoint_view(&self, aor: &str, registered: bool) -> (PresenceSummary, bool) {
        let now = Instant::now();
        let published = self.lock().publications.get(aor).is_some_and(|v| v.iter().any(|p| p.expires_at > now));
        (self.summary(aor, registered), published)
    }

    /// The presentities someone subscribes to.
    /// Changes whenever `watched_targets` or `list_owners` may answer differently.
    pub(crate) fn targets_generation(&self) -> u64 {
        self.lock().targets_generation.wrapping_add(self.web.generation())
    }

    pub(crate) fn watched_targets(&self) -> Vec<String> {
        let st = self.lock();
        let mut out: Vec<String> =
            st.by_target.keys().filter(|(_, p)| *p == Package::Presence).map(|(t, _)| t.clone()).collect();
        for owner in st.by_list.keys() {
            if let Some(l) = st.lists.get(owner) {
                out.extend(l.iter().map(|(uri, _)| uri.clone()));
            }
        }
        drop(st);
        out.extend(self.web.watched());
        out.sort();
        out.dedup();
        out
    }

    /// The presentity of an address of record as watchers see it.
    fn summary(&self, aor: &str, registered: bool) -> PresenceSummary {
        let st = self.lock();
        let now = Instant::now();
        let pubs: Vec<&Publication> =
            st.publications.get(aor).map(|v| v.iter().filter(|p| p.expires_at > now).collect()).unwrap_or_default();
        if pubs.is_empty() {
            let availability = if registered { Availability::Available } else { Availability::Offline };
            return PresenceSummary { availability, note: None };
        }
        let availability = Availability::aggregate(pubs.iter().map(|p| p.summary.availability));
        let note = pubs.iter().rev().find_map(|p| p.summary.note.clone());
        PresenceSummary { availability, note }
    }
}

fn bounded_expires(requested: Option<u32>) -> Result<u32, ()> {
    match requested.unwrap_or(DEFAULT_EXPIRES) {
        0 => Ok(0),
        e if e < MIN_EXPIRES => Err(()),
        e => Ok(e.min(MAX_EXPIRES)),
    }
}

/// Handles a PUBLISH from an authenticated user; `target` is the address of record of this
/// domain its Request-URI names.
pub(super) async fn publish(core: &Arc<SipCore>, ctx: Ctx, target: Option<String>) {
    let Ctx { req, user, reply } = ctx;
    let answer = |status: u16| req.response(status).with_to_tag(&random_token());
    if req.headers.get("Event").and_then(Package::parse) != Some(Package::Presence) {
        let r = answer(489).with_header("Allow-Events", "presence, presence.winfo");
        reply.send(r).await;
        return;
    }
    let aor = user.sip_uri.key();
    if target.as_deref() != Some(aor.as_str()) {
        let mut r = answer(403);
        r.reason = "Forbidden (publish only your own presence)".into();
        reply.send(r).await;
        return;
    }
    let Ok(expires) = bounded_expires(req.expires()) else {
        let r = answer(423).with_header("Min-Expires", MIN_EXPIRES.to_string());
        reply.send(r).await;
        return;
    };
    let summary = if req.body.is_empty() {
        None
    } else {
        let ctype = req.content_type().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ctype != "application/pidf+xml" {
            let r = answer(415).with_header("Accept", "application/pidf+xml");
            reply.send(r).await;
            return;
        }
        match pidf::parse(&req.body) {
            Ok(s) => Some(s),
            Err(e) => {
                let mut r = answer(400);
                r.reason = format!("Bad Request ({e})");
                reply.send(r).await;
                return;
            }
        }
    };
    let if_match = req.headers.get("SIP-If-Match").map(|s| s.trim().to_owned());
    let new_etag = random_token();
    let outcome = {
        let mut st = core.presence.lock();
        let pubs = st.publications.entry(aor.clone()).or_default();
        let now = Instant::now();
        pubs.retain(|p| p.expires_at > now);
        match if_match {
            Some(tag) => match pubs.iter().position(|p| p.etag == tag) {
                None => Err(412),
                Some(i) if expires == 0 => {
                    pubs.remove(i);
                    Ok(())
                }
                Some(i) => {
                    let p = &mut pubs[i];
                    p.etag = new_etag.clone();
                    p.expires_at = now + Duration::from_secs(u64::from(expires));
                    if let Some(s) = summary {
                        p.summary = s;
                    }
                    let at = p.expires_at;
                    st.publication_expiry.insert((at, aor.clone()));
                    Ok(())
                }
            },
            None => match summary {
                None => Err(400),
                Some(_) if expires == 0 => Err(400),
                Some(s) => {
                    // A new publication from an endpoint replaces that endpoint's earlier one:
                    // clients that start twice (baresip publishes from a timer and again on
                    // registration) would otherwise leave a stale "open" beside their "closed".
                    pubs.retain(|p| p.source.as_ref() != Some(reply.flow()));
                    let at = now + Duration::from_secs(u64::from(expires));
                    pubs.push(Publication {
                        source: Some(reply.flow().clone()),
                        etag: new_etag.clone(),
                        summary: s,
                        expires_at: at,
                    });
                    st.publication_expiry.insert((at, aor.clone()));
                    Ok(())
                }
            },
        }
    };
    match outcome {
        Err(status) => reply.send(answer(status)).await,
        Ok(()) => {
            let mut r = answer(200).with_header("Expires", expires.to_string());
            if expires > 0 {
                r.headers.push("SIP-ETag", new_etag);
            }
            reply.send(r).await;
            metrics::counter!("tandem_sip_publications_total").increment(1);
            changed(core, &aor, Package::Presence);
        }
    }
}

/// The user's web session sets (`Some`) or withdraws (`None`) its publication, which lasts
/// `ttl` unless set again; watchers are told as for a PUBLISH.
pub(crate) fn publish_web(core: &Arc<SipCore>, aor: &str, summary: Option<PresenceSummary>, ttl: Duration) {
    {
        let mut st = core.presence.lock();
        let pubs = st.publications.entry(aor.to_owned()).or_default();
        let now = Instant::now();
        pubs.retain(|p| p.expires_at > now && p.source.is_some());
        if let Some(summary) = summary {
            let at = now + ttl;
            pubs.push(Publication { source: None, etag: random_token(), summary, expires_at: at });
            st.publication_expiry.insert((at, aor.to_owned()));
        } else if pubs.is_empty() {
            st.publications.remove(aor);
        }
    }
    metrics::counter!("tandem_ucwa_publications_total").increment(1);
    changed(core, aor, Package::Presence);
}

/// Whether the web session of `aor` holds a publication (it is refreshed while used).
pub(crate) fn web_publication(core: &SipCore, aor: &str) -> Option<PresenceSummary> {
    let now = Instant::now();
    let st = core.presence.lock();
    st.publications.get(aor)?.iter().find(|p| p.source.is_none() && p.expires_at > now).map(|p| p.summary.clone())
}

/// Handles a SUBSCRIBE (new, refresh or end) from an authenticated user; `target` is the
/// address of record of this domain its Request-URI names.
pub(super) async fn subscribe(core: &Arc<SipCore>, ctx: Ctx, target: Option<String>) {
    let Ctx { req, user, reply } = ctx;
    let answer = |status: u16| req.response(status);
    let Some(package) = req.headers.get("Event").and_then(Package::parse) else {
        let r = answer(489)
            .with_to_tag(&random_token())
            .with_header("Allow-Events", "presence, presence.winfo, message-summary");
        reply.send(r).await;
        return;
    };
    let Ok(expires) = bounded_expires(req.expires()) else {
        let r = answer(423).with_to_tag(&random_token()).with_header("Min-Expires", MIN_EXPIRES.to_string());
        reply.send(r).await;
        return;
    };
    let call_id = req.call_id().unwrap_or_default().to_owned();
    let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_owned));
    let watcher = user.sip_uri.key();

    let dialog = match to_tag {
        Some(tag) => {
            // Refresh or end of an existing subscription.
            let mut st = core.presence.lock();
            let key = (call_id.clone(), tag);
            match st.subscriptions.get_mut(&key) {
                Some(s) if s.watcher == watcher => {
                    s.last_sent = None;
                    s.owed = true;
                    st.set_expiry(&key, Instant::now() + Duration::from_secs(u64::from(expires)));
                    st.dirty.insert(key.clone());
                    Some(key)
                }
                _ => None,
            }
        }
        None => {
            let Some(target) = target else {
                reply.send(answer(404).with_to_tag(&random_token())).await;
                return;
            };
            let list = match list_owner(core, &target).await {
                Some(owner) => {
                    if let Some(r) = refuse_list(&req, package, &owner, &watcher) {
                        reply.send(r).await;
                        return;
                    }
                    Some(owner)
                }
                None => None,
            };
            let target = list.clone().unwrap_or(target);
            if package == Package::WatcherInfo && target != watcher {
                let mut r = answer(403).with_to_tag(&random_token());
                r.reason = "Forbidden (watcher information is for your own presentity)".into();
                reply.send(r).await;
                return;
            }
            if package == Package::MessageSummary && target != watcher {
                let mut r = answer(403).with_to_tag(&random_token());
                r.reason = "Forbidden (message waiting is for your own mailbox)".into();
                reply.send(r).await;
                return;
            }
            match core.directory.find_cached(&target).await {
                Ok(Some(u)) if u.can_use_sip() => {}
                _ if list.is_some() => {}
                _ => {
                    reply.send(answer(404).with_to_tag(&random_token())).await;
                    return;
                }
            }
            let Some(contact) = req.headers.values("Contact").first().and_then(|c| NameAddr::parse(c).ok()) else {
                let mut r = answer(400).with_to_tag(&random_token());
                r.reason = "Bad Request (SUBSCRIBE needs a Contact)".into();
                reply.send(r).await;
                return;
            };
            let held = core.presence.lock().by_watcher.get(&watcher).copied().unwrap_or(0);
            if held >= core.policy.max_subscriptions_per_user {
                metrics::counter!("tandem_sip_subscriptions_refused_total").increment(1);
                tracing::warn!(
                    %watcher,
                    held,
                    "SIP SUBSCRIBE refused: the user holds the most subscriptions allowed \
                     (frontend.sip_max_subscriptions_per_user)"
                );
                let mut r = answer(503).with_to_tag(&random_token()).with_header("Retry-After", "600");
                r.reason = "Service Unavailable (too many subscriptions for this user)".into();
                reply.send(r).await;
                return;
            }
            let blocked = list.is_none() && is_blocked(core, &target, &watcher).await;
            let our_tag = random_token();
            let mut to = match req.to() {
                Ok(t) => t,
                Err(_) => return,
            };
            to.params.set("tag", Some(&our_tag));
            let sub = Subscription {
                package,
                target: target.clone(),
                watcher: watcher.clone(),
                call_id: call_id.clone(),
                our_tag: our_tag.clone(),
                our_side: to.to_string(),
                their_side: req.headers.get("From").unwrap_or_default().to_owned(),
                remote_target: contact.uri,
                flow: reply.flow().clone(),
                route_set: req.headers.values("Record-Route").into_iter().map(str::to_owned).collect(),
                cseq: 0,
                expires_at: Instant::now() + Duration::from_secs(u64::from(expires)),
                last_sent: None,
                blocked,
                version: 0,
                list: list.is_some(),
                full: true,
                pending: HashSet::new(),
                created: Instant::now(),
                owed: true,
                last_document: None,
                await_list: false,
            };
            let mut sub = sub;
            {
                let mut st = core.presence.lock();
                sub.await_list = list.is_none()
                    && package == Package::Presence
                    && core.presence.lists_followed.load(std::sync::atomic::Ordering::Relaxed)
                    && !st.lists.contains_key(&target);
                st.insert_subscription((call_id.clone(), our_tag.clone()), sub);
            }
            metrics::counter!("tandem_sip_subscriptions_total", "event" => package.event()).increment(1);
            if package == Package::Presence && list.is_none() {
                changed(core, &target, Package::WatcherInfo);
            }
            Some((call_id.clone(), our_tag))
        }
    };
    let Some((cid, tag)) = dialog else {
        reply.send(answer(481)).await;
        return;
    };
    let (is_list, await_list) = core
        .presence
        .lock()
        .subscriptions
        .get(&(cid.clone(), tag.clone()))
        .map_or((false, false), |s| (s.list, s.await_list && s.cseq == 0));
    let mut r = answer(200)
        .with_to_tag(&tag)
        .with_header("Expires", expires.to_string())
        .with_header("Contact", format!("<{}>", core.own_uri(reply.flow().transport())));
    if is_list {
        r.headers.push("Require", "eventlist");
    }
    reply.send(r).await;
    if is_list && expires > 0 && core.presence.contact_list(&watcher).is_none() {
        // The first NOTIFY waits for the mailbox's list (see `on_tick` for the bound).
        core.presence.lists_wanted.notify_one();
        return;
    }
    if await_list && expires > 0 {
        // The first NOTIFY waits for the target's blocked group (see `on_tick` for the bound).
        core.presence.lists_wanted.notify_one();
        return;
    }
    metrics::gauge!("tandem_sip_subscriptions").set(core.presence.subscription_count() as f64);
    // RFC 6665 §4.2.1.2: a NOTIFY follows every accepted SUBSCRIBE, including an unsubscribe.
    send_notify(core, &cid, &tag, expires == 0);
}

/// The mailbox watch read a user's voicemail counts: their message-summary subscribers get a
/// NOTIFY when they changed.
pub(crate) fn set_voice_counts(core: &Arc<SipCore>, aor: &str, new: u32, old: u32) {
    let before =
        core.presence.voice_counts.lock().unwrap_or_else(|p| p.into_inner()).insert(aor.to_owned(), (new, old));
    // Before the first read the NOTIFYs said nothing waits: (0, 0) again is no change.
    if before.unwrap_or((0, 0)) != (new, old) {
        metrics::counter!("tandem_voicemail_mwi_changes_total").increment(1);
        changed(core, aor, Package::MessageSummary);
    }
}

/// A user's counts are no longer watched.
pub(crate) fn forget_voice_counts(core: &SipCore, aor: &str) {
    core.presence.voice_counts.lock().unwrap_or_else(|p| p.into_inner()).remove(aor);
}

/// The owner of a contact-list URI (`sip:alice-contacts@domain` → `sip:alice@domain`) when the
/// URI names no user itself and the owner is a SIP user.
async fn list_owner(core: &SipCore, target: &str) -> Option<String> {
    let (user, domain) = target.strip_prefix("sip:")?.split_once('@')?;
    let owner = user.strip_suffix("-contacts").filter(|u| !u.is_empty())?;
    if matches!(core.directory.find_cached(target).await, Ok(Some(_))) {
        return None;
    }
    let owner = format!("sip:{owner}@{domain}");
    match core.directory.find_cached(&owner).await {
        Ok(Some(u)) if u.can_use_sip() => Some(owner),
        _ => None,
    }
}

/// Why a new list subscription is refused: only the owner subscribes to a list, to presence,
/// and with `Supported: eventlist` (RFC 4662 §4.3: 421 with `Require: eventlist` otherwise).
fn refuse_list(req: &Request, package: Package, owner: &str, watcher: &str) -> Option<tandem_sip_proto::Response> {
    let answer = |status: u16| req.response(status).with_to_tag(&random_token());
    if package != Package::Presence {
        return Some(answer(489).with_header("Allow-Events", "presence"));
    }
    if owner != watcher {
        let mut r = answer(403);
        r.reason = "Forbidden (a contact list is for its owner)".into();
        return Some(r);
    }
    let supported = req
        .headers
        .values("Supported")
        .iter()
        .flat_map(|v| v.split(','))
        .any(|o| o.trim().eq_ignore_ascii_case("eventlist"));
    if !supported {
        return Some(answer(421).with_header("Require", "eventlist"));
    }
    None
}

impl Presence {
    /// A list owner's contacts and blocked group as read from the mailbox: when the contacts
    /// differ from what subscribers were sent, each of the owner's list subscriptions gets a
    /// full-state NOTIFY; when the blocked group changed (or the list is read for the first
    /// time), the owner's watchers get what they are now to see (coalesced, and nothing when
    /// their view did not change).
    pub(crate) fn set_contact_list(
        &self,
        core: &Arc<SipCore>,
        owner: &str,
        entries: Vec<ListEntry>,
        blocked: HashSet<String>,
    ) {
        let due: Vec<(String, String)> = {
            let mut st = self.lock();
            let first = !st.lists.contains_key(owner);
            if first || st.list_blocks.get(owner) != Some(&blocked) {
                let watchers: Vec<Key> = st
                    .by_target
                    .get(&(owner.to_owned(), Package::Presence))
                    .map(|k| k.iter().cloned().collect())
                    .unwrap_or_default();
                st.dirty.extend(watchers);
                st.list_blocks.insert(owner.to_owned(), blocked);
            }
            if st.lists.get(owner) == Some(&entries) {
                return;
            }
            st.set_list(owner, Some(entries));
            let keys: Vec<Key> = st.by_list.get(owner).map(|k| k.iter().cloned().collect()).unwrap_or_default();
            for k in &keys {
                if let Some(s) = st.subscriptions.get_mut(k) {
                    s.full = true;
                }
                st.dirty.insert(k.clone());
            }
            keys
        };
        for (cid, tag) in due {
            send_notify(core, &cid, &tag, false);
        }
    }
}

/// How long a block-list answer for one (owner, watcher) pair is reused: a new subscription
/// costs no store query when the same watcher subscribed to the same owner shortly before (a
/// client re-subscribing, a sign-in storm). A block takes effect on new subscriptions within this
/// time; existing subscriptions keep what they were told at their start.
pub const BLOCK_CACHE_TTL: Duration = Duration::from_secs(5);
/// Pairs cached before the cache is emptied (bounds memory under many distinct watchers).
const BLOCK_CACHE_MAX: usize = 100_000;

/// Whether `owner` blocks `watcher`, through the short-lived cache. A store failure counts as
/// not blocked (and is not cached), so presence keeps working when the store does not.
pub(crate) async fn is_blocked(core: &SipCore, owner: &str, watcher: &str) -> bool {
    let key = (owner.to_owned(), watcher.to_owned());
    let now = Instant::now();
    {
        let cache = core.presence.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, blocked)) = cache.get(&key)
            && now.duration_since(*at) < BLOCK_CACHE_TTL
        {
            return *blocked;
        }
    }
    let Ok(blocked) = core.store.is_blocked(owner, watcher).await else { return false };
    let mut cache = core.presence.blocks.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= BLOCK_CACHE_MAX {
        cache.clear();
    }
    cache.insert(key, (now, blocked));
    blocked
}

/// The presentity of `aor` changed for `package`: notify its subscribers (coalesced).
fn changed(core: &Arc<SipCore>, aor: &str, package: Package) {
    if package == Package::Presence {
        // What `tandem cs get-presence` records for the user is due again.
        core.presence.calendar.touch(aor);
        core.presence.web.presence_changed(aor);
    }
    let due: Vec<Key> = {
        let mut st = core.presence.lock();
        let now = Instant::now();
        let mut keys: Vec<Key> = Vec::new();
        if package == Package::Presence {
            // The list subscriptions of every owner whose list names `aor`: partial state.
            let owners: Vec<String> = st.in_lists.get(aor).map(|o| o.iter().cloned().collect()).unwrap_or_default();
            for owner in owners {
                let Some(subs) = st.by_list.get(&owner) else { continue };
                let subs: Vec<Key> = subs.iter().cloned().collect();
                for k in subs {
                    if let Some(s) = st.subscriptions.get_mut(&k) {
                        s.pending.insert(aor.to_owned());
                    }
                    keys.push(k);
                }
            }
        }
        if let Some(subs) = st.by_target.get(&(aor.to_owned(), package)) {
            keys.extend(subs.iter().cloned());
        }
        keys.into_iter()
            .filter(|k| {
                st.dirty.insert(k.clone());
                st.subscriptions
                    .get(k)
                    .is_some_and(|s| s.last_sent.is_none_or(|t| now.duration_since(t) >= NOTIFY_MIN_INTERVAL))
            })
            .collect()
    };
    for (cid, tag) in due {
        send_notify(core, &cid, &tag, false);
    }
}

impl SipCore {
    /// What the calendar says of `aor` changed: notify its watchers (coalesced).
    pub(crate) fn calendar_changed(self: &Arc<Self>, aor: &str) {
        changed(self, aor, Package::Presence);
    }
}

pub(super) async fn registration_changed(core: &Arc<SipCore>, aor: &str) {
    changed(core, aor, Package::Presence);
}

/// Sends the current state on one subscription in a task of its own; a 481/408 or no answer
/// ends the subscription. A presence document that is the one last sent is not sent again (a
/// registration refresh or a calendar read that changed nothing), unless a SUBSCRIBE is owed
/// its NOTIFY.
fn send_notify(core: &Arc<SipCore>, call_id: &str, our_tag: &str, terminate: bool) {
    let key: Key = (call_id.to_owned(), our_tag.to_owned());
    let (built, sent_before) = {
        let mut st = core.presence.lock();
        st.dirty.remove(&key);
        let Some(sub) = st.subscriptions.get_mut(&key) else { return };
        let sent_before = sub.last_sent;
        sub.cseq += 1;
        sub.version += 1;
        sub.last_sent = Some(Instant::now());
        let mut snapshot = sub.clone();
        snapshot.blocked = st.blocked(&snapshot);
        let Some(sub) = st.subscriptions.get_mut(&key) else { return };
        sub.full = false;
        sub.pending.clear();
        sub.owed = false;
        if terminate {
            st.remove_subscription(&key);
        }
        (snapshot, sent_before)
    };
    let list_body = built.list.then(|| list_notify_body(core, &built));
    let (ctype, body) = match built.package {
        Package::Presence if list_body.is_some() => list_body.clone().unwrap_or_default(),
        Package::Presence => {
            let body = if built.blocked {
                pidf::render(&built.target, &PresenceSummary { availability: Availability::Offline, note: None })
            } else {
                // The endpoints' publications combined with the calendar.
                let shown = crate::calendar_presence::shown(core, &built.target);
                let photo = core.presence.calendar.photo_for(&built.target);
                pidf::render_person(&built.target, &shown.summary, shown.activity, photo.as_deref())
            };
            ("application/pidf+xml".to_owned(), body)
        }
        Package::WatcherInfo => ("application/watcherinfo+xml".to_owned(), watcherinfo(core, &built)),
        Package::MessageSummary => {
            // Until the mailbox was read, nothing is said to be waiting (RFC 3842 §5.2 allows
            // a summary with no counts).
            let (new, old) = core.presence.voice_counts(&built.target).unwrap_or((0, 0));
            let summary = tandem_sip_proto::message_summary::Summary::voice(Some(&built.target), new, old);
            (tandem_sip_proto::message_summary::CONTENT_TYPE.to_owned(), summary.render().into_bytes())
        }
    };
    if built.package == Package::Presence && !built.list && !terminate {
        let document = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            body.hash(&mut h);
            h.finish()
        };
        let mut st = core.presence.lock();
        let Some(sub) = st.subscriptions.get_mut(&key) else { return };
        // Unchanged, nothing owed, and no other NOTIFY went meanwhile: take the CSeq back.
        if !built.owed && built.last_document == Some(document) && sub.cseq == built.cseq {
            sub.cseq -= 1;
            sub.version -= 1;
            sub.last_sent = sent_before;
            metrics::counter!("tandem_sip_notify_unchanged_total").increment(1);
            return;
        }
        sub.last_document = Some(document);
    }
    let remaining = built.expires_at.saturating_duration_since(Instant::now()).as_secs();
    let state = if terminate || remaining == 0 {
        "terminated;reason=timeout".to_owned()
    } else {
        format!("active;expires={remaining}")
    };
    let mut req = Request::new(Method::Notify, built.remote_target.clone());
    for r in &built.route_set {
        req.headers.push("Route", r.clone());
    }
    req.headers.push("From", built.our_side.clone());
    req.headers.push("To", built.their_side.clone());
    req.headers.push("Call-ID", built.call_id.clone());
    req.headers.push("CSeq", format!("{} NOTIFY", built.cseq));
    req.headers.push("Contact", format!("<{}>", core.own_uri(built.flow.transport())));
    req.headers.push("Event", built.package.event());
    if built.list {
        req.headers.push("Require", "eventlist");
    }
    req.headers.push("Subscription-State", state);
    req.headers.push("Content-Type", ctype);
    req.body = body;
    metrics::counter!("tandem_sip_notify_total").increment(1);
    let core2 = core.clone();
    core.tasks.spawn(async move {
        let resp = core2.request(req, built.flow.clone()).await;
        let gone = match &resp {
            None => true,
            Some(r) => matches!(r.status, 481 | 408 | 404 | 410 | 489),
        };
        if gone {
            core2.presence.lock().remove_subscription(&(built.call_id.clone(), built.our_tag.clone()));
        }
    });
}

/// The `multipart/related` body of a list NOTIFY: the RLMI document, then a PIDF part per
/// contact it names (every contact for full state, the changed ones for partial state).
fn list_notify_body(core: &SipCore, sub: &Subscription) -> (String, Vec<u8>) {
    let entries = core.presence.contact_list(&sub.target).unwrap_or_default();
    let full = sub.full;
    let named: Vec<&ListEntry> = entries.iter().filter(|(uri, _)| full || sub.pending.contains(uri)).collect();
    let list_uri = match sub.target.strip_prefix("sip:").and_then(|t| t.split_once('@')) {
        Some((user, domain)) => format!("sip:{user}-contacts@{domain}"),
        None => sub.target.clone(),
    };
    let tag = &sub.our_tag;
    let mut parts = Vec::with_capacity(named.len() + 1);
    let mut resources = Vec::with_capacity(named.len());
    for (n, (uri, name)) in named.iter().enumerate() {
        let cid = format!("r{n}.{tag}@tandem");
        let shown = crate::calendar_presence::shown(core, uri);
        let body = pidf::render_activity(uri, &shown.summary, shown.activity);
        parts.push(Part { content_id: cid.clone(), content_type: "application/pidf+xml".into(), body });
        resources.push(Resource {
            uri: uri.clone(),
            name: (!name.is_empty()).then(|| name.clone()),
            instances: vec![Instance {
                id: format!("i{n}"),
                state: InstanceState::Active,
                cid: Some(cid),
                reason: None,
            }],
        });
    }
    let doc =
        ResourceList { uri: list_uri, version: sub.version.saturating_sub(1), full_state: full, name: None, resources };
    parts.insert(
        0,
        Part { content_id: format!("rlmi.{tag}@tandem"), content_type: rlmi::RLMI_TYPE.into(), body: doc.render() },
    );
    rlmi::multipart_related(&format!("tandem-{tag}"), &parts)
}

fn watcherinfo(core: &SipCore, sub: &Subscription) -> Vec<u8> {
    let watchers: Vec<(String, String)> = {
        let st = core.presence.lock();
        st.by_target
            .get(&(sub.target.clone(), Package::Presence))
            .into_iter()
            .flatten()
            .filter_map(|k| st.subscriptions.get(k))
            .map(|s| (s.our_tag.clone(), s.watcher.clone()))
            .collect()
    };
    let mut doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"{}\" state=\"full\">\n<watcher-list resource=\"{}\" package=\"presence\">\n",
        sub.version - 1,
        sub.target
    );
    for (id, w) in watchers {
        doc.push_str(&format!("<watcher id=\"{id}\" event=\"subscribe\" status=\"active\">{w}</watcher>\n"));
    }
    doc.push_str("</watcher-list>\n</watcherinfo>\n");
    doc.into_bytes()
}

/// Expiries and coalesced NOTIFYs: only the publications and subscriptions whose time came and
/// the subscriptions with a NOTIFY due are looked at.
pub(super) async fn on_tick(core: &Arc<SipCore>) {
    let now = Instant::now();
    let (expired_pubs, ended, due) = {
        let mut guard = core.presence.lock();
        let st = &mut *guard;
        let mut expired_pubs = Vec::new();
        while let Some((at, aor)) = st.publication_expiry.first().cloned()
            && at <= now
        {
            st.publication_expiry.pop_first();
            let Some(pubs) = st.publications.get_mut(&aor) else { continue };
            let n = pubs.len();
            pubs.retain(|p| p.expires_at > now);
            if pubs.len() != n {
                expired_pubs.push(aor.clone());
            }
            if pubs.is_empty() {
                st.publications.remove(&aor);
            }
        }
        let ended: Vec<Key> = st.by_expiry.iter().take_while(|(at, _)| *at <= now).map(|(_, k)| k.clone()).collect();
        let due: Vec<Key> = st
            .dirty
            .iter()
            .filter_map(|k| st.subscriptions.get(k).map(|s| (k, s)))
            .filter(|(_, s)| s.expires_at > now)
            .filter(|(_, s)| {
                !(s.list || s.await_list)
                    || s.cseq > 0
                    || st.lists.contains_key(&s.target)
                    || now.duration_since(s.created) >= LIST_WAIT
            })
            .filter(|(_, s)| s.last_sent.is_none_or(|t| now.duration_since(t) >= NOTIFY_MIN_INTERVAL))
            .map(|(k, _)| k.clone())
            .collect();
        (expired_pubs, ended, due)
    };
    for aor in expired_pubs {
        changed(core, &aor, Package::Presence);
    }
    for (cid, tag) in ended {
        send_notify(core, &cid, &tag, true);
    }
    for (cid, tag) in due {
        send_notify(core, &cid, &tag, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(watcher: &str, target: &str, package: Package, list: bool, expires_at: Instant) -> Subscription {
        Subscription {
            package,
            target: target.into(),
            watcher: watcher.into(),
            call_id: format!("{watcher}-{target}"),
            our_tag: "t".into(),
            our_side: String::new(),
            their_side: String::new(),
            remote_target: Uri::parse("sip:w@127.0.0.1:5070").unwrap(),
            flow: Flow::Udp { peer: "127.0.0.1:5070".parse().unwrap() },
            route_set: Vec::new(),
            cseq: 0,
            expires_at,
            last_sent: None,
            blocked: false,
            await_list: false,
            version: 0,
            list,
            full: true,
            pending: HashSet::new(),
            created: Instant::now(),
            owed: true,
            last_document: None,
        }
    }

    /// Every index follows the subscriptions and lists in and out, so nothing is left behind to
    /// be scanned or to grow.
    #[test]
    fn indexes_follow_subscriptions_and_lists() {
        let mut st = State::default();
        let now = Instant::now();
        let a = ("c1".to_owned(), "t1".to_owned());
        let b = ("c2".to_owned(), "t2".to_owned());
        let l = ("c3".to_owned(), "t3".to_owned());
        st.insert_subscription(a.clone(), subscription("sip:w@x", "sip:p@x", Package::Presence, false, now));
        st.insert_subscription(b.clone(), subscription("sip:w@x", "sip:w@x", Package::WatcherInfo, false, now));
        st.insert_subscription(l.clone(), subscription("sip:w@x", "sip:w@x", Package::Presence, true, now));
        st.set_list("sip:w@x", Some(vec![("sip:p@x".into(), "P".into()), ("sip:q@x".into(), String::new())]));
        assert_eq!(st.by_watcher.get("sip:w@x"), Some(&3));
        assert_eq!(st.by_target.get(&("sip:p@x".into(), Package::Presence)).map(HashSet::len), Some(1));
        assert!(st.by_list.get("sip:w@x").is_some_and(|k| k.contains(&l)));
        assert!(st.in_lists.get("sip:q@x").is_some_and(|o| o.contains("sip:w@x")));
        assert_eq!(st.dirty.len(), 3);

        let later = now + Duration::from_secs(60);
        st.set_expiry(&a, later);
        assert_eq!(st.by_expiry.len(), 3);
        assert!(st.by_expiry.contains(&(later, a.clone())));
        st.set_list("sip:w@x", Some(vec![("sip:q@x".into(), String::new())]));
        assert!(!st.in_lists.contains_key("sip:p@x"), "a contact dropped from the list is unindexed");

        for k in [&a, &b, &l] {
            assert!(st.remove_subscription(k).is_some());
        }
        st.set_list("sip:w@x", None);
        assert!(st.subscriptions.is_empty() && st.by_watcher.is_empty() && st.by_target.is_empty());
        assert!(st.by_list.is_empty() && st.by_expiry.is_empty() && st.dirty.is_empty());
        assert!(st.lists.is_empty() && st.in_lists.is_empty());
    }
}

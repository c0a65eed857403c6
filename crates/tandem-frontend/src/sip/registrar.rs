//! The registrar (RFC 3261 §10): bindings per address of record, kept in memory for routing and
//! in the Front End store so they survive a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tandem_config::NatDetection;
use tandem_sip_proto::{HeaderView, Host, NameAddr, Request, Transport, Uri};

use crate::store::{DataError, FrontendStore, Registration};

use super::dispatch::Ctx;
use super::transport::Flow;
use super::{SipCore, presence, random_token};

/// Shortest registration accepted (answered 423 with Min-Expires below it).
pub const MIN_EXPIRES: u32 = 60;
/// Used when the client names no expiry.
pub const DEFAULT_EXPIRES: u32 = 3600;
/// Longer requests are shortened to this.
pub const MAX_EXPIRES: u32 = 7200;

/// One registered endpoint.
#[derive(Debug, Clone)]
pub struct Binding {
    pub contact: String,
    pub contact_uri: Uri,
    /// The flow the REGISTER came over.
    pub flow: Flow,
    /// Requests go to the Contact (resolved when sent) rather than back over `flow`: a UDP
    /// registration that shows no NAT and asks for no RFC 5626 flow (see [`reach_by_contact`]).
    pub by_contact: bool,
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: Option<String>,
}

impl Binding {
    /// The flow requests to this endpoint must use; `None`: resolve the Contact.
    pub fn route(&self) -> Option<Flow> {
        (!self.by_contact).then(|| self.flow.clone())
    }
}

/// Whether requests for a contact registered over `flow` go to the Contact itself (RFC 3261
/// §10.3) rather than back to the REGISTER's source. The source is right for a stream (only the
/// connection reaches the client), for an RFC 5626 flow the client asks for (`;ob` in the
/// Contact URI, or a `reg-id`), and for a client behind a NAT, which `nat` detects as Kamailio's
/// `nat_uac_test` does: in "auto", a top Via whose sent-by is not the source address and port.
pub fn reach_by_contact(nat: NatDetection, req: &Request, flow: &Flow, contact: &NameAddr) -> bool {
    if flow.transport().is_reliable() || contact.uri.params.has("ob") || contact.params.has("reg-id") {
        return false;
    }
    match nat {
        NatDetection::Always => false,
        NatDetection::Never => true,
        NatDetection::Auto => match req.top_via() {
            Ok(via) => {
                let port = via.port.unwrap_or(via.default_port());
                matches!(via.host, Host::Ip(ip) if ip == flow.peer().ip()) && port == flow.peer().port()
            }
            Err(_) => false,
        },
    }
}

/// The location service. Memory answers routing at once; the store follows within
/// [`FLUSH_INTERVAL`] (write-back, like Kamailio's usrloc `db_mode=2`): registrations are soft
/// state that clients refresh, and batching the writes keeps REGISTER off the disk's path.
#[derive(Debug, Default)]
pub struct Location {
    bindings: Mutex<HashMap<String, Vec<Binding>>>,
    /// Addresses of record whose stored bindings are behind memory.
    dirty: Mutex<std::collections::HashSet<String>>,
    /// Counts changes to which addresses of record have a live binding (a first registration,
    /// a last one ending), so the calendar manager rebuilds what it watches only then.
    aors_generation: std::sync::atomic::AtomicU64,
}

/// How often changed registrations are written to the store (and at shutdown).
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

impl Location {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Binding>>> {
        self.bindings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads unexpired bindings made over UDP; bindings over connections end with them.
    pub async fn load(store: &FrontendStore) -> Result<Location, DataError> {
        let now = tandem_store::now_unix();
        store.delete_expired_registrations(now).await?;
        let mut map: HashMap<String, Vec<Binding>> = HashMap::new();
        for row in store.registrations().await? {
            let Ok(na) = NameAddr::parse(&row.contact) else { continue };
            let Ok(peer) = row.peer.parse() else { continue };
            let flow = match Transport::parse(&row.transport) {
                Some(Transport::Udp) => Flow::Udp { peer },
                // The connection died with the old process; the client registers again on its
                // new connection, and until then it cannot be reached.
                _ => continue,
            };
            map.entry(row.aor).or_default().push(Binding {
                contact: row.contact,
                contact_uri: na.uri,
                flow,
                by_contact: row.by_contact,
                expires_at: row.expires_at,
                call_id: row.call_id,
                cseq: row.cseq,
                user_agent: row.user_agent,
            });
        }
        Ok(Location { bindings: Mutex::new(map), ..Location::default() })
    }

    /// Live bindings of an address of record.
    pub fn lookup(&self, aor: &str) -> Vec<Binding> {
        let now = tandem_store::now_unix();
        self.lock().get(aor).map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect()).unwrap_or_default()
    }

    /// Where requests for an address of record go: each live binding's Contact URI and flow,
    /// without copying the rest of the binding (the per-request path of MESSAGE and INVITE).
    pub fn targets(&self, aor: &str) -> Vec<(Uri, Option<Flow>)> {
        let now = tandem_store::now_unix();
        self.lock()
            .get(aor)
            .map(|v| v.iter().filter(|b| b.expires_at > now).map(|b| (b.contact_uri.clone(), b.route())).collect())
            .unwrap_or_default()
    }

    pub fn is_registered(&self, aor: &str) -> bool {
        let now = tandem_store::now_unix();
        self.lock().get(aor).is_some_and(|v| v.iter().any(|b| b.expires_at > now))
    }

    /// The addresses of record with a live binding (no binding is copied).
    pub fn registered_aors(&self) -> Vec<String> {
        let now = tandem_store::now_unix();
        self.lock().iter().filter(|(_, v)| v.iter().any(|b| b.expires_at > now)).map(|(aor, _)| aor.clone()).collect()
    }

    /// The flow to use for the binding whose contact is `uri` (in-dialog requests to a TCP
    /// client or one behind a NAT); `None` when there is none or it is reached at its Contact.
    pub fn flow_for_contact(&self, uri: &Uri) -> Option<Flow> {
        let map = self.lock();
        map.values().flatten().find(|b| same_contact(&b.contact_uri, uri)).and_then(Binding::route)
    }

    /// Every live binding, for `cs get-registrations`.
    pub fn all(&self) -> Vec<(String, Binding)> {
        let now = tandem_store::now_unix();
        let map = self.lock();
        let mut out: Vec<(String, Binding)> = map
            .iter()
            .flat_map(|(aor, v)| v.iter().filter(|b| b.expires_at > now).map(move |b| (aor.clone(), b.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Changes whenever `registered_aors` may answer differently (an expiry counts once the
    /// tick has removed it, within a second).
    pub fn aors_generation(&self) -> u64 {
        self.aors_generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn aors_changed(&self) {
        self.aors_generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn mark_dirty(&self, aor: &str) {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner()).insert(aor.to_owned());
    }

    /// Writes every changed address of record in one transaction; on failure they stay dirty.
    pub async fn flush(&self, store: &FrontendStore) -> Result<usize, DataError> {
        let aors: Vec<String> = self.dirty.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        if aors.is_empty() {
            return Ok(0);
        }
        let snapshot: Vec<(String, Vec<Binding>)> = {
            let map = self.lock();
            aors.iter().map(|a| (a.clone(), map.get(a).cloned().unwrap_or_default())).collect()
        };
        match persist(store, &snapshot).await {
            Ok(()) => Ok(aors.len()),
            Err(e) => {
                self.dirty.lock().unwrap_or_else(|p| p.into_inner()).extend(aors);
                Err(e)
            }
        }
    }
}

fn same_contact(a: &Uri, b: &Uri) -> bool {
    a.user == b.user && a.host == b.host && a.port == b.port
}

/// A REGISTER that changed the bindings: presence and stored messages follow.
#[derive(Debug)]
pub(super) struct Registered {
    pub aor: String,
    /// A binding was added (a new endpoint signed in).
    pub added: bool,
}

/// Handles a REGISTER that dispatch has authenticated as the user of its To.
/// `max_contacts`: endpoints one user may have registered at once (`frontend.sip_max_endpoints_per_user`).
pub(super) async fn register(
    location: &Location,
    nat: NatDetection,
    max_contacts: usize,
    ctx: Ctx,
) -> Option<Registered> {
    let Ctx { req, user, reply } = ctx;
    let aor = user.sip_uri.key();
    match update_bindings(location, nat, max_contacts, &req, reply.flow(), &aor) {
        Update::Done { current, added } => {
            let now = tandem_store::now_unix();
            let mut r = req.response(200).with_to_tag(&random_token());
            for b in &current {
                r.headers
                    .push("Contact", format!("{};expires={}", strip_expires(&b.contact), (b.expires_at - now).max(0)));
            }
            r.headers.push("Date", httpdate_now());
            reply.send(r).await;
            metrics::gauge!("tandem_sip_registrations").set(location.count() as f64);
            Some(Registered { aor, added })
        }
        Update::TooBrief => {
            let r = req.response(423).with_to_tag(&random_token()).with_header("Min-Expires", MIN_EXPIRES.to_string());
            reply.send(r).await;
            None
        }
        Update::TooMany => {
            let mut r = req.response(403).with_to_tag(&random_token());
            r.reason = format!("Forbidden (at most {max_contacts} registered endpoints)");
            reply.send(r).await;
            None
        }
        Update::Bad(why) => {
            let mut r = req.response(400).with_to_tag(&random_token());
            r.reason = format!("Bad Request ({why})");
            reply.send(r).await;
            None
        }
    }
}

enum Update {
    Done { current: Vec<Binding>, added: bool },
    TooBrief,
    TooMany,
    Bad(&'static str),
}

/// Applies a REGISTER's contacts to the bindings in memory (the store follows at the next
/// flush).
fn update_bindings(
    location: &Location,
    nat: NatDetection,
    max_contacts: usize,
    req: &Request,
    flow: &Flow,
    aor: &str,
) -> Update {
    let contacts = req.headers.values("Contact");
    let header_expires = req.expires();
    let call_id = req.call_id().unwrap_or_default().to_owned();
    let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
    let now = tandem_store::now_unix();
    let user_agent = req.headers.get("User-Agent").map(str::to_owned);

    let mut bindings = location.lookup(aor);
    let before = bindings.len();
    if contacts.iter().any(|c| c.trim() == "*") {
        if contacts.len() != 1 || header_expires != Some(0) {
            return Update::Bad("Contact: * needs Expires: 0 and no other contact");
        }
        bindings.clear();
    } else {
        for c in &contacts {
            let Ok(na) = NameAddr::parse(c) else { return Update::Bad("malformed Contact") };
            let expires = na
                .params
                .get("expires")
                .and_then(|e| e.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(DEFAULT_EXPIRES);
            let existing = bindings.iter().position(|b| same_contact(&b.contact_uri, &na.uri));
            if let Some(i) = existing
                && bindings[i].call_id == call_id
                && bindings[i].cseq > cseq
            {
                // Out of order (RFC 3261 §10.3 step 7): keep the newer state.
                continue;
            }
            if expires == 0 {
                if let Some(i) = existing {
                    bindings.remove(i);
                }
                continue;
            }
            if expires < MIN_EXPIRES {
                return Update::TooBrief;
            }
            let b = Binding {
                contact: strip_expires(c),
                contact_uri: na.uri.clone(),
                flow: flow.clone(),
                by_contact: reach_by_contact(nat, req, flow, &na),
                expires_at: now + i64::from(expires.min(MAX_EXPIRES)),
                call_id: call_id.clone(),
                cseq,
                user_agent: user_agent.clone(),
            };
            match existing {
                Some(i) => bindings[i] = b,
                None => bindings.push(b),
            }
        }
        if bindings.len() > max_contacts {
            return Update::TooMany;
        }
    }
    location.mark_dirty(aor);
    if before == 0 || bindings.is_empty() {
        location.aors_changed();
    }
    let added = bindings.len() > before || (before == 0 && !bindings.is_empty());
    {
        let mut map = location.lock();
        if bindings.is_empty() {
            map.remove(aor);
        } else {
            map.insert(aor.to_owned(), bindings.clone());
        }
    }
    Update::Done { current: bindings, added }
}

/// Replaces the stored bindings of addresses of record in one transaction.
async fn persist(store: &FrontendStore, changed: &[(String, Vec<Binding>)]) -> Result<(), DataError> {
    let aors: Vec<String> = changed.iter().map(|(aor, _)| aor.clone()).collect();
    let rows: Vec<Registration> = changed
        .iter()
        .flat_map(|(aor, bindings)| {
            bindings.iter().map(move |b| Registration {
                aor: aor.clone(),
                contact: b.contact.clone(),
                transport: b.flow.transport().as_str().to_owned(),
                peer: b.flow.peer().to_string(),
                expires_at: b.expires_at,
                call_id: b.call_id.clone(),
                cseq: b.cseq,
                user_agent: b.user_agent.clone(),
                by_contact: b.by_contact,
            })
        })
        .collect();
    store.replace_registrations(&aors, &rows).await
}

/// A Contact value without its `expires` parameter (the answer states the granted one).
fn strip_expires(contact: &str) -> String {
    match NameAddr::parse(contact) {
        Ok(mut na) => {
            na.params.remove("expires");
            na.to_string()
        }
        Err(_) => contact.to_owned(),
    }
}

/// An RFC 1123 date for the Date header of a REGISTER answer (RFC 3261 §10.3 step 8).
fn httpdate_now() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(month - 1) as usize];
    format!("{weekday}, {d:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

/// A stream connection closed: the bindings that used it cannot be reached any more.
pub(super) async fn flow_closed(core: &Arc<SipCore>, flow: &Flow) {
    let Flow::Stream { id, .. } = flow else { return };
    let affected: Vec<String> = {
        let mut map = core.location.lock();
        let mut out = Vec::new();
        for (aor, v) in map.iter_mut() {
            let n = v.len();
            v.retain(|b| !matches!(&b.flow, Flow::Stream { id: bid, .. } if bid == id));
            if v.len() != n {
                out.push(aor.clone());
            }
        }
        map.retain(|_, v| !v.is_empty());
        out
    };
    if !affected.is_empty() {
        core.location.aors_changed();
    }
    for aor in affected {
        tracing::debug!(%aor, "registration ended with its connection");
        core.location.mark_dirty(&aor);
        presence::registration_changed(core, &aor).await;
    }
    metrics::gauge!("tandem_sip_registrations").set(core.location.count() as f64);
}

/// Writes changed registrations; called every [`FLUSH_INTERVAL`] and at shutdown.
pub(super) async fn flush(core: &SipCore) {
    if let Err(e) = core.location.flush(&core.store).await {
        tracing::warn!(error = %e, "registrations not stored yet; retrying");
    }
}

/// Expired bindings leave memory and the store; presence follows.
pub(super) async fn on_tick(core: &Arc<SipCore>) {
    let now = tandem_store::now_unix();
    let expired: Vec<String> = {
        let mut map = core.location.lock();
        let mut gone = Vec::new();
        map.retain(|aor, v| {
            let n = v.len();
            v.retain(|b| b.expires_at > now);
            if v.len() != n {
                gone.push(aor.clone());
            }
            !v.is_empty()
        });
        gone
    };
    if expired.is_empty() {
        return;
    }
    core.location.aors_changed();
    if let Err(e) = core.store.delete_expired_registrations(now).await {
        tracing::warn!(error = %e, "expired registrations not removed from the store");
    }
    for aor in expired {
        presence::registration_changed(core, &aor).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_header_format() {
        let d = super::httpdate_now();
        assert!(d.ends_with(" GMT") && d.len() == 29, "{d}");
    }
}

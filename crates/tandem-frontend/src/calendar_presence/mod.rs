//! Calendar presence: the Front End publishes, for every user whose presence matters (signed in,
//! or watched by someone), what their calendar and out-of-office settings say, as Skype for
//! Business clients do for themselves by polling Exchange every 15–30 minutes. Here the server
//! does it once for every client: it holds an EWS streaming subscription on each such user's
//! Calendar and on the Top of Information Store (where the Mailbox reports the Inbox and the
//! Calendar folders modified when the out-of-office settings or the working hours change), acting
//! as the user with S2S tokens (see [`crate::exchange_connector`]), re-reads what is current when
//! the mailbox reports a change, and sets a timer at the next meeting start or end (or OOF window
//! or working-hours boundary) instead of polling. [`derive`] holds the rules; [`watcher`] the EWS side; this module the
//! board the SIP presence reads ([`Board`]), the client policies (Set-CsClientPolicy), and the
//! manager that starts and stops watches and records what is shown for `tandem cs get-presence`.
//! When the mailbox cannot be reached, a user's calendar state is dropped, so presence falls back
//! to what the endpoints publish, and the failure is recorded (integration status, metrics).
//! The same watch learns whether the user has a photo (GetUserPhoto with the ETag it last got,
//! so an unchanged photo costs a short answer) and points presence at it (RPID status-icon).

pub(crate) mod contact_list;
pub mod derive;
pub(crate) mod hub;
mod watcher;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tandem_directory::Directory;
use tandem_sip_proto::pidf::Availability;
use tandem_store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::derive::{CalendarNow, Policy, Shown};
use crate::exchange_connector::ExchangeConnector;
use crate::sip::SipCore;
use crate::store::{
    ClientPolicyRow, ContactListState, FrontendStore, GLOBAL_POLICY, ListLocation, PresenceStatusRow,
    UserServicesPolicyRow,
};

/// How often the manager compares the users whose presence matters with the watches it holds,
/// re-reads the policies and records what is shown. In-memory work and one small query to the
/// Front End's own store: the mailbox is never polled.
const SCAN: Duration = Duration::from_secs(1);

/// How often the manager records every watched user's shown presence, touched or not: a
/// safety net for a change that reached no hook (each pass in between records the touched).
const RECORD_SWEEP: u32 = 30;

/// How long a watch outlives the last reason to hold it, so a watcher's re-SUBSCRIBE or an
/// endpoint's re-REGISTER does not cost a new EWS subscription.
const LINGER: Duration = Duration::from_secs(30);

/// Whether a watch nothing wants any more still lingers at `now`, noting when it stopped being
/// wanted on the first pass that finds it so (calendar and contact-list watches alike).
fn still_lingers(unwanted_since: &mut Option<tokio::time::Instant>, now: tokio::time::Instant) -> bool {
    now.duration_since(*unwanted_since.get_or_insert(now)) < LINGER
}

/// EWS requests the watches have in flight at most (subscribing, reading what is current).
/// Without a bound, 20,000 watches starting together (a restart with everyone signed in) sent
/// some 80,000 requests at once: the mailbox answered late, requests timed out and reset their
/// HTTP/2 streams, the mailbox closed the connection for too many resets, every watch on it
/// failed at once and all retried together (bench/presence at 20,000 users, docs/BENCHMARKS.md).
const EWS_IN_FLIGHT: usize = 32;

/// The default WebServicePollInterval, as Get-CsClientPolicy shows it. Nothing is polled: the
/// mailbox raises an event for the calendar, the out-of-office settings and the working hours.
pub const DEFAULT_OOF_POLL: Duration = Duration::from_secs(300);

/// The state of one user's watch, as `tandem cs get-presence` and integration status show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Watch {
    #[default]
    Connecting,
    Watching,
    /// The policy turns calendar presence off for the user.
    Disabled,
    /// The user has no mailbox (Enable-Mailbox was never run).
    NoMailbox,
    /// The last attempt failed: the hop and message; retried with backoff.
    Failing(String),
}

impl Watch {
    fn label(&self) -> &'static str {
        match self {
            Watch::Connecting => "connecting",
            Watch::Watching => "watching",
            Watch::Disabled => "disabled",
            Watch::NoMailbox => "no-mailbox",
            Watch::Failing(_) => "failing",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Entry {
    now: CalendarNow,
    watch: Watch,
    /// The REST URL of the user's HR96x96 photo, when the mailbox has one (RPID status-icon).
    photo: Option<String>,
}

/// What the calendar says for each watched user, read by SIP presence when it builds a NOTIFY.
/// It also keeps which users' shown presence may have changed since the manager last recorded
/// it, so a second's pass records those, not all 20,000.
#[derive(Debug, Default)]
pub struct Board {
    users: Mutex<HashMap<String, Entry>>,
    touched: Mutex<HashSet<String>>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calendar's answer for `aor` (nothing when it is not watched or its watch fails).
    pub fn now_for(&self, aor: &str) -> CalendarNow {
        self.lock().get(aor).map(|e| e.now.clone()).unwrap_or_default()
    }

    /// The URL of `aor`'s photo, when the mailbox last said it has one.
    pub fn photo_for(&self, aor: &str) -> Option<String> {
        self.lock().get(aor).and_then(|e| e.photo.clone())
    }

    /// Sets a user's photo URL; true when it changed.
    fn set_photo(&self, aor: &str, photo: Option<String>) -> bool {
        let mut users = self.lock();
        let e = users.entry(aor.to_owned()).or_default();
        let changed = e.photo != photo;
        e.photo = photo;
        changed
    }

    /// Notes that what watchers of `aor` are shown may have changed (a publication, a
    /// registration, the calendar or the watch's state).
    pub(crate) fn touch(&self, aor: &str) {
        self.touched.lock().unwrap_or_else(|p| p.into_inner()).insert(aor.to_owned());
    }

    /// The users touched since the last call.
    fn take_touched(&self) -> HashSet<String> {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn watch_of(&self, aor: &str) -> Option<Watch> {
        self.lock().get(aor).map(|e| e.watch.clone())
    }

    /// Sets a user's state; true when what watchers see may have changed.
    fn set(&self, aor: &str, now: CalendarNow, watch: Watch) -> bool {
        let mut users = self.lock();
        let e = users.entry(aor.to_owned()).or_default();
        let changed = e.now != now;
        if changed || e.watch != watch {
            self.touch(aor);
        }
        e.now = now;
        e.watch = watch;
        changed
    }

    fn remove(&self, aor: &str) -> bool {
        self.touch(aor);
        self.lock().remove(aor).is_some_and(|e| e.now != CalendarNow::default() || e.photo.is_some())
    }

    /// How many watches are in each state: (watching, failing).
    fn counts(&self) -> (usize, usize) {
        let users = self.lock();
        let failing = users.values().filter(|e| matches!(e.watch, Watch::Failing(_))).count();
        let watching = users.values().filter(|e| e.watch == Watch::Watching).count();
        (watching, failing)
    }
}

/// What watchers of `aor` are shown: the endpoints' publications combined with the calendar.
pub(crate) fn shown(core: &SipCore, aor: &str) -> Shown {
    let registered = core.location.is_registered(aor);
    let (endpoints, published) = core.presence.endpoint_view(aor, registered);
    derive::combine(&endpoints, published, registered, &core.presence.calendar.now_for(aor))
}

/// The client policies in force, read from the store by the manager.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Policies {
    rows: Vec<ClientPolicyRow>,
}

impl Policies {
    fn find(&self, identity: &str) -> Option<&ClientPolicyRow> {
        self.rows.iter().find(|r| r.identity.eq_ignore_ascii_case(identity))
    }

    /// The policy of a user: their own settings, else the global ones, else the defaults.
    pub(crate) fn for_user(&self, aor: &str) -> (Policy, Duration) {
        let own = self.find(aor);
        let global = self.find(GLOBAL_POLICY);
        let pick = |f: fn(&ClientPolicyRow) -> Option<bool>, default: bool| {
            own.and_then(f).or_else(|| global.and_then(f)).unwrap_or(default)
        };
        let d = Policy::default();
        let policy = Policy {
            disable_calendar_presence: pick(|r| r.disable_calendar_presence, d.disable_calendar_presence),
            disable_meeting_subject_and_location: pick(
                |r| r.disable_meeting_subject_and_location,
                d.disable_meeting_subject_and_location,
            ),
            disable_free_busy_info: pick(|r| r.disable_free_busy_info, d.disable_free_busy_info),
            enable_off_work_presence: pick(|r| r.enable_off_work_presence, d.enable_off_work_presence),
        };
        let poll = own
            .and_then(|r| r.web_service_poll_seconds)
            .or_else(|| global.and_then(|r| r.web_service_poll_seconds))
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_OOF_POLL, Duration::from_secs);
        (policy, poll)
    }
}

/// What the watches share: the SIP core (to notify watchers), the connector, the policies.
pub(crate) struct Shared {
    pub(crate) core: Arc<SipCore>,
    pub(crate) connector: Arc<ExchangeConnector>,
    pub(crate) policies: RwLock<Policies>,
    /// The Front End store: contact lists kept there, and where each list lives.
    pub(crate) fe: FrontendStore,
    /// The user services policies and the recorded list locations, as last read.
    pub(crate) ucs: Mutex<UcsView>,
    hub: hub::Hub,
    ews_slots: tokio::sync::Semaphore,
}

impl Shared {
    /// Waits for one of the [`EWS_IN_FLIGHT`] slots; the request is made while it is held.
    pub(crate) async fn ews_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // `None` only if the semaphore were closed, which nothing does.
        self.ews_slots.acquire().await.ok()
    }

    pub(crate) fn policy(&self, aor: &str) -> (Policy, Duration) {
        self.policies.read().unwrap_or_else(|p| p.into_inner()).for_user(aor)
    }

    /// Records a user's calendar state and, when it changed what watchers see, notifies them.
    pub(crate) fn publish(&self, aor: &str, now: CalendarNow, watch: Watch) {
        if let Watch::Failing(e) = &watch {
            tracing::warn!(user = aor, error = %e, "calendar presence: the mailbox watch failed; retrying");
        }
        if self.core.presence.calendar.set(aor, now, watch) {
            self.core.calendar_changed(aor);
        }
    }

    /// Records whether a user has a photo (its URL) and, when that changed, notifies watchers.
    pub(crate) fn publish_photo(&self, aor: &str, photo: Option<String>) {
        if self.core.presence.calendar.set_photo(aor, photo) {
            self.core.calendar_changed(aor);
        }
    }
}

/// What the manager last read of where contact lists live (Set-CsUserServicesPolicy and the
/// Front End store's records), so a sign-in can start a migration without a query.
#[derive(Debug, Default)]
pub(crate) struct UcsView {
    pub(crate) policies: Vec<UserServicesPolicyRow>,
    pub(crate) states: HashMap<String, ContactListState>,
    /// The newest change read (Unix milliseconds).
    seen: i64,
}

impl Shared {
    fn ucs_view(&self) -> std::sync::MutexGuard<'_, UcsView> {
        self.ucs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A contact-list watch the manager holds: its stop switch, and a poke to look again where the
/// list lives (after a migration, a rollback, an edit of a Front End store list, a policy change).
struct ListWatch {
    stop: CancellationToken,
    recheck: mpsc::Sender<()>,
    /// Since when nothing wants the list: a watch outlives its last reason by [`LINGER`], as
    /// calendar watches do, so a watcher's un-SUBSCRIBE and re-SUBSCRIBE (or a client that
    /// subscribes for each look) does not restart the mailbox reads and the streaming
    /// subscription each time.
    unwanted_since: Option<tokio::time::Instant>,
}

/// Reads the user services policies and the list records changed since the last pass; pokes
/// the watches of the lists they concern (all of them when a policy changed).
async fn follow_ucs(shared: &Shared, fe: &FrontendStore, lists: &HashMap<String, Option<ListWatch>>) {
    let policies = match fe.user_services_policies().await {
        Ok(p) => p,
        Err(e) => return tracing::warn!(error = %e, "contact lists: cannot read the user services policies"),
    };
    let since = shared.ucs_view().seen.saturating_sub(5_000);
    let rows = match fe.contact_list_states_since(since).await {
        Ok(r) => r,
        Err(e) => return tracing::warn!(error = %e, "contact lists: cannot read where the lists live"),
    };
    let mut poke: Vec<String> = Vec::new();
    let all = {
        let mut v = shared.ucs_view();
        let changed = v.policies != policies;
        v.policies = policies;
        for r in rows {
            v.seen = v.seen.max(r.changed_at);
            let old = v.states.get(&r.aor);
            if old == Some(&r) {
                continue;
            }
            // A move, a new hold, or an edit of a Front End store list: the watch looks again.
            // A first use pinned in the mailbox changes nothing the watch serves.
            let moved = match old {
                Some(o) => o.location != r.location || o.migrate_after != r.migrate_after,
                None => r.location == ListLocation::FrontEnd,
            };
            if moved || r.location == ListLocation::FrontEnd {
                poke.push(r.aor.clone());
            }
            v.states.insert(r.aor.clone(), r);
        }
        changed
    };
    for (aor, w) in lists {
        if let Some(w) = w
            && (all || poke.contains(aor))
        {
            let _ = w.recheck.try_send(());
        }
    }
}

/// A watch the manager holds: its task's stop switch and mailbox.
struct Held {
    stop: CancellationToken,
    poke: mpsc::Sender<()>,
    unwanted_since: Option<tokio::time::Instant>,
}

/// The users the manager watches, as last built, and the generations of the registrations and
/// presence subscriptions they were built from: the set is rebuilt only when one of those moved,
/// a watch lingers, or on the periodic sweep, so an idle server does not copy every registered
/// address each second.
#[derive(Default)]
struct Wanted {
    users: HashSet<String>,
    built_from: Option<(u64, u64)>,
}

impl Wanted {
    fn generations(core: &SipCore) -> (u64, u64) {
        (core.location.aors_generation(), core.presence.targets_generation())
    }
}

/// Starts calendar presence over the Front End's Exchange connector.
pub fn spawn(
    core: Arc<SipCore>,
    store: Store,
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let hub = hub::Hub::start(connector.clone(), tasks, shutdown.clone());
    let shared = Arc::new(Shared {
        core,
        connector,
        policies: RwLock::new(Policies::default()),
        fe: FrontendStore::new(store.clone()),
        ucs: Mutex::new(UcsView::default()),
        hub,
        ews_slots: tokio::sync::Semaphore::new(EWS_IN_FLIGHT),
    });
    let fe = FrontendStore::new(store);
    let tasks2 = tasks.clone();
    tasks.spawn(async move {
        let mut held: HashMap<String, Held> = HashMap::new();
        let mut recorded: HashMap<String, PresenceStatusRow> = HashMap::new();
        let mut lists: HashMap<String, Option<ListWatch>> = HashMap::new();
        let mut wanted = Wanted::default();
        let mut passes: u32 = 0;
        let mut tick = tokio::time::interval(SCAN);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        shared.core.presence.follow_lists();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                _ = shared.core.presence.lists_wanted.notified() => {
                    // A list is wanted now (a first NOTIFY waits for it): only the lists.
                    scan_lists(&shared, &directory, &mut lists, &tasks2, &shutdown).await;
                    continue;
                }
            }
            let sweep = passes.is_multiple_of(RECORD_SWEEP);
            passes = passes.wrapping_add(1);
            scan(&shared, &fe, &directory, &mut held, &mut wanted, &mut recorded, sweep, &tasks2, &shutdown).await;
            follow_ucs(&shared, &fe, &lists).await;
            scan_lists(&shared, &directory, &mut lists, &tasks2, &shutdown).await;
        }
        for h in held.values() {
            h.stop.cancel();
        }
        for w in lists.values().flatten() {
            w.stop.cancel();
        }
    });
}

/// The contact-list watches: one per user who subscribes to their list or whose presence someone
/// watches (the mailbox is read when the list changes there, never polled), and one per signed-in
/// user whose list waits in the Front End store to move into the mailbox (the watch migrates it).
/// A user without a mailbox has an empty list, held as `None` while wanted.
async fn scan_lists(
    shared: &Arc<Shared>,
    directory: &Directory,
    lists: &mut HashMap<String, Option<ListWatch>>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let mut owners: HashSet<String> = shared.core.presence.list_owners().into_iter().collect();
    {
        let now = crate::ucs::now();
        let v = shared.ucs_view();
        for aor in shared.core.location.registered_aors() {
            let allowed = crate::ucs::ucs_allowed(&v.policies, &aor);
            if crate::ucs::migration_due(v.states.get(&aor), allowed, now) {
                owners.insert(aor);
            }
        }
    }
    for aor in &owners {
        if let Some(held) = lists.get_mut(aor) {
            if let Some(w) = held {
                w.unwanted_since = None;
            }
            continue;
        }
        let smtp = match directory.find(aor).await {
            Ok(Some(u)) if u.can_use_mailbox() => u.smtp_address.to_string(),
            Ok(_) => {
                // No mailbox, so no contact list: the list is empty.
                shared.core.presence.set_contact_list(&shared.core, aor, Vec::new(), HashSet::new());
                lists.insert(aor.clone(), None);
                continue;
            }
            Err(e) => {
                tracing::warn!(user = %aor, error = %e, "contact list: directory lookup failed");
                continue;
            }
        };
        let stop = shutdown.child_token();
        let (recheck, rechecks) = mpsc::channel(1);
        tasks.spawn(contact_list::run(shared.clone(), aor.clone(), smtp, rechecks, stop.clone()));
        lists.insert(aor.clone(), Some(ListWatch { stop, recheck, unwanted_since: None }));
    }
    let now = tokio::time::Instant::now();
    lists.retain(|aor, w| {
        if owners.contains(aor) {
            return true;
        }
        match w {
            Some(w) => {
                if still_lingers(&mut w.unwanted_since, now) {
                    return true;
                }
                w.stop.cancel();
            }
            None => shared.core.presence.drop_contact_list(aor),
        }
        false
    });
    metrics::gauge!("tandem_contact_list_watches").set(lists.len() as f64);
}

/// One pass of the manager: policies, watches to start and stop, records of what is shown
/// (of every watched user when `sweep`, else of those touched since the last pass).
#[allow(clippy::too_many_arguments)] // the manager's state, owned by its loop
async fn scan(
    shared: &Arc<Shared>,
    fe: &FrontendStore,
    directory: &Directory,
    held: &mut HashMap<String, Held>,
    wanted: &mut Wanted,
    recorded: &mut HashMap<String, PresenceStatusRow>,
    mut sweep: bool,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) {
    match fe.client_policies().await {
        Ok(rows) => {
            let fresh = Policies { rows };
            let changed = {
                let mut p = shared.policies.write().unwrap_or_else(|p| p.into_inner());
                let changed = *p != fresh;
                *p = fresh;
                changed
            };
            if changed {
                // Applies without a restart: every watch re-derives (or starts or stops reading).
                for h in held.values() {
                    let _ = h.poke.try_send(());
                }
            }
            sweep |= changed;
        }
        Err(e) => tracing::warn!(error = %e, "calendar presence: cannot read the client policies"),
    }
    let core = &shared.core;
    let generations = Wanted::generations(core);
    let lingering = held.values().any(|h| h.unwanted_since.is_some());
    if !sweep && !lingering && wanted.built_from == Some(generations) {
        // Nothing to start or stop: only the records of touched users.
        record(shared, fe, &wanted.users, recorded, false).await;
        return;
    }
    wanted.users = core.location.registered_aors().into_iter().collect();
    wanted.users.extend(core.presence.watched_targets());
    wanted.built_from = Some(generations);
    let wanted = &wanted.users;
    let now = tokio::time::Instant::now();
    for aor in wanted {
        if let Some(h) = held.get_mut(aor) {
            h.unwanted_since = None;
            continue;
        }
        let smtp = match directory.find(aor).await {
            Ok(Some(u)) if u.can_use_mailbox() => u.smtp_address.to_string(),
            Ok(_) => {
                shared.publish(aor, CalendarNow::default(), Watch::NoMailbox);
                continue;
            }
            Err(e) => {
                tracing::warn!(user = %aor, error = %e, "calendar presence: directory lookup failed");
                continue;
            }
        };
        let stop = shutdown.child_token();
        let (poke, pokes) = mpsc::channel(1);
        tasks.spawn(watcher::run(shared.clone(), aor.clone(), smtp, pokes, stop.clone()));
        held.insert(aor.clone(), Held { stop, poke, unwanted_since: None });
    }
    held.retain(|aor, h| {
        if wanted.contains(aor) {
            return true;
        }
        if still_lingers(&mut h.unwanted_since, now) {
            return true;
        }
        h.stop.cancel();
        if core.presence.calendar.remove(aor) {
            core.calendar_changed(aor);
        }
        false
    });
    let (watching, failing) = core.presence.calendar.counts();
    metrics::gauge!("tandem_calendar_presence_watches", "state" => "watching").set(watching as f64);
    metrics::gauge!("tandem_calendar_presence_watches", "state" => "failing").set(failing as f64);
    metrics::gauge!("tandem_calendar_presence_stream_connections").set(shared.hub.connections() as f64);
    record(shared, fe, wanted, recorded, sweep).await;
}

/// Writes what each watched user is shown, and why, when it changed since the last record:
/// for the users touched since the last pass and those not recorded yet, or all when `sweep`.
async fn record(
    shared: &Shared,
    fe: &FrontendStore,
    wanted: &HashSet<String>,
    recorded: &mut HashMap<String, PresenceStatusRow>,
    sweep: bool,
) {
    let core = &shared.core;
    let touched = core.presence.calendar.take_touched();
    let due: Vec<&String> =
        wanted.iter().filter(|a| sweep || touched.contains(*a) || !recorded.contains_key(*a)).collect();
    for aor in due {
        let s = shown(core, aor);
        let watch = core.presence.calendar.watch_of(aor).unwrap_or_default();
        let row = PresenceStatusRow {
            aor: aor.clone(),
            availability: availability_name(s.summary.availability).to_owned(),
            activity: s.activity.map(str::to_owned),
            note: s.summary.note.clone(),
            reason: s.reason.clone(),
            calendar: watch.label().to_owned(),
            calendar_error: match &watch {
                Watch::Failing(e) => Some(e.clone()),
                _ => None,
            },
            updated_at: 0,
        };
        // Compared field by field: a sweep runs it for every watched user.
        let same = |r: &PresenceStatusRow| {
            (&r.availability, &r.activity, &r.note, &r.reason, &r.calendar, &r.calendar_error)
                == (&row.availability, &row.activity, &row.note, &row.reason, &row.calendar, &row.calendar_error)
        };
        if recorded.get(aor).is_some_and(same) {
            continue;
        }
        let row = PresenceStatusRow { updated_at: tandem_store::now_unix(), ..row };
        match fe.put_presence_status(&row).await {
            Ok(()) => {
                recorded.insert(aor.clone(), row);
            }
            Err(e) => tracing::warn!(error = %e, "calendar presence: cannot record the presence shown"),
        }
    }
    let gone: Vec<String> = recorded.keys().filter(|a| !wanted.contains(*a)).cloned().collect();
    for aor in gone {
        if fe.delete_presence_status(&aor).await.is_ok() {
            recorded.remove(&aor);
        }
    }
}

/// A retry delay of between half `backoff` and all of it, so watches that failed together
/// (one connection lost) do not all come back in the same instant.
pub(crate) fn jittered(backoff: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh RandomState is randomly keyed: its hash of nothing is a random number.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let half = backoff / 2;
    half + Duration::from_nanos(random % u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1))
}

/// The names `tandem cs get-presence` prints (the RPID and Skype for Business words).
pub fn availability_name(a: Availability) -> &'static str {
    match a {
        Availability::Offline => "offline",
        Availability::Available => "available",
        Availability::Away => "away",
        Availability::Busy => "busy",
        Availability::OnThePhone => "on-the-phone",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(identity: &str, cal: Option<bool>, subject: Option<bool>, poll: Option<i64>) -> ClientPolicyRow {
        ClientPolicyRow {
            identity: identity.into(),
            disable_calendar_presence: cal,
            disable_meeting_subject_and_location: subject,
            disable_free_busy_info: None,
            web_service_poll_seconds: poll,
            enable_off_work_presence: None,
            enable_im_auto_archiving: None,
            enable_call_log_auto_archiving: None,
        }
    }

    #[test]
    fn a_users_policy_overrides_the_global_one_setting_by_setting() {
        let p = Policies {
            rows: vec![row("global", Some(true), Some(false), Some(2)), row("sip:bob@x.com", Some(false), None, None)],
        };
        let (bob, poll) = p.for_user("sip:bob@x.com");
        assert!(!bob.disable_calendar_presence && !bob.disable_meeting_subject_and_location);
        assert_eq!(poll, Duration::from_secs(2));
        let (alice, _) = p.for_user("sip:alice@x.com");
        assert!(alice.disable_calendar_presence);
        let (none, poll) = Policies::default().for_user("sip:alice@x.com");
        assert_eq!((none, poll), (Policy::default(), DEFAULT_OOF_POLL));
    }

    #[test]
    fn retries_are_spread_over_the_second_half_of_the_backoff() {
        let delays: Vec<Duration> = (0..200).map(|_| jittered(Duration::from_secs(8))).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(4) && *d <= Duration::from_secs(8)));
        let distinct: HashSet<Duration> = delays.iter().copied().collect();
        assert!(distinct.len() > 100, "spread out: {} distinct of 200", distinct.len());
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_board_reports_changes_only() {
        let b = Board::default();
        assert!(!b.set("sip:a@x", CalendarNow::default(), Watch::Watching));
        let busy = CalendarNow {
            meeting: Some(derive::Meeting { note: "In a meeting".into(), reason: "r".into() }),
            ..CalendarNow::default()
        };
        assert!(b.set("sip:a@x", busy.clone(), Watch::Watching));
        assert!(!b.set("sip:a@x", busy, Watch::Watching));
        assert_eq!(b.counts(), (1, 0));
        assert!(b.remove("sip:a@x"));
        assert_eq!(b.now_for("sip:a@x"), CalendarNow::default());
        assert!(b.set_photo("sip:a@x", Some("https://m/p".into())));
        assert!(!b.set_photo("sip:a@x", Some("https://m/p".into())));
        assert!(!b.set("sip:a@x", CalendarNow::default(), Watch::Watching));
        assert_eq!(b.photo_for("sip:a@x").as_deref(), Some("https://m/p"));
        assert!(b.remove("sip:a@x"));
    }
}

//! Server-side conversation history (Set-CsConversationHistoryConfiguration
//! -EnableServerConversationHistory): the Front End, not the client, writes each IM
//! conversation's transcript to every participant's Conversation History folder through EWS with
//! S2S tokens, so every client and device sees it. IMs to a user with no endpoint signed in, or
//! that no endpoint accepted, form a missed conversation (`IPM.Note.Microsoft.Missed`) in that
//! user's Inbox and Conversation History; an answered call leaves a call log for both parties
//! (`IPM.Note.Microsoft.Conversation.Voice`), an unanswered one a missed call for the callee
//! (`IPM.Note.Microsoft.Missed.Voice`).
//!
//! ```text
//! sip (a MESSAGE's or INVITE's final answer, a BYE) ── Tap (a channel send) ──► runner (one task)
//!     grouping: the pair's conversation (ends after the idle timeout); calls by Call-ID
//!       ─► store: messages, calls, ends (one transaction a batch)
//!                                                                         │
//! writer (one task): due item writes ◄───────────────────────────────────┘
//!     client policy → Autodiscover → FindItem (the item of this conversation, if an earlier
//!     attempt wrote it) → UpdateItem it, or CreateItem → store: written (or retry later)
//! ```
//!
//! The store is the durable queue: a conversation open at a restart carries on (its messages
//! are in the store and the runner resumes it), an item the mailbox refused or could not take is
//! retried with backoff, and an item that an interrupted attempt already wrote is found by its
//! conversation id and continued, never written twice. The SIP path's cost is one channel send
//! (of the text, for a MESSAGE); the store write happens off the SIP path in batches.

mod grouping;
pub mod transcript;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tandem_directory::Directory;
use tandem_store::Store;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::grouping::{Bounds, Conversation, Ended, Grouper, Incoming, Open, Placed, Rules, TransitionError, pair};
pub use self::writer::conversation_property;
use crate::exchange_connector::ExchangeConnector;
use crate::sip::SipCore;
use crate::store::{
    ClientPolicyRow, ConversationKind, ConversationMessage, ConversationRow, FrontendStore, HistoryConfigRow,
    HistoryWrite, ItemTarget,
};

/// The item class of an IM conversation's transcript (the class Skype for Business gives it).
pub const ITEM_CLASS: &str = "IPM.Note.Microsoft.Conversation";
/// The item class of a missed conversation (IMs nobody read).
pub const MISSED_ITEM_CLASS: &str = "IPM.Note.Microsoft.Missed";
/// The distinguished folder transcripts go to.
pub const FOLDER: &str = "conversationhistory";
/// Where archived transcripts also go (Recoverable Items\Purges, as Exchange archiving does).
pub const ARCHIVE_FOLDER: &str = "recoverableitemspurges";
/// Where a missed conversation also goes, so the user notices it.
pub const MISSED_FOLDER: &str = "inbox";

/// The item class of a call log (an answered call).
pub const CALL_ITEM_CLASS: &str = "IPM.Note.Microsoft.Conversation.Voice";
/// The item class of a missed call.
pub const MISSED_CALL_ITEM_CLASS: &str = "IPM.Note.Microsoft.Missed.Voice";
/// A call whose BYE never came through is logged as ended after this long.
const MAX_CALL: Duration = Duration::from_secs(24 * 3600);

/// The item class of a kind of conversation.
pub fn item_class(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Im => ITEM_CLASS,
        ConversationKind::Missed => MISSED_ITEM_CLASS,
        ConversationKind::Call => CALL_ITEM_CLASS,
        ConversationKind::MissedCall => MISSED_CALL_ITEM_CLASS,
    }
}

/// Who gets an ended conversation, and in which folders: every participant's Conversation
/// History for an IM conversation or a call log; the recipient's (callee's) Inbox and
/// Conversation History for a missed conversation or call.
/// With `archive`, an IM conversation is also copied to every participant's Purges folder.
pub fn targets(e: &Ended, archive: bool) -> Vec<ItemTarget> {
    let mut t = targets_of(e.kind, &e.participants, &e.initiator);
    if archive && e.kind == ConversationKind::Im {
        t.extend(e.participants.iter().map(|p| ItemTarget { owner: p.clone(), folder: ARCHIVE_FOLDER.to_owned() }));
    }
    t
}

fn targets_of(kind: ConversationKind, participants: &[String; 2], initiator: &str) -> Vec<ItemTarget> {
    let to = |owner: &String, folder: &str| ItemTarget { owner: owner.clone(), folder: folder.to_owned() };
    match kind {
        ConversationKind::Im | ConversationKind::Call => participants.iter().map(|p| to(p, FOLDER)).collect(),
        ConversationKind::Missed | ConversationKind::MissedCall => participants
            .iter()
            .filter(|p| *p != initiator)
            .flat_map(|r| [to(r, MISSED_FOLDER), to(r, FOLDER)])
            .collect(),
    }
}

/// Whether `owner`'s client policy lets the Front End save a `kind` of conversation in their
/// mailbox: Set-CsClientPolicy's EnableIMAutoArchiving for IMs and missed IMs,
/// EnableCallLogAutoArchiving for call logs and missed calls; the user's own policy, else the
/// global one, else on (the cmdlet's defaults).
pub fn archiving_allowed(policies: &[ClientPolicyRow], owner: &str, kind: ConversationKind) -> bool {
    let find = |id: &str| policies.iter().find(|p| p.identity.eq_ignore_ascii_case(id));
    let pick = |p: &ClientPolicyRow| {
        if kind.is_call() { p.enable_call_log_auto_archiving } else { p.enable_im_auto_archiving }
    };
    find(owner).and_then(pick).or_else(|| find(crate::store::GLOBAL_POLICY).and_then(pick)).unwrap_or(true)
}

/// Why a call was not answered, from the final status the caller got.
pub fn missed_reason(status: u16) -> &'static str {
    match status {
        486 | 600 => "busy",
        487 => "cancelled",
        603 => "declined",
        408 => "no answer",
        _ => "unavailable",
    }
}

/// Set-CsConversationHistoryConfiguration's default MaxContinuedConversationRetry.
pub const DEFAULT_MAX_CONTINUED_CONVERSATION_RETRY: i64 = 3;
/// Server-side history is on unless turned off: no Tandem client writes history of its own.
pub const DEFAULT_ENABLED: bool = true;
/// Messages waiting between the relay and the runner before the relay waits (never drops).
const QUEUE: usize = 4096;
/// Messages the runner stores in one transaction at most.
const BATCH: usize = 256;
/// How often idle conversations are ended and the configuration re-read.
const TICK: Duration = Duration::from_secs(1);

/// The MESSAGE relay's side: a channel to the runner, attached when history runs.
#[derive(Debug, Default)]
pub struct Tap {
    tx: OnceLock<mpsc::Sender<Event>>,
}

/// What the SIP side hands the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(Relayed),
    /// A call to a user of the domain got its final answer (`status`) at `at`.
    CallAnswered {
        call_id: String,
        caller: String,
        callee: String,
        at: i64,
        status: u16,
    },
    /// A BYE of a call went through.
    CallEnded {
        call_id: String,
        at: i64,
    },
}

/// Sends without waiting: a full queue hands the wait to a task (the SIP path never waits).
fn hand_over(tx: mpsc::Sender<Event>, e: Event) {
    if let Err(mpsc::error::TrySendError::Full(e)) = tx.try_send(e) {
        tokio::spawn(async move {
            let _ = tx.send(e).await;
        });
    }
}

/// One relayed (or, for a recipient with no endpoint, kept) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub kind: ConversationKind,
    pub from: String,
    pub to: String,
    /// Unix milliseconds.
    pub at: i64,
    pub text: String,
}

/// Whether a MESSAGE body is conversation text: `text/plain` or `text/html` (kept as the text
/// it is, escaped in the transcript). Typing notices (`application/im-iscomposing+xml`) and
/// other payloads are not part of a conversation.
pub fn is_conversation_text(content_type: Option<&str>) -> bool {
    let base = content_type.unwrap_or("text/plain").split(';').next().unwrap_or_default().trim();
    base.eq_ignore_ascii_case("text/plain") || base.eq_ignore_ascii_case("text/html")
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Tap {
    /// For a MESSAGE about to be relayed (from the authenticated `from` to `to`, both addresses
    /// of record): what hands it to the runner once the sender has its final answer, as part of
    /// the pair's conversation when an endpoint accepted it (2xx), else as a missed conversation
    /// for `to` (nobody read it). `None` when history does not run or the body is no text.
    pub(crate) fn on_final(
        &self,
        from: &str,
        to: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<crate::sip::FinalObserver> {
        let tx = self.tx.get()?.clone();
        if !is_conversation_text(content_type) || body.is_empty() {
            return None;
        }
        let mut r = Relayed {
            kind: ConversationKind::Im,
            from: from.to_owned(),
            to: to.to_owned(),
            at: now_ms(),
            text: String::from_utf8_lossy(body).into_owned(),
        };
        Some(crate::sip::FinalObserver::new(move |status| {
            if !(200..300).contains(&status) {
                r.kind = ConversationKind::Missed;
            }
            hand_over(tx, Event::Message(r));
        }))
    }

    /// For an INVITE from `caller` to `callee` (addresses of record) starting a call: what
    /// tells the runner its final answer (answered, or missed for the callee).
    pub(crate) fn on_call(&self, call_id: &str, caller: &str, callee: &str) -> Option<crate::sip::FinalObserver> {
        let tx = self.tx.get()?.clone();
        let (call_id, caller, callee) = (call_id.to_owned(), caller.to_owned(), callee.to_owned());
        Some(crate::sip::FinalObserver::new(move |status| {
            hand_over(tx, Event::CallAnswered { call_id, caller, callee, at: now_ms(), status });
        }))
    }

    /// A BYE went through: the call of `call_id`, if one was answered, ends.
    pub(crate) fn call_ended(&self, call_id: &str) {
        if let Some(tx) = self.tx.get() {
            hand_over(tx.clone(), Event::CallEnded { call_id: call_id.to_owned(), at: now_ms() });
        }
    }

    /// Hands the runner a MESSAGE kept for `to`, who had no endpoint signed in: a missed
    /// conversation for them.
    pub(crate) async fn missed(&self, from: &str, to: &str, content_type: Option<&str>, body: &[u8]) {
        self.send(ConversationKind::Missed, from, to, content_type, body).await;
    }

    async fn send(&self, kind: ConversationKind, from: &str, to: &str, content_type: Option<&str>, body: &[u8]) {
        let Some(tx) = self.tx.get() else { return };
        if !is_conversation_text(content_type) || body.is_empty() {
            return;
        }
        let r = Relayed {
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            at: now_ms(),
            text: String::from_utf8_lossy(body).into_owned(),
        };
        if tx.send(Event::Message(r)).await.is_err() {
            metrics::counter!("tandem_conversation_history_messages_total", "outcome" => "stopped").increment(1);
        }
    }
}

/// The configuration in force: the store's (Set-CsConversationHistoryConfiguration) over
/// `tandem.toml`'s idle timeout and the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    pub idle: Duration,
    pub max_continued_conversation_retry: i64,
    /// IM archiving is on (Set-CsArchivingConfiguration -EnableArchiving ImOnly or ImAndWebConf
    /// with -EnableExchangeArchiving): a copy for each participant's Purges is queued, and the
    /// writer keeps it for those whose archiving policy — granted, else global — has
    /// -ArchiveInternal (every conversation here is between users of the organisation).
    pub archive: bool,
}

/// Whether the archiving configuration turns IM archiving to Exchange on.
pub fn archiving_on(a: &crate::store::ArchivingConfigRow) -> bool {
    let mode = a.enable_archiving.as_deref().unwrap_or("None");
    (mode.eq_ignore_ascii_case("ImOnly") || mode.eq_ignore_ascii_case("ImAndWebConf"))
        && a.enable_exchange_archiving.unwrap_or(false)
}

/// Whether the archiving settings archive IM conversations between users of the organisation
/// under the global policy.
pub fn archives_im(a: &crate::store::ArchivingConfigRow) -> bool {
    archiving_on(a) && a.archive_internal.unwrap_or(false)
}

impl Settings {
    pub fn of(row: &HistoryConfigRow, config_idle_secs: u32) -> Settings {
        Settings {
            enabled: row.enable_server_conversation_history.unwrap_or(DEFAULT_ENABLED),
            idle: Duration::from_secs(
                row.idle_timeout_secs
                    .and_then(|s| u64::try_from(s).ok())
                    .filter(|s| *s > 0)
                    .unwrap_or(u64::from(config_idle_secs)),
            ),
            max_continued_conversation_retry: row
                .max_continued_conversation_retry
                .filter(|n| *n >= 0)
                .unwrap_or(DEFAULT_MAX_CONTINUED_CONVERSATION_RETRY),
            archive: false,
        }
    }

    fn rules(&self) -> Rules {
        Rules { idle_ms: i64::try_from(self.idle.as_millis()).unwrap_or(i64::MAX), bounds: Bounds::default() }
    }
}

/// What the runner and the writer share.
pub(crate) struct Shared {
    pub(crate) store: FrontendStore,
    pub(crate) directory: Directory,
    pub(crate) connector: Arc<ExchangeConnector>,
    pub(crate) settings: std::sync::RwLock<Settings>,
    pub(crate) wake: Notify,
}

impl Shared {
    pub(crate) fn settings(&self) -> Settings {
        *self.settings.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts conversation history: the runner (grouping, the store) and the writer (the mailbox,
/// through the Front End's connector); `idle_timeout_secs` is `frontend.conversation_idle_timeout`.
pub fn spawn(
    core: &SipCore,
    store: Store,
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    idle_timeout_secs: u32,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    if core.conversations.tx.set(tx).is_err() {
        tracing::error!("conversation history started twice; the second one is not used");
        return;
    }
    let initial = Settings::of(&HistoryConfigRow::default(), idle_timeout_secs);
    let shared = Arc::new(Shared {
        store: FrontendStore::new(store),
        directory,
        connector,
        settings: std::sync::RwLock::new(initial),
        wake: Notify::new(),
    });
    tasks.spawn(run(shared.clone(), rx, idle_timeout_secs, shutdown.clone()));
    tasks.spawn(writer::run(shared, shutdown));
}

/// The writer on its own, as the running role's writer task uses it: tools and tests drive one
/// pass at a time against a real mailbox.
pub struct HistoryWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HistoryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryWriter").field("settings", &self.shared.settings()).finish_non_exhaustive()
    }
}

impl HistoryWriter {
    /// `http` as for [`spawn`].
    pub fn new(store: Store, directory: Directory, domain: &str, http: reqwest::Client, settings: Settings) -> Self {
        let connector = Arc::new(ExchangeConnector::new(store.clone(), domain, http));
        let shared = Shared {
            store: FrontendStore::new(store),
            directory,
            connector,
            settings: std::sync::RwLock::new(settings),
            wake: Notify::new(),
        };
        HistoryWriter { shared: Arc::new(shared) }
    }

    /// Writes the items due now (a failed one is rescheduled with backoff); returns how many
    /// were attempted.
    pub async fn write_due(&self) -> usize {
        writer::write_due(&self.shared, &CancellationToken::new()).await
    }
}

/// The runner: places relayed messages in conversations, stores them in batches, ends idle
/// conversations and queues their items.
async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Event>, config_idle: u32, shutdown: CancellationToken) {
    let mut grouper = Grouper::default();
    let mut calls = HashMap::new();
    resume(&shared, &mut grouper, &mut calls).await;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = rx.recv() => {
                let Some(first) = r else { break };
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                absorb(&shared, &mut grouper, &mut calls, batch, &shutdown).await;
            }
            _ = tick.tick() => {
                reload_settings(&shared, config_idle).await;
                let s = shared.settings();
                let ended = grouper.expire(now_ms(), s.rules().idle_ms);
                let at = now_ms();
                let mut writes: Vec<HistoryWrite> = ended
                    .into_iter()
                    .map(|e| HistoryWrite::End { targets: targets(&e, s.archive), conversation_id: e.id, at, last_at: None })
                    .collect();
                let max_call = i64::try_from(MAX_CALL.as_millis()).unwrap_or(i64::MAX);
                let stale: Vec<String> =
                    calls.iter().filter(|(_, c)| at - c.started_at >= max_call).map(|(k, _)| k.clone()).collect();
                for k in stale {
                    if let Some(c) = calls.remove(&k) {
                        writes.push(end_call(&c, at));
                    }
                }
                if !writes.is_empty() {
                    store_writes(&shared, &writes, &shutdown).await;
                    shared.wake.notify_one();
                }
                metrics::gauge!("tandem_conversation_history_open_conversations").set(grouper.len() as f64);
            }
        }
    }
    // A clean stop keeps what was relayed: the messages still queued are stored now.
    let mut rest = Vec::new();
    while let Ok(r) = rx.try_recv() {
        rest.push(r);
    }
    if !rest.is_empty() {
        absorb(&shared, &mut grouper, &mut calls, rest, &shutdown).await;
    }
}

/// A call's end: its log for both parties.
fn end_call(c: &ConversationRow, at: i64) -> HistoryWrite {
    HistoryWrite::End {
        conversation_id: c.id.clone(),
        targets: targets_of(c.kind, &c.participants, &c.initiator),
        at,
        last_at: Some(at),
    }
}

/// Carries on the conversations the store holds open (a restart in the middle of one).
async fn resume(shared: &Shared, grouper: &mut Grouper, calls: &mut HashMap<String, ConversationRow>) {
    let rows = match shared.store.open_conversations().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "conversation history: open conversations not read; they end when their items are written");
            return;
        }
    };
    let mut open = Vec::with_capacity(rows.len());
    for row in rows {
        if row.kind.is_call() {
            if let Some(id) = row.sip_call_id.clone() {
                calls.insert(id, row);
            }
            continue;
        }
        let bytes = match shared.store.conversation_messages(&row.id).await {
            Ok(m) => m.iter().map(|m| m.text.len()).sum(),
            Err(_) => 0,
        };
        open.push(Open::resume(&row, bytes));
    }
    if !open.is_empty() {
        tracing::info!(
            count = open.len(),
            "conversation history: carrying on the conversations open before the restart"
        );
    }
    grouper.resume(open);
}

async fn reload_settings(shared: &Shared, config_idle: u32) {
    let read = async {
        Ok::<_, crate::store::DataError>((
            shared.store.history_configuration().await?,
            shared.store.archiving_configuration().await?,
        ))
    };
    match read.await {
        Ok((row, archiving)) => {
            let fresh = Settings { archive: archiving_on(&archiving), ..Settings::of(&row, config_idle) };
            *shared.settings.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
        Err(e) => tracing::warn!(error = %e, "conversation history: the configuration cannot be read"),
    }
}

/// Places a batch of messages and calls and stores the result in one transaction.
async fn absorb(
    shared: &Shared,
    grouper: &mut Grouper,
    calls: &mut HashMap<String, ConversationRow>,
    batch: Vec<Event>,
    shutdown: &CancellationToken,
) {
    let s = shared.settings();
    if !s.enabled {
        metrics::counter!("tandem_conversation_history_messages_total", "outcome" => "disabled")
            .increment(batch.len() as u64);
        return;
    }
    let rules = s.rules();
    let mut writes = Vec::with_capacity(batch.len() + 1);
    let mut ended_any = false;
    for e in batch {
        let r = match e {
            Event::Message(r) => r,
            Event::CallAnswered { call_id, caller, callee, at, status } => {
                if status == 404 || caller == callee {
                    // Not a user of ours (nothing to write), or a call to oneself.
                    continue;
                }
                let answered = (200..300).contains(&status);
                let row = ConversationRow {
                    id: crate::sip::random_token(),
                    kind: if answered { ConversationKind::Call } else { ConversationKind::MissedCall },
                    participants: pair(&caller, &callee),
                    initiator: caller,
                    started_at: at,
                    last_at: at,
                    message_count: 0,
                    ended: false,
                    sip_call_id: Some(call_id.clone()),
                    detail: (!answered).then(|| missed_reason(status).to_owned()),
                };
                writes.push(HistoryWrite::Start { conversation: row.clone() });
                if answered {
                    calls.insert(call_id, row);
                } else {
                    ended_any = true;
                    writes.push(HistoryWrite::End {
                        conversation_id: row.id.clone(),
                        targets: targets_of(row.kind, &row.participants, &row.initiator),
                        at,
                        last_at: None,
                    });
                }
                continue;
            }
            Event::CallEnded { call_id, at } => {
                if let Some(c) = calls.remove(&call_id) {
                    ended_any = true;
                    writes.push(end_call(&c, at));
                }
                continue;
            }
        };
        let m = Incoming { kind: r.kind, sender: &r.from, to: &r.to, at: r.at, text_len: r.text.len() };
        let placed = match grouper.place(m, rules, crate::sip::random_token) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "conversation history: message not placed");
                continue;
            }
        };
        let open = match placed {
            Placed::Joined(o) => o,
            Placed::Started { open, ended } => {
                if let Some(e) = ended {
                    ended_any = true;
                    writes.push(HistoryWrite::End {
                        targets: targets(&e, s.archive),
                        conversation_id: e.id,
                        at: now_ms(),
                        last_at: None,
                    });
                }
                open
            }
        };
        let message = ConversationMessage {
            conversation_id: open.id.clone(),
            seq: open.messages - 1,
            sent_at: r.at,
            sender: r.from,
            text: r.text,
        };
        writes.push(HistoryWrite::Message { conversation: open.row(), message });
    }
    let n = writes.iter().filter(|w| matches!(w, HistoryWrite::Message { .. })).count();
    store_writes(shared, &writes, shutdown).await;
    metrics::counter!("tandem_conversation_history_messages_total", "outcome" => "stored").increment(n as u64);
    if ended_any {
        shared.wake.notify_one();
    }
}

/// Stores queue changes, retrying while the store fails (the relay waits meanwhile, so nothing
/// is dropped); at a stop it tries a few more times and then reports what is lost.
async fn store_writes(shared: &Shared, writes: &[HistoryWrite], shutdown: &CancellationToken) {
    let mut failures = 0u32;
    loop {
        match shared.store.apply_history(writes).await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                if shutdown.is_cancelled() && failures >= 5 {
                    tracing::error!(error = %e, changes = writes.len(), "conversation history: not stored at the stop");
                    return;
                }
                tracing::warn!(error = %e, attempt = failures, "conversation history: store write failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25)))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_conversations_go_to_the_recipients_inbox_and_history() {
        let e = |kind| Ended {
            id: "c".into(),
            kind,
            participants: ["sip:a@x".into(), "sip:b@x".into()],
            initiator: "sip:b@x".into(),
            ended_at: 0,
        };
        let t = |owner: &str, folder: &str| ItemTarget { owner: owner.into(), folder: folder.into() };
        assert_eq!(targets(&e(ConversationKind::Im), false), vec![t("sip:a@x", FOLDER), t("sip:b@x", FOLDER)]);
        assert_eq!(
            targets(&e(ConversationKind::Missed), true),
            vec![t("sip:a@x", MISSED_FOLDER), t("sip:a@x", FOLDER)],
            "missed IMs are not archived"
        );
        assert_eq!(
            targets(&e(ConversationKind::Im), true),
            vec![
                t("sip:a@x", FOLDER),
                t("sip:b@x", FOLDER),
                t("sip:a@x", ARCHIVE_FOLDER),
                t("sip:b@x", ARCHIVE_FOLDER)
            ]
        );
        let on = crate::store::ArchivingConfigRow {
            enable_archiving: Some("ImOnly".into()),
            enable_exchange_archiving: Some(true),
            archive_internal: Some(true),
            archive_external: None,
        };
        assert!(archives_im(&on));
        assert!(!archives_im(&crate::store::ArchivingConfigRow { archive_internal: None, ..on.clone() }));
        assert!(!archives_im(&crate::store::ArchivingConfigRow {
            enable_archiving: Some("None".into()),
            ..on.clone()
        }));
        assert!(!archives_im(&Default::default()), "off by default, as the cmdlets have it");
        // The mode alone turns copies on; each owner's policy decides at write time.
        assert!(archiving_on(&crate::store::ArchivingConfigRow { archive_internal: None, ..on.clone() }));
        assert!(!archiving_on(&Default::default()));
        assert_eq!(item_class(ConversationKind::Missed), "IPM.Note.Microsoft.Missed");
    }

    #[test]
    fn the_users_archiving_switches_win_over_the_global_ones() {
        let row = |identity: &str, im: Option<bool>, calls: Option<bool>| ClientPolicyRow {
            identity: identity.into(),
            enable_im_auto_archiving: im,
            enable_call_log_auto_archiving: calls,
            ..ClientPolicyRow::default()
        };
        let (a, b) = ("sip:a@x", "sip:b@x");
        assert!(archiving_allowed(&[], a, ConversationKind::Im), "on by default");
        let p = [row("global", Some(false), None), row("SIP:B@x", Some(true), Some(false))];
        assert!(!archiving_allowed(&p, a, ConversationKind::Im));
        assert!(!archiving_allowed(&p, a, ConversationKind::Missed));
        assert!(archiving_allowed(&p, a, ConversationKind::Call), "the global policy leaves calls on");
        assert!(archiving_allowed(&p, b, ConversationKind::Im), "b's own policy wins");
        assert!(!archiving_allowed(&p, b, ConversationKind::MissedCall));
    }

    #[test]
    fn only_text_is_conversation() {
        assert!(is_conversation_text(None));
        assert!(is_conversation_text(Some("text/plain;charset=UTF-8")));
        assert!(is_conversation_text(Some("Text/HTML")));
        assert!(!is_conversation_text(Some("application/im-iscomposing+xml")));
        assert!(!is_conversation_text(Some("message/cpim")));
    }

    #[test]
    fn the_store_overrides_the_file_and_the_defaults() {
        let none = Settings::of(&HistoryConfigRow::default(), 600);
        assert_eq!(
            none,
            Settings {
                enabled: true,
                idle: Duration::from_secs(600),
                max_continued_conversation_retry: 3,
                archive: false
            }
        );
        let row = HistoryConfigRow {
            enable_server_conversation_history: Some(false),
            idle_timeout_secs: Some(5),
            max_continued_conversation_retry: Some(0),
        };
        assert_eq!(
            Settings::of(&row, 600),
            Settings {
                enabled: false,
                idle: Duration::from_secs(5),
                max_continued_conversation_retry: 0,
                archive: false
            }
        );
        let bad = HistoryConfigRow { idle_timeout_secs: Some(0), max_continued_conversation_retry: Some(-1), ..row };
        let s = Settings::of(&bad, 42);
        assert_eq!((s.idle, s.max_continued_conversation_retry), (Duration::from_secs(42), 3));
    }
}

//! Online meetings: a calendar item marked online (`IsOnlineMeeting` set by the client, or
//! Outlook's PidLidConferencingCheck) gets a conference from the Front End's meeting API
//! (`/meetings/v1/conferences`), called with an S2S token the Mailbox signs for the organizer
//! (the reverse direction of the trust, `tandem_trust::mailbox::TokenIssuer`), and the join
//! information goes into the item — `JoinOnlineMeetingUrl`, `IsOnlineMeeting`, the named
//! properties the Skype for Business Online Meeting Add-in writes, and an HTML join block in the
//! body — and so into the invitations. Moving the meeting updates the conference; cancelling or
//! deleting it removes it.
//!
//! The call is made while CreateItem runs, bounded by [`INLINE_TIMEOUT`], so the invitations carry
//! the join information as Outlook's add-in sends them; when the Front End does not answer, the
//! item is saved without it and the call is retried in the background (`mbx_online_meetings`),
//! after which the organizer's item is updated and the attendees get an InformationUpdate.

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tandem_directory::User;
use tandem_ews_proto::types::ExtendedField;
use tandem_oauth::token::UserIdentity;
use tandem_types::Role;
use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::data::online_meetings::{OnlineMeeting, Pending};
use crate::data::{self, DataError, Item};

/// How long CreateItem, UpdateItem and DeleteItem wait for the Front End before saving without
/// its answer and retrying in the background.
pub const INLINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the background task looks for calls that are due.
pub const RETRY_TICK: Duration = Duration::from_secs(2);
/// The longest wait between two attempts.
pub const MAX_BACKOFF_SECS: i64 = 300;
/// The largest answer read from the meeting API.
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// The meeting API's collection on the Front End.
pub const API_PATH: &str = "/meetings/v1/conferences";

/// PS_PUBLIC_STRINGS, where the Online Meeting Add-in keeps its named properties.
pub const PS_PUBLIC_STRINGS: &str = "PublicStrings";
/// PSETID_Appointment's GUID, for the PidLid properties given by set id instead of by name.
const PSETID_APPOINTMENT: &str = "00062002-0000-0000-c000-000000000046";
/// PidLidConferencingCheck (PSETID_Appointment, 0x8240, Boolean): Outlook's "online meeting" flag,
/// which EWS's IsOnlineMeeting reads.
pub const CONFERENCING_CHECK: u32 = 0x8240;
/// The add-in's properties, as the Mailbox writes them: the web join URL, the `conf:` link of the
/// focus, and the conference's id.
pub const PROP_EXTERNAL_LINK: &str = "OnlineMeetingExternalLink";
pub const PROP_CONF_LINK: &str = "OnlineMeetingConfLink";
pub const PROP_CONFERENCE_ID: &str = "UCOpenedConferenceID";

/// Contract M's request body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConferenceBody {
    pub organizer: String,
    pub subject: String,
    pub start: String,
    pub end: String,
    pub attendees: Vec<String>,
    pub uid: String,
}

/// Contract M's answer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Conference {
    pub id: String,
    pub focus_uri: String,
    pub join_url: String,
    pub conference_id: String,
    pub organizer: String,
}

/// A meeting API call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Worth trying again (the Front End is down, slow, or the trust is not set up yet).
    #[error("{0}")]
    Retry(String),
    /// The Front End refused the meeting itself; retrying would not help.
    #[error("{0}")]
    Refused(String),
}

/// The role's client of the Front End's meeting API, and the task that retries its calls.
#[derive(Debug)]
pub(crate) struct Provisioner {
    issuer: tandem_trust::mailbox::TokenIssuer,
    client: OnceCell<reqwest::Client>,
    wake: Notify,
    runtime: OnceLock<(TaskTracker, CancellationToken)>,
}

/// Whether the item asks for an online meeting.
pub fn is_online(item: &Item) -> bool {
    if item.element != "CalendarItem" {
        return false;
    }
    let stored = data::split_elements(&item.fields).unwrap_or_default();
    if stored.iter().any(|(n, x)| n == "IsOnlineMeeting" && is_true(&data::element_text(x))) {
        return true;
    }
    data::split_extended(&item.ext)
        .unwrap_or_default()
        .iter()
        .any(|(f, v)| is_conferencing_check(f) && v.first().is_some_and(|v| is_true(v)))
}

fn is_true(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true") || v.trim() == "1"
}

fn is_conferencing_check(f: &ExtendedField) -> bool {
    let set = f.distinguished_set.as_deref().map(str::to_ascii_lowercase);
    let in_appointment = set.as_deref() == Some("appointment") || f.set_id.as_deref() == Some(PSETID_APPOINTMENT);
    in_appointment && f.id == Some(CONFERENCING_CHECK)
}

/// Every attendee's address of a meeting item.
fn attendees(item: &Item) -> Vec<String> {
    const FIELDS: &[&str] = &["RequiredAttendees", "OptionalAttendees", "Resources"];
    let mut out: Vec<String> = Vec::new();
    for (_, xml) in
        data::split_elements(&item.fields).unwrap_or_default().iter().filter(|(n, _)| FIELDS.contains(&n.as_str()))
    {
        let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
        let Ok(doc) = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()) else { continue };
        for n in doc.root_element().descendants().filter(|n| n.is_element() && n.tag_name().name() == "EmailAddress") {
            let a = tandem_xml::text(n).trim().to_owned();
            if !a.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                out.push(a);
            }
        }
    }
    out
}

/// The meeting's UID, when it has one.
pub fn uid_of(item: &Item) -> Option<String> {
    data::split_elements(&item.fields)
        .ok()?
        .into_iter()
        .find(|(n, _)| n == "UID")
        .map(|(_, x)| data::element_text(&x))
        .filter(|u| !u.is_empty())
}

/// The request body for `item`, organised by `organizer`.
pub fn body_of(item: &Item, organizer: &User) -> Option<ConferenceBody> {
    let start = item.start_at?;
    let end = item.end_at.unwrap_or(start);
    let own = organizer.smtp_address.to_string();
    Some(ConferenceBody {
        organizer: own.clone(),
        subject: item.subject.clone(),
        start: tandem_ews_proto::format_datetime(start),
        end: tandem_ews_proto::format_datetime(end),
        attendees: attendees(item).into_iter().filter(|a| !a.eq_ignore_ascii_case(&own)).collect(),
        uid: uid_of(item)?,
    })
}

/// Marks that open and close the join block in a body, so a new answer replaces the old block.
const BLOCK_OPEN: &str = "<!-- tandem:online-meeting -->";
const BLOCK_CLOSE: &str = "<!-- /tandem:online-meeting -->";
const TEXT_RULE: &str = "........................................................................................................................................";

/// The join block in HTML, as the Online Meeting Add-in writes it (a dotted rule, "Join Skype
/// Meeting", the web fallback, the conference ID and the `[!OC([1033])!]` locale mark), with the
/// conference's SIP URI for any SIP client.
pub fn join_block_html(c: &Conference) -> String {
    let e = tandem_xml::escape;
    format!(
        "{BLOCK_OPEN}<div style=\"width:100%\"><p>{TEXT_RULE}</p>\
<p><a href=\"{join}\"><span style=\"font-size:14pt\">Join Skype Meeting</span></a></p>\
<p>Trouble Joining? <a href=\"{join}?sl=1\">Try Skype Web App</a></p>\
<p>Join with a SIP client: <a href=\"{focus}\">{focus}</a></p>\
<p>Conference ID: {id}</p><p>[!OC([1033])!]</p><p>{TEXT_RULE}</p></div>{BLOCK_CLOSE}",
        join = e(&c.join_url),
        focus = e(&c.focus_uri),
        id = e(&c.conference_id),
    )
}

/// The same block for a text body.
pub fn join_block_text(c: &Conference) -> String {
    format!(
        "{TEXT_RULE}\nJoin Skype Meeting <{}>\nJoin with a SIP client: {}\nConference ID: {}\n[!OC([1033])!]\n{TEXT_RULE}",
        c.join_url, c.focus_uri, c.conference_id
    )
}

/// The body with the join block added (or replacing the one an earlier answer wrote).
fn body_with_block(stored: Option<&str>, c: &Conference) -> String {
    let (kind, content) = match stored {
        Some(xml) => {
            let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
            match tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()) {
                Ok(doc) => match tandem_xml::children(doc.root_element()).next() {
                    Some(b) => (b.attribute("BodyType").unwrap_or("Text").to_owned(), tandem_xml::text(b)),
                    None => ("HTML".to_owned(), String::new()),
                },
                Err(_) => ("HTML".to_owned(), String::new()),
            }
        }
        None => ("HTML".to_owned(), String::new()),
    };
    let html = kind.eq_ignore_ascii_case("HTML");
    let (open, close) = if html { (BLOCK_OPEN, BLOCK_CLOSE) } else { (TEXT_RULE, TEXT_RULE) };
    // Cut an earlier block (between its marks), then add the new one.
    let mut kept = content.clone();
    if let Some(a) = kept.find(open)
        && let Some(len) = kept[a + open.len()..].find(close)
    {
        kept.replace_range(a..a + open.len() + len + close.len(), "");
    }
    let text = if html {
        let block = join_block_html(c);
        match kept.to_ascii_lowercase().rfind("</body>") {
            Some(at) => format!("{}{block}{}", &kept[..at], &kept[at..]),
            None => format!("{kept}{block}"),
        }
    } else {
        let sep = if kept.trim().is_empty() { "" } else { "\n\n" };
        format!("{}{sep}{}", kept.trim_end(), join_block_text(c))
    };
    format!("<t:Body BodyType=\"{}\">{}</t:Body>", if html { "HTML" } else { "Text" }, tandem_xml::escape(&text))
}

fn named(name: &str) -> ExtendedField {
    ExtendedField {
        distinguished_set: Some(PS_PUBLIC_STRINGS.into()),
        set_id: None,
        tag: None,
        name: Some(name.into()),
        id: None,
        property_type: "String".into(),
    }
}

/// Writes the conference into the item: the body's join block, `IsOnlineMeeting`,
/// `JoinOnlineMeetingUrl`, PidLidConferencingCheck and the add-in's named properties.
pub fn write_join_info(item: &mut Item, c: &Conference) -> Result<(), DataError> {
    let mut fields = data::split_elements(&item.fields)?;
    let body = fields.iter().find(|(n, _)| n == "Body").map(|(_, x)| x.clone());
    let new_body = body_with_block(body.as_deref(), c);
    let el = |n: &str, v: &str| format!("<t:{n}>{}</t:{n}>", tandem_xml::escape(v));
    fields.retain(|(n, _)| !matches!(n.as_str(), "Body" | "IsOnlineMeeting" | "JoinOnlineMeetingUrl"));
    fields.push(("Body".into(), new_body));
    fields.push(("IsOnlineMeeting".into(), el("IsOnlineMeeting", "true")));
    fields.push(("JoinOnlineMeetingUrl".into(), el("JoinOnlineMeetingUrl", &c.join_url)));
    item.fields = fields.into_iter().map(|(_, x)| x).collect();
    let mut ext = data::split_extended(&item.ext)?;
    let check = ExtendedField {
        distinguished_set: Some("Appointment".into()),
        set_id: None,
        tag: None,
        name: None,
        id: Some(CONFERENCING_CHECK),
        property_type: "Boolean".into(),
    };
    let props = [
        (check, "true".to_owned()),
        (named(PROP_EXTERNAL_LINK), c.join_url.clone()),
        (named(PROP_CONF_LINK), format!("conf:{}", c.focus_uri)),
        (named(PROP_CONFERENCE_ID), c.id.clone()),
    ];
    for (field, value) in props {
        ext.retain(|(f, _)| f.key() != field.key() && !(is_conferencing_check(f) && is_conferencing_check(&field)));
        ext.push((field, vec![value]));
    }
    item.ext = data::join_extended(&ext);
    item.size = (item.fields.len() + item.ext.len() + item.mime.as_ref().map_or(0, Vec::len)) as i64;
    Ok(())
}

/// Whether the item already carries this conference's join information.
fn carries(item: &Item, c: &Conference) -> bool {
    let wanted = named(PROP_CONFERENCE_ID).key();
    data::split_extended(&item.ext)
        .unwrap_or_default()
        .iter()
        .any(|(f, v)| f.key() == wanted && v.first().is_some_and(|v| *v == c.id))
}

/// Whether `item` is one its mailbox's user organises (or a plain appointment), not an
/// attendee's copy of someone else's meeting.
pub fn organised_here(item: &Item) -> bool {
    let fields = data::split_elements(&item.fields).unwrap_or_default();
    fields.iter().find(|(n, _)| n == "MyResponseType").is_none_or(|(_, x)| data::element_text(x) == "Organizer")
}

/// What became of the inline call for a new online meeting.
#[derive(Debug, Clone, Default)]
pub(crate) struct Provisioned {
    pub conference_id: Option<String>,
    pub pending: Option<Pending>,
    pub error: Option<String>,
}

impl Provisioner {
    pub fn new(store: tandem_store::Store, config: &tandem_config::MailboxConfig) -> Provisioner {
        Provisioner {
            issuer: tandem_trust::mailbox::TokenIssuer::new(store, config),
            client: OnceCell::new(),
            wake: Notify::new(),
            runtime: OnceLock::new(),
        }
    }

    async fn client(&self, store: &tandem_store::Store) -> Result<&reqwest::Client, CallError> {
        self.client
            .get_or_try_init(|| async {
                tandem_trust::partners::metadata_client(store, Role::Mailbox)
                    .await
                    .map_err(|e| CallError::Retry(format!("cannot build the HTTPS client: {e}")))
            })
            .await
    }

    /// One call of the meeting API acting as `organizer`: POST (no `id`), PUT or DELETE.
    pub async fn call(
        &self,
        store: &tandem_store::Store,
        organizer: &User,
        method: reqwest::Method,
        id: Option<&str>,
        body: Option<&ConferenceBody>,
    ) -> Result<Option<Conference>, CallError> {
        let location = tandem_trust::mailbox::frontend_location(store)
            .await
            .map_err(|e| CallError::Retry(e.to_string()))?
            .ok_or_else(|| {
                CallError::Retry(
                    "no Front End partner application (Lync) is configured; run `tandem exchange configure-enterprise-partner-application`".into(),
                )
            })?;
        let who = UserIdentity { smtp: organizer.smtp_address.to_string(), sip: Some(organizer.sip_uri.to_string()) };
        let token = self.issuer.user_token(&location.host, &who).await.map_err(|e| CallError::Retry(e.to_string()))?;
        let url = match id {
            Some(id) => format!("{}{API_PATH}/{id}", location.base_url),
            None => format!("{}{API_PATH}", location.base_url),
        };
        let client = self.client(store).await?;
        let mut req = client.request(method.clone(), &url).bearer_auth(&*token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            CallError::Retry(format!("the Front End at {url} did not answer: {}", tandem_http::client::root_cause(&e)))
        })?;
        let status = resp.status();
        let bytes = tandem_http::client::read_limited(resp, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| CallError::Retry(format!("the Front End's answer could not be read: {e}")))?;
        if method == reqwest::Method::DELETE && (status.is_success() || status == reqwest::StatusCode::NOT_FOUND) {
            return Ok(None);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            let what = format!("the Front End answered {method} {url} with {status}: {text}");
            let retry = status.is_server_error()
                || matches!(status.as_u16(), 401 | 404 | 408 | 429)
                    && !(status.as_u16() == 404 && method == reqwest::Method::POST);
            return Err(if retry { CallError::Retry(what) } else { CallError::Refused(what) });
        }
        serde_json::from_slice::<Conference>(&bytes)
            .map(Some)
            .map_err(|e| CallError::Retry(format!("the Front End's answer is not a conference: {e}")))
    }

    /// A call bounded by [`INLINE_TIMEOUT`].
    async fn call_inline(
        &self,
        store: &tandem_store::Store,
        organizer: &User,
        method: reqwest::Method,
        id: Option<&str>,
        body: Option<&ConferenceBody>,
    ) -> Result<Option<Conference>, CallError> {
        match tokio::time::timeout(INLINE_TIMEOUT, self.call(store, organizer, method, id, body)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Retry(format!("the Front End did not answer within {INLINE_TIMEOUT:?}"))),
        }
    }

    /// CreateItem (or the UpdateItem that marks an item online): a conference for `item`, its
    /// join information written into it; on failure the item is left without and a retry noted.
    pub async fn provision_new(&self, store: &tandem_store::Store, organizer: &User, item: &mut Item) -> Provisioned {
        let Some(body) = body_of(item, organizer) else {
            return Provisioned { error: Some("the meeting has no start or UID".into()), ..Provisioned::default() };
        };
        match self.call_inline(store, organizer, reqwest::Method::POST, None, Some(&body)).await {
            Ok(Some(c)) => match write_join_info(item, &c) {
                Ok(()) => Provisioned { conference_id: Some(c.id), pending: None, error: None },
                Err(e) => Provisioned {
                    conference_id: Some(c.id),
                    pending: Some(Pending::Update),
                    error: Some(e.to_string()),
                },
            },
            Ok(None) => Provisioned { pending: Some(Pending::Create), ..Provisioned::default() },
            Err(CallError::Retry(e)) => {
                tracing::warn!(error = %e, "online meeting: the Front End did not provision it now; retrying in the background");
                Provisioned { pending: Some(Pending::Create), error: Some(e), ..Provisioned::default() }
            }
            Err(CallError::Refused(e)) => {
                tracing::warn!(error = %e, "online meeting: the Front End refused it");
                Provisioned { error: Some(e), ..Provisioned::default() }
            }
        }
    }

    /// Wakes the retry task (a call is owed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the retry task in the role's tasks.
    pub fn attach(&self, shared: crate::AppState, tasks: TaskTracker, shutdown: CancellationToken) {
        if self.runtime.set((tasks.clone(), shutdown.clone())).is_err() {
            return;
        }
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = shared.meetings.wake.notified() => {}
                    _ = tokio::time::sleep(RETRY_TICK) => {}
                }
                let due = match shared.data.due_online_meetings(tandem_store::now_unix(), 20).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "online meetings: cannot read the calls owed to the Front End");
                        continue;
                    }
                };
                for m in due {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        () = retry(&shared, m) => {}
                    }
                }
            }
        });
    }
}

/// The delay before attempt `attempts + 1`: 5 s doubling, at most [`MAX_BACKOFF_SECS`].
pub fn backoff(attempts: i64) -> i64 {
    (5_i64.saturating_mul(1 << attempts.clamp(0, 16))).min(MAX_BACKOFF_SECS)
}

/// Records the outcome for meeting `uid` after the item was written.
pub(crate) async fn record(
    s: &crate::Shared,
    mailbox: &str,
    item_id: &str,
    uid: &str,
    p: Provisioned,
) -> Result<(), DataError> {
    let now = tandem_store::now_unix();
    let m = OnlineMeeting {
        uid: uid.to_owned(),
        mailbox: mailbox.to_owned(),
        item_id: item_id.to_owned(),
        conference_id: p.conference_id,
        pending: p.pending,
        attempts: i64::from(p.pending.is_some()),
        next_attempt_at: now + if p.pending.is_some() { backoff(0) } else { 0 },
        last_error: p.error,
    };
    s.data.put_online_meeting(&m).await?;
    if m.pending.is_some() {
        s.meetings.wake();
    }
    Ok(())
}

/// After UpdateItem of an online meeting's item: a new time, subject or attendee list updates the
/// conference (a failed call is retried).
pub(crate) async fn changed(s: &crate::Shared, organizer: &User, before: &Item, after: &Item) -> Result<(), DataError> {
    let Some(uid) = uid_of(after) else { return Ok(()) };
    let Some(mut m) = s.data.online_meeting(&uid).await? else { return Ok(()) };
    if m.mailbox != organizer.name.as_str() {
        // An attendee's copy: the conference is the organizer's.
        return Ok(());
    }
    let (Some(id), Some(body)) = (m.conference_id.clone(), body_of(after, organizer)) else { return Ok(()) };
    let same = before.start_at == after.start_at
        && before.end_at == after.end_at
        && before.subject == after.subject
        && attendees(before) == attendees(after);
    if same && m.pending.is_none() {
        return Ok(());
    }
    match s.meetings.call_inline(&s.store, organizer, reqwest::Method::PUT, Some(&id), Some(&body)).await {
        Ok(_) => {
            m.pending = None;
            m.attempts = 0;
            m.last_error = None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "online meeting: the conference was not updated now; retrying in the background");
            let retry = matches!(e, CallError::Retry(_));
            m.pending = retry.then_some(Pending::Update);
            m.attempts = 1;
            m.next_attempt_at = tandem_store::now_unix() + backoff(0);
            m.last_error = Some(e.to_string());
        }
    }
    s.data.put_online_meeting(&m).await?;
    if m.pending.is_some() {
        s.meetings.wake();
    }
    Ok(())
}

/// After the organizer's online meeting was cancelled or deleted: its conference is removed
/// (retried until the Front End answers; then the row goes).
pub(crate) async fn removed(s: &crate::Shared, organizer: &User, item: &Item) -> Result<(), DataError> {
    let Some(uid) = uid_of(item) else { return Ok(()) };
    let Some(mut m) = s.data.online_meeting(&uid).await? else { return Ok(()) };
    if m.mailbox != organizer.name.as_str() {
        // An attendee's copy: the organizer's conference stays.
        return Ok(());
    }
    let Some(id) = m.conference_id.clone() else {
        s.data.remove_online_meeting(&uid).await?;
        return Ok(());
    };
    match s.meetings.call_inline(&s.store, organizer, reqwest::Method::DELETE, Some(&id), None).await {
        Ok(_) | Err(CallError::Refused(_)) => {
            s.data.remove_online_meeting(&uid).await?;
        }
        Err(e) => {
            tracing::warn!(error = %e, "online meeting: the conference was not removed now; retrying in the background");
            m.pending = Some(Pending::Delete);
            m.attempts = 1;
            m.next_attempt_at = tandem_store::now_unix() + backoff(0);
            m.last_error = Some(e.to_string());
            s.data.put_online_meeting(&m).await?;
            s.meetings.wake();
        }
    }
    Ok(())
}

/// One due call, in the background.
async fn retry(shared: &crate::AppState, mut m: OnlineMeeting) {
    let Some(pending) = m.pending else { return };
    let organizer = match shared.directory.find(&m.mailbox).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            // The organizer left the organisation: nothing to act as any more.
            tracing::warn!(uid = %m.uid, mailbox = %m.mailbox, "online meeting: the organizer is gone; dropping the call");
            let _ = shared.data.remove_online_meeting(&m.uid).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "online meetings: the directory is not available");
            return;
        }
    };
    let outcome = match pending {
        Pending::Delete => {
            let id = m.conference_id.clone().unwrap_or_default();
            shared.meetings.call(&shared.store, &organizer, reqwest::Method::DELETE, Some(&id), None).await.map(|_| ())
        }
        Pending::Create | Pending::Update => match shared.data.item(&m.item_id).await {
            Ok(Some(item)) => provision_again(shared, &organizer, &mut m, pending, item).await,
            Ok(None) => {
                // The item went meanwhile: nothing left to provision (a conference made is removed).
                m.pending = m.conference_id.is_some().then_some(Pending::Delete);
                Ok(())
            }
            Err(e) => Err(CallError::Retry(e.to_string())),
        },
    };
    match outcome {
        Ok(()) if pending == Pending::Delete => {
            let _ = shared.data.remove_online_meeting(&m.uid).await;
            return;
        }
        Ok(()) => {
            if m.pending == Some(pending) {
                m.pending = None;
            }
            m.attempts = 0;
            m.last_error = None;
        }
        Err(CallError::Refused(e)) => {
            tracing::warn!(uid = %m.uid, error = %e, "online meeting: the Front End refused it; giving up");
            m.pending = None;
            m.last_error = Some(e);
        }
        Err(CallError::Retry(e)) => {
            m.attempts += 1;
            m.next_attempt_at = tandem_store::now_unix() + backoff(m.attempts);
            tracing::info!(uid = %m.uid, attempts = m.attempts, error = %e, "online meeting: the Front End did not answer; retrying later");
            m.last_error = Some(e);
        }
    }
    if let Err(e) = shared.data.put_online_meeting(&m).await {
        tracing::warn!(error = %e, "online meetings: cannot record the call's outcome");
    }
}

/// POSTs (or PUTs) the conference of `item` and, for a new one, writes the join information into
/// the organizer's item and sends the attendees an update carrying it.
async fn provision_again(
    shared: &crate::AppState,
    organizer: &User,
    m: &mut OnlineMeeting,
    pending: Pending,
    item: Item,
) -> Result<(), CallError> {
    let Some(body) = body_of(&item, organizer) else {
        return Err(CallError::Refused("the meeting has no start".into()));
    };
    let (method, id) = match (&m.conference_id, pending) {
        (Some(id), _) => (reqwest::Method::PUT, Some(id.clone())),
        (None, _) => (reqwest::Method::POST, None),
    };
    let conf = shared.meetings.call(&shared.store, organizer, method, id.as_deref(), Some(&body)).await?;
    let Some(conf) = conf else { return Ok(()) };
    m.conference_id = Some(conf.id.clone());
    if !carries(&item, &conf) {
        crate::ews::write_join_info_and_tell(shared, organizer, item, &conf)
            .await
            .map_err(|e| CallError::Retry(format!("the join information could not be written: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> Conference {
        Conference {
            id: "ABCD1234".into(),
            focus_uri: "sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:ABCD1234".into(),
            join_url: "https://pool.litwareinc.com/meet/alice/ABCD1234".into(),
            conference_id: "1234567".into(),
            organizer: "sip:alice@litwareinc.com".into(),
        }
    }

    #[test]
    fn the_join_block_goes_into_html_and_text_bodies_once() {
        let c = conf();
        let html = body_with_block(
            Some("<t:Body BodyType=\"HTML\">&lt;html&gt;&lt;body&gt;Agenda&lt;/body&gt;&lt;/html&gt;</t:Body>"),
            &c,
        );
        assert!(html.starts_with("<t:Body BodyType=\"HTML\">"), "{html}");
        assert!(html.contains("Agenda"));
        assert!(html.contains("Join Skype Meeting") && html.contains("opaque=app:conf:focus:id:ABCD1234"), "{html}");
        let inner = tandem_ews_proto::item_schema::inner_text(&html);
        let inner = inner.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
        assert!(inner.find("Join Skype").unwrap() < inner.find("</body>").unwrap(), "inside the body: {inner}");
        // A second answer replaces the block instead of adding one.
        let twice = body_with_block(Some(&html), &Conference { conference_id: "7654321".into(), ..c.clone() });
        assert_eq!(twice.matches("Join Skype Meeting").count(), 1, "{twice}");
        assert!(twice.contains("7654321") && !twice.contains("Conference ID: 1234567"));

        let text = body_with_block(Some("<t:Body BodyType=\"Text\">See you</t:Body>"), &c);
        assert!(text.starts_with("<t:Body BodyType=\"Text\">See you"), "{text}");
        assert!(text.contains("Conference ID: 1234567"));
        let again = body_with_block(Some(&text), &c);
        assert_eq!(again.matches("Join Skype Meeting").count(), 1, "{again}");
        assert!(body_with_block(None, &c).contains("Join Skype Meeting"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!([0, 1, 2, 3].map(backoff), [5, 10, 20, 40]);
        assert_eq!(backoff(30), MAX_BACKOFF_SECS);
    }
}

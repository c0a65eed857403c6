//! One user's mailbox watch: Subscribe (streaming) on the Calendar and on the Top of Information
//! Store (msgfolderroot), read by the hub over a GetStreamingEvents connection shared with other
//! watches (see `hub`), and on each notification a fresh read of what is current (FindItem with a
//! CalendarView from now to a day ahead, GetUserOofSettings, and — when the policy shows Off Work
//! — the working hours GetUserAvailability returns). The Mailbox keeps out-of-office settings
//! with the Inbox and working hours (the WorkHours configuration) with the Calendar, as Exchange
//! does, and reports those folders modified when they change: a ModifiedEvent for the subscribers
//! of their parent, msgfolderroot, so nothing is polled. Between changes a timer fires at the next
//! meeting start or end (or OOF window, or working-hours boundary), which needs no EWS call at
//! all. A failure at any hop drops the calendar state (presence falls back to the endpoints), is
//! recorded, and the watch starts over after a backoff of 1 s doubling to 60 s (each wait drawn
//! from its second half). Requests wait for one of the calendar presence's EWS slots. The watch also asks
//! GetUserPhoto whether the user has a photo, with the ETag of its last answer (so an unchanged
//! photo is a short answer without the picture): when it starts, at each change and at each
//! WebServicePollInterval, as a photo change raises no mailbox event; presence then points at
//! the photo's REST URL.

use std::sync::Arc;
use std::time::Duration;

use tandem_ews_client::Mailbox;
use tandem_ews_proto::ops::find_item::{self, CalendarView};
use tandem_ews_proto::ops::get_user_availability::{self, View};
use tandem_ews_proto::ops::get_user_photo::{self, PhotoSize};
use tandem_ews_proto::ops::subscribe;
use tandem_ews_proto::types::{BaseShape, FolderRef, Shape};
use tandem_ews_proto::working_hours::WorkingHours;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::derive::{self, CalendarItem, Oof};
use super::hub::Heard;
use super::{Shared, Watch};
use crate::exchange_connector::{ConnectorError, Hop, at};

/// The calendar window read at each change: what is on now and in the next day.
const WINDOW: i64 = 24 * 3600;
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const EVENT_TYPES: &[&str] = &["CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent"];

/// What the last read found.
struct Snapshot {
    items: Vec<CalendarItem>,
    oof: Option<Oof>,
    /// Read only while the policy shows Off Work.
    hours: Option<WorkingHours>,
    read_at: i64,
}

/// What the watch last learnt of the user's photo: the ETag to send back, whether there is one.
#[derive(Default)]
struct PhotoState {
    etag: Option<String>,
}

/// Why a watch ended its current round.
enum End {
    Stopped,
    /// Start over at once (the policy changed).
    Again,
    /// The mailbox no longer knows the subscription (it restarted): subscribe again after the
    /// backoff, keeping what watchers see meanwhile.
    Resubscribe,
    Failed(ConnectorError),
}

/// Runs the watch of one user until `stop`.
pub(super) async fn run(
    shared: Arc<Shared>,
    aor: String,
    smtp: String,
    mut pokes: mpsc::Receiver<()>,
    stop: CancellationToken,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let (policy, _) = shared.policy(&aor);
        let end = if policy.disable_calendar_presence {
            shared.publish(&aor, derive::CalendarNow::default(), Watch::Disabled);
            tokio::select! {
                _ = stop.cancelled() => End::Stopped,
                _ = pokes.recv() => End::Again,
            }
        } else {
            round(&shared, &aor, &smtp, &mut pokes, &stop, &mut backoff).await
        };
        match end {
            End::Stopped => break,
            End::Again => continue,
            End::Resubscribe => {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(super::jittered(backoff)) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            End::Failed(e) => {
                metrics::counter!("tandem_calendar_presence_failures_total", "hop" => hop_name(e.hop)).increment(1);
                shared.publish(&aor, derive::CalendarNow::default(), Watch::Failing(e.to_string()));
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(super::jittered(backoff)) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    shared.core.presence.calendar.remove(&aor);
}

fn hop_name(h: Hop) -> &'static str {
    match h {
        Hop::Dns => "dns",
        Hop::Autodiscover => "autodiscover",
        Hop::Token => "token",
        Hop::Ews => "ews",
    }
}

/// One subscription's life: subscribe, read, then follow the stream until it fails.
async fn round(
    shared: &Shared,
    aor: &str,
    smtp: &str,
    pokes: &mut mpsc::Receiver<()>,
    stop: &CancellationToken,
    backoff: &mut Duration,
) -> End {
    let client = shared.connector.client();
    let slot = shared.ews_slot().await;
    let mailbox = match shared.connector.mailbox(smtp).await {
        Ok(m) => m,
        Err(e) => return End::Failed(e),
    };
    drop(slot);
    // The photo first: it does not depend on the calendar, so a failing calendar read keeps it.
    let mut photo = PhotoState::default();
    check_photo(shared, aor, &mailbox, &mut photo).await;
    let folders = vec![FolderRef::distinguished("calendar"), FolderRef::distinguished("msgfolderroot")];
    let req = subscribe::Request::streaming(folders, EVENT_TYPES);
    let slot = shared.ews_slot().await;
    let sub = match client.subscribe(&mailbox, &req).await {
        Ok(s) => s,
        Err(e) => return End::Failed(at(Hop::Ews)(e)),
    };
    drop(slot);
    // The hub reads the subscription over a connection it shares with other watches.
    let (tx, mut heard) = mpsc::channel(1);
    shared.hub.add(&sub.id, &mailbox, tx);
    let result = follow(shared, aor, &mailbox, &mut heard, pokes, stop, backoff, &mut photo).await;
    shared.hub.remove(&sub.id);
    if matches!(result, End::Stopped | End::Again) {
        // Best effort: the mailbox drops streaming subscriptions nobody reads anyway.
        let _ = client.unsubscribe(&mailbox, &sub.id).await;
    }
    result
}

#[allow(clippy::too_many_arguments)] // the watch's state, passed down from `round`
async fn follow(
    shared: &Shared,
    aor: &str,
    mailbox: &Mailbox,
    heard: &mut mpsc::Receiver<Heard>,
    pokes: &mut mpsc::Receiver<()>,
    stop: &CancellationToken,
    backoff: &mut Duration,
    photo: &mut PhotoState,
) -> End {
    // Subscribed before this read: a change after it is in the subscription's events.
    let mut snap = match read(shared, aor, mailbox).await {
        Ok(s) => s,
        Err(e) => return End::Failed(e),
    };
    *backoff = BACKOFF_FIRST;
    let mut next = derive_and_publish(shared, aor, &snap);
    let (_, mut photo_poll) = shared.policy(aor);
    let mut photo_due = tokio::time::Instant::now() + photo_poll;
    loop {
        let timer = next.map(until);
        tokio::select! {
            _ = stop.cancelled() => return End::Stopped,
            p = pokes.recv() => {
                if p.is_none() {
                    return End::Stopped;
                }
                let (policy, poll) = shared.policy(aor);
                if policy.disable_calendar_presence {
                    return End::Again;
                }
                photo_poll = poll;
                photo_due = tokio::time::Instant::now() + photo_poll;
                if policy.enable_off_work_presence && snap.hours.is_none() {
                    match read(shared, aor, mailbox).await {
                        Ok(s) => snap = s,
                        Err(e) => return End::Failed(e),
                    }
                }
                next = derive_and_publish(shared, aor, &snap);
            }
            _ = sleep_opt(timer) => {
                // A meeting starts or ends: the cached items say what is on now. Past the
                // window read last, read again.
                if tandem_store::now_unix() >= snap.read_at + WINDOW {
                    match read(shared, aor, mailbox).await {
                        Ok(s) => snap = s,
                        Err(e) => return End::Failed(e),
                    }
                }
                metrics::counter!("tandem_calendar_presence_timers_total").increment(1);
                next = derive_and_publish(shared, aor, &snap);
            }
            _ = tokio::time::sleep_until(photo_due) => {
                // A photo change raises no mailbox event: asked again each WebServicePollInterval.
                photo_due = tokio::time::Instant::now() + photo_poll;
                check_photo(shared, aor, mailbox, photo).await;
            }
            h = heard.recv() => match h {
                Some(Heard::Changed) => {
                    metrics::counter!("tandem_calendar_presence_changes_total").increment(1);
                    match read(shared, aor, mailbox).await {
                        Ok(s) => snap = s,
                        Err(e) => return End::Failed(e),
                    }
                    check_photo(shared, aor, mailbox, photo).await;
                    next = derive_and_publish(shared, aor, &snap);
                }
                Some(Heard::Lost { gone: true, .. }) | None => return End::Resubscribe,
                Some(Heard::Lost { error, .. }) => return End::Failed(error),
            },
        }
    }
}

fn until(at_unix: i64) -> tokio::time::Instant {
    let wait = u64::try_from(at_unix - tandem_store::now_unix()).unwrap_or(0);
    // A second's margin past the boundary: wall-clock seconds, and the item ends exactly then.
    tokio::time::Instant::now() + Duration::from_secs(wait) + Duration::from_millis(200)
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Derives the user's calendar state now, publishes it; returns when it next changes.
fn derive_and_publish(shared: &Shared, aor: &str, snap: &Snapshot) -> Option<i64> {
    let (policy, _) = shared.policy(aor);
    let t = tandem_store::now_unix();
    let mut now = derive::calendar_now(&snap.items, snap.oof.as_ref(), t, policy);
    if let Some(h) = &snap.hours {
        derive::apply_working_hours(&mut now, h, t, policy);
    }
    let next = now.next_change;
    shared.publish(aor, now, Watch::Watching);
    next
}

/// Reads what is current: the calendar items of the window and the OOF settings.
async fn read(shared: &Shared, aor: &str, mailbox: &Mailbox) -> Result<Snapshot, ConnectorError> {
    let _slot = shared.ews_slot().await;
    let now = tandem_store::now_unix();
    let mut req = find_item::Request::new(Shape::base(BaseShape::Default), vec![FolderRef::distinguished("calendar")]);
    req.calendar = Some(CalendarView { start: now, end: now + WINDOW, max: None });
    let found = shared.connector.client().find_item(mailbox, &req).await.map_err(at(Hop::Ews))?;
    let items = found.into_iter().flat_map(|f| f.items).filter_map(|(_, d)| calendar_item(&d)).collect();
    let oof = read_oof(shared, mailbox).await?;
    let (policy, _) = shared.policy(aor);
    let hours = if policy.enable_off_work_presence { Some(read_hours(shared, mailbox, now).await?) } else { None };
    tracing::debug!(user = aor, "calendar presence: read the calendar");
    Ok(Snapshot { items, oof, hours, read_at: now })
}

/// The user's working hours, as GetUserAvailability returns them for their own mailbox (a
/// FreeBusy view of one interval; the WorkingHours element comes with every view).
async fn read_hours(shared: &Shared, mailbox: &Mailbox, now: i64) -> Result<WorkingHours, ConnectorError> {
    let start = now - now.rem_euclid(900);
    let req = get_user_availability::Request::new(vec![mailbox.smtp.clone()], start, start + 900, 15, View::FreeBusy);
    let views = shared.connector.client().get_user_availability(mailbox, &req).await.map_err(at(Hop::Ews))?;
    Ok(views.into_iter().find_map(|v| v.ok()).and_then(|v| v.working_hours).unwrap_or_default())
}

/// The REST URL of a user's photo in the size Skype for Business clients show beside presence.
pub(super) fn photo_url(mailbox: &Mailbox) -> String {
    let mut email = String::new();
    for b in mailbox.smtp.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => email.push(char::from(b)),
            other => email.push_str(&format!("%{other:02X}")),
        }
    }
    format!("{}/s/GetUserPhoto?email={email}&size={}", mailbox.ews_url.trim_end_matches('/'), PhotoSize::HR96x96.code())
}

/// Asks the mailbox whether the user has a photo (conditionally on the last ETag) and publishes
/// its URL or its absence. A failure keeps what watchers see: the photo is not worth dropping
/// the calendar state for, and the next check tries again.
async fn check_photo(shared: &Shared, aor: &str, mailbox: &Mailbox, state: &mut PhotoState) {
    let req = get_user_photo::Request::new(mailbox.smtp.clone(), PhotoSize::HR48x48);
    let _slot = shared.ews_slot().await;
    match shared.connector.client().get_user_photo(mailbox, &req, state.etag.as_deref()).await {
        Ok(None) => {
            state.etag = None;
            shared.publish_photo(aor, None);
        }
        Ok(Some(p)) => {
            if p.has_changed || state.etag.is_none() {
                metrics::counter!("tandem_presence_photo_changes_total").increment(1);
            }
            state.etag = p.etag.or(state.etag.take());
            shared.publish_photo(aor, Some(photo_url(mailbox)));
        }
        Err(e) => tracing::debug!(user = aor, error = %e, "presence photo: GetUserPhoto failed; keeping what is shown"),
    }
}

async fn read_oof(shared: &Shared, mailbox: &Mailbox) -> Result<Option<Oof>, ConnectorError> {
    let o = shared.connector.client().get_user_oof_settings(mailbox, &mailbox.smtp).await.map_err(at(Hop::Ews))?;
    Ok(Some(Oof { state: o.state, window: o.duration, internal_reply: o.internal_reply }))
}

/// A calendar item of a CalendarView answer; `None` when it has no times or is cancelled.
fn calendar_item(d: &tandem_ews_proto::ops::create_item::ItemData) -> Option<CalendarItem> {
    let field = |name: &str| d.fields.iter().find(|(n, _)| n == name).map(|(_, x)| element_text(x));
    if field("IsCancelled").is_some_and(|c| c == "true") {
        return None;
    }
    let sensitivity = field("Sensitivity").unwrap_or_default();
    Some(CalendarItem {
        start: d.start?,
        end: d.end?,
        // EWS's default for an item that says nothing is Busy.
        free_busy: field("LegacyFreeBusyStatus").filter(|s| !s.is_empty()).unwrap_or_else(|| "Busy".to_owned()),
        private: matches!(sensitivity.as_str(), "Private" | "Confidential"),
        subject: d.subject.clone().unwrap_or_default(),
        location: field("Location").unwrap_or_default(),
    })
}

/// The text of a rendered element such as `<t:Sensitivity>Private</t:Sensitivity>`.
fn element_text(el: &str) -> String {
    let inner = match (el.find('>'), el.rfind("</")) {
        (Some(a), Some(b)) if b > a => &el[a + 1..b],
        _ => "",
    };
    inner.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_from_calendar_view_fields() {
        let mut d = tandem_ews_proto::ops::create_item::ItemData::new("CalendarItem").with_subject("Plan");
        d.start = Some(10);
        d.end = Some(20);
        d.fields.push(("Sensitivity".into(), "<t:Sensitivity>Private</t:Sensitivity>".into()));
        d.fields.push(("Location".into(), "<t:Location>A &amp; B</t:Location>".into()));
        let i = calendar_item(&d).unwrap();
        assert_eq!((i.private, i.free_busy.as_str(), i.location.as_str()), (true, "Busy", "A & B"));
        d.fields.push(("IsCancelled".into(), "<t:IsCancelled>true</t:IsCancelled>".into()));
        assert!(calendar_item(&d).is_none());
        assert_eq!(element_text("<t:X/>"), "");
    }

    #[test]
    fn the_photo_url_is_the_rest_form_under_the_ews_url() {
        let m =
            Mailbox { smtp: "bob+x@litwareinc.com".into(), ews_url: "https://127.0.0.1:8443/EWS/Exchange.asmx".into() };
        assert_eq!(
            photo_url(&m),
            "https://127.0.0.1:8443/EWS/Exchange.asmx/s/GetUserPhoto?email=bob%2Bx@litwareinc.com&size=HR96x96"
        );
    }
}

//! Subscribe (pull, streaming and push): subscriptions live in the role's memory with an idle
//! timeout (push ones are kept alive by their deliveries, `send_notification`);
//! events come from the change log, so nothing is lost between polls, and each subscription holds
//! its mailbox's wake-up signal (`data::notify`), so nobody reads the log while nothing changes.

use std::time::{Duration, Instant};

use tandem_ews_proto::ResponseMessages;
use tandem_ews_proto::ops::subscribe::Request;
use tandem_ews_proto::ops::sync_folder_items::encode_state;

use super::subscriptions::Refused;
use super::{Ctx, EwsError};
use crate::Subscription;

/// Expired subscriptions are swept every this many new ones (and when the table is full), not
/// on each Subscribe: a sweep walks them all.
const SWEEP_EVERY: usize = 1024;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("Subscribe");
    if let Some(p) = &req.push
        && let Err(e) = tandem_ews_proto::ops::subscribe::check_push_url(&p.url)
    {
        out.error(e.code, &e.message, "");
        return Ok(out.finish());
    }
    let mut folders = Vec::new();
    for f in &req.folders {
        match ctx.folder(f).await {
            Ok(f) => folders.push(f.id),
            Err(EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "");
                return Ok(out.finish());
            }
            Err(other) => return Err(other),
        }
    }
    // The signal first, then the counters: a commit between the two is either read or wakes it.
    let signal = ctx.s.data.wakeups().signal(ctx.mailbox());
    let now_mark = current_change(ctx).await?;
    signal.observe(now_mark);
    let watermark = req.watermark.unwrap_or(now_mark);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let sub = Subscription {
        mailbox: ctx.mailbox().to_owned(),
        owner: ctx.owner.clone(),
        signal,
        folders: if req.all_folders { None } else { Some(folders) },
        event_types: req.event_types.clone(),
        timeout: match &req.push {
            // Refreshed by each delivery; a StatusEvent goes out at least every StatusFrequency
            // and retries last at most as long, so only a dead delivery task lets it lapse.
            Some(p) => ctx.s.push.minutes(p.status_frequency_minutes) * 3,
            None => Duration::from_secs(req.timeout_minutes * 60),
        },
        last_poll: Instant::now(),
        streaming: req.streaming,
        push: req.push.clone(),
        watermark,
    };
    if let Ok(mut subs) = ctx.s.subscriptions.lock() {
        // At most `[mailbox] ews_max_subscriptions` per role (a Front End watching 20,000 users
        // holds one each; they take about 3 kB each, docs/BENCHMARKS.md); expired ones go first.
        if subs.len() % SWEEP_EVERY == 0 || subs.is_full() {
            subs.retain(|_, s| s.last_poll.elapsed() < s.timeout);
        }
        let owner = sub.owner.clone();
        let max = subs.max_per_account();
        match subs.insert(id.clone(), sub) {
            Ok(()) => {}
            Err(Refused::ServerFull) => {
                return Err(super::fail(tandem_ews_proto::ResponseCode::ErrorServerBusy, "Too many subscriptions."));
            }
            Err(Refused::AccountFull) => {
                tracing::warn!(owner = %owner, mailbox = %ctx.mailbox(), max, "subscription refused: the account holds its maximum");
                metrics::counter!("tandem_ews_subscriptions_refused_total", "cap" => "account").increment(1);
                return Err(super::fail(
                    tandem_ews_proto::ResponseCode::ErrorExceededSubscriptionCount,
                    format!("The account holds the maximum of {max} subscriptions (EwsMaxSubscriptions)."),
                ));
            }
        }
        metrics::gauge!("tandem_ews_subscriptions").set(subs.len() as f64);
    }
    metrics::gauge!("tandem_mailbox_watched_mailboxes").set(ctx.s.data.wakeups().watched() as f64);
    if req.push.is_some() {
        super::send_notification::spawn(ctx.shared.clone(), id.clone());
    }
    out.success(&format!(
        "<m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{}</m:Watermark>",
        encode_state(watermark)
    ));
    Ok(out.finish())
}

/// The mailbox's latest change number.
pub(crate) async fn current_change(ctx: &Ctx<'_>) -> Result<i64, EwsError> {
    Ok(ctx.s.data.current_change(ctx.mailbox()).await?)
}

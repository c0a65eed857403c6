//! GetEvents and Unsubscribe for pull subscriptions, and the reading of a subscription's events
//! from the change log that streaming shares.

use std::time::Instant;

use tandem_ews_proto::ops::get_events::{Event, Request, UnsubscribeRequest, render};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError, fail};

/// Events returned per call at most; MoreEvents says when there are more.
const MAX_EVENTS: usize = 50;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetEvents");
    record(&mut out, events(ctx, &req).await, "")?;
    Ok(out.finish())
}

async fn events(ctx: &Ctx<'_>, req: &Request) -> Result<String, EwsError> {
    let sub = {
        let mut subs = ctx.s.subscriptions.lock().map_err(|_| fail(ResponseCode::ErrorServerBusy, "Busy."))?;
        let s = subs.get_mut(&req.subscription).filter(|s| s.owner == ctx.owner).ok_or_else(|| {
            fail(ResponseCode::ErrorSubscriptionNotFound, "The specified subscription was not found.")
        })?;
        if s.last_poll.elapsed() > s.timeout {
            subs.remove(&req.subscription);
            return Err(fail(ResponseCode::ErrorExpiredSubscription, "The subscription has expired."));
        }
        s.last_poll = Instant::now();
        s.clone()
    };
    if sub.streaming {
        return Err(fail(
            ResponseCode::ErrorInvalidSubscription,
            "This is a streaming subscription; use GetStreamingEvents.",
        ));
    }
    if sub.push.is_some() {
        return Err(fail(
            ResponseCode::ErrorInvalidSubscription,
            "This is a push subscription; its notifications are posted to its URL.",
        ));
    }
    // Nothing committed after the watermark (the mailbox's signal knows): no query.
    let (out, last, more) = if sub.signal.has_news(req.watermark) {
        collect(ctx.s, &sub, req.watermark).await?
    } else {
        (Vec::new(), req.watermark, false)
    };
    Ok(render(&req.subscription, req.watermark, more, &out, last))
}

/// Change log rows read per call at most.
const PAGE: usize = 1000;

/// Events of a subscription after `watermark`: (events, last change number seen, more to come:
/// more events than one answer carries, or a full page of the log read).
pub(crate) async fn collect(
    s: &crate::Shared,
    sub: &crate::Subscription,
    watermark: i64,
) -> Result<(Vec<Event>, i64, bool), EwsError> {
    let logged = s.data.changes_after(&sub.mailbox, watermark, None, PAGE).await?;
    if let Some(c) = logged.last() {
        sub.signal.observe(c.change_number);
    }
    let mut out = Vec::new();
    let mut last = watermark;
    let mut more = false;
    for c in &logged {
        if out.len() >= MAX_EVENTS && c.change_number != last {
            more = true;
            break;
        }
        last = c.change_number;
        let in_scope = match &sub.folders {
            None => true,
            Some(fs) => fs.contains(&c.folder_id) || c.old_folder_id.as_ref().is_some_and(|o| fs.contains(o)),
        };
        let kind = match c.kind.as_str() {
            "Created" => "CreatedEvent",
            "Modified" | "ReadFlagChanged" => "ModifiedEvent",
            "Deleted" => "DeletedEvent",
            "Moved" => "MovedEvent",
            "Copied" => "CopiedEvent",
            "NewMail" => "NewMailEvent",
            _ => continue,
        };
        if !in_scope || !sub.event_types.iter().any(|t| t == kind) {
            continue;
        }
        let folder_ck = |id: &str| (id.to_owned(), ids::change_key(c.change_number));
        out.push(Event {
            kind,
            watermark: c.change_number,
            at: c.at,
            folder_object: c.object_kind == "folder",
            id: (c.object_id.clone(), ids::change_key(c.change_number)),
            parent: folder_ck(&c.folder_id),
            old_parent: c.old_folder_id.as_deref().map(folder_ck),
        });
    }
    Ok((out, last, more || logged.len() >= PAGE))
}

pub(crate) async fn unsubscribe(ctx: &Ctx<'_>, req: UnsubscribeRequest) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("Unsubscribe");
    let removed = ctx
        .s
        .subscriptions
        .lock()
        .map(|mut subs| match subs.get(&req.subscription) {
            Some(s) if s.owner == ctx.owner => {
                let gone = subs.remove(&req.subscription);
                metrics::gauge!("tandem_ews_subscriptions").set(subs.len() as f64);
                gone
            }
            _ => None,
        })
        .unwrap_or(None);
    // An open stream serving it learns it is gone now rather than at its next keep-alive.
    if let Some(gone) = &removed {
        gone.signal.wake_waiters();
    }
    let removed = removed.is_some();
    if removed {
        out.success("");
    } else {
        out.error(ResponseCode::ErrorSubscriptionNotFound, "The specified subscription was not found.", "");
    }
    Ok(out.finish())
}

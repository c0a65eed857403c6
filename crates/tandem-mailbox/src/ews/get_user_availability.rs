//! GetUserAvailability: free/busy from each mailbox's Calendar folder over the window (an
//! indexed range query; recurring items are expanded into their occurrences). Details (subject,
//! location) only for the caller's own mailbox, as Exchange's default calendar permission
//! (AvailabilityOnly) gives others times only. WorkingHours are the mailbox's own, from the
//! `WorkHours` configuration object of its Calendar (what Outlook and OWA write); Monday to
//! Friday 08:00–17:00 UTC without one.
//!
//! Out of office shows as Exchange shows it: through calendar items whose LegacyFreeBusyStatus
//! is OOF (BusyType OOF, digit 3 in MergedFreeBusy). The automatic-reply settings alone do not
//! change free/busy in Exchange (free/busy is computed from appointments only, MS-OXOPFFB);
//! OWA's "block my calendar" writes such an OOF item, and so can any client.

use tandem_ews_proto::ops::get_user_availability::{Event, Request, render_error, render_view};
use tandem_ews_proto::ops::get_user_configuration::Parts;
use tandem_ews_proto::working_hours::WorkingHours;

use super::{Ctx, EwsError};
use crate::data;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = String::from("<m:GetUserAvailabilityResponse><m:FreeBusyResponseArray>");
    for addr in &req.mailboxes {
        let user = ctx.s.directory.find(addr).await?.filter(|u| u.can_use_mailbox());
        let Some(user) = user else {
            out.push_str(&render_error("ErrorMailRecipientNotFound", &format!("No mailbox for {addr}.")));
            continue;
        };
        let mailbox = user.name.to_string();
        ctx.s.data.ensure_mailbox(&mailbox).await?;
        let Some(calendar) = ctx.s.data.folder_by_name(&mailbox, "calendar").await? else {
            out.push_str(&render_error("ErrorFolderNotFound", "The calendar folder is missing."));
            continue;
        };
        let own = mailbox == ctx.mailbox();
        let rows = ctx.s.data.calendar_entries(&calendar.id, req.start, req.end).await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let parts = data::split_elements(&r.fields)?;
            let get = |n: &str| parts.iter().find(|(k, _)| k == n).map(|(_, x)| data::element_text(x));
            let busy_type = get("LegacyFreeBusyStatus").filter(|s| !s.is_empty()).unwrap_or_else(|| "Busy".to_owned());
            let (Some(start), Some(end)) = (r.start_at, r.end_at) else { continue };
            let details = own.then(|| (r.id.clone(), r.subject.clone(), get("Location").unwrap_or_default()));
            let recurrence = parts.iter().find(|(k, _)| k == "Recurrence").map(|(_, x)| x.as_str());
            let expanded =
                recurrence.and_then(|x| super::recurrence::occurrences(x, start, end - start, req.start, req.end));
            let starts = match expanded {
                Some(starts) => starts,
                None if end > req.start => vec![start],
                None => Vec::new(),
            };
            for s in starts {
                events.push(Event {
                    start: s,
                    end: s + (end - start),
                    busy_type: busy_type.clone(),
                    details: details.clone(),
                    recurring: recurrence.is_some(),
                });
            }
        }
        events.sort_by_key(|e| e.start);
        let hours = working_hours(ctx, &mailbox, &calendar.id).await?;
        out.push_str(&render_view(&req, &events, &hours));
    }
    out.push_str("</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>");
    Ok(out)
}

/// The name of the configuration object Outlook keeps working hours in.
pub(crate) const WORK_HOURS: &str = "WorkHours";

/// A mailbox's working hours: its WorkHours configuration, else the default.
pub(crate) async fn working_hours(ctx: &Ctx<'_>, mailbox: &str, calendar_id: &str) -> Result<WorkingHours, EwsError> {
    let stored = ctx.s.data.user_configuration(mailbox, calendar_id, WORK_HOURS).await?;
    let parsed = stored.as_deref().and_then(Parts::from_stored).and_then(|p| p.xml_text()).and_then(|x| {
        let h = WorkingHours::from_work_hours_xml(&x);
        if h.is_none() {
            tracing::debug!(mailbox, "the WorkHours configuration is not understood; the default applies");
        }
        h
    });
    Ok(parsed.unwrap_or_default())
}

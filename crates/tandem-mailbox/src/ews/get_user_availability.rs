//! GetUserAvailability: free/busy from each mailbox's Calendar folder over the window (an
//! indexed range query; recurring items are expanded into their occurrences). Details (subject, location) only for the caller's own mailbox, as
//! Exchange's default calendar permission (AvailabilityOnly) gives others times only.

use sqlx::Row;
use tandem_ews_proto::ops::get_user_availability::{Event, Request, render_error, render_view};

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
        let rows = sqlx::query(
            "SELECT id, subject, start_at, end_at, fields FROM mbx_items
             WHERE folder_id = $1 AND start_at < $2 AND (end_at > $3 OR fields LIKE '%<t:Recurrence>%')
             ORDER BY start_at",
        )
        .bind(&calendar.id)
        .bind(req.end)
        .bind(req.start)
        .fetch_all(ctx.s.data.store.pool())
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let fields: String = r.try_get("fields")?;
            let parts = data::split_elements(&fields)?;
            let get = |n: &str| parts.iter().find(|(k, _)| k == n).map(|(_, x)| data::element_text(x));
            let busy_type = get("LegacyFreeBusyStatus").filter(|s| !s.is_empty()).unwrap_or_else(|| "Busy".to_owned());
            let start: Option<i64> = r.try_get("start_at")?;
            let end: Option<i64> = r.try_get("end_at")?;
            let (Some(start), Some(end)) = (start, end) else { continue };
            let details = own.then(|| {
                let id: String = r.try_get("id").unwrap_or_default();
                let subject: String = r.try_get("subject").unwrap_or_default();
                (id, subject, get("Location").unwrap_or_default())
            });
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
        out.push_str(&render_view(&req, &events));
    }
    out.push_str("</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>");
    Ok(out)
}

//! GetDelegate: the caller's delegates (other mailboxes: ErrorAccessDenied).

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::delegates::{Delegate, render};
use tandem_ews_proto::ops::get_delegate::Request;

use super::{Ctx, EwsError, fail};
use crate::data::settings::DELIVER_MEETING_REQUESTS as DELIVER;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    own(ctx, &req.mailbox)?;
    let all = delegates_of(ctx, ctx.mailbox()).await?;
    let mut entries = Vec::new();
    for d in all.iter().filter(|d| req.users.is_empty() || req.users.iter().any(|u| u.eq_ignore_ascii_case(&d.address)))
    {
        entries.push(Ok((d.clone(), display_name(ctx, &d.address).await?)));
    }
    for u in req.users.iter().filter(|u| !all.iter().any(|d| d.address.eq_ignore_ascii_case(u))) {
        entries.push(Err((ResponseCode::ErrorNotDelegate, format!("{u} is not a delegate of this mailbox."))));
    }
    let deliver = ctx.s.data.user_setting(ctx.mailbox(), DELIVER).await?.unwrap_or_else(|| "DelegatesAndMe".into());
    Ok(render("GetDelegate", &entries, Some(&deliver), req.include_permissions))
}

/// Only the owner manages (and reads) a mailbox's delegates.
pub(crate) fn own(ctx: &Ctx<'_>, mailbox: &str) -> Result<(), EwsError> {
    if mailbox.eq_ignore_ascii_case(&ctx.smtp()) {
        Ok(())
    } else {
        Err(fail(ResponseCode::ErrorAccessDenied, "Only the mailbox owner can manage its delegates."))
    }
}

pub(crate) async fn delegates_of(ctx: &Ctx<'_>, mailbox: &str) -> Result<Vec<Delegate>, EwsError> {
    Ok(ctx
        .s
        .data
        .delegates(mailbox)
        .await?
        .into_iter()
        .map(|(address, value)| Delegate::decode(&address, &value))
        .collect())
}

pub(crate) async fn display_name(ctx: &Ctx<'_>, address: &str) -> Result<String, EwsError> {
    Ok(ctx.s.directory.find(address).await?.map(|u| u.display_name).unwrap_or_default())
}

//! AddDelegate: adds directory users as delegates of the caller's mailbox.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::add_delegate::Request;
use tandem_ews_proto::ops::delegates::render;

use super::get_delegate::{delegates_of, display_name, own};
use super::{Ctx, EwsError};
use crate::data::settings::DELIVER_MEETING_REQUESTS as DELIVER;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    apply(ctx, req, false).await
}

/// AddDelegate (`update` false) and UpdateDelegate (`update` true).
pub(crate) async fn apply(ctx: &Ctx<'_>, req: Request, update: bool) -> Result<String, EwsError> {
    own(ctx, &req.mailbox)?;
    let existing = delegates_of(ctx, ctx.mailbox()).await?;
    let mut entries = Vec::new();
    for mut d in req.delegates {
        let user = ctx.s.directory.find(&d.address).await?.filter(|u| u.can_use_mailbox());
        let Some(user) = user else {
            entries.push(Err((
                ResponseCode::ErrorDelegateNoUser,
                format!("{} is not a user of this organisation.", d.address),
            )));
            continue;
        };
        d.address = user.smtp_address.to_string().to_lowercase();
        let present = existing.iter().any(|e| e.address.eq_ignore_ascii_case(&d.address));
        if present && !update {
            entries
                .push(Err((ResponseCode::ErrorDelegateAlreadyExists, format!("{} is already a delegate.", d.address))));
            continue;
        }
        if !present && update {
            entries.push(Err((
                ResponseCode::ErrorNotDelegate,
                format!("{} is not a delegate of this mailbox.", d.address),
            )));
            continue;
        }
        if user.name.as_str() == ctx.mailbox() {
            entries.push(Err((ResponseCode::ErrorInvalidRequest, "A mailbox cannot be its own delegate.".to_owned())));
            continue;
        }
        ctx.s.data.set_delegate(ctx.mailbox(), &d.address, &d.encode()).await?;
        let name = display_name(ctx, &d.address).await?;
        entries.push(Ok((d, name)));
    }
    if let Some(deliver) = &req.deliver {
        ctx.s.data.set_user_setting(ctx.mailbox(), DELIVER, deliver).await?;
    }
    let deliver = ctx.s.data.user_setting(ctx.mailbox(), DELIVER).await?.unwrap_or_else(|| "DelegatesAndMe".into());
    Ok(render(if update { "UpdateDelegate" } else { "AddDelegate" }, &entries, Some(&deliver), true))
}

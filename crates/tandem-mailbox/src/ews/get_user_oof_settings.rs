//! GetUserOofSettings: the caller's own out-of-office settings (others: ErrorAccessDenied).

use tandem_ews_proto::ops::get_user_oof_settings::{DEFAULT_SETTINGS, Request, render, render_error};

use super::{Ctx, EwsError};
use crate::data::settings::OOF;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    if !req.address.eq_ignore_ascii_case(&ctx.smtp()) {
        return Ok(render_error("ErrorAccessDenied", "Out-of-office settings of other mailboxes are not available."));
    }
    let stored = ctx.s.data.user_setting(ctx.mailbox(), OOF).await?;
    Ok(render(stored.as_deref().unwrap_or(DEFAULT_SETTINGS)))
}

//! SetUserOofSettings: replaces the caller's own out-of-office settings, kept as sent.

use tandem_ews_proto::ops::set_user_oof_settings::{Request, render, render_error};

use super::{Ctx, EwsError};
use crate::data::settings::OOF;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    if !req.address.eq_ignore_ascii_case(&ctx.smtp()) {
        return Ok(render_error("ErrorAccessDenied", "Out-of-office settings of other mailboxes cannot be changed."));
    }
    ctx.s.data.set_user_setting(ctx.mailbox(), OOF, &req.settings).await?;
    tracing::info!(mailbox = ctx.mailbox(), state = %req.state, "out-of-office settings changed");
    Ok(render())
}

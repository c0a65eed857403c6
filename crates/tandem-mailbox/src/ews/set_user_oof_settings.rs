//! SetUserOofSettings: replaces the caller's own out-of-office settings, kept as sent. Exchange
//! keeps them with the OOF rule and its reply templates, configuration messages of the Inbox;
//! here the write marks the Inbox modified in the same transaction, so a subscription on the
//! Inbox's parent (msgfolderroot) hears a ModifiedEvent at once — the Front End's calendar
//! presence watch reads that instead of polling. Turning automatic replies on again (from
//! Disabled, or with a new window) forgets who already got one, as Exchange does.

use tandem_ews_proto::ops::get_user_oof_settings::{DEFAULT_SETTINGS, OofSettings};
use tandem_ews_proto::ops::set_user_oof_settings::{Request, render, render_error};

use super::{Ctx, EwsError};
use crate::data::settings::OOF;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    if !req.address.eq_ignore_ascii_case(&ctx.smtp()) {
        return Ok(render_error("ErrorAccessDenied", "Out-of-office settings of other mailboxes cannot be changed."));
    }
    let old = ctx.s.data.user_setting(ctx.mailbox(), OOF).await?;
    let old = old.as_deref().and_then(OofSettings::from_stored).or_else(|| OofSettings::from_stored(DEFAULT_SETTINGS));
    let new = OofSettings::from_stored(&req.settings);
    let inbox = match ctx.s.data.folder_by_name(ctx.mailbox(), "inbox").await? {
        Some(f) => f,
        None => return Ok(render_error("ErrorFolderNotFound", "The Inbox is missing.")),
    };
    ctx.s.data.set_folder_setting(&inbox, OOF, Some(&req.settings)).await?;
    if let Some(new) = &new
        && new.state != "Disabled"
        && old.as_ref().is_none_or(|o| o.state == "Disabled" || o.duration != new.duration)
    {
        ctx.s.data.reset_oof_replies(ctx.mailbox()).await?;
    }
    tracing::info!(mailbox = ctx.mailbox(), state = %req.state, "out-of-office settings changed");
    Ok(render())
}

//! CreateUserConfiguration: stores a new configuration object in a folder (one per name and
//! folder; a second is ErrorItemSave, as Exchange refuses it). The folder is marked modified in
//! the same transaction, so a subscription on its parent hears of it.

use tandem_ews_proto::ops::create_user_configuration::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::get_user_configuration::folder_or_error;
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("CreateUserConfiguration");
    let folder = match folder_or_error(ctx, &req.name.folder).await? {
        Ok(f) => f,
        Err((code, text)) => {
            out.error(code, &text, "");
            return Ok(out.finish());
        }
    };
    if ctx.s.data.user_configuration(ctx.mailbox(), &folder.id, &req.name.name).await?.is_some() {
        out.error(ResponseCode::ErrorItemSave, "The configuration object already exists.", "");
        return Ok(out.finish());
    }
    ctx.s.data.set_user_configuration(&folder, &req.name.name, Some(&req.parts.to_stored())).await?;
    out.success("");
    Ok(out.finish())
}

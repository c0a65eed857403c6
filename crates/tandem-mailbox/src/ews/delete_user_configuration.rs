//! DeleteUserConfiguration: removes a configuration object of a folder (a missing one is
//! ErrorItemNotFound). The folder is marked modified in the same transaction.

use tandem_ews_proto::ops::delete_user_configuration::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::get_user_configuration::folder_or_error;
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("DeleteUserConfiguration");
    let folder = match folder_or_error(ctx, &req.name.folder).await? {
        Ok(f) => f,
        Err((code, text)) => {
            out.error(code, &text, "");
            return Ok(out.finish());
        }
    };
    if ctx.s.data.user_configuration(ctx.mailbox(), &folder.id, &req.name.name).await?.is_none() {
        out.error(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.", "");
        return Ok(out.finish());
    }
    ctx.s.data.set_user_configuration(&folder, &req.name.name, None).await?;
    out.success("");
    Ok(out.finish())
}

//! GetUserConfiguration: OWA.UserOptions on the root folder with the user's time zone (UTC:
//! Tandem keeps times in UTC); any other configuration is not found, as in a fresh mailbox.

use tandem_ews_proto::ops::get_user_configuration::{Request, render};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetUserConfiguration");
    let folder = match ctx.folder(&req.folder).await {
        Ok(f) => f,
        Err(EwsError::Ews(e)) => {
            out.error(e.code, &e.message, "");
            return Ok(out.finish());
        }
        Err(other) => return Err(other),
    };
    if req.name == "OWA.UserOptions" && folder.distinguished.as_deref() == Some("root") {
        out.success(&render(&req.name, &folder.id, &ids::change_key(folder.change_number), &[("timezone", "UTC")]));
    } else {
        out.error(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.", "");
    }
    Ok(out.finish())
}

//! GetUserConfiguration: a configuration object of a folder as Create/UpdateUserConfiguration
//! stored it (Outlook's and OWA's WorkHours in the Calendar among them); OWA.UserOptions on the
//! root folder, never stored, is answered with the user's time zone (UTC: Tandem keeps times in
//! UTC) as DavMail reads it; any other name is ErrorItemNotFound, as in a fresh mailbox.

use tandem_ews_proto::ops::get_user_configuration::{Parts, Request, render, render_stored};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::{Ctx, EwsError};
use crate::data::Folder;

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
    let stored = ctx.s.data.user_configuration(ctx.mailbox(), &folder.id, &req.name).await?;
    match stored.as_deref().map(Parts::from_stored) {
        Some(Some(parts)) => {
            let ck = ids::change_key(folder.change_number);
            out.success(&render_stored(
                &req.name,
                (&folder.id, &ck),
                (&item_id(&folder, &req.name), &ck),
                &parts,
                req.wanted,
            ));
        }
        Some(None) => {
            tracing::error!(mailbox = ctx.mailbox(), name = %req.name, "a stored user configuration does not parse");
            out.error(ResponseCode::ErrorInternalServerError, "The configuration object cannot be read.", "");
        }
        None if req.name == "OWA.UserOptions" && folder.distinguished.as_deref() == Some("root") => {
            out.success(&render(&req.name, &folder.id, &ids::change_key(folder.change_number), &[("timezone", "UTC")]));
        }
        None => {
            out.error(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.", "");
        }
    }
    Ok(out.finish())
}

/// The id a configuration object is shown with: Exchange keeps it as a message of the folder;
/// here it is named by the folder and the configuration's name, so it stays the same.
pub(crate) fn item_id(folder: &Folder, name: &str) -> String {
    use base64::Engine as _;
    let raw = format!("cfg:{}:{name}", folder.id);
    base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
}

/// Finds the folder of a configuration request, or the error message to answer.
pub(crate) async fn folder_or_error(
    ctx: &Ctx<'_>,
    r: &tandem_ews_proto::types::FolderRef,
) -> Result<Result<Folder, (ResponseCode, String)>, EwsError> {
    match ctx.folder(r).await {
        Ok(f) => Ok(Ok(f)),
        Err(EwsError::Ews(e)) => Ok(Err((e.code, e.message))),
        Err(other) => Err(other),
    }
}

//! UpdateUserConfiguration: replaces the parts (Dictionary, XmlData, BinaryData) the request
//! carries of an existing configuration object, keeping the others; a missing object is
//! ErrorItemNotFound. The folder is marked modified in the same transaction.

use tandem_ews_proto::ops::get_user_configuration::Parts;
use tandem_ews_proto::ops::update_user_configuration::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::get_user_configuration::folder_or_error;
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("UpdateUserConfiguration");
    let folder = match folder_or_error(ctx, &req.name.folder).await? {
        Ok(f) => f,
        Err((code, text)) => {
            out.error(code, &text, "");
            return Ok(out.finish());
        }
    };
    let Some(stored) = ctx.s.data.user_configuration(ctx.mailbox(), &folder.id, &req.name.name).await? else {
        out.error(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.", "");
        return Ok(out.finish());
    };
    let merged = Parts::from_stored(&stored).unwrap_or_default().merged(&req.parts);
    ctx.s.data.set_user_configuration(&folder, &req.name.name, Some(&merged.to_stored())).await?;
    out.success("");
    Ok(out.finish())
}

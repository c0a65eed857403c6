//! ConvertId: our ids are the same bytes in every format; EwsId/EwsLegacyId/OwaId are base64,
//! EntryId/StoreId base64 of the same bytes, HexEntryId hex. The answer names the signed-in
//! user's primary SMTP address (DavMail learns it this way).

use base64::Engine as _;
use tandem_ews_proto::ops::convert_id::{FORMATS, Request, render};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("ConvertId");
    for src in &req.sources {
        match convert(&src.format, &src.id, &req.destination) {
            Some(id) if FORMATS.contains(&src.format.as_str()) && known(ctx, &id).await? => {
                out.success(&render(&req.destination, &id_out(&id, &req.destination), &ctx.smtp()));
            }
            Some(_) => {
                out.error(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.", "");
            }
            None => {
                out.error(ResponseCode::ErrorInvalidIdMalformed, "Id is malformed.", "");
            }
        }
    }
    Ok(out.finish())
}

/// The canonical (EwsId) form of an id given in `format`, if it is well formed.
fn convert(format: &str, id: &str, _dest: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = match format {
        "HexEntryId" => hex::decode(id.trim()).ok()?,
        _ => b64.decode(id.trim()).ok()?,
    };
    if bytes.len() != 17 || !(1..=3).contains(&bytes[0]) {
        return None;
    }
    Some(b64.encode(bytes))
}

fn id_out(canonical: &str, dest: &str) -> String {
    if dest == "HexEntryId" {
        let bytes = base64::engine::general_purpose::STANDARD.decode(canonical).unwrap_or_default();
        hex::encode_upper(bytes)
    } else {
        canonical.to_owned()
    }
}

async fn known(ctx: &Ctx<'_>, id: &str) -> Result<bool, EwsError> {
    if let Some(f) = ctx.s.data.folder_by_id(id).await? {
        return Ok(f.mailbox == ctx.mailbox());
    }
    if let Some(i) = ctx.s.data.item(id).await? {
        return Ok(i.mailbox == ctx.mailbox());
    }
    Ok(false)
}

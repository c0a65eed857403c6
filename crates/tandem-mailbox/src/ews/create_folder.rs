//! CreateFolder: a new folder under a parent, refused when the parent has one of that name.

use tandem_ews_proto::ops::create_folder::{Request, default_class};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::messages::{folder_id, record};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("CreateFolder");
    let parent = match ctx.folder(&req.parent).await {
        Ok(p) => p,
        Err(EwsError::Ews(e)) => {
            for _ in &req.folders {
                out.error(e.code, &e.message, "<m:Folders/>");
            }
            return Ok(out.finish());
        }
        Err(other) => return Err(other),
    };
    for nf in &req.folders {
        record(&mut out, create(ctx, &parent.id, nf).await, "<m:Folders/>")?;
    }
    Ok(out.finish())
}

async fn create(
    ctx: &Ctx<'_>,
    parent: &str,
    nf: &tandem_ews_proto::ops::create_folder::NewFolder,
) -> Result<String, EwsError> {
    if nf.display_name.trim().is_empty() {
        return Err(fail(ResponseCode::ErrorInvalidOperation, "A folder needs a display name."));
    }
    let class = nf.class.clone().unwrap_or_else(|| default_class(&nf.element).to_owned());
    let (id, change) = ctx
        .s
        .data
        .create_folder(ctx.mailbox(), parent, nf.display_name.trim(), &class)
        .await?
        .ok_or_else(|| fail(ResponseCode::ErrorFolderExists, "A folder with the specified name already exists."))?;
    Ok(folder_id(&id, change, &class))
}

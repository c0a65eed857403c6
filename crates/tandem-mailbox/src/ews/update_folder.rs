//! UpdateFolder: display name and class of non-distinguished folders.

use tandem_ews_proto::ops::update_folder::{Change, Request};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::messages::{folder_id, record};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("UpdateFolder");
    for fc in req.changes {
        record(&mut out, apply(ctx, &fc).await, "<m:Folders/>")?;
    }
    Ok(out.finish())
}

async fn apply(ctx: &Ctx<'_>, fc: &tandem_ews_proto::ops::update_folder::FolderChange) -> Result<String, EwsError> {
    let f = ctx.folder(&fc.folder).await?;
    let changes = fc.changes.clone()?;
    let (mut name, mut class) = (f.display_name.clone(), f.class.clone());
    for c in changes {
        match c {
            Change::SetDisplayName(n) if f.distinguished.is_none() && !n.trim().is_empty() => {
                name = n.trim().to_owned()
            }
            Change::SetClass(c) if f.distinguished.is_none() => class = c,
            _ => {
                return Err(fail(
                    ResponseCode::ErrorInvalidOperation,
                    "Distinguished folders cannot be renamed or changed, and a name cannot be empty.",
                ));
            }
        }
    }
    let change = ctx.s.data.update_folder(&f, &name, &class).await?;
    Ok(folder_id(&f.id, change, &class))
}

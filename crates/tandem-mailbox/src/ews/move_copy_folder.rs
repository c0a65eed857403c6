//! MoveFolder (re-parent, refusing a move into its own subtree) and CopyFolder (not supported:
//! answered with ErrorNotSupported per folder).

use tandem_ews_proto::ops::move_copy_folder::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::messages::{folder_id, record};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request, copy: bool) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new(if copy { "CopyFolder" } else { "MoveFolder" });
    for r in &req.folders {
        let result = if copy {
            Err(fail(ResponseCode::ErrorNotSupported, "CopyFolder is not supported by this server yet."))
        } else {
            move_one(ctx, r, &req.to).await
        };
        record(&mut out, result, "<m:Folders/>")?;
    }
    Ok(out.finish())
}

async fn move_one(
    ctx: &Ctx<'_>,
    r: &tandem_ews_proto::types::FolderRef,
    to: &tandem_ews_proto::types::FolderRef,
) -> Result<String, EwsError> {
    let f = ctx.folder(r).await?;
    let target = ctx.folder(to).await?;
    if f.distinguished.is_some() {
        return Err(fail(ResponseCode::ErrorMoveCopyFailed, "Distinguished folders cannot be moved."));
    }
    let all = ctx.s.data.folders_of(ctx.mailbox()).await?;
    let mut cursor = Some(target.id.clone());
    while let Some(c) = cursor {
        if c == f.id {
            return Err(fail(ResponseCode::ErrorMoveCopyFailed, "A folder cannot be moved into itself."));
        }
        cursor = all.iter().find(|x| x.id == c).and_then(|x| x.parent_id.clone());
    }
    let change = ctx.s.data.move_folder(&f, &target.id).await?;
    Ok(folder_id(&f.id, change, &f.class))
}

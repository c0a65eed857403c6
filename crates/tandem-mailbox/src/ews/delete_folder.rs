//! DeleteFolder: HardDelete removes the folder, its subfolders and their items; SoftDelete and
//! MoveToDeletedItems move it under Recoverable Items\Deletions or Deleted Items.

use tandem_ews_proto::ops::delete_folder::{DeleteType, Request};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::messages::record;
use super::{Ctx, EwsError, fail};
use crate::data::Folder;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("DeleteFolder");
    for r in &req.folders {
        record(&mut out, delete(ctx, r, req.delete_type).await.map(|()| String::new()), "")?;
    }
    Ok(out.finish())
}

/// The distinguished folder a soft delete moves to (folders and items alike); none for a hard
/// delete.
pub(crate) fn target(how: DeleteType) -> Option<&'static str> {
    match how {
        DeleteType::HardDelete => None,
        DeleteType::SoftDelete => Some("recoverableitemsdeletions"),
        DeleteType::MoveToDeletedItems => Some("deleteditems"),
    }
}

async fn delete(ctx: &Ctx<'_>, r: &tandem_ews_proto::types::FolderRef, how: DeleteType) -> Result<(), EwsError> {
    let f = ctx.folder(r).await?;
    if f.distinguished.is_some() {
        return Err(fail(ResponseCode::ErrorDeleteDistinguishedFolder, "Distinguished folders cannot be deleted."));
    }
    match target(how) {
        Some(name) => {
            let to = ctx.s.data.folder_by_name(ctx.mailbox(), name).await?.ok_or_else(|| {
                fail(ResponseCode::ErrorFolderNotFound, "The target folder could not be found in the store.")
            })?;
            ctx.s.data.move_folder(&f, &to.id).await?;
        }
        None => {
            let all = ctx.s.data.folders_of(ctx.mailbox()).await?;
            let mut doomed: Vec<&Folder> = vec![&f];
            let mut i = 0;
            while i < doomed.len() {
                let id = doomed[i].id.clone();
                doomed.extend(all.iter().filter(|c| c.parent_id.as_deref() == Some(&id)));
                i += 1;
            }
            ctx.s.data.delete_folders(ctx.mailbox(), &doomed).await?;
        }
    }
    Ok(())
}

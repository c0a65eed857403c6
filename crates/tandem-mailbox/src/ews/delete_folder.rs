//! DeleteFolder: HardDelete removes the folder, its subfolders and their items; SoftDelete and
//! MoveToDeletedItems move it under Recoverable Items\Deletions or Deleted Items.

use tandem_ews_proto::ops::delete_folder::{DeleteType, Request};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::{Ctx, EwsError, fail};
use crate::data::{self, Folder};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("DeleteFolder");
    for r in &req.folders {
        match delete(ctx, r, req.delete_type).await {
            Ok(()) => {
                out.success("");
            }
            Err(EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(out.finish())
}

async fn delete(ctx: &Ctx<'_>, r: &tandem_ews_proto::types::FolderRef, how: DeleteType) -> Result<(), EwsError> {
    let f = ctx.folder(r).await?;
    if f.distinguished.is_some() {
        return Err(fail(ResponseCode::ErrorDeleteDistinguishedFolder, "Distinguished folders cannot be deleted."));
    }
    let target = match how {
        DeleteType::HardDelete => None,
        DeleteType::SoftDelete => Some("recoverableitemsdeletions"),
        DeleteType::MoveToDeletedItems => Some("deleteditems"),
    };
    let all = ctx.s.data.folders_of(ctx.mailbox()).await?;
    let (turn, mut tx) = ctx.s.data.begin_write().await?;
    let (change, _) = data::next_numbers(&mut tx, ctx.mailbox(), 0).await?;
    match target {
        Some(name) => {
            let to = ctx.s.data.folder_by_name(ctx.mailbox(), name).await?.ok_or_else(|| {
                fail(ResponseCode::ErrorFolderNotFound, "The target folder could not be found in the store.")
            })?;
            sqlx::query("UPDATE mbx_folders SET parent_id = $2, change_number = $3 WHERE id = $1")
                .bind(&f.id)
                .bind(&to.id)
                .bind(change)
                .execute(&mut *tx)
                .await?;
            data::log_change(
                &mut tx,
                ctx.mailbox(),
                change,
                data::ChangeKind::Moved,
                "folder",
                &f.id,
                &to.id,
                f.parent_id.as_deref(),
            )
            .await?;
        }
        None => {
            let mut doomed: Vec<&Folder> = vec![&f];
            let mut i = 0;
            while i < doomed.len() {
                let id = doomed[i].id.clone();
                doomed.extend(all.iter().filter(|c| c.parent_id.as_deref() == Some(&id)));
                i += 1;
            }
            for d in doomed {
                sqlx::query(
                    "DELETE FROM mbx_attachments WHERE item_id IN (SELECT id FROM mbx_items WHERE folder_id = $1)",
                )
                .bind(&d.id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM mbx_items WHERE folder_id = $1").bind(&d.id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM mbx_folders WHERE id = $1").bind(&d.id).execute(&mut *tx).await?;
                let parent = d.parent_id.clone().unwrap_or_default();
                data::log_change(
                    &mut tx,
                    ctx.mailbox(),
                    change,
                    data::ChangeKind::Deleted,
                    "folder",
                    &d.id,
                    &parent,
                    None,
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
    drop(turn);
    Ok(())
}

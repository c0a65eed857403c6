//! CreateFolder: a new folder under a parent, refused when the parent has one of that name.

use tandem_ews_proto::ops::create_folder::{Request, default_class};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::{Ctx, EwsError, fail};
use crate::data::{self, new_id};

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
        match create(ctx, &parent.id, nf).await {
            Ok((id, ck, el)) => {
                out.success(&format!(
                    "<m:Folders><t:{el}><t:FolderId Id=\"{id}\" ChangeKey=\"{ck}\"/></t:{el}></m:Folders>"
                ));
            }
            Err(EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "<m:Folders/>");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(out.finish())
}

async fn create(
    ctx: &Ctx<'_>,
    parent: &str,
    nf: &tandem_ews_proto::ops::create_folder::NewFolder,
) -> Result<(String, String, &'static str), EwsError> {
    if nf.display_name.trim().is_empty() {
        return Err(fail(ResponseCode::ErrorInvalidOperation, "A folder needs a display name."));
    }
    let class = nf.class.clone().unwrap_or_else(|| default_class(&nf.element).to_owned());
    let (turn, mut tx) = ctx.s.data.begin_write().await?;
    let clash = sqlx::query("SELECT 1 FROM mbx_folders WHERE parent_id = $1 AND LOWER(display_name) = LOWER($2)")
        .bind(parent)
        .bind(nf.display_name.trim())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if clash {
        return Err(fail(ResponseCode::ErrorFolderExists, "A folder with the specified name already exists."));
    }
    let (change, _) = data::next_numbers(&mut tx, ctx.mailbox(), 0).await?;
    let id = new_id(ids::IdKind::Folder);
    let now = tandem_store::now_unix();
    sqlx::query(
        "INSERT INTO mbx_folders (id, mailbox, parent_id, distinguished, display_name, folder_class, hidden,
           item_count, unread_count, change_number, created_at, modified_at)
         VALUES ($1, $2, $3, NULL, $4, $5, 0, 0, 0, $6, $7, $7)",
    )
    .bind(&id)
    .bind(ctx.mailbox())
    .bind(parent)
    .bind(nf.display_name.trim())
    .bind(&class)
    .bind(change)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    data::log_change(&mut tx, ctx.mailbox(), change, data::ChangeKind::Created, "folder", &id, parent, None).await?;
    tx.commit().await?;
    drop(turn);
    Ok((id, ids::change_key(change), tandem_ews_proto::types::folder_element(&class)))
}

//! UpdateFolder: display name and class of non-distinguished folders.

use tandem_ews_proto::ops::update_folder::{Change, Request};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::{Ctx, EwsError, fail};
use crate::data;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("UpdateFolder");
    for fc in req.changes {
        match apply(ctx, &fc).await {
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

async fn apply(
    ctx: &Ctx<'_>,
    fc: &tandem_ews_proto::ops::update_folder::FolderChange,
) -> Result<(String, String, &'static str), EwsError> {
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
    let (turn, mut tx) = ctx.s.data.begin_write().await?;
    let (change, _) = data::next_numbers(&mut tx, ctx.mailbox(), 0).await?;
    sqlx::query("UPDATE mbx_folders SET display_name = $2, folder_class = $3, change_number = $4, modified_at = $5 WHERE id = $1")
        .bind(&f.id)
        .bind(&name)
        .bind(&class)
        .bind(change)
        .bind(tandem_store::now_unix())
        .execute(&mut *tx)
        .await?;
    let parent = f.parent_id.clone().unwrap_or_default();
    data::log_change(&mut tx, ctx.mailbox(), change, data::ChangeKind::Modified, "folder", &f.id, &parent, None)
        .await?;
    tx.commit().await?;
    drop(turn);
    Ok((f.id, ids::change_key(change), tandem_ews_proto::types::folder_element(&class)))
}

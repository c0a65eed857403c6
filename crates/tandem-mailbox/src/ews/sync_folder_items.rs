//! SyncFolderItems from the change log: objects touched after the client's state, in the order
//! of their last change; Create for items that came into the folder after the state, Update for
//! others still there, Delete for those that left (and were there before). Pages never split one
//! change number.

use sqlx::Row;
use tandem_ews_proto::ops::sync_folder_items::{Request, SyncChange, render_changes};
use tandem_ews_proto::{ResponseMessages, ids};

use super::{Ctx, EwsError, item_xml};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("SyncFolderItems");
    match sync(ctx, &req).await {
        Ok(xml) => {
            out.success(&xml);
        }
        Err(EwsError::Ews(e)) => {
            out.error(e.code, &e.message, "");
        }
        Err(other) => return Err(other),
    }
    Ok(out.finish())
}

async fn sync(ctx: &Ctx<'_>, req: &Request) -> Result<String, EwsError> {
    let folder = ctx.folder(&req.folder).await?;
    let rows = sqlx::query(
        "SELECT object_id, MAX(change_number) AS last,
                MAX(CASE WHEN (kind = 'Created' AND folder_id = $1) OR (kind = 'Moved' AND folder_id = $1) THEN change_number ELSE 0 END) AS arrived
         FROM mbx_changes
         WHERE mailbox = $2 AND object_kind = 'item' AND change_number > $3 AND (folder_id = $1 OR old_folder_id = $1)
         GROUP BY object_id ORDER BY last",
    )
    .bind(&folder.id)
    .bind(ctx.mailbox())
    .bind(req.state)
    .fetch_all(ctx.s.data.store.pool())
    .await?;
    let mut changes = Vec::new();
    let mut state = req.state;
    let mut last = true;
    for r in &rows {
        let id: String = r.try_get("object_id")?;
        let change: i64 = r.try_get("last")?;
        let arrived: i64 = r.try_get("arrived")?;
        if changes.len() >= req.max && change != state {
            last = false;
            break;
        }
        state = change;
        match ctx.s.data.item(&id).await? {
            Some(item) if item.folder_id == folder.id => {
                let xml = item_xml(ctx, &item, &req.shape, Some(&folder)).await?;
                changes.push(if arrived > req.state { SyncChange::Create(xml) } else { SyncChange::Update(xml) });
            }
            _ if arrived > req.state => {} // came and went after the state: nothing to tell
            _ => changes.push(SyncChange::Delete(id, ids::change_key(change))),
        }
    }
    if changes.len() >= req.max && rows.iter().any(|r| r.try_get::<i64, _>("last").map(|c| c > state).unwrap_or(false))
    {
        last = false;
    }
    Ok(render_changes(state, last, &changes, false))
}

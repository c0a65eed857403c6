//! SyncFolderItems from the change log: objects touched after the client's state, in the order
//! of their last change; Create for items that came into the folder after the state, Update for
//! others still there (ReadFlagChange when only the read flag changed), Delete for those that
//! left (and were there before). Pages never split one change number.

use tandem_ews_proto::ops::sync_folder_items::{Request, SyncChange, render_changes};
use tandem_ews_proto::{ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError, item_xml};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("SyncFolderItems");
    record(&mut out, sync(ctx, &req).await, "")?;
    Ok(out.finish())
}

async fn sync(ctx: &Ctx<'_>, req: &Request) -> Result<String, EwsError> {
    let folder = ctx.folder(&req.folder).await?;
    let rows = ctx.s.data.item_changes_in(ctx.mailbox(), &folder.id, req.state).await?;
    let mut changes = Vec::new();
    let mut state = req.state;
    let mut last = true;
    for r in &rows {
        let (id, change, arrived) = (r.item_id.clone(), r.last, r.arrived);
        if changes.len() >= req.max && change != state {
            last = false;
            break;
        }
        state = change;
        match ctx.s.data.item(&id).await? {
            Some(item) if item.folder_id == folder.id => {
                if arrived <= req.state && r.read_flag_only {
                    changes.push(SyncChange::ReadFlag(id, ids::change_key(item.change_number), item.is_read));
                    continue;
                }
                let xml = item_xml(ctx, &item, &req.shape, Some(&folder)).await?;
                changes.push(if arrived > req.state { SyncChange::Create(xml) } else { SyncChange::Update(xml) });
            }
            _ if arrived > req.state => {} // came and went after the state: nothing to tell
            _ => changes.push(SyncChange::Delete(id, ids::change_key(change))),
        }
    }
    if changes.len() >= req.max && rows.iter().any(|r| r.last > state) {
        last = false;
    }
    Ok(render_changes(state, last, &changes, false))
}

//! SyncFolderHierarchy: on a first sync every folder under the sync folder is a Create; later,
//! folders changed after the state are Create (new), Update or Delete (gone from the subtree).

use tandem_ews_proto::ops::sync_folder_hierarchy::Request;
use tandem_ews_proto::ops::sync_folder_items::{SyncChange, render_changes};
use tandem_ews_proto::types::FolderRef;
use tandem_ews_proto::{ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError, folder_xml};
use crate::data::Folder;
use crate::data::changes::ObjectKind;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("SyncFolderHierarchy");
    record(&mut out, sync(ctx, &req).await, "")?;
    Ok(out.finish())
}

fn subtree<'a>(all: &'a [Folder], root: &str) -> Vec<&'a Folder> {
    let mut out: Vec<&Folder> = Vec::new();
    let mut frontier = vec![root.to_owned()];
    while let Some(p) = frontier.pop() {
        for f in all.iter().filter(|f| f.parent_id.as_deref() == Some(&p)) {
            out.push(f);
            frontier.push(f.id.clone());
        }
    }
    out
}

async fn sync(ctx: &Ctx<'_>, req: &Request) -> Result<String, EwsError> {
    let root_ref = req.folder.clone().unwrap_or(FolderRef::Distinguished { name: "root".into(), mailbox: None });
    let root = ctx.folder(&root_ref).await?;
    let mut all = ctx.s.data.folders_of(ctx.mailbox()).await?;
    all.retain(|f| ctx.may_see(f));
    let inside = subtree(&all, &root.id);
    let top = ctx.s.data.current_change(ctx.mailbox()).await?;
    let mut changes = Vec::new();
    if req.state == 0 {
        for f in &inside {
            changes.push(SyncChange::Create(folder_xml(ctx, f, &req.shape, &all).await?));
        }
        return Ok(render_changes(top, true, &changes, true));
    }
    let logged = ctx.s.data.changes_after(ctx.mailbox(), req.state, Some(ObjectKind::Folder), usize::MAX).await?;
    let mut seen: Vec<&str> = Vec::new();
    for c in logged.iter().rev() {
        if seen.contains(&c.object_id.as_str()) {
            continue;
        }
        seen.push(&c.object_id);
        let created_after = logged.iter().any(|x| x.object_id == c.object_id && x.kind == "Created");
        match inside.iter().find(|f| f.id == c.object_id) {
            Some(f) if created_after => changes.push(SyncChange::Create(folder_xml(ctx, f, &req.shape, &all).await?)),
            Some(f) => changes.push(SyncChange::Update(folder_xml(ctx, f, &req.shape, &all).await?)),
            None if created_after => {}
            None => changes.push(SyncChange::Delete(c.object_id.clone(), ids::change_key(c.change_number))),
        }
    }
    changes.reverse();
    Ok(render_changes(top.max(req.state), true, &changes, true))
}

//! MoveItem and CopyItem. A moved item keeps its id and gets a new article number (IMAP UID)
//! in its new folder; a copy is a new item.

use tandem_ews_proto::ops::move_copy_item::Request;
use tandem_ews_proto::{ResponseMessages, ids};

use super::{Ctx, EwsError};
use crate::data::changes::ObjectKind;
use crate::data::{ChangeKind, Folder, Item, new_id};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request, copy: bool) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new(if copy { "CopyItem" } else { "MoveItem" });
    let to = match ctx.folder(&req.to).await {
        Ok(f) => Some(f),
        Err(EwsError::Ews(e)) => {
            for _ in &req.items {
                out.error(e.code, &e.message, "<m:Items/>");
            }
            None
        }
        Err(other) => return Err(other),
    };
    let Some(to) = to else { return Ok(out.finish()) };
    for r in req.items {
        let result = match r {
            Ok(r) => match ctx.item(&r.id).await {
                Ok(item) => move_to(ctx, &item, &to, copy).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(EwsError::Ews(e)),
        };
        match result {
            Ok(moved) => {
                let el = tandem_ews_proto::types::item_element(&moved.element);
                out.success(&format!(
                    "<m:Items><t:{el}>{}</t:{el}></m:Items>",
                    tandem_ews_proto::render::id_element("ItemId", &moved.id, &ids::change_key(moved.change_number))
                ));
            }
            Err(EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "<m:Items/>");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(out.finish())
}

/// Moves (or copies) an item into `to`, in one transaction with both folders' counts.
pub(crate) async fn move_to(ctx: &Ctx<'_>, item: &Item, to: &Folder, copy: bool) -> Result<Item, EwsError> {
    let mut w = ctx.s.data.write().await?;
    let (change, article) = w.next_numbers(ctx.mailbox(), 1).await?;
    let now = tandem_store::now_unix();
    let moved = Item {
        id: if copy { new_id(ids::IdKind::Item) } else { item.id.clone() },
        folder_id: to.id.clone(),
        article,
        change_number: change,
        modified_at: now,
        created_at: if copy { now } else { item.created_at },
        ..item.clone()
    };
    if copy {
        w.insert_item(&moved).await?;
        w.copy_attachments(&item.id, &moved.id, ctx.mailbox()).await?;
        let kind = ChangeKind::Copied;
        w.log_change(ctx.mailbox(), change, kind, ObjectKind::Item, &moved.id, &to.id, Some(&item.folder_id)).await?;
    } else {
        w.update_item(&moved, Some(&item.folder_id)).await?;
        let unread = i64::from(!item.is_read);
        w.adjust_counts(&item.folder_id, -1, -unread, change).await?;
        w.adjust_counts(&to.id, 1, unread, change).await?;
    }
    w.commit().await?;
    Ok(moved)
}

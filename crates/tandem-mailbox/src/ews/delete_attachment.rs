//! DeleteAttachment: removes an attachment (an item attachment with everything attached to its
//! item); the answer names the root item's new change key.

use tandem_ews_proto::ops::delete_attachment::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::get_attachment::find;
use super::messages::record;
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("DeleteAttachment");
    for id in &req.ids {
        record(
            &mut out,
            delete(ctx, id)
                .await
                .map(|(item, ck)| format!("<m:RootItemId RootItemId=\"{item}\" RootItemChangeKey=\"{ck}\"/>")),
            "",
        )?;
    }
    Ok(out.finish())
}

async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<(String, String), EwsError> {
    let a = find(ctx, id).await?;
    let mut item = ctx
        .s
        .data
        .item(&a.item_id)
        .await?
        .ok_or_else(|| fail(ResponseCode::ErrorItemNotFound, "The attachment's item was not found."))?;
    let mut w = ctx.s.data.write().await?;
    let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    w.delete_attachment(&a.id).await?;
    item.change_number = change;
    item.modified_at = tandem_store::now_unix();
    item.size = (item.size - a.size).max(0);
    w.update_item(&item, None).await?;
    w.commit().await?;
    Ok((item.id, ids::change_key(change)))
}

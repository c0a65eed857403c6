//! CreateAttachment: adds file and item attachments to one of the caller's items (one
//! transaction per attachment, with the item's new change number).

use tandem_ews_proto::ops::create_attachment::Request;
use tandem_ews_proto::{ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("CreateAttachment");
    for a in req.attachments {
        let result = match a {
            Ok(a) => add(ctx, &req.parent, a).await,
            Err(e) => Err(EwsError::Ews(e)),
        };
        record(&mut out, result.map(|xml| format!("<m:Attachments>{xml}</m:Attachments>")), "<m:Attachments/>")?;
    }
    Ok(out.finish())
}

async fn add(
    ctx: &Ctx<'_>,
    parent: &str,
    a: tandem_ews_proto::ops::create_attachment::NewAttachment,
) -> Result<String, EwsError> {
    let mut item = ctx.item(parent).await?;
    let now = tandem_store::now_unix();
    let mut w = ctx.s.data.write().await?;
    let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    let id = super::create_item::insert_attachment_tree(&mut w, &item.id, ctx.mailbox(), &a, now).await?;
    item.change_number = change;
    item.modified_at = now;
    item.size += a.total_size() as i64;
    w.update_item(&item, None).await?;
    w.commit().await?;
    let el = if a.item_element.is_some() { "ItemAttachment" } else { "FileAttachment" };
    Ok(format!(
        "<t:{el}><t:AttachmentId Id=\"{id}\" RootItemId=\"{}\" RootItemChangeKey=\"{}\"/></t:{el}>",
        item.id,
        ids::change_key(change)
    ))
}

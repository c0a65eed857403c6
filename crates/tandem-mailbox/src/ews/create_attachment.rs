//! CreateAttachment: adds file attachments to one of the caller's items (one transaction per
//! attachment, with the item's new change number).

use tandem_ews_proto::ops::create_attachment::Request;
use tandem_ews_proto::{ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError};
use crate::data::{self, new_id};

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
    let att = data::Attachment {
        id: new_id(ids::IdKind::Attachment),
        item_id: item.id.clone(),
        mailbox: ctx.mailbox().to_owned(),
        name: a.name,
        content_type: a.content_type,
        content_id: a.content_id,
        is_inline: a.is_inline,
        size: a.content.len() as i64,
        modified_at: now,
        content: a.content,
    };
    let mut w = ctx.s.data.write().await?;
    let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    w.insert_attachment(&att).await?;
    item.change_number = change;
    item.modified_at = now;
    item.size += att.size;
    w.update_item(&item, None).await?;
    w.commit().await?;
    Ok(format!(
        "<t:FileAttachment><t:AttachmentId Id=\"{}\" RootItemId=\"{}\" RootItemChangeKey=\"{}\"/></t:FileAttachment>",
        att.id,
        item.id,
        ids::change_key(change)
    ))
}

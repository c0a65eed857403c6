//! SendItem: sends saved drafts to local recipients, then keeps a copy in Sent Items (or the
//! given folder) or removes the draft.

use tandem_ews_proto::ops::create_item::ItemData;
use tandem_ews_proto::ops::send_item::Request;
use tandem_ews_proto::types::FolderRef;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::create_item::{deliver, mark_sent, resolve_recipients};
use super::messages::record;
use super::{Ctx, EwsError, fail};
use crate::data::{self, element_text};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("SendItem");
    for r in &req.items {
        let result = match r {
            Ok(r) => match current(ctx, &r.id, r.change_key.as_deref()).await {
                Ok(()) => send(ctx, &r.id, &req).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(EwsError::Ews(e.clone())),
        };
        record(&mut out, result.map(|()| String::new()), "")?;
    }
    Ok(out.finish())
}

/// A change key sent with SendItem must be the item's latest (`ErrorStaleObject` otherwise, as
/// Exchange answers a draft changed since it was read).
async fn current(ctx: &Ctx<'_>, id: &str, change_key: Option<&str>) -> Result<(), EwsError> {
    let Some(ck) = change_key else { return Ok(()) };
    let item = ctx.item(id).await?;
    match tandem_ews_proto::ids::parse_change_key(ck) {
        None => Err(fail(ResponseCode::ErrorInvalidChangeKey, "The change key is invalid.")),
        Some(n) if n != item.change_number => {
            Err(fail(ResponseCode::ErrorStaleObject, "The item was changed since the change key was read."))
        }
        Some(_) => Ok(()),
    }
}

pub(crate) async fn send(ctx: &Ctx<'_>, id: &str, req: &Request) -> Result<(), EwsError> {
    let mut item = ctx.item(id).await?;
    if item.element != "Message" || item.sent_at.is_some() {
        return Err(fail(ResponseCode::ErrorInvalidOperation, "Only unsent messages can be sent."));
    }
    let target = if req.save_copy {
        let r =
            req.saved_folder.clone().unwrap_or(FolderRef::Distinguished { name: "sentitems".into(), mailbox: None });
        Some(ctx.folder(&r).await?)
    } else {
        None
    };
    let data = ItemData { recipients: recipients_of(&item)?, mime: item.mime.clone(), ..ItemData::default() };
    let recipients = resolve_recipients(ctx, &data).await?;
    let now = tandem_store::now_unix();
    let old_folder = item.folder_id.clone();
    let was_unread = !item.is_read;
    mark_sent(&mut item, ctx, now);
    let mut w = ctx.s.data.write().await?;
    let (change, article) = w.next_numbers(ctx.mailbox(), 1).await?;
    deliver(&mut w, &item, &recipients, now).await?;
    match target {
        Some(to) => {
            item.folder_id = to.id.clone();
            item.change_number = change;
            item.article = article;
            item.modified_at = now;
            w.update_item(&item, Some(&old_folder)).await?;
            w.adjust_counts(&old_folder, -1, -i64::from(was_unread), change).await?;
            w.adjust_counts(&to.id, 1, 0, change).await?;
        }
        None => {
            let original = crate::data::Item { folder_id: old_folder, is_read: !was_unread, ..item.clone() };
            w.delete_item(&original, change).await?;
        }
    }
    w.commit().await?;
    super::auto_reply::after_delivery(ctx, &item, &recipients).await;
    Ok(())
}

/// The To/Cc/Bcc addresses stored on an item.
pub(crate) fn recipients_of(item: &crate::data::Item) -> Result<Vec<String>, EwsError> {
    let mut out = Vec::new();
    for (name, xml) in data::split_elements(&item.fields)? {
        if matches!(name.as_str(), "ToRecipients" | "CcRecipients" | "BccRecipients") {
            out.extend(element_text(&xml).split_whitespace().filter(|w| w.contains('@')).map(str::to_owned));
        }
    }
    Ok(out)
}

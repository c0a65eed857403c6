//! GetAttachment: file attachments with their content and item attachments with their embedded
//! item (all its properties, its MimeContent when the AttachmentShape asks), for items the
//! caller owns.

use tandem_ews_proto::ops::get_attachment::{AttachmentView, Request, render};
use tandem_ews_proto::types::{BaseShape, Shape};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError, fail};
use crate::data::{Attachment, DataError, Item};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetAttachment");
    for id in &req.ids {
        let result = match find(ctx, id).await {
            Ok(a) => full_view(ctx, &a, req.include_mime)
                .await
                .map(|v| format!("<m:Attachments>{}</m:Attachments>", render(&v))),
            Err(e) => Err(e),
        };
        record(&mut out, result, "<m:Attachments/>")?;
    }
    Ok(out.finish())
}

pub(crate) async fn find(ctx: &Ctx<'_>, id: &str) -> Result<Attachment, EwsError> {
    let id = ids::decode(id, ids::IdKind::Attachment)?;
    let a = ctx
        .s
        .data
        .attachment(&id)
        .await?
        .ok_or_else(|| fail(ResponseCode::ErrorItemNotFound, "The specified attachment was not found."))?;
    if a.mailbox != ctx.mailbox() {
        return Err(fail(ResponseCode::ErrorAccessDenied, "Access is denied. Check credentials and try again."));
    }
    Ok(a)
}

/// An attachment as listed on its item (no content).
pub(crate) fn view(a: &Attachment, content: bool) -> AttachmentView {
    AttachmentView {
        id: a.id.clone(),
        name: a.name.clone(),
        content_type: a.content_type.clone(),
        content_id: a.content_id.clone(),
        size: a.size,
        modified: a.modified_at,
        is_inline: a.is_inline,
        content: (content && a.item_element.is_none()).then(|| a.content.clone()),
        item_element: a.item_element.clone(),
        item: None,
    }
}

/// An attachment as GetAttachment returns it: a file with its content, an item attachment with
/// its embedded item rendered under AllProperties (as Exchange returns it, without an ItemId).
async fn full_view(ctx: &Ctx<'_>, a: &Attachment, include_mime: bool) -> Result<AttachmentView, EwsError> {
    let mut v = view(a, true);
    if a.item_element.is_some() {
        let item = embedded(a)?;
        let shape = Shape { base: BaseShape::AllProperties, additional: Vec::new(), include_mime };
        let mut iv = super::item_view(ctx, &item, &shape, None).await?;
        iv.id = String::new();
        iv.computed.retain(|(n, _)| *n != "ParentFolderId");
        v.item = Some(tandem_ews_proto::render::item(&iv, &shape));
    }
    Ok(v)
}

/// The item embedded in an item attachment, as an item row of no folder whose id is the
/// attachment's (so its own attachments are those held by the attachment).
pub(crate) fn embedded(a: &Attachment) -> Result<Item, EwsError> {
    let corrupt = |why: String| EwsError::Data(DataError::Corrupt(format!("item attachment {}: {why}", a.id)));
    let doc = tandem_xml::parse(&a.content, tandem_xml::Limits::default()).map_err(|e| corrupt(e.to_string()))?;
    let d = tandem_ews_proto::ops::create_item::parse_item(doc.root_element()).map_err(|e| corrupt(e.message))?;
    let mut item = super::create_item::build(&a.mailbox, &d, "", a.modified_at)?;
    item.id = a.id.clone();
    Ok(item)
}

/// Whether an item row is one embedded in an item attachment ([`embedded`]).
pub(crate) fn is_embedded(i: &Item) -> bool {
    i.folder_id.is_empty()
}

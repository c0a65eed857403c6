//! GetAttachment: file attachments with content, for items the caller owns.

use tandem_ews_proto::ops::get_attachment::{AttachmentView, Request, render};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError, fail};
use crate::data::Attachment;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetAttachment");
    for id in &req.ids {
        record(
            &mut out,
            find(ctx, id).await.map(|a| format!("<m:Attachments>{}</m:Attachments>", render(&view(&a, true)))),
            "<m:Attachments/>",
        )?;
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

pub(crate) fn view(a: &Attachment, content: bool) -> AttachmentView {
    AttachmentView {
        id: a.id.clone(),
        name: a.name.clone(),
        content_type: a.content_type.clone(),
        content_id: a.content_id.clone(),
        size: a.size,
        modified: a.modified_at,
        is_inline: a.is_inline,
        content: content.then(|| a.content.clone()),
    }
}

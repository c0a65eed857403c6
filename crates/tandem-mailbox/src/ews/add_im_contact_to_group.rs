//! AddImContactToGroup: puts an existing IM contact (one with an IM address) in a group, Other
//! Contacts without GroupId.

use tandem_ews_proto::ops::add_im_contact_to_group::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let group = store.group_or_default(req.group_id.as_ref())?;
            let contact = im_list::contact(ctx, &store, &req.contact_id).await?;
            let mut w = ctx.s.data.write().await?;
            im_list::add_member(&mut w, ctx, &store.contacts, group, &contact).await?;
            w.commit().await?;
            Ok(add_im_contact_to_group::render())
        }
        .await,
    )
}

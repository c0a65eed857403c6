//! RemoveImContactFromGroup: takes a contact out of one group. A contact of the list folders that
//! no group names any more is in Other Contacts; RemoveContactFromImList takes it off the list.

use tandem_ews_proto::ops::remove_im_contact_from_group::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let group = store.group(&req.group_id)?;
            let contact = im_list::contact(ctx, &store, &req.contact_id).await?;
            let mut w = ctx.s.data.write().await?;
            im_list::remove_member(&mut w, ctx, &store.contacts, group, &contact.id).await?;
            w.commit().await?;
            Ok(remove_im_contact_from_group::render())
        }
        .await,
    )
}

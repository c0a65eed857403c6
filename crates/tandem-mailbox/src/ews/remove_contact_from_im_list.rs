//! RemoveContactFromImList: takes a contact off the IM list — out of every group, and its item
//! deleted when it lives in the list's folders (a contact of the Contacts folder stays there).
//! One transaction.

use tandem_ews_proto::ops::remove_contact_from_im_list::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let contact = im_list::contact(ctx, &store, &req.contact_id).await?;
            let mut w = ctx.s.data.write().await?;
            // Every group, as each stands inside the write: one that gained the contact since the
            // list was loaded loses it too.
            for g in &store.groups {
                im_list::remove_member(&mut w, ctx, &store.contacts, g, &contact.id).await?;
            }
            if contact.folder_id == store.quick.id || contact.folder_id == store.list.id {
                let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
                w.delete_item(&contact, change).await?;
            }
            w.commit().await?;
            Ok(remove_contact_from_im_list::render())
        }
        .await,
    )
}

//! RemoveContactFromImList: takes a contact off the IM list — out of every group, and its item
//! deleted when it lives in the list's folders (a contact of the Contacts folder stays there).
//! One transaction.

use tandem_ews_proto::ops::remove_contact_from_im_list::{self, OPERATION, Request};

use super::im_list::{self, ImFields, answer};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let contact = im_list::contact(ctx, &store, &req.contact_id).await?;
            let mut w = ctx.s.data.write().await?;
            for g in &store.groups {
                let members = g.members();
                if members.contains(&contact.id) {
                    let rest: Vec<String> = members.into_iter().filter(|m| *m != contact.id).collect();
                    im_list::set_members(&mut w, ctx, g, &rest).await?;
                }
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

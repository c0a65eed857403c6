//! RemoveImGroup: removes a user group. Its contacts stay on the list: one no other group names
//! is in Other Contacts. The default groups cannot be removed (ErrorInvalidOperation); a
//! distribution group is removed with RemoveDistributionGroupFromImList.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::im_items::USER_GROUP;
use tandem_ews_proto::ops::remove_im_group::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let group = store.group(&req.group_id)?;
            if group.item_class != USER_GROUP {
                return Err(fail(ResponseCode::ErrorInvalidOperation, "Only groups the user made can be removed."));
            }
            let mut w = ctx.s.data.write().await?;
            let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
            w.delete_item(group, change).await?;
            w.commit().await?;
            Ok(remove_im_group::render())
        }
        .await,
    )
}

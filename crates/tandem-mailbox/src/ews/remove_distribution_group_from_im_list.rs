//! RemoveDistributionGroupFromImList: takes a distribution group (`IPM.DistList.MOC.DG`) off the
//! list; any other group id is ErrorInvalidImGroupId.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::im_items::DISTRIBUTION_GROUP;
use tandem_ews_proto::ops::remove_distribution_group_from_im_list::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let group = store.group(&req.group_id)?;
            if group.item_class != DISTRIBUTION_GROUP {
                return Err(fail(ResponseCode::ErrorInvalidImGroupId, "The group is not a distribution group."));
            }
            let mut w = ctx.s.data.write().await?;
            let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
            w.delete_item(group, change).await?;
            w.commit().await?;
            Ok(remove_distribution_group_from_im_list::render())
        }
        .await,
    )
}

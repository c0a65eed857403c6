//! RemoveDistributionGroupFromImList: takes a distribution group (`IPM.DistList.MOC.DG`) off the
//! list; any other group id is ErrorInvalidImGroupId.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::im_items::DISTRIBUTION_GROUP;
use tandem_ews_proto::ops::remove_distribution_group_from_im_list::{self, OPERATION, Request};

use super::im_list::{answer, remove_group};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let wrong = (ResponseCode::ErrorInvalidImGroupId, "The group is not a distribution group.");
    let done = remove_group(ctx, &req.group_id, DISTRIBUTION_GROUP, wrong).await;
    answer(OPERATION, done.map(|()| remove_distribution_group_from_im_list::render()))
}

//! RemoveImGroup: removes a user group. Its contacts stay on the list: one no other group names
//! is in Other Contacts. The default groups cannot be removed (ErrorInvalidOperation); a
//! distribution group is removed with RemoveDistributionGroupFromImList.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::im_items::USER_GROUP;
use tandem_ews_proto::ops::remove_im_group::{self, OPERATION, Request};

use super::im_list::{answer, remove_group};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let wrong = (ResponseCode::ErrorInvalidOperation, "Only groups the user made can be removed.");
    let done = remove_group(ctx, &req.group_id, USER_GROUP, wrong).await;
    answer(OPERATION, done.map(|()| remove_im_group::render()))
}

//! GetImItemList: the user's IM list, every group with its members and a persona per contact.

use tandem_ews_proto::ops::get_im_item_list::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, _req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            Ok(get_im_item_list::render(&im_list::render_list(ctx, &store).await?))
        }
        .await,
    )
}

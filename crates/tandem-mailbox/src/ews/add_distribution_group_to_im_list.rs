//! AddDistributionGroupToImList: a distribution group of the directory on the list. The
//! directory has no distribution groups yet, so every address is refused with
//! ErrorInvalidImDistributionGroupSmtpAddress (a user's address as well), as Exchange refuses an
//! address that is not a group; nothing is written.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::add_distribution_group_to_im_list::{OPERATION, Request};

use super::im_list::answer;
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let what = match ctx.s.directory.find(&req.smtp_address).await? {
                Some(_) => "is a user, not a distribution group",
                None => "is not a distribution group of the directory",
            };
            Err(fail(ResponseCode::ErrorInvalidImDistributionGroupSmtpAddress, format!("{} {what}.", req.smtp_address)))
        }
        .await,
    )
}

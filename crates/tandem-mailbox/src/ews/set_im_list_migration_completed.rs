//! SetImListMigrationCompleted: records, as a mailbox setting, whether the Front End finished
//! moving the user's contact list into the mailbox.

use tandem_ews_proto::ops::set_im_list_migration_completed::{self, OPERATION, Request};

use super::im_list::answer;
use super::{Ctx, EwsError};

/// The mailbox setting that keeps the flag.
pub(crate) const SETTING: &str = "ImListMigrationCompleted";

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            ctx.s.data.set_user_setting(ctx.mailbox(), SETTING, if req.completed { "true" } else { "false" }).await?;
            Ok(set_im_list_migration_completed::render())
        }
        .await,
    )
}

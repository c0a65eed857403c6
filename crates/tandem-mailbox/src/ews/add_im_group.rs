//! AddImGroup: a new user group; a name another group has (without case) is
//! ErrorImGroupDisplayNameAlreadyExists, a list with `MAX_GROUPS` groups ErrorImGroupLimitReached.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::add_im_group::{self, OPERATION, Request};
use tandem_ews_proto::ops::im_items::{ImGroup, USER_GROUP};

use super::im_list::{self, ImFields, MAX_GROUPS, answer};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            im_list::check_name(&req.display_name)?;
            let store = im_list::load(ctx).await?;
            if store.groups.iter().any(|g| g.display_name().eq_ignore_ascii_case(&req.display_name)) {
                return Err(fail(
                    ResponseCode::ErrorImGroupDisplayNameAlreadyExists,
                    format!("A group named {} is on the list already.", req.display_name),
                ));
            }
            if store.groups.len() >= MAX_GROUPS {
                return Err(fail(
                    ResponseCode::ErrorImGroupLimitReached,
                    format!("The IM list already holds the maximum of {MAX_GROUPS} groups."),
                ));
            }
            let mut w = ctx.s.data.write().await?;
            let g = im_list::new_group(ctx.mailbox(), &store.list, USER_GROUP, &req.display_name);
            let g = im_list::insert(&mut w, ctx.mailbox(), g).await?;
            w.commit().await?;
            Ok(add_im_group::render(&ImGroup {
                display_name: req.display_name,
                group_type: USER_GROUP.into(),
                id: im_list::item_ref(&g),
                members: Vec::new(),
                smtp_address: None,
            }))
        }
        .await,
    )
}

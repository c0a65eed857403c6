//! SetImGroup: renames a user group (the default and distribution groups keep their names).

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::im_items::USER_GROUP;
use tandem_ews_proto::ops::set_im_group::{self, OPERATION, Request};

use super::im_list::{self, ImFields, answer};
use super::{Ctx, EwsError, fail};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            im_list::check_name(&req.new_display_name)?;
            let store = im_list::load(ctx).await?;
            let group = store.group(&req.group_id)?;
            if group.item_class != USER_GROUP {
                return Err(fail(ResponseCode::ErrorInvalidOperation, "Only groups the user made can be renamed."));
            }
            if store
                .groups
                .iter()
                .any(|g| g.id != group.id && g.display_name().eq_ignore_ascii_case(&req.new_display_name))
            {
                return Err(fail(
                    ResponseCode::ErrorImGroupDisplayNameAlreadyExists,
                    format!("A group named {} is on the list already.", req.new_display_name),
                ));
            }
            let mut w = ctx.s.data.write().await?;
            let known: Vec<&_> = store.contacts.iter().collect();
            im_list::edit_group(&mut w, ctx, &known, group, Some(&req.new_display_name), |_| ()).await?;
            w.commit().await?;
            Ok(set_im_group::render())
        }
        .await,
    )
}

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
            let mut named = Vec::new();
            for id in group.members() {
                if let Some(c) = ctx.s.data.item(&id).await? {
                    named.push((id, c.display_name(), c.im_address().unwrap_or_default()));
                }
            }
            let mut g = group.clone().with_group_fields(&req.new_display_name, &named);
            let mut w = ctx.s.data.write().await?;
            let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
            g.change_number = change;
            g.modified_at = tandem_store::now_unix();
            w.update_item(&g, None).await?;
            w.commit().await?;
            Ok(set_im_group::render())
        }
        .await,
    )
}

//! GetImItems: the groups and personas asked for by id; ids of nothing on the list are left out.

use tandem_ews_proto::ops::get_im_items::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let store = im_list::load(ctx).await?;
            let mut list = im_list::render_list(ctx, &store).await?;
            let wanted = |id: &str, ids: &[tandem_ews_proto::types::ItemRef]| ids.iter().any(|r| r.id.trim() == id);
            list.groups.retain(|g| wanted(&g.id.id, &req.group_ids));
            list.personas.retain(|p| wanted(&p.source.id, &req.contact_ids));
            Ok(get_im_items::render(&list))
        }
        .await,
    )
}

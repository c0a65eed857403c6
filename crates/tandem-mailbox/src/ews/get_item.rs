//! GetItem.

use tandem_ews_proto::ResponseMessages;
use tandem_ews_proto::ops::get_item::Request;

use super::messages::record;
use super::{Ctx, EwsError, item_xml};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetItem");
    for r in req.items {
        let result = match r {
            Ok(r) => match ctx.item_for_read(&r.id).await {
                Ok(i) => item_xml(ctx, &i, &req.shape, None).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(EwsError::Ews(e)),
        };
        record(&mut out, result.map(|xml| format!("<m:Items>{xml}</m:Items>")), "<m:Items/>")?;
    }
    Ok(out.finish())
}

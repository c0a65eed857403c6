//! ExpandDL: no distribution groups exist in the directory yet, so no address expands.

use tandem_ews_proto::ops::expand_dl::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::{Ctx, EwsError};

pub(crate) async fn handle(_ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("ExpandDL");
    out.error(
        ResponseCode::ErrorNameResolutionNoResults,
        &format!("No distribution list named {} was found.", req.address),
        "",
    );
    Ok(out.finish())
}

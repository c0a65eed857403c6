//! GetServerTimeZones: the UTC definition (Tandem stores UTC; other zones are not offered).

use tandem_ews_proto::ResponseMessages;
use tandem_ews_proto::ops::get_server_time_zones::{Request, utc_definition};

use super::{Ctx, EwsError};

pub(crate) async fn handle(_ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetServerTimeZones");
    let wants_utc = req.ids.is_empty() || req.ids.iter().any(|i| i == "UTC");
    let defs = if wants_utc { utc_definition() } else { "" };
    out.success(&format!("<m:TimeZoneDefinitions>{defs}</m:TimeZoneDefinitions>"));
    Ok(out.finish())
}

//! UpdateDelegate: changes the permissions of existing delegates.

use tandem_ews_proto::ops::update_delegate::Request;

use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    super::add_delegate::apply(ctx, req, true).await
}

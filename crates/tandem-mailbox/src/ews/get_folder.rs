//! GetFolder.

use tandem_ews_proto::ResponseMessages;
use tandem_ews_proto::ops::get_folder::Request;

use super::{Ctx, EwsError, folder_xml};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("GetFolder");
    for r in &req.folders {
        match ctx.folder_for_read(r, true).await {
            Ok(f) => {
                let xml = folder_xml(ctx, &f, &req.shape, &[]).await?;
                out.success(&format!("<m:Folders>{xml}</m:Folders>"));
            }
            Err(super::EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "<m:Folders/>");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(out.finish())
}

//! ResolveNames: matches directory users by account name, display name or SMTP address
//! (prefix, case-insensitive), as the GAL would.

use tandem_ews_proto::ops::resolve_names::{Request, Resolution, render};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::{Ctx, EwsError};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let needle = req.unresolved.trim().trim_start_matches("SMTP:").trim_start_matches("smtp:").to_lowercase();
    let users = ctx.s.directory.list().await?;
    let found: Vec<Resolution> = users
        .iter()
        .filter(|u| u.can_use_mailbox() && !needle.is_empty())
        .filter(|u| {
            let addr = u.smtp_address.to_string().to_lowercase();
            addr == needle
                || u.name.as_str().to_lowercase().starts_with(&needle)
                || addr.starts_with(&needle)
                || u.display_name.to_lowercase().starts_with(&needle)
                || u.display_name.to_lowercase().split_whitespace().any(|w| w.starts_with(&needle))
        })
        .map(|u| Resolution {
            name: u.name.to_string(),
            address: u.smtp_address.to_string(),
            display_name: u.display_name.clone(),
        })
        .collect();
    let mut out = ResponseMessages::new("ResolveNames");
    match found.len() {
        0 => {
            out.error(ResponseCode::ErrorNameResolutionNoResults, "No results were found.", "");
        }
        1 => {
            out.success(&render(&found, req.full_contact_data));
        }
        _ => {
            // Exchange returns the candidates with a warning class and this code.
            out.warning(
                ResponseCode::ErrorNameResolutionMultipleResults,
                "Multiple results were found.",
                &render(&found, req.full_contact_data),
            );
        }
    }
    Ok(out.finish())
}

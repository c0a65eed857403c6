//! GetMailTips: a recipient outside the directory is external (or invalid when it has no
//! domain); a local recipient whose out-of-office is on now gets its internal reply.

use tandem_ews_proto::ops::get_mail_tips::{Request, Tips, render};

use super::{Ctx, EwsError};
use crate::data::settings::OOF;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut tips = Vec::with_capacity(req.recipients.len());
    for addr in &req.recipients {
        let user =
            if addr.contains('@') { ctx.s.directory.find(addr).await?.filter(|u| u.can_use_mailbox()) } else { None };
        let Some(user) = user else {
            tips.push(Tips {
                address: addr.clone(),
                invalid: !addr.contains('@'),
                external: addr.contains('@'),
                out_of_office: None,
            });
            continue;
        };
        let oof = ctx.s.data.user_setting(user.name.as_str(), OOF).await?;
        tips.push(Tips {
            address: user.smtp_address.to_string(),
            invalid: false,
            external: false,
            out_of_office: oof.as_deref().and_then(active_reply),
        });
    }
    Ok(render(&tips))
}

/// The internal reply of stored OOF settings when they are in force now.
fn active_reply(stored: &str) -> Option<String> {
    let t = tandem_ews_proto::ns::TYPES;
    let wrapped = format!("<r xmlns:t=\"{t}\">{stored}</r>");
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
    let root = doc.root_element();
    let state = tandem_xml::child(root, t, "OofState").map(tandem_xml::text)?;
    let now = tandem_store::now_unix();
    let on = match state.as_str() {
        "Enabled" => true,
        "Scheduled" => {
            let d = tandem_xml::child(root, t, "Duration")?;
            let at = |n: &str| {
                tandem_xml::child(d, t, n).map(tandem_xml::text).and_then(|v| tandem_ews_proto::parse_datetime(&v))
            };
            matches!((at("StartTime"), at("EndTime")), (Some(s), Some(e)) if s <= now && now < e)
        }
        _ => false,
    };
    if !on {
        return None;
    }
    let reply = tandem_xml::child(root, t, "InternalReply")
        .and_then(|r| tandem_xml::child(r, t, "Message"))
        .map(tandem_xml::text);
    Some(reply.unwrap_or_default())
}

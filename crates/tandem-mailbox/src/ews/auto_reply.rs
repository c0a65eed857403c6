//! Automatic replies (out of office) for mail delivered to local mailboxes, as Exchange sends
//! them: when a recipient's automatic replies are on (Enabled, or Scheduled inside its window),
//! each sender gets one reply until the recipient turns them on again (the set of senders
//! answered is kept per mailbox and reset by SetUserOofSettings). A sender in the directory gets
//! the internal reply; anyone else the external one according to ExternalAudience (None: no
//! reply; Known: only senders among the recipient's contacts; All). Every sender reaching the
//! Mailbox today is a signed-in local user, so the external branch is rule-only until mail from
//! outside arrives. The reply is a real message in the sender's Inbox, message class
//! `IPM.Note.Rules.OofTemplate.Microsoft` as Exchange gives it, subject "Automatic reply: …";
//! replies are never answered (no loops), nor is mail to oneself.
//!
//! Sending the reply is after the delivery's commit and never fails it: an error is logged.

use tandem_ews_proto::ids;
use tandem_ews_proto::ops::get_user_oof_settings::OofSettings;

use super::create_item::{Recipient, deliver};
use super::{Ctx, EwsError};
use crate::data::settings::OOF;
use crate::data::{Item, new_id};

/// The message class of an automatic reply.
pub(crate) const OOF_REPLY_CLASS: &str = "IPM.Note.Rules.OofTemplate.Microsoft";

/// Which reply a sender gets, if any.
pub(crate) fn reply_text(s: &OofSettings, now: i64, internal: bool, known: bool) -> Option<&str> {
    if !s.is_on(now) {
        return None;
    }
    let text = if internal {
        &s.internal_reply
    } else {
        match s.external_audience.as_str() {
            "All" => &s.external_reply,
            "Known" if known => &s.external_reply,
            _ => return None,
        }
    };
    (!text.trim().is_empty()).then_some(text.as_str())
}

/// Sends the automatic replies a delivery of `original` (sent by the caller) calls for.
pub(crate) async fn after_delivery(ctx: &Ctx<'_>, original: &Item, recipients: &[Recipient]) {
    if original.item_class.starts_with("IPM.Note.Rules.") {
        return;
    }
    for r in recipients {
        if r.mailbox == ctx.mailbox() {
            continue;
        }
        if let Err(e) = reply(ctx, original, r).await {
            tracing::warn!(mailbox = %r.mailbox, error = %e, "the automatic reply could not be sent");
        }
    }
}

async fn reply(ctx: &Ctx<'_>, original: &Item, r: &Recipient) -> Result<(), EwsError> {
    let Some(stored) = ctx.s.data.user_setting(&r.mailbox, OOF).await? else { return Ok(()) };
    let Some(settings) = OofSettings::from_stored(&stored) else { return Ok(()) };
    let now = tandem_store::now_unix();
    // The caller is a directory user: an internal sender.
    let Some(text) = reply_text(&settings, now, true, false) else { return Ok(()) };
    let sender = ctx.smtp();
    if !ctx.s.data.claim_oof_reply(&r.mailbox, &sender).await? {
        return Ok(());
    }
    let Some(inbox) = ctx.s.data.folder_by_name(ctx.mailbox(), "inbox").await? else { return Ok(()) };
    let e = |s: &str| tandem_xml::escape(s).into_owned();
    let mailbox = |name: &str, addr: &str| {
        format!(
            "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>",
            e(name),
            e(addr)
        )
    };
    let me = mailbox(&r.display_name, &r.smtp);
    let subject = format!("Automatic reply: {}", original.subject);
    let body_type = if text.trim_start().starts_with('<') { "HTML" } else { "Text" };
    let fields = format!(
        "<t:Subject>{}</t:Subject><t:Body BodyType=\"{body_type}\">{}</t:Body><t:ToRecipients>{}</t:ToRecipients><t:From>{me}</t:From><t:Sender>{me}</t:Sender>",
        e(&subject),
        e(text),
        mailbox(&ctx.user.display_name, &sender),
    );
    let item = Item {
        id: new_id(ids::IdKind::Item),
        mailbox: r.mailbox.clone(),
        folder_id: inbox.id.clone(),
        element: "Message".into(),
        item_class: OOF_REPLY_CLASS.into(),
        subject,
        is_read: false,
        received_at: now,
        created_at: now,
        modified_at: now,
        sent_at: Some(now),
        size: fields.len() as i64,
        start_at: None,
        end_at: None,
        article: 0,
        change_number: 0,
        fields,
        ext: String::new(),
        mime: None,
    };
    let to = Recipient {
        mailbox: ctx.mailbox().to_owned(),
        inbox,
        smtp: sender.clone(),
        display_name: ctx.user.display_name.clone(),
    };
    let mut w = ctx.s.data.write().await?;
    deliver(&mut w, &item, std::slice::from_ref(&to), now).await?;
    w.commit().await?;
    tracing::info!(from = %r.mailbox, to = %sender, "automatic reply sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(state: &str, audience: &str) -> OofSettings {
        OofSettings {
            state: state.into(),
            external_audience: audience.into(),
            duration: Some((100, 200)),
            internal_reply: "In: away".into(),
            external_reply: "Out: away".into(),
            allow_external: "All".into(),
        }
    }

    #[test]
    fn internal_and_external_audiences() {
        let on = settings("Enabled", "Known");
        assert_eq!(reply_text(&on, 0, true, false), Some("In: away"));
        assert_eq!(reply_text(&on, 0, false, false), None);
        assert_eq!(reply_text(&on, 0, false, true), Some("Out: away"));
        assert_eq!(reply_text(&settings("Enabled", "None"), 0, false, true), None);
        assert_eq!(reply_text(&settings("Enabled", "All"), 0, false, false), Some("Out: away"));
        let scheduled = settings("Scheduled", "All");
        assert_eq!(reply_text(&scheduled, 99, true, false), None);
        assert_eq!(reply_text(&scheduled, 150, true, false), Some("In: away"));
        assert_eq!(reply_text(&settings("Disabled", "All"), 150, true, false), None);
        let empty = OofSettings { internal_reply: " ".into(), ..on };
        assert_eq!(reply_text(&empty, 0, true, false), None);
    }
}

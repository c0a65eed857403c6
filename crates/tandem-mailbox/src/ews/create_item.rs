//! CreateItem: saves items, and sends messages to local recipients' Inbox (SendOnly,
//! SendAndSaveCopy). All of one item's writes — the saved copy and every delivery — are one
//! transaction; a recipient outside the directory fails the item with nothing written.

use tandem_ews_proto::ops::create_item::{Disposition, ItemData, Request};
use tandem_ews_proto::types::FolderRef;
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::messages::record;
use super::{Ctx, EwsError, fail, mime};
use crate::data::changes::ObjectKind;
use crate::data::{self, ChangeKind, Folder, Item, Write, new_id};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("CreateItem");
    for item in req.items {
        let result = match item {
            Ok(d) => create(ctx, d, req.disposition, req.send_invitations.as_deref(), req.saved_folder.as_ref()).await,
            Err(e) => Err(EwsError::Ews(e)),
        };
        record(&mut out, result.map(|xml| format!("<m:Items>{xml}</m:Items>")), "<m:Items/>")?;
    }
    Ok(out.finish())
}

async fn create(
    ctx: &Ctx<'_>,
    d: ItemData,
    disposition: Option<Disposition>,
    invitations: Option<&str>,
    saved: Option<&FolderRef>,
) -> Result<String, EwsError> {
    if tandem_ews_proto::ops::create_item::RESPONSE_OBJECTS.contains(&d.element.as_str()) {
        return super::meetings::respond(ctx, &d, disposition).await;
    }
    // A delegate saving into the owner's folder (Author or Editor) writes as the owner: a
    // meeting there is the owner's, sent on their behalf.
    if let Some(r) = saved
        && let Some((owner, _)) = ctx.delegated_folder(r).await?
    {
        return create_in(&ctx.acting_for(&owner), d, disposition, invitations, saved).await;
    }
    create_in(ctx, d, disposition, invitations, saved).await
}

/// CreateItem of one item in the mailbox of `ctx`'s user.
async fn create_in(
    ctx: &Ctx<'_>,
    d: ItemData,
    disposition: Option<Disposition>,
    invitations: Option<&str>,
    saved: Option<&FolderRef>,
) -> Result<String, EwsError> {
    let is_message = d.element == "Message";
    let disposition = if is_message { disposition.unwrap_or(Disposition::SaveOnly) } else { Disposition::SaveOnly };
    let meeting = super::meetings::sends_invitations(&d, invitations);
    let attendees = if meeting { super::meetings::attendees(ctx, &d).await? } else { Vec::new() };
    let default_folder = match (d.element.as_str(), disposition) {
        ("Message", Disposition::SendAndSaveCopy) => "sentitems",
        ("CalendarItem", _) => "calendar",
        ("Contact" | "DistributionList", _) => "contacts",
        ("Task", _) => "tasks",
        _ => "drafts",
    };
    let folder = match saved {
        Some(r) => ctx.folder(r).await?,
        None => ctx
            .s
            .data
            .folder_by_name(ctx.mailbox(), default_folder)
            .await?
            .ok_or_else(|| fail(ResponseCode::ErrorFolderNotFound, "The default folder is missing."))?,
    };
    let now = tandem_store::now_unix();
    let mut item = build(ctx.mailbox(), &d, &folder.id, now)?;
    if meeting {
        super::meetings::stamp_organizer(&mut item, ctx)?;
    }
    // An online meeting: its conference first, so the invitations carry the join information.
    let online = if crate::online_meetings::is_online(&item) && folder.distinguished.as_deref() == Some("calendar") {
        let uid = super::meetings::ensure_uid(&mut item)?;
        Some((uid, ctx.s.meetings.provision_new(&ctx.s.store, ctx.user, &mut item).await))
    } else {
        None
    };
    let sending = disposition != Disposition::SaveOnly;
    let recipients = if sending { resolve_recipients(ctx, &d).await? } else { Vec::new() };
    if sending {
        mark_sent(&mut item, ctx, now);
    }
    let mut w = ctx.s.data.write().await?;
    if disposition != Disposition::SendOnly {
        let (change, article) = w.next_numbers(ctx.mailbox(), 1).await?;
        item.change_number = change;
        item.article = article;
        w.insert_item(&item).await?;
    }
    let source = if disposition != Disposition::SendOnly { Some(item.id.clone()) } else { None };
    for a in &d.attachments {
        insert_attachment_tree(&mut w, &item.id, ctx.mailbox(), a, now).await?;
    }
    deliver(&mut w, &item, &recipients, now).await?;
    if meeting {
        super::meetings::send_requests(&mut w, ctx, &item, &attendees, now).await?;
    }
    if source.is_none() {
        // SendOnly: the attachments were only needed for the deliveries.
        w.delete_attachments_of(&item.id).await?;
    }
    w.commit().await?;
    if let Some((uid, provisioned)) = online {
        crate::online_meetings::record(ctx.s, ctx.mailbox(), &item.id, &uid, provisioned).await?;
    }
    super::auto_reply::after_delivery(ctx, &item, &recipients).await;
    if disposition == Disposition::SaveOnly {
        let el = tandem_ews_proto::types::item_element(&item.element);
        Ok(format!(
            "<t:{el}>{}</t:{el}>",
            tandem_ews_proto::render::id_element("ItemId", &item.id, &ids::change_key(item.change_number))
        ))
    } else {
        Ok(String::new())
    }
}

/// Writes a new attachment of `item_id` and, for an item attachment, every attachment nested in
/// its embedded item (each level's rows name their holder). Returns the top attachment's id.
pub(crate) async fn insert_attachment_tree(
    w: &mut Write<'_>,
    item_id: &str,
    mailbox: &str,
    top: &tandem_ews_proto::ops::attachments::NewAttachment,
    now: i64,
) -> Result<String, EwsError> {
    let top_id = new_id(ids::IdKind::Attachment);
    // Depth-first with an explicit stack: the parser bounds the nesting, and so the stack.
    let mut stack = vec![(top, top_id.clone(), None::<String>)];
    while let Some((a, id, parent)) = stack.pop() {
        let att = data::Attachment {
            id: id.clone(),
            item_id: item_id.to_owned(),
            mailbox: mailbox.to_owned(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            content_id: a.content_id.clone(),
            is_inline: a.is_inline,
            size: a.total_size() as i64,
            modified_at: now,
            content: a.content.clone(),
            item_element: a.item_element.clone(),
            parent_attachment_id: parent,
        };
        w.insert_attachment(&att).await?;
        for n in &a.nested {
            stack.push((n, new_id(ids::IdKind::Attachment), Some(id.clone())));
        }
    }
    Ok(top_id)
}

/// The default message class of an item element.
fn default_class(element: &str) -> &'static str {
    match element {
        "Message" => "IPM.Note",
        "CalendarItem" => "IPM.Appointment",
        "Contact" => "IPM.Contact",
        "Task" => "IPM.Task",
        "DistributionList" => "IPM.DistList",
        "PostItem" => "IPM.Post",
        _ => "IPM",
    }
}

/// A new item row in `folder_id` (numbers are assigned when it is written; an item embedded in an
/// item attachment has no folder, "").
pub(crate) fn build(mailbox: &str, d: &ItemData, folder_id: &str, now: i64) -> Result<Item, EwsError> {
    let headers = d.mime.as_deref().map(mime::headers).unwrap_or_default();
    let ical = d.mime.as_deref().filter(|m| mime::is_icalendar(m)).map(mime::icalendar_event);
    let (ical_summary, ical_start, ical_end, _) = ical.unwrap_or_default();
    let subject = d
        .subject
        .clone()
        .or(ical_summary)
        .or_else(|| mime::header(&headers, "Subject").map(mime::decode_words))
        .unwrap_or_default();
    let start = d.start.or(ical_start);
    let end = d.end.or(ical_end).or(start);
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(fail(
            ResponseCode::ErrorInvalidOperation,
            "The end of an appointment must not be before its start.",
        ));
    }
    // Date-times are stored as UTC instants (a wall-clock time with no zone on the item is UTC).
    let mut fields: String = d
        .fields
        .iter()
        .map(|(n, x)| tandem_ews_proto::item_schema::normalize_datetime(n, x).unwrap_or_else(|| x.clone()))
        .collect();
    if d.subject.is_none() && !subject.is_empty() {
        fields.push_str(&format!("<t:Subject>{}</t:Subject>", tandem_xml::escape(&subject)));
    }
    let ext = data::join_extended(&d.extended);
    let size = (fields.len()
        + ext.len()
        + d.mime.as_ref().map_or(0, Vec::len)
        + d.attachments.iter().map(|a| a.total_size()).sum::<usize>()) as i64;
    Ok(Item {
        id: new_id(ids::IdKind::Item),
        mailbox: mailbox.to_owned(),
        folder_id: folder_id.to_owned(),
        element: d.element.clone(),
        item_class: d.item_class.clone().unwrap_or_else(|| default_class(&d.element).to_owned()),
        subject,
        is_read: d.is_read.unwrap_or(true),
        received_at: now,
        created_at: now,
        modified_at: now,
        sent_at: None,
        size,
        start_at: start,
        end_at: end,
        article: 0,
        change_number: 0,
        fields,
        ext,
        mime: d.mime.clone(),
    })
}

/// A local recipient: the user and their Inbox.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub mailbox: String,
    pub inbox: Folder,
    /// The recipient as the directory knows them (their automatic reply is sent as them).
    pub smtp: String,
    pub display_name: String,
}

/// Every To/Cc/Bcc address (typed or from MIME headers) must be a local mailbox.
pub(crate) async fn resolve_recipients(ctx: &Ctx<'_>, d: &ItemData) -> Result<Vec<Recipient>, EwsError> {
    let mut addrs = d.recipients.clone();
    if addrs.is_empty()
        && let Some(m) = &d.mime
    {
        let hs = mime::headers(m);
        for h in ["To", "Cc", "Bcc"] {
            if let Some(v) = mime::header(&hs, h) {
                addrs.extend(mime::addresses(v));
            }
        }
    }
    resolve_addresses(ctx, &addrs).await
}

pub(crate) async fn resolve_addresses(ctx: &Ctx<'_>, addrs: &[String]) -> Result<Vec<Recipient>, EwsError> {
    if addrs.is_empty() {
        return Err(fail(ResponseCode::ErrorInvalidRecipients, "At least one recipient is required."));
    }
    let mut out: Vec<Recipient> = Vec::new();
    for a in addrs {
        let user = ctx.s.directory.find(a).await?.filter(|u| u.can_use_mailbox()).ok_or_else(|| {
            fail(
                ResponseCode::ErrorInvalidRecipients,
                format!(
                    "The recipient {a} has no mailbox on this server; mail to other organisations is not supported yet."
                ),
            )
        })?;
        let mailbox = user.name.to_string();
        if out.iter().any(|r| r.mailbox == mailbox) {
            continue;
        }
        ctx.s.data.ensure_mailbox(&mailbox).await?;
        let inbox = ctx
            .s
            .data
            .folder_by_name(&mailbox, "inbox")
            .await?
            .ok_or_else(|| fail(ResponseCode::ErrorFolderNotFound, "The recipient's Inbox is missing."))?;
        out.push(Recipient {
            mailbox,
            inbox,
            smtp: user.smtp_address.to_string(),
            display_name: user.display_name.clone(),
        });
    }
    Ok(out)
}

/// A `t:Mailbox` element naming a user.
pub(crate) fn mailbox_element(user: &tandem_directory::User) -> String {
    format!(
        "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>",
        tandem_xml::escape(&user.display_name),
        tandem_xml::escape(&user.smtp_address.to_string())
    )
}

/// Stamps a message as sent by the signed-in user: From/Sender (unless given), sent time. A
/// delegate sending for the owner is the Sender, the owner the From ("on behalf of").
pub(crate) fn mark_sent(item: &mut Item, ctx: &Ctx<'_>, now: i64) {
    if !item.fields.contains("<t:From>") && !item.fields.contains("<t:From ") {
        item.fields.push_str(&format!("<t:From>{}</t:From>", mailbox_element(ctx.user)));
    }
    if !item.fields.contains("<t:Sender>") {
        item.fields.push_str(&format!("<t:Sender>{}</t:Sender>", mailbox_element(ctx.sender())));
    }
    item.sent_at = Some(now);
    item.is_read = true;
}

/// Writes one unread copy of a sent item into each recipient's Inbox.
pub(crate) async fn deliver(
    w: &mut Write<'_>,
    item: &Item,
    recipients: &[Recipient],
    now: i64,
) -> Result<(), EwsError> {
    for r in recipients {
        let (change, article) = w.next_numbers(&r.mailbox, 1).await?;
        let copy = Item {
            id: new_id(ids::IdKind::Item),
            mailbox: r.mailbox.clone(),
            folder_id: r.inbox.id.clone(),
            is_read: false,
            received_at: now,
            created_at: now,
            modified_at: now,
            article,
            change_number: change,
            ..item.clone()
        };
        w.insert_item(&copy).await?;
        w.copy_attachments(&item.id, &copy.id, &r.mailbox).await?;
        w.log_change(&r.mailbox, change, ChangeKind::NewMail, ObjectKind::Item, &copy.id, &copy.folder_id, None)
            .await?;
    }
    Ok(())
}

//! Meeting requests between the organisation's users (MS-OXWSMTGS), as Exchange delivers them:
//! a CalendarItem with attendees created with `SendMeetingInvitations` is the organizer's
//! meeting, and each attendee gets a MeetingRequest in the Inbox and a tentative item in the
//! Calendar; AcceptItem / TentativelyAcceptItem / DeclineItem (CreateItem response objects)
//! set the attendee's calendar item, record the answer on the organizer's attendee list, send
//! a MeetingResponse to the organizer's Inbox and move the request to Deleted Items. The copies
//! are tied together by the meeting's UID; all of one operation's writes are one transaction.

use tandem_ews_proto::ops::create_item::{Disposition, ItemData};
use tandem_ews_proto::{ResponseCode, ids};

use super::create_item::{Recipient, resolve_addresses};
use super::{Ctx, EwsError, fail};
use crate::data::changes::ObjectKind;
use crate::data::settings::DELIVER_MEETING_REQUESTS;
use crate::data::{self, ChangeKind, Item, Write, new_id};

/// The CalendarItem fields that name attendees.
const ATTENDEE_FIELDS: &[&str] = &["RequiredAttendees", "OptionalAttendees", "Resources"];

/// True when CreateItem of `d` sends a meeting's invitations.
pub(crate) fn sends_invitations(d: &ItemData, invitations: Option<&str>) -> bool {
    d.element == "CalendarItem"
        && matches!(
            invitations,
            Some("SendOnlyToAll" | "SendToAllAndSaveCopy" | "SendOnlyToChanged" | "SendToChangedAndSaveCopy")
        )
        && d.fields.iter().any(|(n, _)| ATTENDEE_FIELDS.contains(&n.as_str()))
}

/// Every e-mail address in stored XML elements (attendee lists, an Organizer), each once.
fn emails_in<'a>(xmls: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for xml in xmls {
        let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
        let Ok(doc) = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()) else { continue };
        for n in doc.root_element().descendants().filter(|n| n.is_element() && n.tag_name().name() == "EmailAddress") {
            let addr = tandem_xml::text(n).trim().to_owned();
            if !addr.is_empty() && !out.iter().any(|a| a.eq_ignore_ascii_case(&addr)) {
                out.push(addr);
            }
        }
    }
    out
}

/// Every attendee address of a meeting's fields, each once.
fn attendee_addresses(fields: &[(String, String)]) -> Vec<String> {
    emails_in(fields.iter().filter(|(n, _)| ATTENDEE_FIELDS.contains(&n.as_str())).map(|(_, x)| x.as_str()))
}

/// The attendees' mailboxes (every one must be a local user, as for messages).
pub(crate) async fn attendees(ctx: &Ctx<'_>, d: &ItemData) -> Result<Vec<Recipient>, EwsError> {
    let own = ctx.smtp();
    let addrs: Vec<String> =
        attendee_addresses(&d.fields).into_iter().filter(|a| !a.eq_ignore_ascii_case(&own)).collect();
    if addrs.is_empty() {
        return Ok(Vec::new());
    }
    resolve_addresses(ctx, &addrs).await
}

fn mailbox_xml(name: &str, smtp: &str) -> String {
    format!(
        "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>",
        tandem_xml::escape(name),
        tandem_xml::escape(smtp)
    )
}

/// Replaces (or adds) the stored field `name` of `item` with `xml`.
fn set_field(item: &mut Item, name: &str, xml: String) -> Result<(), EwsError> {
    let mut fields = data::split_elements(&item.fields)?;
    fields.retain(|(n, _)| n != name);
    fields.push((name.to_owned(), xml));
    item.fields = fields.into_iter().map(|(_, x)| x).collect();
    Ok(())
}

fn field_text(item: &Item, name: &str) -> Result<Option<String>, EwsError> {
    Ok(data::split_elements(&item.fields)?.into_iter().find(|(n, _)| n == name).map(|(_, x)| data::element_text(&x)))
}

fn el(name: &str, value: &str) -> String {
    format!("<t:{name}>{}</t:{name}>", tandem_xml::escape(value))
}

/// The item's UID, given one first when it has none (an online appointment is tied to its
/// conference by it, as a meeting's copies are to each other).
pub(crate) fn ensure_uid(item: &mut Item) -> Result<String, EwsError> {
    if let Some(uid) = field_text(item, "UID")?.filter(|u| !u.is_empty()) {
        return Ok(uid);
    }
    let uid = new_id(ids::IdKind::Item);
    set_field(item, "UID", el("UID", &uid))?;
    Ok(uid)
}

/// Writes a conference's join information into the organizer's `item` (provisioned in the
/// background, after the invitations went without it) and sends the attendees an
/// InformationUpdate carrying it.
pub(crate) async fn write_join_info_and_tell(
    shared: &crate::AppState,
    organizer: &tandem_directory::User,
    item: Item,
    conference: &crate::online_meetings::Conference,
) -> Result<(), EwsError> {
    let ctx = Ctx { s: shared, shared, user: organizer, owner: "partner:online-meetings".into(), sent_by: None };
    let before = item.clone();
    let mut after = item;
    crate::online_meetings::write_join_info(&mut after, conference)?;
    let mut w = ctx.s.data.write().await?;
    let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    after.change_number = change;
    after.modified_at = tandem_store::now_unix();
    w.update_item(&after, None).await?;
    w.commit().await?;
    send_updates(&ctx, &before, &after).await
}

/// Stamps the organizer's new calendar item as a meeting they organise.
pub(crate) fn stamp_organizer(item: &mut Item, ctx: &Ctx<'_>) -> Result<(), EwsError> {
    let uid = new_id(ids::IdKind::Item);
    set_field(item, "UID", el("UID", &uid))?;
    set_field(item, "IsMeeting", el("IsMeeting", "true"))?;
    set_field(item, "MeetingRequestWasSent", el("MeetingRequestWasSent", "true"))?;
    set_field(item, "MyResponseType", el("MyResponseType", "Organizer"))?;
    let organizer = format!("<t:Organizer>{}</t:Organizer>", mailbox_xml(&ctx.user.display_name, &ctx.smtp()));
    set_field(item, "Organizer", organizer)
}

/// Delivers the meeting `organizer_item` to each attendee: a MeetingRequest in the Inbox and a
/// tentative, unanswered item in the Calendar.
pub(crate) async fn send_requests(
    w: &mut Write<'_>,
    ctx: &Ctx<'_>,
    organizer_item: &Item,
    attendees: &[Recipient],
    now: i64,
) -> Result<(), EwsError> {
    for a in attendees {
        deliver_one(w, ctx, organizer_item, a, None, "NewMeetingRequest", now).await?;
    }
    Ok(())
}

/// One attendee's copy of the meeting: their calendar item (`existing`, brought up to date, or
/// a new tentative one) and a MeetingRequest of `request_type` in their Inbox. A new time asks
/// for a new answer (tentative again); otherwise the attendee's answer stays.
async fn deliver_one(
    w: &mut Write<'_>,
    ctx: &Ctx<'_>,
    meeting: &Item,
    a: &Recipient,
    existing: Option<Item>,
    request_type: &str,
    now: i64,
) -> Result<(), EwsError> {
    let calendar = ctx
        .s
        .data
        .folder_by_name(&a.mailbox, "calendar")
        .await?
        .ok_or_else(|| fail(ResponseCode::ErrorFolderNotFound, "The attendee's Calendar is missing."))?;
    let (change, article) = w.next_numbers(&a.mailbox, 1).await?;
    let moved = existing.as_ref().is_some_and(|e| e.start_at != meeting.start_at || e.end_at != meeting.end_at);
    let answer = match &existing {
        Some(e) if !moved => (field_text(e, "MyResponseType")?, field_text(e, "LegacyFreeBusyStatus")?),
        _ => (None, None),
    };
    let mut copy = Item {
        id: existing.as_ref().map_or_else(|| new_id(ids::IdKind::Item), |e| e.id.clone()),
        mailbox: a.mailbox.clone(),
        folder_id: existing.as_ref().map_or_else(|| calendar.id.clone(), |e| e.folder_id.clone()),
        is_read: true,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        modified_at: now,
        received_at: now,
        article: existing.as_ref().map_or(article, |e| e.article),
        change_number: change,
        ..meeting.clone()
    };
    let response = answer.0.unwrap_or_else(|| "NoResponseReceived".into());
    let busy = answer.1.unwrap_or_else(|| "Tentative".into());
    set_field(&mut copy, "MyResponseType", el("MyResponseType", &response))?;
    set_field(&mut copy, "LegacyFreeBusyStatus", el("LegacyFreeBusyStatus", &busy))?;
    set_field(&mut copy, "MeetingRequestWasSent", el("MeetingRequestWasSent", "false"))?;
    match existing {
        Some(_) => w.update_item(&copy, None).await?,
        None => w.insert_item(&copy).await?,
    }
    deliver_notice(w, ctx, meeting, a, ("MeetingRequest", "IPM.Schedule.Meeting.Request"), now, |request| {
        set_field(request, "MeetingRequestType", el("MeetingRequestType", request_type))?;
        set_field(request, "MyResponseType", el("MyResponseType", &response))?;
        set_field(request, "MeetingRequestWasSent", el("MeetingRequestWasSent", "false"))?;
        set_field(request, "IsResponseRequested", el("IsResponseRequested", "true"))
    })
    .await?;
    Ok(())
}

/// Delivers a notice of the meeting `meeting` (a request, a cancellation or an answer) to
/// `to`'s Inbox as new mail from the caller: a new item of `kind` (element, class) made from the
/// meeting, unread and sent now, that `shape` then gives what differs per kind.
async fn deliver_notice(
    w: &mut Write<'_>,
    ctx: &Ctx<'_>,
    meeting: &Item,
    to: &Recipient,
    kind: (&str, &str),
    now: i64,
    shape: impl FnOnce(&mut Item) -> Result<(), EwsError>,
) -> Result<(), EwsError> {
    let (change, article) = w.next_numbers(&to.mailbox, 1).await?;
    let mut notice = Item {
        id: new_id(ids::IdKind::Item),
        mailbox: to.mailbox.clone(),
        folder_id: to.inbox.id.clone(),
        element: kind.0.into(),
        item_class: kind.1.into(),
        is_read: false,
        created_at: now,
        modified_at: now,
        received_at: now,
        sent_at: Some(now),
        article,
        change_number: change,
        ..meeting.clone()
    };
    shape(&mut notice)?;
    // From the mailbox's user; sent by the delegate when one acts for them ("on behalf of").
    let sender = ctx.sender();
    let from = format!("<t:From>{}</t:From>", mailbox_xml(&ctx.user.display_name, &ctx.smtp()));
    set_field(&mut notice, "From", from)?;
    let sender =
        format!("<t:Sender>{}</t:Sender>", mailbox_xml(&sender.display_name, &sender.smtp_address.to_string()));
    set_field(&mut notice, "Sender", sender)?;
    w.insert_item(&notice).await?;
    w.log_change(
        &to.mailbox,
        notice.change_number,
        ChangeKind::NewMail,
        ObjectKind::Item,
        &notice.id,
        &notice.folder_id,
        None,
    )
    .await?;
    Ok(())
}

/// Before UpdateItem of the organizer's meeting is written: every attendee it will name must be
/// a local user (as at creation), so a refused update writes nothing.
pub(crate) async fn check_attendees(ctx: &Ctx<'_>, after: &Item) -> Result<(), EwsError> {
    let own = ctx.smtp();
    let addrs: Vec<String> = attendee_addresses(&data::split_elements(&after.fields)?)
        .into_iter()
        .filter(|a| !a.eq_ignore_ascii_case(&own))
        .collect();
    if !addrs.is_empty() {
        resolve_addresses(ctx, &addrs).await?;
    }
    Ok(())
}

/// After UpdateItem of the organizer's meeting with SendMeetingInvitationsOrCancellations: every
/// attendee still invited gets an update (`FullUpdate` when the time moved, else
/// `InformationUpdate`; a new attendee a `NewMeetingRequest`), and one no longer invited a
/// cancellation. An attendee outside the organisation fails the update before anything is sent.
pub(crate) async fn send_updates(ctx: &Ctx<'_>, before: &Item, after: &Item) -> Result<(), EwsError> {
    if !organised_by_caller(before)? {
        return Ok(());
    }
    let Some(uid) = field_text(after, "UID")? else { return Ok(()) };
    let own = ctx.smtp();
    let addrs = |i: &Item| -> Result<Vec<String>, EwsError> {
        Ok(attendee_addresses(&data::split_elements(&i.fields)?)
            .into_iter()
            .filter(|a| !a.eq_ignore_ascii_case(&own))
            .collect())
    };
    let (old, new) = (addrs(before)?, addrs(after)?);
    let invited = if new.is_empty() { Vec::new() } else { resolve_addresses(ctx, &new).await? };
    let dropped: Vec<String> = old.into_iter().filter(|o| !new.iter().any(|n| n.eq_ignore_ascii_case(o))).collect();
    let moved = before.start_at != after.start_at || before.end_at != after.end_at;
    let mut copies = Vec::new();
    for a in &invited {
        copies.push(by_uid(ctx, &a.mailbox, &uid).await?);
    }
    let now = tandem_store::now_unix();
    let mut w = ctx.s.data.write().await?;
    for (a, existing) in invited.iter().zip(copies) {
        let kind = match (&existing, moved) {
            (None, _) => "NewMeetingRequest",
            (Some(_), true) => "FullUpdate",
            (Some(_), false) => "InformationUpdate",
        };
        deliver_one(&mut w, ctx, after, a, existing, kind, now).await?;
    }
    w.commit().await?;
    if !dropped.is_empty() {
        cancel_for(ctx, after, &dropped).await?;
    }
    Ok(())
}

/// An attendee's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    Tentative,
    Decline,
}

impl Answer {
    fn of(element: &str) -> Option<Answer> {
        match element {
            "AcceptItem" => Some(Answer::Accept),
            "TentativelyAcceptItem" => Some(Answer::Tentative),
            "DeclineItem" => Some(Answer::Decline),
            _ => None,
        }
    }

    fn response_type(self) -> &'static str {
        match self {
            Answer::Accept => "Accept",
            Answer::Tentative => "Tentative",
            Answer::Decline => "Decline",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Answer::Accept => "IPM.Schedule.Meeting.Resp.Pos",
            Answer::Tentative => "IPM.Schedule.Meeting.Resp.Tent",
            Answer::Decline => "IPM.Schedule.Meeting.Resp.Neg",
        }
    }

    fn subject_prefix(self) -> &'static str {
        match self {
            Answer::Accept => "Accepted",
            Answer::Tentative => "Tentative",
            Answer::Decline => "Declined",
        }
    }
}

/// The meeting with `uid` in the calendar of `mailbox`.
async fn by_uid(ctx: &Ctx<'_>, mailbox: &str, uid: &str) -> Result<Option<Item>, EwsError> {
    let Some(calendar) = ctx.s.data.folder_by_name(mailbox, "calendar").await? else { return Ok(None) };
    for i in ctx.s.data.items_in(&calendar.id).await? {
        if field_text(&i, "UID")?.as_deref() == Some(uid) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Sets the answer of `smtp` in the attendee lists of the organizer's `item`.
fn record_answer(item: &mut Item, smtp: &str, answer: Answer, now: i64) -> Result<(), EwsError> {
    let mut fields = data::split_elements(&item.fields)?;
    let needle = format!("<t:EmailAddress>{}</t:EmailAddress>", tandem_xml::escape(smtp)).to_ascii_lowercase();
    let stamp = format!(
        "<t:ResponseType>{}</t:ResponseType><t:LastResponseTime>{}</t:LastResponseTime>",
        answer.response_type(),
        tandem_ews_proto::format_datetime(now)
    );
    for (_, xml) in fields.iter_mut().filter(|(n, _)| ATTENDEE_FIELDS.contains(&n.as_str())) {
        let mut out = String::with_capacity(xml.len() + stamp.len());
        let mut rest = xml.as_str();
        while let Some(start) = rest.find("<t:Attendee>") {
            let Some(len) = rest[start..].find("</t:Attendee>") else { break };
            let attendee = &rest[start..start + len];
            out.push_str(&rest[..start]);
            if attendee.to_ascii_lowercase().contains(&needle) {
                // Mailbox first, then the answer (AttendeeType's order); an older answer goes.
                let mailbox_end = attendee.find("</t:Mailbox>").map_or(attendee.len(), |m| m + "</t:Mailbox>".len());
                out.push_str(&attendee[..mailbox_end]);
                out.push_str(&stamp);
            } else {
                out.push_str(attendee);
            }
            out.push_str("</t:Attendee>");
            rest = &rest[start + len + "</t:Attendee>".len()..];
        }
        out.push_str(rest);
        *xml = out;
    }
    item.fields = fields.into_iter().map(|(_, x)| x).collect();
    Ok(())
}

/// True when `item` is a meeting `ctx`'s user organises.
fn organised_by_caller(item: &Item) -> Result<bool, EwsError> {
    Ok(item.element == "CalendarItem"
        && field_text(item, "MyResponseType")?.as_deref() == Some("Organizer")
        && field_text(item, "MeetingRequestWasSent")?.as_deref() == Some("true"))
}

/// Tells the attendees of the organizer's meeting `item` that it is cancelled: a
/// MeetingCancellation in each Inbox, and their calendar item marked cancelled ("Canceled: …",
/// `IsCancelled`), for them to remove, as Exchange leaves it. Not a meeting the caller
/// organises: nothing to send.
pub(crate) async fn cancel(ctx: &Ctx<'_>, item: &Item) -> Result<(), EwsError> {
    if !organised_by_caller(item)? {
        return Ok(());
    }
    let own = ctx.smtp();
    let addrs: Vec<String> = attendee_addresses(&data::split_elements(&item.fields)?)
        .into_iter()
        .filter(|a| !a.eq_ignore_ascii_case(&own))
        .collect();
    cancel_for(ctx, item, &addrs).await
}

/// Sends the cancellation of the meeting `item` to `addrs`.
async fn cancel_for(ctx: &Ctx<'_>, item: &Item, addrs: &[String]) -> Result<(), EwsError> {
    let Some(uid) = field_text(item, "UID")? else { return Ok(()) };
    let mut attendees = Vec::new();
    for a in addrs {
        // An attendee who left the organisation since the invitation is passed over.
        if let Ok(mut r) = resolve_addresses(ctx, std::slice::from_ref(a)).await {
            attendees.append(&mut r);
        }
    }
    let mut theirs = Vec::new();
    for a in &attendees {
        theirs.push(by_uid(ctx, &a.mailbox, &uid).await?);
    }
    let now = tandem_store::now_unix();
    let subject = format!("Canceled: {}", item.subject);
    let mut w = ctx.s.data.write().await?;
    for (a, their) in attendees.iter().zip(theirs) {
        if let Some(mut cal) = their {
            let (change, _) = w.next_numbers(&a.mailbox, 0).await?;
            set_field(&mut cal, "IsCancelled", el("IsCancelled", "true"))?;
            set_field(&mut cal, "Subject", el("Subject", &subject))?;
            cal.subject = subject.clone();
            cal.change_number = change;
            cal.modified_at = now;
            w.update_item(&cal, None).await?;
        }
        deliver_notice(&mut w, ctx, item, a, ("MeetingCancellation", "IPM.Schedule.Meeting.Canceled"), now, |notice| {
            notice.subject = subject.clone();
            notice.mime = None;
            set_field(notice, "Subject", el("Subject", &subject))?;
            set_field(notice, "IsCancelled", el("IsCancelled", "true"))
        })
        .await?;
    }
    w.commit().await?;
    Ok(())
}

/// CreateItem of a CancelCalendarItem: the organizer cancels the meeting `ReferenceItemId`
/// names; the attendees are told and the meeting goes to Deleted Items.
async fn cancel_calendar_item(ctx: &Ctx<'_>, d: &ItemData) -> Result<String, EwsError> {
    let reference =
        d.reference().ok_or_else(|| fail(ResponseCode::ErrorSchemaValidation, "ReferenceItemId is required."))?;
    // A delegate with Editor cancels the owner's meeting on the owner's behalf.
    match ctx.delegated_item_owner(&reference.id).await? {
        Some(owner) => cancel_referenced(&ctx.acting_for(&owner), &reference.id).await,
        None => cancel_referenced(ctx, &reference.id).await,
    }
}

/// Cancels the meeting `id` of `ctx`'s user.
async fn cancel_referenced(ctx: &Ctx<'_>, id: &str) -> Result<String, EwsError> {
    let item = ctx.item(id).await?;
    if !organised_by_caller(&item)? {
        return Err(fail(ResponseCode::ErrorInvalidOperation, "Only the organizer cancels a meeting."));
    }
    cancel(ctx, &item).await?;
    let to = ctx
        .folder(&tandem_ews_proto::types::FolderRef::Distinguished { name: "deleteditems".into(), mailbox: None })
        .await?;
    super::move_copy_item::move_to(ctx, &item, &to, false).await?;
    crate::online_meetings::removed(ctx.s, ctx.user, &item).await?;
    Ok(String::new())
}

/// CreateItem of an AcceptItem, TentativelyAcceptItem or DeclineItem: the attendee answers
/// the meeting request (or calendar item) `ReferenceItemId` names; a CancelCalendarItem
/// cancels the organizer's meeting.
pub(crate) async fn respond(ctx: &Ctx<'_>, d: &ItemData, disposition: Option<Disposition>) -> Result<String, EwsError> {
    if d.element == "CancelCalendarItem" {
        return cancel_calendar_item(ctx, d).await;
    }
    let answer =
        Answer::of(&d.element).ok_or_else(|| fail(ResponseCode::ErrorNotSupported, "Not a meeting response."))?;
    let reference =
        d.reference().ok_or_else(|| fail(ResponseCode::ErrorSchemaValidation, "ReferenceItemId is required."))?;
    let referenced = ctx.item(&reference.id).await?;
    if referenced.element != "MeetingRequest" && referenced.element != "CalendarItem" {
        return Err(fail(ResponseCode::ErrorInvalidOperation, "The item is not a meeting request."));
    }
    let uid = field_text(&referenced, "UID")?
        .ok_or_else(|| fail(ResponseCode::ErrorInvalidOperation, "The meeting has no UID."))?;
    let organizer_smtp = data::split_elements(&referenced.fields)?
        .into_iter()
        .find(|(n, _)| n == "Organizer")
        .and_then(|(_, x)| emails_in(std::iter::once(x.as_str())).into_iter().next());
    if organizer_smtp.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(&ctx.smtp())) {
        return Err(fail(ResponseCode::ErrorInvalidOperation, "The organizer does not answer their own meeting."));
    }
    let now = tandem_store::now_unix();
    let own = by_uid(ctx, ctx.mailbox(), &uid).await?;
    let organizer = match &organizer_smtp {
        Some(o) => resolve_addresses(ctx, std::slice::from_ref(o)).await.ok().and_then(|mut r| r.pop()),
        None => None,
    };
    let organizer_item = match &organizer {
        Some(o) => by_uid(ctx, &o.mailbox, &uid).await?,
        None => None,
    };
    let responses_to = match &organizer {
        Some(o) => responses_to(ctx, o).await?,
        None => Vec::new(),
    };
    let deleted = ctx
        .s
        .data
        .folder_by_name(ctx.mailbox(), "deleteditems")
        .await?
        .ok_or_else(|| fail(ResponseCode::ErrorFolderNotFound, "Deleted Items is missing."))?;
    let mut w = ctx.s.data.write().await?;
    // The attendee's calendar item.
    if let Some(mut mine) = own {
        let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
        if answer == Answer::Decline {
            w.delete_item(&mine, change).await?;
        } else {
            let busy = if answer == Answer::Accept { "Busy" } else { "Tentative" };
            set_field(&mut mine, "MyResponseType", el("MyResponseType", answer.response_type()))?;
            set_field(&mut mine, "LegacyFreeBusyStatus", el("LegacyFreeBusyStatus", busy))?;
            mine.change_number = change;
            mine.modified_at = now;
            w.update_item(&mine, None).await?;
        }
    }
    // The request goes to Deleted Items, as Exchange moves it once answered.
    if referenced.element == "MeetingRequest" && referenced.folder_id != deleted.id {
        let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
        let unread = i64::from(!referenced.is_read);
        let moved =
            Item { folder_id: deleted.id.clone(), change_number: change, modified_at: now, ..referenced.clone() };
        w.update_item(&moved, Some(&referenced.folder_id)).await?;
        w.adjust_counts(&referenced.folder_id, -1, -unread, change).await?;
        w.adjust_counts(&deleted.id, 1, unread, change).await?;
    }
    // The organizer's side: the answer on the attendee list and, unless only saved, a response.
    if let (Some(o), Some(mut theirs)) = (&organizer, organizer_item) {
        let (change, _) = w.next_numbers(&o.mailbox, 0).await?;
        record_answer(&mut theirs, &ctx.smtp(), answer, now)?;
        theirs.change_number = change;
        theirs.modified_at = now;
        w.update_item(&theirs, None).await?;
        if disposition != Some(Disposition::SaveOnly) {
            let subject = format!("{}: {}", answer.subject_prefix(), theirs.subject);
            for to in &responses_to {
                deliver_notice(&mut w, ctx, &theirs, to, ("MeetingResponse", answer.class()), now, |response| {
                    response.subject = subject.clone();
                    response.mime = None;
                    response.fields = String::new();
                    set_field(response, "Subject", el("Subject", &subject))?;
                    set_field(response, "UID", el("UID", &uid))
                })
                .await?;
            }
        }
    }
    w.commit().await?;
    Ok(String::new())
}

/// Who gets the answers to the meetings `organizer` organises, as their DeliverMeetingRequests
/// says (Outlook's "Deliver meeting requests addressed to me and responses to meeting requests
/// where I am the organizer to"): the delegates who receive copies of meeting messages
/// (ReceiveCopiesOfMeetingMessages) only (`DelegatesOnly`), the delegates and the organizer
/// (`DelegatesAndMe`, the default, and `DelegatesAndSendInformationToMe`), or the organizer alone
/// (`NoForward`, or no such delegate).
async fn responses_to(ctx: &Ctx<'_>, organizer: &Recipient) -> Result<Vec<Recipient>, EwsError> {
    let setting = ctx.s.data.user_setting(&organizer.mailbox, DELIVER_MEETING_REQUESTS).await?;
    let setting = setting.as_deref().unwrap_or("DelegatesAndMe");
    let mut delegates = Vec::new();
    if setting != "NoForward" {
        for (address, encoded) in ctx.s.data.delegates(&organizer.mailbox).await? {
            let d = tandem_ews_proto::ops::delegates::Delegate::decode(&address, &encoded);
            // A delegate who left the organisation since is passed over.
            if d.receive_copies
                && let Ok(mut r) = resolve_addresses(ctx, std::slice::from_ref(&address)).await
            {
                delegates.append(&mut r);
            }
        }
    }
    let to = match (setting, delegates.is_empty()) {
        (_, true) | ("NoForward", _) => vec![organizer.clone()],
        ("DelegatesOnly", false) => delegates,
        _ => std::iter::once(organizer.clone()).chain(delegates).collect(),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendee_addresses_are_read_once_each() {
        let fields = vec![
            ("Subject".to_owned(), "<t:Subject>x</t:Subject>".to_owned()),
            (
                "RequiredAttendees".to_owned(),
                "<t:RequiredAttendees><t:Attendee><t:Mailbox><t:EmailAddress>bob@x.com</t:EmailAddress></t:Mailbox></t:Attendee><t:Attendee><t:Mailbox><t:EmailAddress>BOB@x.com</t:EmailAddress></t:Mailbox></t:Attendee></t:RequiredAttendees>".to_owned(),
            ),
            (
                "OptionalAttendees".to_owned(),
                "<t:OptionalAttendees><t:Attendee><t:Mailbox><t:EmailAddress>carol@x.com</t:EmailAddress></t:Mailbox></t:Attendee></t:OptionalAttendees>".to_owned(),
            ),
        ];
        assert_eq!(attendee_addresses(&fields), ["bob@x.com", "carol@x.com"]);
    }
}

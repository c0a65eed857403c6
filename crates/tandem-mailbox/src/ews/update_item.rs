//! UpdateItem: Set/Append/DeleteItemField on typed and extended properties, with
//! ConflictResolution, and sending a draft when MessageDisposition asks for it. Each item's
//! change is one transaction.

use tandem_ews_proto::ops::create_item::{Disposition, ItemData};
use tandem_ews_proto::ops::send_item;
use tandem_ews_proto::ops::update_item::{ConflictResolution, ItemChange, Request, Update};
use tandem_ews_proto::render::COMPUTED;
use tandem_ews_proto::types::{FolderRef, PropertyPath};
use tandem_ews_proto::{ResponseCode, ResponseMessages, ids};

use super::{Ctx, EwsError, fail};
use crate::data::{self, Item};

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("UpdateItem");
    for change in &req.changes {
        match apply(ctx, change, req.conflict, req.disposition, req.send_invitations.as_deref()).await {
            Ok(item) => {
                let el = tandem_ews_proto::types::item_element(&item.element);
                let items = if item.id.is_empty() {
                    "<m:Items/>".to_owned()
                } else {
                    format!(
                        "<m:Items><t:{el}>{}</t:{el}></m:Items>",
                        tandem_ews_proto::render::id_element("ItemId", &item.id, &ids::change_key(item.change_number))
                    )
                };
                out.success(&format!("{items}<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>"));
            }
            Err(EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "<m:Items/>");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(out.finish())
}

async fn apply(
    ctx: &Ctx<'_>,
    change: &ItemChange,
    conflict: ConflictResolution,
    disposition: Option<Disposition>,
    invitations: Option<&str>,
) -> Result<Item, EwsError> {
    let r = change.item.clone()?;
    // A delegate with Editor changes the owner's item as the owner (updates of a meeting go out
    // on the owner's behalf).
    match ctx.delegated_item_owner(&r.id).await? {
        Some(owner) => apply_in(&ctx.acting_for(&owner), change, conflict, disposition, invitations).await,
        None => apply_in(ctx, change, conflict, disposition, invitations).await,
    }
}

/// UpdateItem of one item of `ctx`'s user's mailbox.
async fn apply_in(
    ctx: &Ctx<'_>,
    change: &ItemChange,
    conflict: ConflictResolution,
    disposition: Option<Disposition>,
    invitations: Option<&str>,
) -> Result<Item, EwsError> {
    let r = change.item.clone()?;
    let updates = change.updates.clone()?;
    let mut item = ctx.item(&r.id).await?;
    let before = item.clone();
    // A change key older than the item: NeverOverwrite refuses; AutoResolve and AlwaysOverwrite
    // apply the update (this server keeps no per-property history, so AutoResolve resolves every
    // conflict in the client's favour, as AlwaysOverwrite does).
    if let Some(ck) = &r.change_key {
        let Some(known) = ids::parse_change_key(ck) else {
            return Err(fail(ResponseCode::ErrorInvalidChangeKey, "The change key is invalid."));
        };
        if conflict == ConflictResolution::NeverOverwrite && known != item.change_number {
            return Err(fail(ResponseCode::ErrorIrresolvableConflict, "The item was changed since it was read."));
        }
    }
    let was_unread = !item.is_read;
    // Only the read flag is set: logged as a read-flag change (SyncFolderItems' ReadFlagChange).
    let read_flag_only = !updates.is_empty()
        && updates.iter().all(|u| match u {
            Update::Set { path, .. } | Update::Append { path, .. } => {
                matches!(path, PropertyPath::Field(f) if f == "message:IsRead")
            }
            Update::Delete { .. } => false,
        });
    let mut fields = data::split_elements(&item.fields)?;
    let mut ext = data::split_extended(&item.ext)?;
    for u in updates {
        match u {
            Update::Set { path, value } => set(&mut item, &mut fields, &mut ext, &path, &value, false)?,
            Update::Append { path, value } => set(&mut item, &mut fields, &mut ext, &path, &value, true)?,
            Update::Delete { path } => match &path {
                PropertyPath::Extended(e) => ext.retain(|(f, _)| f.key() != e.key()),
                _ => {
                    let name = path.element_name().unwrap_or_default().to_owned();
                    if COMPUTED.contains(&name.as_str()) || name == "ItemClass" {
                        return Err(fail(
                            ResponseCode::ErrorInvalidPropertyForOperation,
                            format!("{name} cannot be deleted."),
                        ));
                    }
                    fields.retain(|(n, _)| *n != name);
                    match name.as_str() {
                        "Subject" => item.subject.clear(),
                        "Start" => item.start_at = None,
                        "End" => item.end_at = item.start_at,
                        _ => {}
                    }
                }
            },
        }
    }
    // The item as the updates leave it is checked, not each step: moving a meeting sets Start
    // then End, and the new Start may be after the old End.
    if let (Some(s), Some(e)) = (item.start_at, item.end_at)
        && e < s
    {
        return Err(fail(
            ResponseCode::ErrorInvalidOperation,
            "The end of an appointment must not be before its start.",
        ));
    }
    item.fields = fields.iter().map(|(_, x)| x.as_str()).collect();
    item.ext = data::join_extended(&ext);
    item.size = (item.fields.len() + item.ext.len() + item.mime.as_ref().map_or(0, Vec::len)) as i64;
    item.modified_at = tandem_store::now_unix();
    let sends_update = item.element == "CalendarItem"
        && matches!(
            invitations,
            Some("SendOnlyToAll" | "SendToAllAndSaveCopy" | "SendOnlyToChanged" | "SendToChangedAndSaveCopy")
        );
    if sends_update {
        super::meetings::check_attendees(ctx, &item).await?;
    }
    // Marked online now, with no conference yet: provisioned before the update goes out.
    let mut newly_online = None;
    if crate::online_meetings::is_online(&item) && crate::online_meetings::organised_here(&item) {
        let uid = super::meetings::ensure_uid(&mut item)?;
        if ctx.s.data.online_meeting(&uid).await?.is_none() {
            newly_online = Some((uid, ctx.s.meetings.provision_new(&ctx.s.store, ctx.user, &mut item).await));
        }
    }
    let mut w = ctx.s.data.write().await?;
    let (change_number, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    item.change_number = change_number;
    if read_flag_only {
        w.update_item_read_flag(&item).await?;
    } else {
        w.update_item(&item, None).await?;
    }
    let unread_delta = i64::from(!item.is_read) - i64::from(was_unread);
    w.adjust_counts(&item.folder_id, 0, unread_delta, change_number).await?;
    w.commit().await?;
    match newly_online {
        Some((uid, provisioned)) => {
            crate::online_meetings::record(ctx.s, ctx.mailbox(), &item.id, &uid, provisioned).await?
        }
        None => crate::online_meetings::changed(ctx.s, ctx.user, &before, &item).await?,
    }
    if sends_update {
        super::meetings::send_updates(ctx, &before, &item).await?;
    }
    if item.element == "Message" && matches!(disposition, Some(Disposition::SendOnly | Disposition::SendAndSaveCopy)) {
        let save = disposition == Some(Disposition::SendAndSaveCopy);
        let req = send_item::Request {
            save_copy: save,
            saved_folder: save.then(|| FolderRef::Distinguished { name: "sentitems".into(), mailbox: None }),
            items: Vec::new(),
        };
        super::send_item::send(ctx, &item.id, &req).await?;
        return Ok(Item { id: String::new(), ..item });
    }
    Ok(item)
}

fn set(
    item: &mut Item,
    fields: &mut Vec<(String, String)>,
    ext: &mut Vec<(tandem_ews_proto::types::ExtendedField, Vec<String>)>,
    path: &PropertyPath,
    value: &ItemData,
    append: bool,
) -> Result<(), EwsError> {
    if let PropertyPath::Extended(e) = path {
        let (_, v) = value.extended.iter().find(|(f, _)| f.key() == e.key()).ok_or_else(|| {
            fail(ResponseCode::ErrorInvalidPropertySet, "The update does not carry the property it names.")
        })?;
        match ext.iter_mut().find(|(f, _)| f.key() == e.key()) {
            Some((_, old)) if append => old.extend(v.iter().cloned()),
            Some((_, old)) => *old = v.clone(),
            None => ext.push((e.clone(), v.clone())),
        }
        return Ok(());
    }
    let name = path
        .element_name()
        .ok_or_else(|| fail(ResponseCode::ErrorInvalidPropertySet, "The property path is not valid."))?
        .to_owned();
    if name == "IsRead" {
        item.is_read = value
            .is_read
            .ok_or_else(|| fail(ResponseCode::ErrorInvalidPropertySet, "The update does not carry IsRead."))?;
        return Ok(());
    }
    if COMPUTED.contains(&name.as_str()) {
        return Err(fail(
            ResponseCode::ErrorInvalidPropertySet,
            format!("{name} is set by the server and cannot be changed."),
        ));
    }
    let (_, new_xml) = value
        .fields
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| fail(ResponseCode::ErrorInvalidPropertySet, format!("The update does not carry {name}.")))?;
    let mut merged = match (append, fields.iter().find(|(n, _)| *n == name)) {
        (true, Some((_, old))) => append_xml(old, new_xml, &name)?,
        _ => new_xml.clone(),
    };
    // A wall-clock Start/End is read in the item's stored zone (as Exchange reads it), then
    // every date-time is stored in UTC.
    let (mut start, mut end) = (value.start, value.end);
    if matches!(name.as_str(), "Start" | "End")
        && let Some(utc) = wall_clock_in_zone(fields, &name, &merged)
    {
        merged = tandem_ews_proto::item_schema::datetime_element(&name, utc);
        if name == "Start" { start = Some(utc) } else { end = Some(utc) }
    }
    if let Some(utc) = tandem_ews_proto::item_schema::normalize_datetime(&name, &merged) {
        merged = utc;
    }
    fields.retain(|(n, _)| *n != name);
    fields.push((name.clone(), merged));
    match name.as_str() {
        "Subject" => item.subject = value.subject.clone().unwrap_or_default(),
        "ItemClass" => item.item_class = value.item_class.clone().unwrap_or_default(),
        "Start" => item.start_at = start,
        "End" => item.end_at = end,
        _ => {}
    }
    Ok(())
}

/// The instant of a Start/End element written without an offset, in the zone stored on the
/// item (EndTimeZone for End, else StartTimeZone, else 2007's MeetingTimeZone); `None` when it
/// has an offset or the item has no zone this server can evaluate.
fn wall_clock_in_zone(fields: &[(String, String)], name: &str, xml: &str) -> Option<i64> {
    use tandem_ews_proto::timezone::{Zone, has_offset};
    let raw = tandem_ews_proto::item_schema::inner_text(xml);
    if has_offset(&raw) {
        return None;
    }
    let stored = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, x)| x.as_str());
    let order: &[&str] = if name == "End" {
        &["EndTimeZone", "StartTimeZone", "MeetingTimeZone"]
    } else {
        &["StartTimeZone", "MeetingTimeZone"]
    };
    let zone = order.iter().find_map(|n| stored(n)).and_then(Zone::from_stored)?;
    Some(zone.to_utc(tandem_ews_proto::parse_datetime(&raw)?))
}

/// Appends the content of `new` to the element `old` (Body text, recipient lists).
fn append_xml(old: &str, new: &str, name: &str) -> Result<String, EwsError> {
    if !matches!(
        name,
        "Body"
            | "ToRecipients"
            | "CcRecipients"
            | "BccRecipients"
            | "RequiredAttendees"
            | "OptionalAttendees"
            | "Resources"
            | "Categories"
    ) {
        return Err(fail(ResponseCode::ErrorInvalidPropertyForOperation, format!("{name} cannot be appended to.")));
    }
    let inner = |x: &str| -> Option<String> {
        if x.ends_with("/>") && !x.contains("</") {
            return Some(String::new());
        }
        let start = x.find('>')? + 1;
        let end = x.rfind("</")?;
        Some(x[start..end].to_owned())
    };
    let (Some(old_inner), Some(new_inner)) = (inner(old), inner(new)) else {
        return Err(fail(ResponseCode::ErrorInvalidPropertySet, "The property cannot be appended to."));
    };
    let open_end = if old.ends_with("/>") && !old.contains("</") { old.len() - 2 } else { old.find('>').unwrap_or(0) };
    let open = old[..open_end].to_owned();
    Ok(format!("{open}>{old_inner}{new_inner}</t:{name}>"))
}

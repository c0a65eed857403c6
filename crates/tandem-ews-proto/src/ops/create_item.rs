//! CreateItem: messages (SaveOnly, SendOnly, SendAndSaveCopy), calendar items, contacts, tasks
//! and generic items, from typed properties or MIME content.

use base64::Engine as _;
use tandem_xml::{Node, child, children, text};

use super::{need, opt};
use crate::types::{ExtendedField, FolderRef, ITEM_ELEMENTS};
use crate::{ProtoError, ResponseCode, ns, parse_bool, parse_datetime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    SaveOnly,
    SendOnly,
    SendAndSaveCopy,
}

impl Disposition {
    pub fn parse(op: Node<'_, '_>) -> Result<Option<Disposition>, ProtoError> {
        Ok(match op.attribute("MessageDisposition") {
            None => None,
            Some("SaveOnly") => Some(Disposition::SaveOnly),
            Some("SendOnly") => Some(Disposition::SendOnly),
            Some("SendAndSaveCopy") => Some(Disposition::SendAndSaveCopy),
            Some(other) => return Err(ProtoError::schema(format!("MessageDisposition {other} is not valid"))),
        })
    }
}

/// An item's properties as a request gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemData {
    /// The element (`Message`, `CalendarItem`…).
    pub element: String,
    /// Every typed property: (local name, element rendered with the `t:` prefix).
    pub fields: Vec<(String, String)>,
    pub extended: Vec<(ExtendedField, Vec<String>)>,
    /// Decoded MIME content.
    pub mime: Option<Vec<u8>>,
    pub subject: Option<String>,
    pub item_class: Option<String>,
    pub is_read: Option<bool>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// SMTP addresses of To, Cc and Bcc recipients.
    pub recipients: Vec<String>,
    /// File attachments given with the item.
    pub attachments: Vec<super::attachments::NewAttachment>,
}

/// Reads an item element's properties.
pub fn parse_item(node: Node<'_, '_>) -> Result<ItemData, ProtoError> {
    let element = node.tag_name().name().to_owned();
    if !ITEM_ELEMENTS.contains(&element.as_str()) {
        return Err(ProtoError::new(
            ResponseCode::ErrorNotSupported,
            format!("Creating a {element} is not supported by this server."),
        ));
    }
    let mut d = ItemData { element, ..ItemData::default() };
    // Start/End written without an offset are wall-clock times in the item's zone.
    let mut local: Vec<(&str, String)> = Vec::new();
    let mut zones: Vec<(&str, Option<crate::timezone::Zone>)> = Vec::new();
    for c in children(node) {
        if c.tag_name().namespace() != Some(ns::TYPES) {
            return Err(ProtoError::schema(format!("unexpected element {}", c.tag_name().name())));
        }
        let name = c.tag_name().name();
        match name {
            "MimeContent" => {
                let raw: String = text(c).chars().filter(|ch| !ch.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD.decode(raw).map_err(|_| {
                    ProtoError::new(ResponseCode::ErrorUnsupportedMimeConversion, "MimeContent is not base64.")
                })?;
                d.mime = Some(bytes);
                continue;
            }
            "ExtendedProperty" => {
                let uri = child(c, ns::TYPES, "ExtendedFieldURI")
                    .ok_or_else(|| ProtoError::schema("ExtendedProperty needs ExtendedFieldURI"))?;
                let field = ExtendedField::parse(uri)?;
                let values: Vec<String> = match child(c, ns::TYPES, "Values") {
                    Some(vs) => children(vs).map(text).collect(),
                    None => vec![child(c, ns::TYPES, "Value").map(text).unwrap_or_default()],
                };
                d.extended.retain(|(f, _)| f.key() != field.key());
                d.extended.push((field, values));
                continue;
            }
            "Attachments" => {
                d.attachments = super::attachments::parse_all(c)?;
                continue;
            }
            "Subject" => d.subject = Some(text(c)),
            "ItemClass" => d.item_class = Some(text(c)),
            "IsRead" => d.is_read = parse_bool(&text(c)),
            "StartTimeZone" | "EndTimeZone" | "MeetingTimeZone" => {
                zones.push((if name == "EndTimeZone" { "End" } else { "Start" }, crate::timezone::Zone::parse(c)))
            }
            "Start" => {
                local.push(("Start", text(c)));
                d.start = Some(parse_datetime(&text(c)).ok_or_else(|| ProtoError::schema("Start is not a date-time"))?)
            }
            "End" => {
                local.push(("End", text(c)));
                d.end = Some(parse_datetime(&text(c)).ok_or_else(|| ProtoError::schema("End is not a date-time"))?)
            }
            "ToRecipients" | "CcRecipients" | "BccRecipients" => {
                for m in children(c) {
                    if let Some(a) = child(m, ns::TYPES, "EmailAddress").map(text).filter(|a| !a.is_empty()) {
                        d.recipients.push(a);
                    }
                }
            }
            _ => {}
        }
        let mut xml = String::new();
        tandem_xml::serialize(c, ns::TYPES, "t", &mut xml);
        // Date-times are kept as the instant, written in UTC whatever offset the client used
        // (Exchange answers `2026-12-03T10:00:00Z` to `…T10:00:00.000+00:00`).
        // A wall-clock Start/End (no offset) waits for the item's zone, read after the loop, or
        // (UpdateItem) the stored item's: the handler normalizes what is left.
        let wall_clock = matches!(name, "Start" | "End") && !crate::timezone::has_offset(&text(c));
        if !wall_clock && let Some(utc) = crate::item_schema::normalize_datetime(name, &xml) {
            xml = utc;
        }
        d.fields.retain(|(n, _)| n != name);
        d.fields.push((name.to_owned(), xml));
    }
    for (which, raw) in local {
        if crate::timezone::has_offset(&raw) {
            continue;
        }
        // End falls back to the start's zone, as a single StartTimeZone (or 2007's
        // MeetingTimeZone) governs both.
        let zone = zones.iter().find(|(w, _)| *w == which).or_else(|| zones.iter().find(|(w, _)| *w == "Start"));
        let (Some((_, Some(zone))), Some(wall)) = (zone, parse_datetime(&raw)) else { continue };
        let utc = zone.to_utc(wall);
        if which == "Start" {
            d.start = Some(utc);
        } else {
            d.end = Some(utc);
        }
        if let Some((_, xml)) = d.fields.iter_mut().find(|(n, _)| n == which) {
            *xml = crate::item_schema::datetime_element(which, utc);
        }
    }
    Ok(d)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub disposition: Option<Disposition>,
    pub send_invitations: Option<String>,
    pub saved_folder: Option<FolderRef>,
    pub items: Vec<Result<ItemData, ProtoError>>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let saved_folder = match opt(op, "SavedItemFolderId") {
            Some(n) => Some(
                children(n)
                    .next()
                    .ok_or_else(|| ProtoError::schema("SavedItemFolderId is empty"))
                    .and_then(FolderRef::parse)?,
            ),
            None => None,
        };
        Ok(Request {
            disposition: Disposition::parse(op)?,
            send_invitations: op.attribute("SendMeetingInvitations").map(str::to_owned),
            saved_folder,
            items: children(need(op, "Items")?).map(parse_item).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages_with_mime_and_extended_properties() {
        let x = format!(
            r#"<m:CreateItem xmlns:m="{}" xmlns:t="{}" MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items><t:Message><t:MimeContent>U3ViamVjdDogaGkNCg0KYm9keQ==</t:MimeContent><t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="Keywords" PropertyType="StringArray"/><t:Values><t:Value>a</t:Value><t:Value>b</t:Value></t:Values></t:ExtendedProperty><t:Subject>Hello &amp; bye</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@x.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#,
            ns::MESSAGES,
            ns::TYPES
        );
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        let r = Request::parse(d.root_element()).unwrap();
        assert_eq!(r.disposition, Some(Disposition::SendAndSaveCopy));
        let item = r.items[0].as_ref().unwrap();
        assert_eq!(item.mime.as_deref(), Some(&b"Subject: hi\r\n\r\nbody"[..]));
        assert_eq!(item.extended[0].1, ["a", "b"]);
        assert_eq!(item.subject.as_deref(), Some("Hello & bye"));
        assert_eq!(item.recipients, ["bob@x.com"]);
        assert!(item.fields.iter().any(|(n, x)| n == "Subject" && x == "<t:Subject>Hello &amp; bye</t:Subject>"));
    }

    #[test]
    fn date_times_are_stored_in_utc() {
        let x = format!(
            r#"<t:CalendarItem xmlns:t="{}"><t:Start>2026-12-03T10:00:00.000+00:00</t:Start><t:End>2026-12-03T12:30:00+01:00</t:End></t:CalendarItem>"#,
            ns::TYPES
        );
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        let item = parse_item(d.root_element()).unwrap();
        assert_eq!(item.fields[0].1, "<t:Start>2026-12-03T10:00:00Z</t:Start>");
        assert_eq!(item.fields[1].1, "<t:End>2026-12-03T11:30:00Z</t:End>");
        assert_eq!(item.end.unwrap() - item.start.unwrap(), 5400);
    }

    #[test]
    fn wall_clock_times_are_read_in_the_items_zone() {
        let zone = r#"<t:StartTimeZone Id="Tokyo"><t:Periods><t:Period Bias="-PT9H" Name="Standard" Id="Std"/></t:Periods><t:TransitionsGroups><t:TransitionsGroup Id="0"><t:Transition><t:To Kind="Period">Std</t:To></t:Transition></t:TransitionsGroup></t:TransitionsGroups><t:Transitions><t:Transition><t:To Kind="Group">0</t:To></t:Transition></t:Transitions></t:StartTimeZone>"#;
        let x = format!(
            r#"<t:CalendarItem xmlns:t="{}"><t:Start>2026-12-03T19:00:00</t:Start><t:End>2026-12-03T10:30:00Z</t:End>{zone}</t:CalendarItem>"#,
            ns::TYPES
        );
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        let item = parse_item(d.root_element()).unwrap();
        assert_eq!(item.fields[0].1, "<t:Start>2026-12-03T10:00:00Z</t:Start>");
        assert_eq!(item.fields[1].1, "<t:End>2026-12-03T10:30:00Z</t:End>", "an explicit offset wins");
        assert!(item.fields[2].1.starts_with("<t:StartTimeZone Id=\"Tokyo\">"), "the definition is kept");
    }
}

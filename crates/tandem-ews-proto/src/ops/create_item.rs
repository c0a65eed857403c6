//! CreateItem: messages (SaveOnly, SendOnly, SendAndSaveCopy), calendar items, contacts, tasks
//! and generic items, from typed properties or MIME content. [`ItemData`] is also how a client
//! writes an item and how it reads the items of an answer.

use base64::Engine as _;
use tandem_xml::{Node, child, children, text};

use super::{BuildRequest, need, opt};
use crate::reply::{self, MessageError, ReplyError};
use crate::types::{ExtendedField, FolderRef, ITEM_ELEMENTS, ItemRef};
use crate::{ProtoError, ResponseCode, format_datetime, ns, parse_bool, parse_datetime};

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

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::SaveOnly => "SaveOnly",
            Disposition::SendOnly => "SendOnly",
            Disposition::SendAndSaveCopy => "SendAndSaveCopy",
        }
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

/// The response objects CreateItem takes besides items (MS-OXWSMTGS), each naming its meeting
/// by `ReferenceItemId`: an attendee's answer, or the organizer's cancellation.
pub const RESPONSE_OBJECTS: &[&str] = &["AcceptItem", "TentativelyAcceptItem", "DeclineItem", "CancelCalendarItem"];

/// Reads an item element's properties.
pub fn parse_item(node: Node<'_, '_>) -> Result<ItemData, ProtoError> {
    let element = node.tag_name().name();
    if !ITEM_ELEMENTS.contains(&element) && !RESPONSE_OBJECTS.contains(&element) {
        return Err(ProtoError::new(
            ResponseCode::ErrorNotSupported,
            format!("Creating a {element} is not supported by this server."),
        ));
    }
    parse_properties(node, 0)
}

/// Reads an item embedded in an item attachment `depth` levels down.
pub(crate) fn parse_item_at(node: Node<'_, '_>, depth: usize) -> Result<ItemData, ProtoError> {
    parse_properties(node, depth)
}

/// Reads an item of an answer: its id and its other properties (any item element, including
/// those a request may not create, such as MeetingRequest).
pub fn parse_answer_item(node: Node<'_, '_>) -> Result<(ItemRef, ItemData), ProtoError> {
    let id = child(node, ns::TYPES, "ItemId")
        .ok_or_else(|| ProtoError::schema(format!("the {} has no ItemId", node.tag_name().name())))
        .and_then(ItemRef::parse)?;
    let mut data = parse_properties(node, 0)?;
    data.fields.retain(|(n, _)| n != "ItemId");
    Ok((id, data))
}

/// An item's properties; `depth` counts the item attachments it is embedded in (0: a root item).
fn parse_properties(node: Node<'_, '_>, depth: usize) -> Result<ItemData, ProtoError> {
    let element = node.tag_name().name().to_owned();
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
                d.attachments = super::attachments::parse_all_at(c, depth + 1)?;
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

impl ItemData {
    /// An item of `element` (`Message`, `CalendarItem`…) with no properties yet; the `with_`
    /// methods add them in schema order, the order the caller must follow.
    pub fn new(element: &str) -> ItemData {
        ItemData { element: element.to_owned(), ..ItemData::default() }
    }

    /// Adds a property already written as XML with the `t:` prefix; `name` is its local name.
    pub fn with_field(mut self, name: &str, xml: String) -> ItemData {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.to_owned(), xml));
        self
    }

    fn with_text(self, name: &str, value: &str) -> ItemData {
        let xml = format!("<t:{name}>{}</t:{name}>", tandem_xml::escape(value));
        self.with_field(name, xml)
    }

    pub fn with_item_class(mut self, class: &str) -> ItemData {
        self.item_class = Some(class.to_owned());
        self.with_text("ItemClass", class)
    }

    pub fn with_subject(mut self, subject: &str) -> ItemData {
        self.subject = Some(subject.to_owned());
        self.with_text("Subject", subject)
    }

    /// `t:Body` of `body_type` (`Text` or `HTML`).
    pub fn with_body(self, body_type: &str, body: &str) -> ItemData {
        let xml =
            format!("<t:Body BodyType=\"{}\">{}</t:Body>", tandem_xml::escape(body_type), tandem_xml::escape(body));
        self.with_field("Body", xml)
    }

    /// `ToRecipients`, `CcRecipients` or `BccRecipients` by SMTP address.
    pub fn with_recipients(mut self, kind: &str, addresses: &[&str]) -> ItemData {
        let mut xml = format!("<t:{kind}>");
        for a in addresses {
            xml.push_str(&format!("<t:Mailbox><t:EmailAddress>{}</t:EmailAddress></t:Mailbox>", tandem_xml::escape(a)));
            self.recipients.push((*a).to_owned());
        }
        xml.push_str(&format!("</t:{kind}>"));
        self.with_field(kind, xml)
    }

    /// The item a response object answers (its `ReferenceItemId`).
    pub fn reference(&self) -> Option<ItemRef> {
        let (_, xml) = self.fields.iter().find(|(n, _)| n == "ReferenceItemId")?;
        let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", ns::TYPES);
        let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
        let node = tandem_xml::children(doc.root_element()).next()?;
        // ItemIdType's attributes, under the response object's own element name.
        let id = node.attribute("Id")?;
        Some(ItemRef { id: id.to_owned(), change_key: node.attribute("ChangeKey").map(str::to_owned) })
    }

    /// A response object answering `item` (an AcceptItem… of [`RESPONSE_OBJECTS`]).
    pub fn response(element: &str, item: &ItemRef) -> ItemData {
        let ck =
            item.change_key.as_ref().map(|c| format!(" ChangeKey=\"{}\"", tandem_xml::escape(c))).unwrap_or_default();
        let xml = format!("<t:ReferenceItemId Id=\"{}\"{ck}/>", tandem_xml::escape(&item.id));
        ItemData { element: element.to_owned(), fields: vec![("ReferenceItemId".into(), xml)], ..ItemData::default() }
    }

    /// A file or item attachment created with the item.
    pub fn with_attachment(mut self, attachment: super::attachments::NewAttachment) -> ItemData {
        self.attachments.push(attachment);
        self
    }

    pub fn with_is_read(mut self, read: bool) -> ItemData {
        self.is_read = Some(read);
        self.with_text("IsRead", if read { "true" } else { "false" })
    }

    /// A calendar item's `Start` or `End` (other names are written as date-times too).
    pub fn with_time(mut self, name: &str, unix: i64) -> ItemData {
        match name {
            "Start" => self.start = Some(unix),
            "End" => self.end = Some(unix),
            _ => {}
        }
        self.with_text(name, &format_datetime(unix))
    }

    pub fn with_extended(mut self, field: ExtendedField, values: Vec<String>) -> ItemData {
        self.extended.retain(|(f, _)| f.key() != field.key());
        self.extended.push((field, values));
        self
    }

    /// The item element as [`parse_item`] reads it.
    pub fn to_xml(&self) -> String {
        let mut s = format!("<t:{}>", self.element);
        if let Some(mime) = &self.mime {
            s.push_str(&format!(
                "<t:MimeContent>{}</t:MimeContent>",
                base64::engine::general_purpose::STANDARD.encode(mime)
            ));
        }
        let split = self.fields.iter().position(|(n, _)| !crate::item_schema::precedes_extended_properties(n));
        let (base, own) = self.fields.split_at(split.unwrap_or(self.fields.len()));
        for (name, xml) in base {
            if name == "Attachments" {
                continue;
            }
            s.push_str(xml);
            if name == "Body" {
                self.attachments_xml(&mut s);
            }
        }
        if !base.iter().any(|(n, _)| n == "Body") {
            self.attachments_xml(&mut s);
        }
        for (field, values) in &self.extended {
            s.push_str(&crate::render::extended_property(field, values, crate::render::is_multi(&field.property_type)));
        }
        for (_, xml) in own {
            s.push_str(xml);
        }
        s.push_str(&format!("</t:{}>", self.element));
        s
    }

    fn attachments_xml(&self, s: &mut String) {
        if !self.attachments.is_empty() {
            s.push_str("<t:Attachments>");
            for a in &self.attachments {
                s.push_str(&a.to_xml());
            }
            s.push_str("</t:Attachments>");
        }
    }
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

    /// Saves `items` in `folder` (MessageDisposition SaveOnly).
    pub fn save(folder: FolderRef, items: Vec<ItemData>) -> Request {
        Request {
            disposition: Some(Disposition::SaveOnly),
            send_invitations: None,
            saved_folder: Some(folder),
            items: items.into_iter().map(Ok).collect(),
        }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "CreateItem";

    /// Items that failed to parse (only a parsed request has them) are left out.
    fn to_xml(&self) -> String {
        let mut s = String::from("<m:CreateItem");
        if let Some(d) = self.disposition {
            s.push_str(&format!(" MessageDisposition=\"{}\"", d.as_str()));
        }
        if let Some(i) = &self.send_invitations {
            s.push_str(&format!(" SendMeetingInvitations=\"{}\"", tandem_xml::escape(i)));
        }
        s.push('>');
        if let Some(f) = &self.saved_folder {
            s.push_str(&format!("<m:SavedItemFolderId>{}</m:SavedItemFolderId>", f.to_xml()));
        }
        s.push_str("<m:Items>");
        for item in self.items.iter().flatten() {
            s.push_str(&item.to_xml());
        }
        s.push_str("</m:Items></m:CreateItem>");
        s
    }
}

/// Reads a CreateItem answer: for each item asked for, the ids of what was created.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Vec<Result<Vec<ItemRef>, MessageError>>, ReplyError> {
    items_of(doc, "CreateItem")?
        .into_iter()
        .map(|r| match r {
            Ok(items) => Ok(Ok(items.into_iter().map(|(id, _)| id).collect())),
            Err(e) => Ok(Err(e)),
        })
        .collect()
}

/// Per response message, its items (id and properties) or its error.
pub type AnswerItems = Vec<Result<Vec<(ItemRef, ItemData)>, MessageError>>;

/// The items of each response message's `m:Items` (CreateItem, GetItem, UpdateItem…).
pub fn items_of(doc: &tandem_xml::Document<'_>, operation: &str) -> Result<AnswerItems, ReplyError> {
    let mut out = Vec::new();
    for m in reply::messages(doc, operation)? {
        match m.result() {
            Err(e) => out.push(Err(e)),
            Ok(node) => {
                let items = match child(node, ns::MESSAGES, "Items") {
                    Some(list) => children(list)
                        .map(parse_answer_item)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| ReplyError::unexpected(operation, e.message))?,
                    None => Vec::new(),
                };
                out.push(Ok(items));
            }
        }
    }
    Ok(out)
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

#[cfg(test)]
mod response_object_tests {
    use super::*;

    #[test]
    fn an_accept_names_its_meeting_request_both_ways() {
        let r = ItemRef { id: "AAMk=".into(), change_key: Some("CK".into()) };
        let d = ItemData::response("AcceptItem", &r);
        assert_eq!(d.reference(), Some(r.clone()));
        let xml = format!(
            r#"<t:AcceptItem xmlns:t="{}"><t:ReferenceItemId Id="AAMk=" ChangeKey="CK"/></t:AcceptItem>"#,
            ns::TYPES
        );
        let doc = tandem_xml::parse(xml.as_bytes(), Default::default()).unwrap();
        let parsed = parse_item(doc.root_element()).unwrap();
        assert_eq!((parsed.element.as_str(), parsed.reference()), ("AcceptItem", Some(r)));
    }
}

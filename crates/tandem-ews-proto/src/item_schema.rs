//! What the EWS schema (types.xsd, MS-OXWSCORE and the per-type MS-OXWS* documents) says about
//! item properties, for rendering them as Exchange does: the order of each item type's
//! elements, which elements are date-times (stored as instants, written in UTC with `Z`), and
//! the values Exchange returns for properties a client never set. Clients built on the EWS
//! Managed API read these defaults (a calendar application reads `IsAllDayEvent`,
//! `LegacyFreeBusyStatus`, `Organizer`…) and fail when they are absent.

use crate::{format_datetime, parse_datetime};

/// `ItemType`'s sequence (every item element starts with it).
const ITEM: &[&str] = &[
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderNextTime",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "HasAttachments",
    "ExtendedProperty",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "Flag",
    "StoreEntryId",
    "InstanceKey",
    "NormalizedBody",
    "EntityExtractionResult",
    "PolicyTag",
    "ArchiveTag",
    "RetentionDate",
    "Preview",
    "TextBody",
    "IconIndex",
];

/// Whether `name` is one of ItemType's properties before ExtendedProperty: a client's extended
/// properties are written after these and before the element's own (Message's ToRecipients…).
pub(crate) fn precedes_extended_properties(name: &str) -> bool {
    ITEM.iter().take_while(|n| **n != "ExtendedProperty").any(|n| *n == name)
}

/// `MessageType`'s extension of `ItemType`.
const MESSAGE: &[&str] = &[
    "Sender",
    "ToRecipients",
    "CcRecipients",
    "BccRecipients",
    "IsReadReceiptRequested",
    "IsDeliveryReceiptRequested",
    "ConversationIndex",
    "ConversationTopic",
    "From",
    "InternetMessageId",
    "IsRead",
    "IsResponseRequested",
    "References",
    "ReplyTo",
    "ReceivedBy",
    "ReceivedRepresenting",
    "ApprovalRequestData",
    "VotingInformation",
    "ReminderMessageData",
];

/// `CalendarItemType`'s extension of `ItemType`.
const CALENDAR: &[&str] = &[
    "UID",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "When",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "Recurrence",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "MeetingTimeZone",
    "StartTimeZone",
    "EndTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
    "EnhancedLocation",
    "StartWallClock",
    "EndWallClock",
    "StartTimeZoneId",
    "EndTimeZoneId",
    "IntendedFreeBusyStatus",
    "JoinOnlineMeetingUrl",
    "OnlineMeetingSettings",
    "IsOrganizer",
];

/// `ContactItemType`'s extension of `ItemType`.
const CONTACT: &[&str] = &[
    "FileAs",
    "FileAsMapping",
    "DisplayName",
    "GivenName",
    "Initials",
    "MiddleName",
    "Nickname",
    "CompleteName",
    "CompanyName",
    "EmailAddresses",
    "PhysicalAddresses",
    "PhoneNumbers",
    "AssistantName",
    "Birthday",
    "BusinessHomePage",
    "Children",
    "Companies",
    "ContactSource",
    "Department",
    "Generation",
    "ImAddresses",
    "JobTitle",
    "Manager",
    "Mileage",
    "OfficeLocation",
    "PostalAddressIndex",
    "Profession",
    "SpouseName",
    "Surname",
    "WeddingAnniversary",
    "HasPicture",
    "PhoneticFullName",
    "PhoneticFirstName",
    "PhoneticLastName",
    "Alias",
    "Notes",
    "Photo",
    "UserSMIMECertificate",
    "MSExchangeCertificate",
    "DirectoryId",
    "ManagerMailbox",
    "DirectReports",
];

/// `DistributionListType`'s extension of `ItemType`.
const DISTRIBUTION_LIST: &[&str] = &["DisplayName", "FileAs", "ContactSource", "Members"];

/// `TaskType`'s extension of `ItemType`.
const TASK: &[&str] = &[
    "ActualWork",
    "AssignedTime",
    "BillingInformation",
    "ChangeCount",
    "Companies",
    "CompleteDate",
    "Contacts",
    "DelegationState",
    "Delegator",
    "DueDate",
    "IsAssignmentEditable",
    "IsComplete",
    "IsRecurring",
    "IsTeamTask",
    "Mileage",
    "Owner",
    "PercentComplete",
    "Recurrence",
    "StartDate",
    "Status",
    "StatusDescription",
    "TotalWork",
];

/// The extension sequence of an item element (empty for plain `Item`).
fn extension(element: &str) -> &'static [&'static str] {
    match element {
        "Message" | "MeetingRequest" | "MeetingResponse" | "MeetingCancellation" => MESSAGE,
        "CalendarItem" => CALENDAR,
        "Contact" => CONTACT,
        "Task" => TASK,
        "DistributionList" => DISTRIBUTION_LIST,
        _ => &[],
    }
}

/// Where `name` goes among an `element`'s children: ItemType's elements first, then the type's
/// own, then anything the schema does not list for the type (kept in the order given).
pub fn rank(element: &str, name: &str) -> usize {
    if let Some(n) = ITEM.iter().position(|x| *x == name) {
        return n;
    }
    let ext = extension(element);
    match ext.iter().position(|x| *x == name) {
        Some(n) => ITEM.len() + n,
        None => ITEM.len() + ext.len(),
    }
}

/// Item elements of type xs:dateTime that a client may set.
pub const DATETIME_FIELDS: &[&str] = &[
    "ReminderDueBy",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "AppointmentReplyTime",
    "Birthday",
    "WeddingAnniversary",
    "AssignedTime",
    "CompleteDate",
    "DueDate",
    "StartDate",
];

/// `<t:NAME>` with `value` as an instant in UTC, the form Exchange answers with whatever offset
/// or zone the client wrote.
pub fn datetime_element(name: &str, unix: i64) -> String {
    format!("<t:{name}>{}</t:{name}>", format_datetime(unix))
}

/// A stored date-time element rewritten in UTC (`None` when `name` is not a date-time field or
/// its text is not an xs:dateTime).
pub fn normalize_datetime(name: &str, xml: &str) -> Option<String> {
    if !DATETIME_FIELDS.contains(&name) {
        return None;
    }
    let open = xml.find('>')?;
    let close = xml.rfind("</")?;
    let inner = xml.get(open + 1..close)?;
    Some(datetime_element(name, parse_datetime(inner)?))
}

/// What the server knows about an item beyond its stored elements, to compute defaults.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub element: &'a str,
    pub id: &'a str,
    pub subject: &'a str,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// The mailbox owner (organizer of their own appointments, owner of their tasks).
    pub owner_name: &'a str,
    pub owner_smtp: &'a str,
    /// The caller owns the mailbox (full rights) rather than reading it as a delegate.
    pub own: bool,
    /// The message has been sent (From is the owner) rather than being a draft or received.
    pub from_me: bool,
    pub stored: &'a [(String, String)],
}

impl Facts<'_> {
    fn has(&self, name: &str) -> bool {
        self.stored.iter().any(|(n, _)| n == name)
    }

    fn stored(&self, name: &str) -> Option<&str> {
        self.stored.iter().find(|(n, _)| n == name).map(|(_, x)| x.as_str())
    }
}

fn el(name: &'static str, value: impl std::fmt::Display) -> (&'static str, String) {
    (name, format!("<t:{name}>{value}</t:{name}>"))
}

/// The `t:Mailbox` of a single address.
pub fn mailbox(name: &str, smtp: &str) -> String {
    format!(
        "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>",
        tandem_xml::escape(name),
        tandem_xml::escape(smtp)
    )
}

/// `Name` (else `EmailAddress`) of each mailbox in a stored recipient list, `; `-joined as
/// Exchange writes DisplayTo and DisplayCc (in the stored, escaped form).
fn display_list(xml: Option<&str>) -> String {
    let Some(xml) = xml else { return String::new() };
    let mut names = Vec::new();
    for part in xml.split("<t:Mailbox>").skip(1) {
        let pick = |tag: &str| {
            let open = format!("<t:{tag}>");
            let at = part.find(&open)? + open.len();
            Some(part[at..at + part[at..].find("</")?].to_owned())
        };
        if let Some(n) = pick("Name").filter(|n| !n.is_empty()).or_else(|| pick("EmailAddress")) {
            names.push(n);
        }
    }
    names.join("; ")
}

/// xs:duration of `seconds` as Exchange writes it (`PT1H`, `PT30M`, `P1DT2H`, `PT0S`).
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h > 0 || m > 0 || sec > 0 || d == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if sec > 0 || (h == 0 && m == 0 && d == 0) {
            out.push_str(&format!("{sec}S"));
        }
    }
    out
}

/// A stable 16-byte id (base64) for the conversation of a subject: Exchange groups messages
/// by their normalized topic, as this does.
fn conversation_id(topic: &str) -> String {
    use base64::Engine as _;
    // FNV-1a over the lowercased topic, twice with different offsets: stable across releases
    // and platforms, which is all an id needs (it is not a secret).
    let fnv = |offset: u64| {
        topic.to_lowercase().bytes().fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The subject without reply and forward prefixes (`RE:`, `FW:`, `Fwd:`), as ConversationTopic.
pub fn conversation_topic(subject: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(p) = ["re:", "fw:", "fwd:", "aw:", "wg:"].iter().find(|p| lower.starts_with(*p)) else { break };
        s = s[p.len()..].trim_start();
    }
    s.to_owned()
}

/// The `UTC` time zone definition Tandem's instants are in, as StartTimeZone/EndTimeZone.
fn utc_zone(name: &'static str) -> (&'static str, String) {
    let def = crate::ops::get_server_time_zones::utc_definition();
    let inner = def.strip_prefix("<t:TimeZoneDefinition").and_then(|d| d.strip_suffix("</t:TimeZoneDefinition>"));
    (name, format!("<t:{name}{}</t:{name}>", inner.unwrap_or(" Id=\"UTC\">")))
}

/// Default elements Exchange returns for an item whose client never set them, for the names
/// that are not stored. The handler adds these to the computed properties; the shape decides
/// which are written.
pub fn defaults(f: &Facts<'_>) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut add = |pair: (&'static str, String)| {
        if !f.has(pair.0) {
            out.push(pair);
        }
    };
    add(el("Sensitivity", "Normal"));
    add(el("Importance", "Normal"));
    add(el("IsSubmitted", "false"));
    if f.element != "Message" {
        add(el("IsDraft", "false"));
    }
    add(el("IsFromMe", f.from_me));
    add(el("IsResend", "false"));
    add(el("IsUnmodified", "false"));
    let calendar = f.element == "CalendarItem";
    add(el("ReminderIsSet", calendar));
    add(el("ReminderMinutesBeforeStart", if calendar { 15 } else { 0 }));
    if calendar && let Some(s) = f.start {
        add(("ReminderDueBy", datetime_element("ReminderDueBy", s)));
    }
    // Names taken from stored elements are escaped already.
    add(el("DisplayCc", display_list(f.stored("CcRecipients"))));
    add(el("DisplayTo", display_list(f.stored("ToRecipients"))));
    add(el("Culture", "en-US"));
    let rights = if f.own {
        "<t:CreateAssociated>false</t:CreateAssociated><t:CreateContents>false</t:CreateContents><t:CreateHierarchy>false</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems>"
    } else {
        "<t:CreateAssociated>false</t:CreateAssociated><t:CreateContents>false</t:CreateContents><t:CreateHierarchy>false</t:CreateHierarchy><t:Delete>false</t:Delete><t:Modify>false</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>false</t:ViewPrivateItems>"
    };
    add(el("EffectiveRights", rights));
    add(el("LastModifiedName", tandem_xml::escape(f.owner_name)));
    add(el("IsAssociated", "false"));
    let topic = conversation_topic(f.subject);
    add(("ConversationId", format!("<t:ConversationId Id=\"{}\"/>", conversation_id(&topic))));
    match f.element {
        "Message" => {
            add(el("IsReadReceiptRequested", "false"));
            add(el("IsDeliveryReceiptRequested", "false"));
            add(el("ConversationTopic", tandem_xml::escape(&topic)));
            add(el("IsResponseRequested", "false"));
        }
        "CalendarItem" => calendar_defaults(f, &mut add),
        "Contact" => {
            let text = |n: &str| f.stored(n).map(inner_text).unwrap_or_default();
            let (given, surname) = (text("GivenName"), text("Surname"));
            let file_as = match (given.is_empty(), surname.is_empty()) {
                (false, false) => format!("{surname}, {given}"),
                (true, false) => surname.clone(),
                (false, true) => given.clone(),
                (true, true) => text("DisplayName"),
            };
            // Built from stored element text, which is escaped already.
            add(el("FileAs", file_as));
            // CompleteNameType: Title, FirstName, MiddleName, LastName, Suffix, Initials,
            // FullName, Nickname (the parts the contact has; FullName always).
            let full = match text("DisplayName") {
                d if !d.is_empty() => d,
                _ => [given.as_str(), surname.as_str()]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let mut complete = String::new();
            for (part, from) in [
                ("FirstName", given.clone()),
                ("MiddleName", text("MiddleName")),
                ("LastName", surname.clone()),
                ("Initials", text("Initials")),
                ("FullName", full),
                ("Nickname", text("Nickname")),
            ] {
                if !from.is_empty() || part == "FullName" {
                    complete.push_str(&format!("<t:{part}>{from}</t:{part}>"));
                }
            }
            add(el("CompleteName", complete));
            add(el("ContactSource", "Store"));
            add(el("HasPicture", "false"));
        }
        "Task" => {
            // Status and PercentComplete follow each other as on Exchange: Completed is 100 %,
            // 100 % is Completed, anything between is InProgress; IsComplete says Completed.
            let text = |n: &str| f.stored(n).map(inner_text).map(|t| t.trim().to_owned());
            let percent = text("PercentComplete").and_then(|p| p.parse::<f64>().ok());
            let status = text("Status").unwrap_or_else(|| {
                match percent {
                    Some(p) if p >= 100.0 => "Completed",
                    Some(p) if p > 0.0 => "InProgress",
                    _ => "NotStarted",
                }
                .to_owned()
            });
            let done = status == "Completed";
            add(el("ChangeCount", 1));
            add(el("DelegationState", "NoMatch"));
            add(el("IsAssignmentEditable", 0));
            add(el("IsComplete", done));
            add(el("IsRecurring", f.has("Recurrence")));
            add(el("IsTeamTask", "false"));
            add(el("Owner", tandem_xml::escape(f.owner_name)));
            add(el("PercentComplete", if done { 100 } else { 0 }));
            add(el("Status", status));
        }
        _ => {}
    }
    out
}

fn calendar_defaults(f: &Facts<'_>, add: &mut impl FnMut((&'static str, String))) {
    let recurring = f.has("Recurrence");
    let meeting = f.has("RequiredAttendees") || f.has("OptionalAttendees") || f.has("Resources");
    add(el("UID", tandem_xml::escape(f.id)));
    add(el("IsAllDayEvent", "false"));
    add(el("LegacyFreeBusyStatus", "Busy"));
    add(el("IsMeeting", meeting));
    add(el("IsCancelled", "false"));
    add(el("IsRecurring", recurring));
    add(el("MeetingRequestWasSent", "false"));
    add(el("IsResponseRequested", meeting));
    add(el("CalendarItemType", if recurring { "RecurringMaster" } else { "Single" }));
    add(el("MyResponseType", "Organizer"));
    add(("Organizer", format!("<t:Organizer>{}</t:Organizer>", mailbox(f.owner_name, f.owner_smtp))));
    add(el("ConflictingMeetingCount", 0));
    add(el("AdjacentMeetingCount", 0));
    if let (Some(s), Some(e)) = (f.start, f.end) {
        add(el("Duration", duration(e - s)));
    }
    // A zone the client sent governs both ends and names TimeZone, as on Exchange.
    let sent = f.stored("StartTimeZone");
    let zone_name = sent
        .and_then(|x| {
            let at = x.find(" Name=\"")? + 7;
            Some(x[at..at + x[at..].find('"')?].to_owned())
        })
        .unwrap_or_else(|| "(UTC) Coordinated Universal Time".to_owned());
    add(el("TimeZone", zone_name));
    add(el("AppointmentSequenceNumber", 0));
    add(el("AppointmentState", if meeting { 1 } else { 0 }));
    add(utc_zone("StartTimeZone"));
    match sent.and_then(|x| x.strip_prefix("<t:StartTimeZone")).and_then(|x| x.strip_suffix("</t:StartTimeZone>")) {
        Some(inner) => add(("EndTimeZone", format!("<t:EndTimeZone{inner}</t:EndTimeZone>"))),
        None => add(utc_zone("EndTimeZone")),
    }
    add(el("AllowNewTimeProposal", "true"));
    add(el("IsOnlineMeeting", "false"));
}

/// The text between an element's start and end tags (entities left as written).
pub fn inner_text(xml: &str) -> String {
    match (xml.find('>'), xml.rfind("</")) {
        (Some(a), Some(b)) if a < b && !xml[..=a].ends_with("/>") => xml[a + 1..b].to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_come_out_in_utc() {
        assert_eq!(
            normalize_datetime("Start", "<t:Start>2026-12-03T10:00:00.000+00:00</t:Start>").as_deref(),
            Some("<t:Start>2026-12-03T10:00:00Z</t:Start>")
        );
        assert_eq!(
            normalize_datetime("End", "<t:End>2026-12-03T12:30:00+02:00</t:End>").as_deref(),
            Some("<t:End>2026-12-03T10:30:00Z</t:End>")
        );
        assert_eq!(normalize_datetime("Subject", "<t:Subject>x</t:Subject>"), None);
        assert_eq!(normalize_datetime("DueDate", "<t:DueDate>soon</t:DueDate>"), None);
    }

    #[test]
    fn order_follows_the_schema() {
        assert!(rank("CalendarItem", "ItemId") < rank("CalendarItem", "Subject"));
        assert!(rank("CalendarItem", "HasAttachments") < rank("CalendarItem", "UID"));
        assert!(rank("CalendarItem", "Start") < rank("CalendarItem", "End"));
        assert!(rank("CalendarItem", "Organizer") < rank("CalendarItem", "StartTimeZone"));
        assert!(rank("Message", "Sender") < rank("Message", "IsRead"));
        assert!(rank("Contact", "Surname") > rank("Contact", "DisplayName"));
        assert_eq!(rank("Message", "Nonsense"), rank("Message", "Nonsense2"));
    }

    #[test]
    fn durations_and_topics() {
        assert_eq!(duration(3600), "PT1H");
        assert_eq!(duration(1800), "PT30M");
        assert_eq!(duration(0), "PT0S");
        assert_eq!(duration(93_600), "P1DT2H");
        assert_eq!(conversation_topic("RE: Fwd: lunch"), "lunch");
    }

    #[test]
    fn task_status_and_percent_follow_each_other() {
        let run = |stored: Vec<(String, String)>| {
            let f = Facts {
                element: "Task",
                id: "T",
                subject: "x",
                start: None,
                end: None,
                owner_name: "Alice",
                owner_smtp: "alice@example.com",
                own: true,
                from_me: false,
                stored: &stored,
            };
            defaults(&f)
        };
        let get = |d: &[(&str, String)], n: &str| d.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        let d = run(vec![("Status".into(), "<t:Status>Completed</t:Status>".into())]);
        assert_eq!(get(&d, "PercentComplete").as_deref(), Some("<t:PercentComplete>100</t:PercentComplete>"));
        assert_eq!(get(&d, "IsComplete").as_deref(), Some("<t:IsComplete>true</t:IsComplete>"));
        let d = run(vec![("PercentComplete".into(), "<t:PercentComplete>50</t:PercentComplete>".into())]);
        assert_eq!(get(&d, "Status").as_deref(), Some("<t:Status>InProgress</t:Status>"));
        assert_eq!(get(&d, "PercentComplete"), None, "kept as set");
        let d = run(vec![("PercentComplete".into(), "<t:PercentComplete>100</t:PercentComplete>".into())]);
        assert_eq!(get(&d, "Status").as_deref(), Some("<t:Status>Completed</t:Status>"));
        let d = run(Vec::new());
        assert_eq!(get(&d, "Status").as_deref(), Some("<t:Status>NotStarted</t:Status>"));
        assert_eq!(get(&d, "IsComplete").as_deref(), Some("<t:IsComplete>false</t:IsComplete>"));
    }

    #[test]
    fn calendar_defaults_respect_what_is_stored() {
        let stored = vec![(
            "LegacyFreeBusyStatus".to_owned(),
            "<t:LegacyFreeBusyStatus>Free</t:LegacyFreeBusyStatus>".to_owned(),
        )];
        let f = Facts {
            element: "CalendarItem",
            id: "AAA",
            subject: "Standup",
            start: Some(0),
            end: Some(1800),
            owner_name: "Alice",
            owner_smtp: "alice@example.com",
            own: true,
            from_me: false,
            stored: &stored,
        };
        let d = defaults(&f);
        let get = |n: &str| d.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("LegacyFreeBusyStatus"), None);
        assert_eq!(get("IsAllDayEvent"), Some("<t:IsAllDayEvent>false</t:IsAllDayEvent>"));
        assert_eq!(get("CalendarItemType"), Some("<t:CalendarItemType>Single</t:CalendarItemType>"));
        assert_eq!(get("Duration"), Some("<t:Duration>PT30M</t:Duration>"));
        assert!(get("Organizer").is_some_and(|o| o.contains("alice@example.com")));
        assert!(get("StartTimeZone").is_some_and(|z| z.starts_with("<t:StartTimeZone Id=\"UTC\"")));

        let stored = vec![(
            "StartTimeZone".to_owned(),
            "<t:StartTimeZone Id=\"Tokyo Standard Time\" Name=\"(UTC+09:00) Tokyo\"><t:Periods/></t:StartTimeZone>"
                .to_owned(),
        )];
        let d = defaults(&Facts { stored: &stored, ..f });
        let get = |n: &str| d.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("StartTimeZone"), None, "kept as sent");
        assert_eq!(
            get("EndTimeZone"),
            Some("<t:EndTimeZone Id=\"Tokyo Standard Time\" Name=\"(UTC+09:00) Tokyo\"><t:Periods/></t:EndTimeZone>")
        );
        assert_eq!(get("TimeZone"), Some("<t:TimeZone>(UTC+09:00) Tokyo</t:TimeZone>"));
    }
}

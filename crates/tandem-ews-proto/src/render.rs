//! Rendering folders and items under a shape, and the EWS response envelope and faults.

use tandem_xml::soap;

use crate::types::{BaseShape, ExtendedField, PropertyPath, Shape, folder_element};
use crate::{ResponseCode, ns, version};

const NAMESPACES: &[(&str, &str)] = &[("m", ns::MESSAGES), ("t", ns::TYPES), ("xsi", ns::XSI)];

/// A successful (or response-message-level failing) EWS response.
pub fn envelope(body: &str) -> String {
    soap::envelope(NAMESPACES, &version::server_version_info(), body)
}

/// A SOAP fault as Exchange sends it: `faultcode` names the response code in the types
/// namespace; `detail` carries `e:ResponseCode` and `e:Message`. Sent with HTTP 500.
pub fn fault(code: ResponseCode, message: &str) -> String {
    fault_with_detail(code, message, "")
}

/// A fault whose detail also carries `message_xml` (rendered `t:` elements) in
/// `<t:MessageXml>`, as Exchange adds to some codes.
fn fault_with_detail(code: ResponseCode, message: &str, message_xml: &str) -> String {
    let esc = tandem_xml::escape(message);
    let extra =
        if message_xml.is_empty() { String::new() } else { format!("<t:MessageXml>{message_xml}</t:MessageXml>") };
    let body = format!(
        "<s:Fault><faultcode xmlns:a=\"{types}\">a:{code}</faultcode><faultstring xml:lang=\"en-US\">{esc}</faultstring>\
         <detail><e:ResponseCode xmlns:e=\"{errors}\">{code}</e:ResponseCode><e:Message xmlns:e=\"{errors}\">{esc}</e:Message>{extra}</detail></s:Fault>",
        types = ns::TYPES,
        errors = ns::ERRORS,
        code = code.as_str(),
    );
    soap::envelope(NAMESPACES, &version::server_version_info(), &body)
}

/// The throttling fault: `ErrorServerBusy` with the time to wait before retrying, as Exchange
/// sends it (`<t:Value Name="BackOffMilliseconds">` in the detail's MessageXml).
pub fn server_busy_fault(back_off_ms: u64) -> String {
    fault_with_detail(
        ResponseCode::ErrorServerBusy,
        "The server cannot service this request right now. Try again later.",
        &format!("<t:Value Name=\"BackOffMilliseconds\">{back_off_ms}</t:Value>"),
    )
}

/// Writes `<t:ExtendedProperty>` with one value or a `Values` list.
pub fn extended_property(field: &ExtendedField, values: &[String], multi: bool) -> String {
    let mut s = format!("<t:ExtendedProperty>{}", field.render());
    if multi {
        s.push_str("<t:Values>");
        for v in values {
            s.push_str(&format!("<t:Value>{}</t:Value>", tandem_xml::escape(v)));
        }
        s.push_str("</t:Values>");
    } else {
        s.push_str(&format!(
            "<t:Value>{}</t:Value>",
            tandem_xml::escape(values.first().map(String::as_str).unwrap_or(""))
        ));
    }
    s.push_str("</t:ExtendedProperty>");
    s
}

/// True for array property types (`StringArray`, `IntegerArray`…).
pub fn is_multi(property_type: &str) -> bool {
    property_type.ends_with("Array")
}

/// `<t:FolderId Id=… ChangeKey=…/>` (or another element name).
pub fn id_element(name: &str, id: &str, change_key: &str) -> String {
    format!("<t:{name} Id=\"{}\" ChangeKey=\"{}\"/>", tandem_xml::escape(id), tandem_xml::escape(change_key))
}

/// A folder as the handler knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderView {
    pub id: String,
    pub change_key: String,
    pub parent: Option<(String, String)>,
    pub class: String,
    pub display_name: String,
    pub total: i64,
    pub unread: i64,
    pub child_count: i64,
    /// Values of the extended properties the shape asked for (absent ones left out).
    pub extended: Vec<(ExtendedField, Vec<String>)>,
}

pub fn folder(f: &FolderView, shape: &Shape) -> String {
    folder_with_rights(f, shape, FolderRights::Owner)
}

/// What the caller may do in a folder, for `EffectiveRights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRights {
    /// The mailbox's owner: everything.
    Owner,
    /// A delegate reading it: read only.
    Reader,
}

/// `<t:EffectiveRights>` as Exchange writes it for folders.
pub fn folder_rights(rights: FolderRights) -> String {
    let all = rights == FolderRights::Owner;
    format!(
        "<t:EffectiveRights><t:CreateAssociated>{all}</t:CreateAssociated><t:CreateContents>{all}</t:CreateContents><t:CreateHierarchy>{all}</t:CreateHierarchy><t:Delete>{all}</t:Delete><t:Modify>{all}</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>{all}</t:ViewPrivateItems></t:EffectiveRights>"
    )
}

/// A folder under a shape, with the caller's rights for `EffectiveRights` (AllProperties, or
/// `folder:EffectiveRights`), in BaseFolderType's order.
pub fn folder_with_rights(f: &FolderView, shape: &Shape, rights: FolderRights) -> String {
    let el = folder_element(&f.class);
    let mut s = format!("<t:{el}>{}", id_element("FolderId", &f.id, &f.change_key));
    let all = shape.base == BaseShape::AllProperties;
    let default = shape.base != BaseShape::IdOnly;
    if let Some((pid, pck)) = &f.parent
        && (all || shape.wants("folder:ParentFolderId"))
    {
        s.push_str(&id_element("ParentFolderId", pid, pck));
    }
    if all || shape.wants("folder:FolderClass") {
        s.push_str(&format!("<t:FolderClass>{}</t:FolderClass>", tandem_xml::escape(&f.class)));
    }
    if default || shape.wants("folder:DisplayName") {
        s.push_str(&format!("<t:DisplayName>{}</t:DisplayName>", tandem_xml::escape(&f.display_name)));
    }
    if default || shape.wants("folder:TotalCount") {
        s.push_str(&format!("<t:TotalCount>{}</t:TotalCount>", f.total));
    }
    if default || shape.wants("folder:ChildFolderCount") {
        s.push_str(&format!("<t:ChildFolderCount>{}</t:ChildFolderCount>", f.child_count));
    }
    for (field, values) in &f.extended {
        s.push_str(&extended_property(field, values, is_multi(&field.property_type)));
    }
    if all || shape.wants("folder:EffectiveRights") {
        s.push_str(&folder_rights(rights));
    }
    if matches!(el, "Folder" | "TasksFolder") && (default || shape.wants("folder:UnreadCount")) {
        s.push_str(&format!("<t:UnreadCount>{}</t:UnreadCount>", f.unread));
    }
    s.push_str(&format!("</t:{el}>"));
    s
}

/// Server-computed item properties that a stored element never overrides.
pub const COMPUTED: &[&str] = &[
    "ItemId",
    "ParentFolderId",
    "DateTimeReceived",
    "DateTimeCreated",
    "LastModifiedTime",
    "Size",
    "HasAttachments",
    "IsRead",
    "IsDraft",
    "DateTimeSent",
    "MimeContent",
    "ConversationId",
];

/// Properties a Default shape returns, besides the id.
const DEFAULT_FIELDS: &[&str] = &[
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "DateTimeReceived",
    "Size",
    "HasAttachments",
    "IsRead",
    "From",
    "ToRecipients",
    "Start",
    "End",
    "Location",
    "Organizer",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "DisplayName",
    "EmailAddresses",
    "DateTimeCreated",
];

/// An item as the handler knows it: computed elements (already rendered, with the `t:` prefix)
/// and the stored elements of the client's own request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemView {
    pub element: &'static str,
    pub id: String,
    pub change_key: String,
    /// (element local name, rendered element) for server-computed properties.
    pub computed: Vec<(&'static str, String)>,
    /// (element local name, rendered element) for stored properties.
    pub stored: Vec<(String, String)>,
    /// Extended properties the shape asked for, with their stored values.
    pub extended: Vec<(ExtendedField, Vec<String>)>,
}

/// An item's element with the properties the shape selects, in the schema's order
/// ([`crate::item_schema::rank`]), as Exchange writes them.
pub fn item(i: &ItemView, shape: &Shape) -> String {
    let wanted = |name: &str| -> bool {
        match shape.base {
            BaseShape::AllProperties => name != "MimeContent" || shape.include_mime,
            BaseShape::Default if DEFAULT_FIELDS.contains(&name) => true,
            _ => {
                (name == "MimeContent" && shape.include_mime)
                    || shape.additional.iter().any(|p| p.element_name() == Some(name))
            }
        }
    };
    let rank = |name: &str| crate::item_schema::rank(i.element, name);
    // An item embedded in an item attachment has no id of its own (empty `id`).
    let id = if i.id.is_empty() { String::new() } else { id_element("ItemId", &i.id, &i.change_key) };
    let mut parts: Vec<(usize, &str)> = vec![(rank("ItemId"), id.as_str())];
    for (name, xml) in &i.computed {
        if wanted(name) {
            parts.push((rank(name), xml));
        }
    }
    for (name, xml) in &i.stored {
        if !COMPUTED.contains(&name.as_str()) && !i.computed.iter().any(|(n, _)| n == name) && wanted(name) {
            parts.push((rank(name), xml));
        }
    }
    let extended: Vec<String> = i
        .extended
        .iter()
        .map(|(field, values)| extended_property(field, values, is_multi(&field.property_type)))
        .collect();
    let ext_rank = rank("ExtendedProperty");
    parts.extend(extended.iter().map(|x| (ext_rank, x.as_str())));
    // Stable: elements of one rank (extended properties, unknown names) keep their order.
    parts.sort_by_key(|(r, _)| *r);
    let mut s = format!("<t:{}>", i.element);
    for (_, xml) in parts {
        s.push_str(xml);
    }
    s.push_str(&format!("</t:{}>", i.element));
    s
}

/// The GetStreamingEvents framing Exchange uses for each batch on the open response: an
/// unprefixed `<Envelope xmlns="…soap/envelope/">` with no XML declaration, which is the text
/// the Managed API and its ports search the chunked stream for to cut it into envelopes.
pub fn streaming_envelope(body: &str) -> String {
    format!(
        "<Envelope xmlns=\"{env}\"><soap11:Header xmlns:soap11=\"{env}\">{version}</soap11:Header><soap11:Body xmlns:soap11=\"{env}\" xmlns:m=\"{m}\" xmlns:t=\"{t}\" xmlns:xsi=\"{xsi}\">{body}</soap11:Body></Envelope>",
        env = tandem_xml::soap::SOAP11,
        version = version::server_version_info(),
        m = ns::MESSAGES,
        t = ns::TYPES,
        xsi = ns::XSI,
    )
}

/// The extended fields a shape asks for.
pub fn requested_extended(shape: &Shape) -> Vec<&ExtendedField> {
    shape
        .additional
        .iter()
        .filter_map(|p| match p {
            PropertyPath::Extended(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_envelopes_are_framed_as_exchange_frames_them() {
        let e = streaming_envelope("<m:GetStreamingEventsResponse/>");
        assert!(e.starts_with("<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\">"), "{e}");
        assert!(e.ends_with("</Envelope>") && !e.contains("<?xml"), "{e}");
        // It is a well-formed SOAP envelope a reader without the framing trick understands too.
        let doc = tandem_xml::parse(e.as_bytes(), Default::default()).unwrap();
        let env = tandem_xml::soap::Envelope::of(&doc).unwrap();
        assert!(tandem_xml::is(env.operation, ns::MESSAGES, "GetStreamingEventsResponse"));
        assert!(env.header.is_some());
    }
}

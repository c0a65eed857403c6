//! What the Unified Contact Store operations (MS-OXWSCOS) share: the IM group and persona
//! types of their answers (`ImGroupType`, `PersonaType`, `ImItemListType`) written and read in
//! schema order, and the single-message response form these operations use (`ResponseClass`,
//! `ResponseCode` directly on `{Op}Response`, no ResponseMessages wrapper).

use tandem_xml::{Node, child, children, escape, text};

use crate::reply::{Message, MessageError, ReplyError};
use crate::types::ItemRef;
use crate::{ProtoError, ResponseCode, format_datetime, ns, parse_datetime};

/// The default group every list has (`IPM.DistList.MOC.OtherContacts`).
pub const OTHER_CONTACTS: &str = "IPM.DistList.MOC.OtherContacts";
/// The Favorites group.
pub const FAVORITES: &str = "IPM.DistList.MOC.Favorites";
/// The Tagged group (contacts whose presence changes the user follows).
pub const TAGGED: &str = "IPM.DistList.MOC.Tagged";
/// A group the user made.
pub const USER_GROUP: &str = "IPM.DistList.MOC.UserGroup";
/// A distribution group of the directory on the list.
pub const DISTRIBUTION_GROUP: &str = "IPM.DistList.MOC.DG";

/// The groups a new list starts with, with their display names, in the order Exchange lists them.
pub const DEFAULT_GROUPS: &[(&str, &str)] =
    &[(OTHER_CONTACTS, "Other Contacts"), (TAGGED, "Tagged"), (FAVORITES, "Favorites")];

/// Operations that are new in Exchange 2013: older RequestServerVersion values are refused
/// with ErrorIncorrectSchemaVersion, as Exchange refuses them.
pub const OPERATIONS: &[&str] = &[
    "GetImItemList",
    "GetImItems",
    "AddImGroup",
    "SetImGroup",
    "RemoveImGroup",
    "AddNewImContactToGroup",
    "AddImContactToGroup",
    "RemoveImContactFromGroup",
    "RemoveContactFromImList",
    "AddNewTelUriContactToGroup",
    "AddDistributionGroupToImList",
    "RemoveDistributionGroupFromImList",
    "SetImListMigrationCompleted",
];

/// One IM group (`ImGroupType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImGroup {
    pub display_name: String,
    pub group_type: String,
    /// ExchangeStoreId: the group item.
    pub id: ItemRef,
    /// MemberCorrelationKey: the contact items of its members.
    pub members: Vec<ItemRef>,
    pub smtp_address: Option<String>,
}

fn id_xml(prefix: &str, name: &str, r: &ItemRef) -> String {
    match &r.change_key {
        Some(ck) => format!("<{prefix}:{name} Id=\"{}\" ChangeKey=\"{}\"/>", escape(&r.id), escape(ck)),
        None => format!("<{prefix}:{name} Id=\"{}\"/>", escape(&r.id)),
    }
}

fn leaf(s: &mut String, name: &str, value: &str) {
    s.push_str(&format!("<t:{name}>{}</t:{name}>", escape(value)));
}

impl ImGroup {
    /// `<{prefix}:ImGroup>` (`m` directly under a response, `t` inside `Groups`).
    pub fn render(&self, prefix: &str) -> String {
        let mut s = format!("<{prefix}:ImGroup>");
        leaf(&mut s, "DisplayName", &self.display_name);
        leaf(&mut s, "GroupType", &self.group_type);
        s.push_str(&id_xml("t", "ExchangeStoreId", &self.id));
        if !self.members.is_empty() {
            s.push_str("<t:MemberCorrelationKey>");
            for m in &self.members {
                s.push_str(&id_xml("t", "ItemId", m));
            }
            s.push_str("</t:MemberCorrelationKey>");
        }
        if let Some(a) = &self.smtp_address {
            leaf(&mut s, "SmtpAddress", a);
        }
        s.push_str(&format!("</{prefix}:ImGroup>"));
        s
    }

    pub fn parse(node: Node<'_, '_>) -> Result<ImGroup, ProtoError> {
        let t = ns::TYPES;
        let f = |n: &str| child(node, t, n).map(text);
        let id = child(node, t, "ExchangeStoreId")
            .map(parse_id)
            .transpose()?
            .ok_or_else(|| ProtoError::schema("ImGroup needs ExchangeStoreId"))?;
        let members = match child(node, t, "MemberCorrelationKey") {
            Some(k) => children(k).map(parse_id).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(ImGroup {
            display_name: f("DisplayName").unwrap_or_default(),
            group_type: f("GroupType").unwrap_or_default(),
            id,
            members,
            smtp_address: f("SmtpAddress"),
        })
    }
}

/// One contact persona (`PersonaType`), made from one contact item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    /// PersonaId (the contact item's id: a persona here joins exactly one contact).
    pub id: String,
    pub created: i64,
    pub display_name: String,
    pub given_name: String,
    pub surname: String,
    /// The contact's SMTP address, when it has one.
    pub email: Option<String>,
    /// The contact's IM address (`sip:…` or `tel:…`).
    pub im_address: Option<String>,
    /// The contact item (Attribution SourceId).
    pub source: ItemRef,
    /// The folder holding the contact item (Attribution FolderId).
    pub folder: ItemRef,
    /// Whether the contact item lives in Quick Contacts.
    pub quick_contact: bool,
}

impl Persona {
    /// `<{prefix}:Persona>` with the elements of `PersonaType` this contact has, in schema order.
    pub fn render(&self, prefix: &str) -> String {
        let mut s = format!("<{prefix}:Persona>");
        s.push_str(&format!("<t:PersonaId Id=\"{}\"/>", escape(&self.id)));
        leaf(&mut s, "PersonaType", "Person");
        leaf(&mut s, "CreationTime", &format_datetime(self.created));
        let first_last = self.name_first_last();
        let last_first = match (self.given_name.is_empty(), self.surname.is_empty()) {
            (false, false) => format!("{} {}", self.surname, self.given_name),
            _ => first_last.clone(),
        };
        leaf(&mut s, "DisplayName", &self.display_name);
        leaf(&mut s, "DisplayNameFirstLast", &first_last);
        leaf(&mut s, "DisplayNameLastFirst", &last_first);
        if !self.given_name.is_empty() && !self.surname.is_empty() {
            leaf(&mut s, "FileAs", &format!("{}, {}", self.surname, self.given_name));
            leaf(&mut s, "FileAsId", "LastCommaFirst");
        } else {
            leaf(&mut s, "FileAsId", "None");
        }
        if !self.given_name.is_empty() {
            leaf(&mut s, "GivenName", &self.given_name);
        }
        if !self.surname.is_empty() {
            leaf(&mut s, "Surname", &self.surname);
        }
        let email = self.email.as_ref().map(|e| {
            format!(
                "<t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType>",
                escape(&self.display_name),
                escape(e)
            )
        });
        if let Some(e) = &email {
            s.push_str(&format!("<t:EmailAddress>{e}</t:EmailAddress>"));
            s.push_str(&format!("<t:EmailAddresses><t:EmailAddress>{e}</t:EmailAddress></t:EmailAddresses>"));
        }
        if let Some(im) = &self.im_address {
            leaf(&mut s, "ImAddress", im);
        }
        leaf(&mut s, "RelevanceScore", "2147483647");
        s.push_str("<t:Attributions><t:Attribution><t:Id>0</t:Id>");
        s.push_str(&id_xml("t", "SourceId", &self.source));
        s.push_str(&format!(
            "<t:DisplayName>Outlook</t:DisplayName><t:IsWritable>true</t:IsWritable><t:IsQuickContact>{}</t:IsQuickContact><t:IsHidden>false</t:IsHidden>",
            self.quick_contact
        ));
        s.push_str(&id_xml("t", "FolderId", &self.folder));
        s.push_str("</t:Attribution></t:Attributions>");
        let attributed = |value: &str| {
            format!(
                "<t:StringAttributedValue><t:Value>{}</t:Value><t:Attributions><t:Attribution>0</t:Attribution></t:Attributions></t:StringAttributedValue>",
                escape(value)
            )
        };
        s.push_str(&format!("<t:DisplayNames>{}</t:DisplayNames>", attributed(&self.display_name)));
        if !self.given_name.is_empty() {
            s.push_str(&format!("<t:GivenNames>{}</t:GivenNames>", attributed(&self.given_name)));
        }
        if !self.surname.is_empty() {
            s.push_str(&format!("<t:Surnames>{}</t:Surnames>", attributed(&self.surname)));
        }
        if let Some(e) = &email {
            s.push_str(&format!(
                "<t:Emails1><t:EmailAddressAttributedValue><t:Value>{e}</t:Value><t:Attributions><t:Attribution>0</t:Attribution></t:Attributions></t:EmailAddressAttributedValue></t:Emails1>"
            ));
        }
        if let Some(im) = &self.im_address {
            s.push_str(&format!("<t:ImAddresses>{}</t:ImAddresses>", attributed(im)));
        }
        s.push_str(&format!("</{prefix}:Persona>"));
        s
    }

    fn name_first_last(&self) -> String {
        match (self.given_name.is_empty(), self.surname.is_empty()) {
            (false, false) => format!("{} {}", self.given_name, self.surname),
            _ => self.display_name.clone(),
        }
    }

    pub fn parse(node: Node<'_, '_>) -> Result<Persona, ProtoError> {
        let t = ns::TYPES;
        let f = |n: &str| child(node, t, n).map(text);
        let id = child(node, t, "PersonaId")
            .and_then(|p| p.attribute("Id"))
            .ok_or_else(|| ProtoError::schema("Persona needs PersonaId"))?
            .to_owned();
        let attribution = child(node, t, "Attributions").and_then(|a| child(a, t, "Attribution"));
        let from_attribution = |n: &str| attribution.and_then(|a| child(a, t, n));
        let source = from_attribution("SourceId")
            .map(parse_id)
            .transpose()?
            .unwrap_or(ItemRef { id: id.clone(), change_key: None });
        let folder = from_attribution("FolderId")
            .map(parse_id)
            .transpose()?
            .unwrap_or(ItemRef { id: String::new(), change_key: None });
        Ok(Persona {
            created: f("CreationTime").and_then(|c| parse_datetime(&c)).unwrap_or(0),
            display_name: f("DisplayName").unwrap_or_default(),
            given_name: f("GivenName").unwrap_or_default(),
            surname: f("Surname").unwrap_or_default(),
            email: child(node, t, "EmailAddress").and_then(|e| child(e, t, "EmailAddress")).map(text),
            im_address: f("ImAddress"),
            quick_contact: from_attribution("IsQuickContact").map(text).as_deref() == Some("true"),
            source,
            folder,
            id,
        })
    }
}

/// The list a user's IM client shows (`ImItemListType`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImItemList {
    pub groups: Vec<ImGroup>,
    pub personas: Vec<Persona>,
}

impl ImItemList {
    /// `<m:ImItemList>` with `t:Groups` and `t:Personas`.
    pub fn render(&self) -> String {
        let mut s = String::from("<m:ImItemList>");
        if !self.groups.is_empty() {
            s.push_str("<t:Groups>");
            for g in &self.groups {
                s.push_str(&g.render("t"));
            }
            s.push_str("</t:Groups>");
        }
        if !self.personas.is_empty() {
            s.push_str("<t:Personas>");
            for p in &self.personas {
                s.push_str(&p.render("t"));
            }
            s.push_str("</t:Personas>");
        }
        s.push_str("</m:ImItemList>");
        s
    }

    pub fn parse(node: Node<'_, '_>) -> Result<ImItemList, ProtoError> {
        let t = ns::TYPES;
        let groups = match child(node, t, "Groups") {
            Some(g) => children(g).map(ImGroup::parse).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let personas = match child(node, t, "Personas") {
            Some(p) => children(p).map(Persona::parse).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(ImItemList { groups, personas })
    }

    /// The personas of a group, in the group's member order.
    pub fn members_of<'a>(&'a self, group: &ImGroup) -> Vec<&'a Persona> {
        group.members.iter().filter_map(|m| self.personas.iter().find(|p| p.source.id == m.id)).collect()
    }
}

/// An id element (`t:ItemId`, `m:GroupId`, `t:ExchangeStoreId`…) of ItemIdType.
pub fn parse_id(node: Node<'_, '_>) -> Result<ItemRef, ProtoError> {
    let id = node
        .attribute("Id")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ProtoError::schema(format!("{} needs an Id", node.tag_name().name())))?;
    Ok(ItemRef { id: id.trim().to_owned(), change_key: node.attribute("ChangeKey").map(str::to_owned) })
}

/// `<m:{name} Id=… ChangeKey=…/>`: an ItemIdType element of a request.
pub fn request_id(name: &str, r: &ItemRef) -> String {
    id_xml("m", name, r)
}

/// The required `{messages}name` id child of a request.
pub fn need_id(op: Node<'_, '_>, name: &str) -> Result<ItemRef, ProtoError> {
    parse_id(super::need(op, name)?)
}

/// The optional `{messages}name` id child of a request.
pub fn opt_id(op: Node<'_, '_>, name: &str) -> Result<Option<ItemRef>, ProtoError> {
    super::opt(op, name).map(parse_id).transpose()
}

/// The required non-empty text of `{messages}name` (NonEmptyStringType), trimmed.
pub fn need_text(op: Node<'_, '_>, name: &str) -> Result<String, ProtoError> {
    let v = text(super::need(op, name)?).trim().to_owned();
    if v.is_empty() {
        return Err(ProtoError::schema(format!("{} needs a non-empty {name}", op.tag_name().name())));
    }
    Ok(v)
}

/// A successful answer: `<m:{op}Response ResponseClass="Success">` with `inner` after ResponseCode.
pub fn render_success(op: &str, inner: &str) -> String {
    format!(
        "<m:{op}Response ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{op}Response>"
    )
}

/// A failed answer, with its response code.
pub fn render_error(op: &str, code: ResponseCode, message: &str) -> String {
    format!(
        "<m:{op}Response ResponseClass=\"Error\"><m:MessageText>{}</m:MessageText><m:ResponseCode>{}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:{op}Response>",
        escape(message),
        code.as_str()
    )
}

/// Reads a single-message answer: the response element when it succeeded, its error otherwise.
pub fn parse_answer<'a, 'i>(
    doc: &'a tandem_xml::Document<'i>,
    op: &str,
) -> Result<Result<Node<'a, 'i>, MessageError>, ReplyError> {
    let node = crate::reply::response(doc, op)?;
    Ok(Message::of(node).result())
}

/// Reads an answer that carries nothing but its outcome.
pub fn parse_empty(doc: &tandem_xml::Document<'_>, op: &str) -> Result<Result<(), MessageError>, ReplyError> {
    Ok(parse_answer(doc, op)?.map(|_| ()))
}

/// Reads an answer carrying an `m:ImItemList`.
pub fn parse_list(doc: &tandem_xml::Document<'_>, op: &str) -> Result<Result<ImItemList, MessageError>, ReplyError> {
    let node = match parse_answer(doc, op)? {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let list = child(node, ns::MESSAGES, "ImItemList")
        .ok_or_else(|| ReplyError::unexpected(op, "a success without ImItemList"))?;
    ImItemList::parse(list).map(Ok).map_err(|e| ReplyError::unexpected(op, e.message))
}

/// Reads an answer carrying an `m:ImGroup`.
pub fn parse_group(doc: &tandem_xml::Document<'_>, op: &str) -> Result<Result<ImGroup, MessageError>, ReplyError> {
    let node = match parse_answer(doc, op)? {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let g =
        child(node, ns::MESSAGES, "ImGroup").ok_or_else(|| ReplyError::unexpected(op, "a success without ImGroup"))?;
    ImGroup::parse(g).map(Ok).map_err(|e| ReplyError::unexpected(op, e.message))
}

/// Reads an answer carrying an `m:Persona`.
pub fn parse_persona(doc: &tandem_xml::Document<'_>, op: &str) -> Result<Result<Persona, MessageError>, ReplyError> {
    let node = match parse_answer(doc, op)? {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let p =
        child(node, ns::MESSAGES, "Persona").ok_or_else(|| ReplyError::unexpected(op, "a success without Persona"))?;
    Persona::parse(p).map(Ok).map_err(|e| ReplyError::unexpected(op, e.message))
}

/// The whole wire side of an operation whose request names one IM group (`GroupId`) and whose
/// answer is empty — RemoveImGroup and RemoveDistributionGroupFromImList differ only in their
/// name — written once: `OPERATION`, `Request` (parsed and built), `render` and
/// `parse_response`, in the operation's own module.
macro_rules! group_id_operation {
    ($operation:literal) => {
        pub const OPERATION: &str = $operation;

        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Request {
            pub group_id: $crate::types::ItemRef,
        }

        impl Request {
            pub fn parse(op: tandem_xml::Node<'_, '_>) -> Result<Request, $crate::ProtoError> {
                Ok(Request { group_id: $crate::ops::im_items::need_id(op, "GroupId")? })
            }
        }

        impl $crate::ops::BuildRequest for Request {
            const OPERATION: &'static str = OPERATION;

            fn to_xml(&self) -> String {
                let id = $crate::ops::im_items::request_id("GroupId", &self.group_id);
                format!("<m:{OPERATION}>{id}</m:{OPERATION}>")
            }
        }

        /// The successful answer.
        pub fn render() -> String {
            $crate::ops::im_items::render_success(OPERATION, "")
        }

        /// Reads the answer.
        pub fn parse_response(
            doc: &tandem_xml::Document<'_>,
        ) -> Result<Result<(), $crate::reply::MessageError>, $crate::reply::ReplyError> {
            $crate::ops::im_items::parse_empty(doc, OPERATION)
        }
    };
}
pub(crate) use group_id_operation;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn persona() -> Persona {
        Persona {
            id: "AgAAAAAAAAAAAAAAAAAAAAAB".into(),
            created: 1_795_898_160,
            display_name: "Bob Brown".into(),
            given_name: "Bob".into(),
            surname: "Brown".into(),
            email: Some("bob@litwareinc.com".into()),
            im_address: Some("sip:bob@litwareinc.com".into()),
            source: ItemRef { id: "AgAAAAAAAAAAAAAAAAAAAAAB".into(), change_key: Some("CK".into()) },
            folder: ItemRef { id: "AQAAAAAAAAAAAAAAAAAAAAAB".into(), change_key: Some("CF".into()) },
            quick_contact: true,
        }
    }

    /// Wraps a rendered answer in an envelope and reads it back with the client's reader.
    pub(crate) fn envelope(body: &str) -> String {
        crate::render::envelope(body)
    }

    #[test]
    fn list_round_trips_in_schema_order() {
        let p = persona();
        let g = ImGroup {
            display_name: "Other Contacts".into(),
            group_type: OTHER_CONTACTS.into(),
            id: ItemRef { id: "AgAAAAAAAAAAAAAAAAAAAAAC".into(), change_key: Some("CG".into()) },
            members: vec![p.source.clone()],
            smtp_address: None,
        };
        let list = ImItemList { groups: vec![g.clone()], personas: vec![p.clone()] };
        let text = envelope(&render_success("GetImItemList", &list.render()));
        // Schema order of PersonaType: DisplayName before EmailAddress before ImAddress before
        // Attributions before DisplayNames before Emails1 before ImAddresses.
        let order = [
            "<t:PersonaId",
            "<t:DisplayName>",
            "<t:FileAs>",
            "<t:EmailAddress>",
            "<t:ImAddress>",
            "<t:RelevanceScore>",
            "<t:Attributions>",
            "<t:DisplayNames>",
            "<t:Emails1>",
            "<t:ImAddresses>",
        ];
        let persona_xml = &text[text.find("<t:Personas>").unwrap()..];
        let at: Vec<usize> =
            order.iter().map(|o| persona_xml.find(o).unwrap_or_else(|| panic!("{o} missing"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        let doc = crate::reply::parse(&text).unwrap();
        let back = parse_list(&doc, "GetImItemList").unwrap().unwrap();
        assert_eq!(back, list);
        assert_eq!(back.members_of(&g), vec![&p]);
    }

    #[test]
    fn errors_read_back_with_their_code() {
        let text = envelope(&render_error("AddImGroup", ResponseCode::ErrorImGroupLimitReached, "too many"));
        let doc = crate::reply::parse(&text).unwrap();
        let e = parse_group(&doc, "AddImGroup").unwrap().unwrap_err();
        assert_eq!((e.code.as_str(), e.text.as_str()), ("ErrorImGroupLimitReached", "too many"));
        let text = envelope(&render_success("SetImGroup", ""));
        let doc = crate::reply::parse(&text).unwrap();
        assert!(parse_empty(&doc, "SetImGroup").unwrap().is_ok());
        assert!(parse_empty(&doc, "RemoveImGroup").is_err());
    }

    fn parsed(xml: &str, version: &str) -> Result<super::super::Operation, ProtoError> {
        let env = super::super::request_envelope(version, xml);
        let doc = tandem_xml::parse(env.as_bytes(), tandem_xml::Limits::default()).unwrap();
        let env = tandem_xml::soap::Envelope::of(&doc).unwrap();
        super::super::parse(&env).map(|r| r.operation)
    }

    #[test]
    fn every_request_parses_back_from_what_a_client_builds() {
        use super::super::{BuildRequest, Operation, *};
        let id = |i: &str| ItemRef { id: i.into(), change_key: Some("CK".into()) };
        let req = add_new_im_contact_to_group::Request {
            im_address: "sip:bob@litwareinc.com".into(),
            display_name: Some("Bob & co".into()),
            group_id: Some(id("G1")),
        };
        assert_eq!(parsed(&req.to_xml(), "Exchange2013").unwrap(), Operation::AddNewImContactToGroup(req.clone()));
        let req = get_im_items::Request { contact_ids: vec![id("C1"), id("C2")], group_ids: vec![id("G1")] };
        assert_eq!(parsed(&req.to_xml(), "Exchange2016").unwrap(), Operation::GetImItems(req));
        let req = set_im_group::Request { group_id: id("G1"), new_display_name: "Team".into() };
        assert_eq!(parsed(&req.to_xml(), "Exchange2013").unwrap(), Operation::SetImGroup(req));
        let req = add_new_tel_uri_contact_to_group::Request {
            tel_uri_address: "tel:+14255550100".into(),
            im_contact_sip_uri_address: "sip:+14255550100@litwareinc.com;user=phone".into(),
            im_telephone_number: "+1 425 555 0100".into(),
            group_id: None,
        };
        assert_eq!(parsed(&req.to_xml(), "Exchange2013").unwrap(), Operation::AddNewTelUriContactToGroup(req));
        let req = set_im_list_migration_completed::Request { completed: true };
        assert_eq!(parsed(&req.to_xml(), "Exchange2013").unwrap(), Operation::SetImListMigrationCompleted(req));
        assert_eq!(
            parsed(&get_im_item_list::Request.to_xml(), "Exchange2013").unwrap(),
            Operation::GetImItemList(get_im_item_list::Request)
        );
    }

    #[test]
    fn bad_requests_are_refused_with_their_codes() {
        // New in Exchange 2013: an Exchange2010 request is refused.
        let e = parsed("<m:GetImItemList/>", "Exchange2010_SP2").unwrap_err();
        assert_eq!(e.code, ResponseCode::ErrorIncorrectSchemaVersion);
        for xml in [
            "<m:AddNewImContactToGroup/>",
            "<m:AddNewImContactToGroup><m:ImAddress>  </m:ImAddress></m:AddNewImContactToGroup>",
            "<m:AddImGroup/>",
            "<m:SetImGroup><m:GroupId Id=\"\"/><m:NewDisplayName>x</m:NewDisplayName></m:SetImGroup>",
            "<m:RemoveImContactFromGroup><m:ContactId Id=\"C\"/></m:RemoveImContactFromGroup>",
            "<m:SetImListMigrationCompleted><m:ImListMigrationCompleted>maybe</m:ImListMigrationCompleted></m:SetImListMigrationCompleted>",
            "<m:GetImItems><m:ContactIds><t:ItemId/></m:ContactIds></m:GetImItems>",
        ] {
            assert_eq!(parsed(xml, "Exchange2013").unwrap_err().code, ResponseCode::ErrorSchemaValidation, "{xml}");
        }
    }
}

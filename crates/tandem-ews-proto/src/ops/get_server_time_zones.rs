//! GetServerTimeZones: Tandem keeps times in UTC and offers the UTC zone definition, which is
//! what exchangelib asks for before free/busy.

use tandem_xml::{Node, children_named, text};

use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub ids: Vec<String>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let ids = tandem_xml::child(op, ns::MESSAGES, "Ids")
            .map(|ids| children_named(ids, ns::TYPES, "Id").map(text).collect())
            .unwrap_or_default();
        Ok(Request { ids })
    }
}

/// The UTC definition in the shape exchangelib accepts.
pub fn utc_definition() -> &'static str {
    "<t:TimeZoneDefinition Id=\"UTC\" Name=\"(UTC) Coordinated Universal Time\"><t:Periods><t:Period Bias=\"PT0H\" Name=\"Standard\" Id=\"Std\"/></t:Periods>\
     <t:TransitionsGroups><t:TransitionsGroup Id=\"0\"><t:Transition><t:To Kind=\"Period\">Std</t:To></t:Transition></t:TransitionsGroup></t:TransitionsGroups>\
     <t:Transitions><t:Transition><t:To Kind=\"Group\">0</t:To></t:Transition></t:Transitions></t:TimeZoneDefinition>"
}

//! AddNewTelUriContactToGroup: makes a telephone-number contact (a `tel:` URI) in Quick Contacts and puts it in a group; answers its persona.

use tandem_xml::{Node, escape};

use super::BuildRequest;
use super::im_items::{self, Persona};
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};
use crate::types::ItemRef;

pub const OPERATION: &str = "AddNewTelUriContactToGroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub tel_uri_address: String,
    pub im_contact_sip_uri_address: String,
    pub im_telephone_number: String,
    pub group_id: Option<ItemRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let tel_uri_address = im_items::need_text(op, "TelUriAddress")?;
        let im_contact_sip_uri_address = im_items::need_text(op, "ImContactSipUriAddress")?;
        let im_telephone_number = im_items::need_text(op, "ImTelephoneNumber")?;
        let group_id = im_items::opt_id(op, "GroupId")?;
        Ok(Request { tel_uri_address, im_contact_sip_uri_address, im_telephone_number, group_id })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [
            format!("<m:TelUriAddress>{}</m:TelUriAddress>", escape(&self.tel_uri_address)),
            format!(
                "<m:ImContactSipUriAddress>{}</m:ImContactSipUriAddress>",
                escape(&self.im_contact_sip_uri_address)
            ),
            format!("<m:ImTelephoneNumber>{}</m:ImTelephoneNumber>", escape(&self.im_telephone_number)),
            self.group_id.as_ref().map(|g| im_items::request_id("GroupId", g)).unwrap_or_default(),
        ]
        .concat();
        format!("<m:AddNewTelUriContactToGroup>{inner}</m:AddNewTelUriContactToGroup>")
    }
}

/// The successful answer.
pub fn render(persona: &Persona) -> String {
    im_items::render_success(OPERATION, &persona.render("m"))
}

/// Reads the answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<Persona, MessageError>, ReplyError> {
    im_items::parse_persona(doc, OPERATION)
}

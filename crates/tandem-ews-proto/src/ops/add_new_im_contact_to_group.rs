//! AddNewImContactToGroup: makes a contact for an IM address in Quick Contacts and puts it in a group (Other Contacts without GroupId); answers its persona.

use tandem_xml::{Node, escape, text};

use super::BuildRequest;
use super::im_items::{self, Persona};
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};
use crate::types::ItemRef;

pub const OPERATION: &str = "AddNewImContactToGroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub im_address: String,
    pub display_name: Option<String>,
    pub group_id: Option<ItemRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let im_address = im_items::need_text(op, "ImAddress")?;
        let display_name =
            super::opt(op, "DisplayName").map(text).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        let group_id = im_items::opt_id(op, "GroupId")?;
        Ok(Request { im_address, display_name, group_id })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [
            format!("<m:ImAddress>{}</m:ImAddress>", escape(&self.im_address)),
            self.display_name
                .as_ref()
                .map(|d| format!("<m:DisplayName>{}</m:DisplayName>", escape(d)))
                .unwrap_or_default(),
            self.group_id.as_ref().map(|g| im_items::request_id("GroupId", g)).unwrap_or_default(),
        ]
        .concat();
        format!("<m:AddNewImContactToGroup>{inner}</m:AddNewImContactToGroup>")
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

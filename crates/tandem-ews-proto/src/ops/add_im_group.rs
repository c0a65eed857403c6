//! AddImGroup: a new user group (`IPM.DistList.MOC.UserGroup`) on the list.

use tandem_xml::{Node, escape};

use super::BuildRequest;
use super::im_items::{self, ImGroup};
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};

pub const OPERATION: &str = "AddImGroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub display_name: String,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let display_name = im_items::need_text(op, "DisplayName")?;
        Ok(Request { display_name })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [format!("<m:DisplayName>{}</m:DisplayName>", escape(&self.display_name))].concat();
        format!("<m:AddImGroup>{inner}</m:AddImGroup>")
    }
}

/// The successful answer.
pub fn render(group: &ImGroup) -> String {
    im_items::render_success(OPERATION, &group.render("m"))
}

/// Reads the answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<ImGroup, MessageError>, ReplyError> {
    im_items::parse_group(doc, OPERATION)
}

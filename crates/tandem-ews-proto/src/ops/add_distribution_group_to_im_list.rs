//! AddDistributionGroupToImList: puts a distribution group of the directory on the list as a group of its own (`IPM.DistList.MOC.DG`).

use tandem_xml::{Node, escape};

use super::BuildRequest;
use super::im_items::{self, ImGroup};
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};

pub const OPERATION: &str = "AddDistributionGroupToImList";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub smtp_address: String,
    pub display_name: String,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let smtp_address = im_items::need_text(op, "SmtpAddress")?;
        let display_name = im_items::need_text(op, "DisplayName")?;
        Ok(Request { smtp_address, display_name })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [
            format!("<m:SmtpAddress>{}</m:SmtpAddress>", escape(&self.smtp_address)),
            format!("<m:DisplayName>{}</m:DisplayName>", escape(&self.display_name)),
        ]
        .concat();
        format!("<m:AddDistributionGroupToImList>{inner}</m:AddDistributionGroupToImList>")
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

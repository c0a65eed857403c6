//! SetImListMigrationCompleted: records whether the Front End finished moving the user's list into the mailbox.

use tandem_xml::{Node, text};

use super::BuildRequest;
use super::im_items;
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};

pub const OPERATION: &str = "SetImListMigrationCompleted";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub completed: bool,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let completed = crate::parse_bool(&text(super::need(op, "ImListMigrationCompleted")?))
            .ok_or_else(|| ProtoError::schema("ImListMigrationCompleted must be a boolean"))?;
        Ok(Request { completed })
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        let inner = [format!("<m:ImListMigrationCompleted>{}</m:ImListMigrationCompleted>", self.completed)].concat();
        format!("<m:SetImListMigrationCompleted>{inner}</m:SetImListMigrationCompleted>")
    }
}

/// The successful answer.
pub fn render() -> String {
    im_items::render_success(OPERATION, "")
}

/// Reads the answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<(), MessageError>, ReplyError> {
    im_items::parse_empty(doc, OPERATION)
}

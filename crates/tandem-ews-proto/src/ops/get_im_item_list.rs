//! GetImItemList: the user's whole IM list: every group with its members and every contact persona.

use tandem_xml::Node;

use super::BuildRequest;
use super::im_items::{self, ImItemList};
use crate::ProtoError;
use crate::reply::{MessageError, ReplyError};

pub const OPERATION: &str = "GetImItemList";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request;

impl Request {
    pub fn parse(_op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request)
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = OPERATION;

    fn to_xml(&self) -> String {
        "<m:GetImItemList/>".to_owned()
    }
}

/// The successful answer.
pub fn render(list: &ImItemList) -> String {
    im_items::render_success(OPERATION, &list.render())
}

/// Reads the answer.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Result<ImItemList, MessageError>, ReplyError> {
    im_items::parse_list(doc, OPERATION)
}

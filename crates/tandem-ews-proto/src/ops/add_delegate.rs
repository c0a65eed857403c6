//! AddDelegate and UpdateDelegate: the same request shape (UpdateDelegate changes existing ones).

use tandem_xml::{Node, child, text};

use super::delegates::{Delegate, parse_delegate_users, parse_mailbox};
use super::need;
use crate::{ProtoError, ns};

pub const DELIVER_VALUES: &[&str] =
    &["DelegatesOnly", "DelegatesAndMe", "DelegatesAndSendInformationToMe", "NoForward"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub mailbox: String,
    pub delegates: Vec<Delegate>,
    pub deliver: Option<String>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let deliver = child(op, ns::MESSAGES, "DeliverMeetingRequests").map(text);
        if let Some(d) = &deliver
            && !DELIVER_VALUES.contains(&d.as_str())
        {
            return Err(ProtoError::schema(format!("DeliverMeetingRequests {d} is not valid")));
        }
        let delegates = match child(op, ns::MESSAGES, "DelegateUsers") {
            Some(n) => parse_delegate_users(n)?,
            None if op.tag_name().name() == "UpdateDelegate" => Vec::new(),
            None => parse_delegate_users(need(op, "DelegateUsers")?)?,
        };
        Ok(Request { mailbox: parse_mailbox(op)?, delegates, deliver })
    }
}

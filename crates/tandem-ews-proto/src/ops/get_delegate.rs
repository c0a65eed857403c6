//! GetDelegate: the delegates of a mailbox, with their permissions when asked.

use tandem_xml::{Node, child, children};

use super::delegates::{parse_mailbox, parse_user_id};
use crate::{ProtoError, ns, parse_bool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub mailbox: String,
    /// Only these delegates (all when empty).
    pub users: Vec<String>,
    pub include_permissions: bool,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let users = match child(op, ns::MESSAGES, "UserIds") {
            Some(u) => children(u).map(parse_user_id).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Request {
            mailbox: parse_mailbox(op)?,
            users,
            include_permissions: op.attribute("IncludePermissions").and_then(parse_bool).unwrap_or(false),
        })
    }
}

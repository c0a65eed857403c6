//! RemoveDelegate: removes delegates by address.

use tandem_xml::{Node, children};

use super::delegates::{parse_mailbox, parse_user_id};
use super::need;
use crate::ProtoError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub mailbox: String,
    pub users: Vec<String>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request {
            mailbox: parse_mailbox(op)?,
            users: children(need(op, "UserIds")?).map(parse_user_id).collect::<Result<_, _>>()?,
        })
    }
}

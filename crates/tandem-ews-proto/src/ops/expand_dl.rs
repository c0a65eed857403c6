//! ExpandDL: the members of a distribution list. The directory has no distribution groups yet,
//! so every address resolves to no list (ErrorNameResolutionNoResults), as Exchange answers an
//! address that is not a group.

use tandem_xml::{Node, child, text};

use super::need;
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub address: String,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let m = need(op, "Mailbox")?;
        let address = child(m, ns::TYPES, "EmailAddress").map(text).unwrap_or_default();
        Ok(Request { address })
    }
}

//! CreateUserConfiguration: a new named configuration object in a folder (MS-OXWSUSRCFG).

use tandem_xml::Node;

use super::get_user_configuration::{ConfigName, Parts};
use super::need;
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: ConfigName,
    pub parts: Parts,
}

impl Request {
    /// Reads `m:UserConfiguration` (shared with UpdateUserConfiguration).
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let c = need(op, "UserConfiguration")?;
        let n = tandem_xml::child(c, ns::TYPES, "UserConfigurationName")
            .ok_or_else(|| ProtoError::schema("UserConfiguration needs UserConfigurationName"))?;
        Ok(Request { name: ConfigName::parse(n)?, parts: Parts::parse(c)? })
    }
}

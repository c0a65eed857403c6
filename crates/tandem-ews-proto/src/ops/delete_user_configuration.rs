//! DeleteUserConfiguration: removes a named configuration object of a folder.

use tandem_xml::Node;

use super::get_user_configuration::ConfigName;
use super::need;
use crate::ProtoError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: ConfigName,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        Ok(Request { name: ConfigName::parse(need(op, "UserConfigurationName")?)? })
    }
}

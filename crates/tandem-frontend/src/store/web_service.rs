//! The web service configuration (Set-CsWebServiceConfiguration) and the administrators of the
//! dashboard (the CsAdministrator role's members), kept in the store's settings map: both are
//! small lists read every few seconds by the running role, so a change applies without restart.

use super::{DataError, FrontendStore};

const CROSS_DOMAIN: &str = "frontend.web_service.cross_domain_authorization_list";
const ADMINISTRATORS: &str = "frontend.admin_role.cs_administrator";

/// Set-CsWebServiceConfiguration's settings this server has.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebServiceConfigRow {
    /// CrossDomainAuthorizationList: origins (`https://host[:port]`) allowed to call the UC web
    /// API from a browser; `None` until set (the Mailbox's HTTPS origin is then allowed).
    pub cross_domain_authorization_list: Option<Vec<String>>,
}

fn list_of(raw: Option<String>) -> Result<Option<Vec<String>>, DataError> {
    match raw {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v).map(Some).map_err(|e| DataError::Corrupt(format!("{CROSS_DOMAIN}: {e}"))),
    }
}

impl FrontendStore {
    pub async fn web_service_configuration(&self) -> Result<WebServiceConfigRow, DataError> {
        Ok(WebServiceConfigRow { cross_domain_authorization_list: list_of(self.store.setting(CROSS_DOMAIN).await?)? })
    }

    /// Replaces CrossDomainAuthorizationList.
    pub async fn set_cross_domain_authorization_list(&self, origins: &[String]) -> Result<(), DataError> {
        let v = serde_json::to_string(origins).map_err(|e| DataError::Corrupt(e.to_string()))?;
        Ok(self.store.set_setting(CROSS_DOMAIN, &v).await?)
    }

    /// The SIP URIs of the users in the CsAdministrator role (sorted).
    pub async fn administrators(&self) -> Result<Vec<String>, DataError> {
        Ok(list_of(self.store.setting(ADMINISTRATORS).await?)?.unwrap_or_default())
    }

    /// Replaces the CsAdministrator role's members.
    pub async fn set_administrators(&self, members: &[String]) -> Result<(), DataError> {
        let mut m: Vec<String> = members.iter().map(|s| s.to_ascii_lowercase()).collect();
        m.sort();
        m.dedup();
        let v = serde_json::to_string(&m).map_err(|e| DataError::Corrupt(e.to_string()))?;
        Ok(self.store.set_setting(ADMINISTRATORS, &v).await?)
    }
}

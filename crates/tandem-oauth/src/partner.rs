//! Partner applications as both roles store them (New-CsPartnerApplication / New-PartnerApplication),
//! with the last metadata document fetched, and the rules for their parameters.

use serde::{Deserialize, Serialize};

use crate::metadata::{self, MetadataError};
use crate::token::{TrustLevel, TrustedPartner};

/// One partner application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerApplication {
    /// `-Identity` (Skype for Business) or `-Name` (Exchange).
    pub name: String,
    /// Taken from the metadata document when registered by URL.
    pub application_identifier: String,
    pub auth_metadata_url: Option<String>,
    /// The partner's realm; `None` takes the metadata document's.
    pub realm: Option<String>,
    pub enabled: bool,
    pub application_trust_level: TrustLevel,
    #[serde(default)]
    pub accept_security_identifier_information: bool,
    #[serde(default)]
    pub linked_account: Option<String>,
    /// `Lync`, `SharePoint`, or none.
    #[serde(default)]
    pub application_type: Option<String>,
    /// RBAC roles granted (Exchange side).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The last good metadata document, as fetched.
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub metadata_fetched_at: Option<i64>,
    /// The last refresh failure, if the last refresh failed (the last good document stays in use).
    #[serde(default)]
    pub metadata_error: Option<String>,
}

impl PartnerApplication {
    /// The partner as the validator sees it, with the keys of its last metadata document.
    pub fn trusted(&self) -> Result<TrustedPartner, MetadataError> {
        let doc = match &self.metadata {
            Some(m) => Some(metadata::parse(m.as_bytes())?),
            None => None,
        };
        Ok(TrustedPartner {
            name: self.name.clone(),
            application_id: self.application_identifier.clone(),
            realm: self.realm.clone().or_else(|| doc.as_ref().map(|d| d.realm.clone())),
            enabled: self.enabled,
            trust_level: self.application_trust_level,
            keys: doc.map(|d| d.keys).unwrap_or_default(),
        })
    }
}

impl PartnerApplication {
    /// Records the result of a metadata refresh: a valid document for the same service replaces
    /// the last one; a failure is noted and the last good document stays in use. Returns whether
    /// anything changed.
    pub fn record_fetch(&mut self, result: Result<String, String>, now: i64) -> bool {
        let outcome = result.and_then(|doc| {
            let parsed = metadata::parse(doc.as_bytes()).map_err(|e| e.to_string())?;
            if parsed.service_name != self.application_identifier {
                return Err(format!(
                    "the document now names the service {}, not {}",
                    parsed.service_name, self.application_identifier
                ));
            }
            Ok(doc)
        });
        match outcome {
            Ok(doc) => {
                let changed = self.metadata.as_deref() != Some(doc.as_str()) || self.metadata_error.is_some();
                if changed {
                    self.metadata = Some(doc);
                    self.metadata_error = None;
                    self.metadata_fetched_at = Some(now);
                }
                changed
            }
            Err(e) => {
                let changed = self.metadata_error.as_deref() != Some(e.as_str());
                self.metadata_error = Some(e);
                changed
            }
        }
    }
}

/// Copies refreshed metadata into the partner list as stored now, so an admin change made while
/// the documents were downloading (a new, removed or re-pointed partner) is kept. Both roles'
/// refresh loops use it.
pub fn merge_refreshed(latest: &mut [PartnerApplication], refreshed: &[PartnerApplication]) {
    for l in latest.iter_mut() {
        if let Some(p) = refreshed.iter().find(|p| p.name == l.name && p.auth_metadata_url == l.auth_metadata_url) {
            l.metadata = p.metadata.clone();
            l.metadata_error = p.metadata_error.clone();
            l.metadata_fetched_at = p.metadata_fetched_at;
        }
    }
}

/// Checks a downloaded metadata document (`download` is the body, or why it could not be
/// fetched); the error is worded as New-CsPartnerApplication words it.
pub fn check_download(
    url: &str,
    download: Result<String, String>,
) -> Result<(String, metadata::PartnerMetadata), String> {
    let body = download.map_err(|e| metadata_download_error(url, &e))?;
    let parsed = metadata::parse(body.as_bytes()).map_err(|e| metadata_download_error(url, &e.to_string()))?;
    Ok((body, parsed))
}

/// The error New-CsPartnerApplication gives when the document cannot be used.
pub fn metadata_download_error(url: &str, reason: &str) -> String {
    format!(
        "The metadata document could not be downloaded from the URL {url} or downloaded data is not a valid metadata document ({reason})"
    )
}

/// Checks a metadata URL: absolute `https://`; `allow_http` admits `http://` (loopback tests).
pub fn check_metadata_url(url: &str, allow_http: bool) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        if !allow_http {
            return Err(format!("{url}: plain http is refused; use https://"));
        }
        r
    } else {
        return Err(format!("{url}: not an absolute https:// URL"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url}: no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url}: contains spaces"));
    }
    Ok(())
}

/// Checks `-ExchangeAutodiscoverUrl`: https, and the SOAP `.svc` endpoint, not POX `.xml`.
pub fn check_autodiscover_url(url: &str) -> Result<(), String> {
    check_metadata_url(url, false)?;
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    if path.ends_with("/autodiscover.xml") {
        return Err(format!(
            "{url}: points at autodiscover.xml; use https://…/autodiscover/autodiscover.svc (Skype for Business uses SOAP Autodiscover)"
        ));
    }
    if !path.ends_with("/autodiscover/autodiscover.svc") {
        return Err(format!("{url}: must end in /autodiscover/autodiscover.svc"));
    }
    Ok(())
}

/// Checks `-ExchangeAutodiscoverAllowedDomains`: `;`-separated names, each optionally `*.`-prefixed.
pub fn check_allowed_domains(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in list.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let name = item.strip_prefix("*.").unwrap_or(item);
        let ok = !name.is_empty()
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(format!("{item}: not a domain or *.domain"));
        }
        out.push(item.to_ascii_lowercase());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(check_autodiscover_url("https://autodiscover.litwareinc.com/autodiscover/autodiscover.svc").is_ok());
        assert!(check_autodiscover_url("https://autodiscover.litwareinc.com/Autodiscover/Autodiscover.svc").is_ok());
        let e =
            check_autodiscover_url("https://autodiscover.litwareinc.com/autodiscover/autodiscover.xml").unwrap_err();
        assert!(e.contains("points at autodiscover.xml; use https://…/autodiscover/autodiscover.svc"), "{e}");
        assert!(
            check_autodiscover_url("http://autodiscover.litwareinc.com/autodiscover/autodiscover.svc")
                .unwrap_err()
                .contains("plain http")
        );
        assert!(check_metadata_url("http://127.0.0.1:1/x", true).is_ok());
        assert!(check_metadata_url("ftp://x", true).is_err());
        assert_eq!(check_allowed_domains("*.a.com; b.com;").unwrap(), vec!["*.a.com", "b.com"]);
        assert!(check_allowed_domains("a..com").is_err());
    }
}

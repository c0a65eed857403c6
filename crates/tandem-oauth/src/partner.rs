//! Partner applications as both roles store them (New-CsPartnerApplication / New-PartnerApplication),
//! with the last metadata document fetched, and the rules for their parameters.

use serde::{Deserialize, Serialize};

use crate::metadata::{self, MetadataError};
use crate::token::{TrustLevel, TrustedPartner};

/// One partner application. The default is an empty, disabled record to fill in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    pub fn record_fetch(&mut self, result: Result<String, DownloadError>, now: i64) -> bool {
        let outcome = result.map_err(RefreshError::Download).and_then(|doc| {
            let parsed = metadata::parse(doc.as_bytes()).map_err(RefreshError::Invalid)?;
            if parsed.service_name != self.application_identifier {
                return Err(RefreshError::ServiceChanged {
                    now: parsed.service_name,
                    was: self.application_identifier.clone(),
                });
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
                let e = e.to_string();
                let changed = self.metadata_error.as_deref() != Some(e.as_str());
                self.metadata_error = Some(e);
                changed
            }
        }
    }
}

/// Why a refresh kept the last good document (stored as text in `metadata_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Download(DownloadError),
    #[error("{0}")]
    Invalid(MetadataError),
    #[error("the document now names the service {now}, not {was}")]
    ServiceChanged { now: String, was: String },
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

/// Why a downloaded document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadReason {
    /// The download itself failed (the HTTP client's words).
    #[error("{0}")]
    Fetch(String),
    #[error("{0}")]
    Invalid(MetadataError),
}

/// A metadata document that could not be downloaded or used, worded as New-CsPartnerApplication
/// words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The metadata document could not be downloaded from the URL {url} or downloaded data is not a valid metadata document ({reason})"
)]
pub struct DownloadError {
    pub url: String,
    pub reason: DownloadReason,
}

/// Checks a downloaded metadata document (`download` is the body, or why it could not be
/// fetched).
pub fn check_download<E: std::fmt::Display>(
    url: &str,
    download: Result<String, E>,
) -> Result<(String, metadata::PartnerMetadata), DownloadError> {
    let fail = |reason| DownloadError { url: url.to_owned(), reason };
    let body = download.map_err(|e| fail(DownloadReason::Fetch(e.to_string())))?;
    let parsed = metadata::parse(body.as_bytes()).map_err(|e| fail(DownloadReason::Invalid(e)))?;
    Ok((body, parsed))
}

/// A URL parameter that breaks the rules for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0}: plain http is refused; use https://")]
    PlainHttp(String),
    #[error("{0}: not an absolute https:// URL")]
    NotAbsolute(String),
    #[error("{0}: no host")]
    NoHost(String),
    #[error("{0}: contains spaces")]
    Spaces(String),
    #[error(
        "{0}: points at autodiscover.xml; use https://…/autodiscover/autodiscover.svc (Skype for Business uses SOAP Autodiscover)"
    )]
    PoxAutodiscover(String),
    #[error("{0}: must end in /autodiscover/autodiscover.svc")]
    NotAutodiscoverSvc(String),
}

/// Checks a metadata URL: absolute `https://`; `allow_http` admits `http://` (loopback tests).
pub fn check_metadata_url(url: &str, allow_http: bool) -> Result<(), UrlError> {
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        if !allow_http {
            return Err(UrlError::PlainHttp(url.to_owned()));
        }
        r
    } else {
        return Err(UrlError::NotAbsolute(url.to_owned()));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(UrlError::NoHost(url.to_owned()));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Spaces(url.to_owned()));
    }
    Ok(())
}

/// Checks `-ExchangeAutodiscoverUrl`: https, and the SOAP `.svc` endpoint, not POX `.xml`.
pub fn check_autodiscover_url(url: &str) -> Result<(), UrlError> {
    check_metadata_url(url, false)?;
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    if path.ends_with("/autodiscover.xml") {
        return Err(UrlError::PoxAutodiscover(url.to_owned()));
    }
    if !path.ends_with("/autodiscover/autodiscover.svc") {
        return Err(UrlError::NotAutodiscoverSvc(url.to_owned()));
    }
    Ok(())
}

/// An entry of `-ExchangeAutodiscoverAllowedDomains` that is not a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: not a domain or *.domain")]
pub struct DomainListError(pub String);

/// Checks `-ExchangeAutodiscoverAllowedDomains`: `;`-separated names, each optionally `*.`-prefixed.
pub fn check_allowed_domains(list: &str) -> Result<Vec<String>, DomainListError> {
    let mut out = Vec::new();
    for item in list.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let name = item.strip_prefix("*.").unwrap_or(item);
        let ok = !name.is_empty()
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(DomainListError(item.to_owned()));
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
        assert!(
            e.to_string().contains("points at autodiscover.xml; use https://…/autodiscover/autodiscover.svc"),
            "{e}"
        );
        assert!(
            check_autodiscover_url("http://autodiscover.litwareinc.com/autodiscover/autodiscover.svc")
                .unwrap_err()
                .to_string()
                .contains("plain http")
        );
        assert!(check_metadata_url("http://127.0.0.1:1/x", true).is_ok());
        assert!(check_metadata_url("ftp://x", true).is_err());
        assert_eq!(check_allowed_domains("*.a.com; b.com;").unwrap(), vec!["*.a.com", "b.com"]);
        assert_eq!(check_allowed_domains("a..com").unwrap_err(), DomainListError("a..com".into()));
    }

    #[test]
    fn download_errors_keep_the_last_good_document() {
        let e = check_download::<String>("https://pool/metadata/json/1", Err("HTTP 404".into())).unwrap_err();
        assert_eq!(e.reason, DownloadReason::Fetch("HTTP 404".into()));
        assert!(e.to_string().starts_with("The metadata document could not be downloaded from the URL https://pool/"));
        let e = check_download::<String>("https://pool/m", Ok("{".into())).unwrap_err();
        assert!(matches!(e.reason, DownloadReason::Invalid(MetadataError::Json(_))), "{e}");

        let mut p = PartnerApplication {
            name: "p".into(),
            application_identifier: "a".into(),
            auth_metadata_url: Some("https://pool/m".into()),
            metadata: Some("old".into()),
            metadata_fetched_at: Some(1),
            ..PartnerApplication::default()
        };
        assert!(p.record_fetch(Err(e.clone()), 2));
        assert_eq!(p.metadata.as_deref(), Some("old"));
        assert_eq!(p.metadata_error.as_deref(), Some(e.to_string().as_str()));
        assert!(!p.record_fetch(Err(e), 3), "the same failure again changes nothing");
    }
}

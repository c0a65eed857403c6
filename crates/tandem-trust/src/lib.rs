//! Server-to-server trust as both roles run it, with the I/O that `tandem-oauth` leaves out.
//!
//! One implementation for the Front End, the Mailbox and the `tandem` binary:
//!
//! - [`partners`]: partner applications in a role's store, the metadata client (trusting the
//!   deployment CA), download and check of a partner's document, the periodic refresh, and
//!   Configure-EnterprisePartnerApplication's rules.
//! - [`frontend`]: the Front End's side (CsOAuthConfiguration, the OAuthTokenIssuer certificate
//!   with the seed's three rules, its metadata document, the [`frontend::TokenIssuer`]).
//! - [`mailbox`]: the Mailbox's side (AuthConfig with current/next/previous certificates,
//!   accepted domains, its metadata document).
//! - [`rollover`]: the current/next/previous state machine both signing certificates move
//!   through, by hand (the cmdlets) or by themselves ([`renewal`]).
//! - [`renewal`]: the running roles' task that generates successors before expiry, promotes and
//!   retires them, and warns (logs, metrics) as expiry nears.
//! - [`bearer`]: validating `Authorization: Bearer` tokens against the partners, with the caches.
//! - [`setup`]: what `tandem up` does for trust on first start, and the setup step records
//!   `tandem integration status` reports.
//!
//! Everything lives in the role stores' settings maps (`oauth.*` on the Front End, `auth.*` on the
//! Mailbox), so admin commands apply to running roles without a restart.

pub mod bearer;
pub mod frontend;
pub mod mailbox;
pub mod partners;
pub mod renewal;
pub mod rollover;
pub mod setup;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tandem_oauth::CertError;
use tandem_oauth::metadata::MetadataDocument;
use tandem_oauth::partner::DownloadError;
use tandem_store::{Store, StoreError};
use tandem_types::Role;

/// A trust operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{} store: {source}", store_label(*role))]
    Store {
        role: Role,
        #[source]
        source: StoreError,
    },
    #[error("the stored setting {0} is corrupt: {1}")]
    Corrupt(&'static str, String),
    #[error("the OAuthTokenIssuer certificate cannot be used: {0}")]
    Cert(#[from] CertError),
    #[error("no OAuthTokenIssuer certificate is assigned; run `tandem cs set-certificate --type OAuthTokenIssuer`")]
    NoTokenIssuerCertificate,
    #[error("no auth certificate is configured; run `tandem exchange set-auth-config --certificate-thumbprint T`")]
    NoAuthCertificate,
    #[error("cannot generate a certificate: {0}")]
    GenerateTokenIssuer(String),
    #[error("cannot create the auth certificate: {0}")]
    GenerateAuthCertificate(String),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error(transparent)]
    Enterprise(#[from] partners::EnterpriseError),
    #[error("{0}")]
    Setup(String),
}

fn store_label(role: Role) -> &'static str {
    match role {
        Role::Frontend => "Front End",
        Role::Mailbox => "mailbox",
    }
}

/// A store error, labelled with the role whose store it is.
pub(crate) fn store_err(role: Role) -> impl Fn(StoreError) -> TrustError {
    move |source| TrustError::Store { role, source }
}

/// A JSON value from the settings map.
pub(crate) async fn load<T: for<'de> Deserialize<'de>>(
    store: &Store,
    role: Role,
    name: &'static str,
) -> Result<Option<T>, TrustError> {
    match store.setting(name).await.map_err(store_err(role))? {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v).map(Some).map_err(|e| TrustError::Corrupt(name, e.to_string())),
    }
}

/// Writes a JSON value into the settings map.
pub(crate) async fn save<T: Serialize>(
    store: &Store,
    role: Role,
    name: &'static str,
    value: &T,
) -> Result<(), TrustError> {
    let text = serde_json::to_string(value).map_err(|e| TrustError::Corrupt(name, e.to_string()))?;
    store.set_setting(name, &text).await.map_err(store_err(role))
}

/// The keys a role publishes in its metadata document, from its certificate slots in order
/// (current, next, previous), so partners can pick by `x5t` through a rollover.
pub(crate) fn published_keys(slots: [Option<&str>; 3]) -> Vec<tandem_oauth::VerifyingKey> {
    slots.into_iter().flatten().filter_map(|pem| tandem_oauth::VerifyingKey::from_pem(pem).ok()).collect()
}

/// Where a role's `…/metadata/json/1` says it is: at the host the client asked for (when it is
/// a plain host name), else at `default_host`.
pub(crate) fn metadata_location(headers: &HeaderMap, default_host: &str, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| tandem_oauth::metadata::is_plain_host(h))
        .unwrap_or(default_host);
    format!("https://{host}{path}")
}

/// The metadata document as JSON, or 503 when no certificate can be published.
pub(crate) fn metadata_answer(doc: Result<MetadataDocument, TrustError>) -> Response {
    match doc {
        Ok(doc) => (StatusCode::OK, axum::Json(doc)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the auth metadata document");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testkit {
    use tandem_config::MailboxConfig;
    use tandem_store::Store;

    /// A mailbox store (settings only) in a temporary folder, and the default mailbox config.
    pub async fn setup() -> (tempfile::TempDir, Store, MailboxConfig) {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", tmp.path().join("mbx.db").display());
        let store = Store::open(&url, &[]).await.unwrap();
        let cfg = tandem_config::Config::defaults(tmp.path(), &tandem_config::Overrides::default()).unwrap().mailbox;
        (tmp, store, cfg)
    }
}

//! Front End server-to-server OAuth: the OAuthTokenIssuer certificate (with the seed's three
//! rules), the global CsOAuthConfiguration, partner applications, the auth metadata document at
//! `/metadata/json/1`, and the token issuer the Exchange connector uses.
//!
//! Everything lives in the Front End store's settings map, which every Front End of a pool
//! shares: the global certificate (with its key) is therefore the same on every Front End, and
//! admin commands take effect at the next request without a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tandem_oauth::metadata::{self, MetadataDocument};
use tandem_oauth::token::{Audience, UserIdentity};
use tandem_oauth::{
    CertError, EXCHANGE_APP_ID, IssuedTokenCache, LYNC_APP_ID, PartnerApplication, SigningKey, TOKEN_LIFETIME_SECS,
    VerifyingKey,
};
use tandem_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const SETTING_CONFIGURATION: &str = "oauth.configuration";
pub const SETTING_CERTIFICATES: &str = "oauth.token_issuer_certificates";
pub const SETTING_PARTNERS: &str = "oauth.partner_applications";
/// PEM of the CA(s) trusted when fetching partners' metadata (the deployment CA); empty: the system's.
pub const SETTING_TRUSTED_CA: &str = "oauth.trusted_ca_pem";
/// How often partners' metadata documents are fetched again (a rollover needs no restart).
pub const METADATA_REFRESH: Duration = Duration::from_secs(300);
/// Subject CN of a certificate the Front End generates when its TLS certificate cannot serve.
pub const GENERATED_CN: &str = "Tandem OAuthTokenIssuer";

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("Front End store: {0}")]
    Store(#[from] StoreError),
    #[error("the stored setting {0} is corrupt: {1}")]
    Corrupt(&'static str, String),
    #[error("the OAuthTokenIssuer certificate cannot be used: {0}")]
    Cert(#[from] CertError),
    #[error("no OAuthTokenIssuer certificate is assigned; run `tandem cs set-certificate --type OAuthTokenIssuer`")]
    NoCertificate,
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

async fn load<T: for<'de> Deserialize<'de>>(store: &Store, name: &'static str) -> Result<Option<T>, OAuthError> {
    match store.setting(name).await? {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v).map(Some).map_err(|e| OAuthError::Corrupt(name, e.to_string())),
    }
}

async fn save<T: Serialize>(store: &Store, name: &'static str, value: &T) -> Result<(), OAuthError> {
    let text = serde_json::to_string(value).map_err(|e| OAuthError::Corrupt(name, e.to_string()))?;
    Ok(store.set_setting(name, &text).await?)
}

// ------------------------------------------------------------------ CsOAuthConfiguration

/// The single global OAuth configuration (Get-/Set-CsOAuthConfiguration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OAuthConfiguration {
    pub identity: String,
    /// Default: the default SIP domain.
    pub realm: String,
    pub service_name: String,
    pub exchange_autodiscover_url: Option<String>,
    /// `;`-separated `*.domain` list limiting Autodiscover redirects.
    pub exchange_autodiscover_allowed_domains: Option<String>,
}

impl OAuthConfiguration {
    pub fn defaults(sip_domain: &str) -> OAuthConfiguration {
        OAuthConfiguration {
            identity: "Global".into(),
            realm: sip_domain.into(),
            service_name: LYNC_APP_ID.into(),
            exchange_autodiscover_url: None,
            exchange_autodiscover_allowed_domains: None,
        }
    }
}

pub async fn configuration(store: &Store, sip_domain: &str) -> Result<OAuthConfiguration, OAuthError> {
    Ok(load(store, SETTING_CONFIGURATION).await?.unwrap_or_else(|| OAuthConfiguration::defaults(sip_domain)))
}

pub async fn set_configuration(store: &Store, cfg: &OAuthConfiguration) -> Result<(), OAuthError> {
    save(store, SETTING_CONFIGURATION, cfg).await
}

// ------------------------------------------------------------------ OAuthTokenIssuer certificate

/// A certificate with its key, as the pool stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCertificate {
    pub thumbprint: String,
    pub subject: String,
    pub key_bits: usize,
    pub not_after_unix: i64,
    /// When a rolled certificate takes over (Unix seconds).
    #[serde(default)]
    pub effective_date: Option<i64>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Current, previous and scheduled (`-Roll -EffectiveDate`) OAuthTokenIssuer certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIssuerCertificates {
    pub current: Option<StoredCertificate>,
    pub previous: Option<StoredCertificate>,
    pub next: Option<StoredCertificate>,
}

impl TokenIssuerCertificates {
    /// Applies a scheduled roll whose effective date has come.
    pub fn at(mut self, now: i64) -> TokenIssuerCertificates {
        if self.next.as_ref().is_some_and(|n| n.effective_date.unwrap_or(0) <= now) {
            self.previous = self.current.take();
            self.current = self.next.take();
        }
        self
    }

    /// Keys for the metadata document: current first, then next and previous.
    pub fn published(&self) -> Vec<VerifyingKey> {
        [&self.current, &self.next, &self.previous]
            .into_iter()
            .flatten()
            .filter_map(|c| VerifyingKey::from_pem(&c.cert_pem).ok())
            .collect()
    }
}

/// A certificate that breaks one of the seed's three rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule 1 (the SIP domain in the Subject): the Subject \"{subject}\" does not contain {domain}")]
    SipDomainInSubject { subject: String, domain: String },
    #[error("rule 2 (a key of at least 2048 bits): {0}")]
    KeySize(String),
    #[error("rule 3 (the same certificate on every Front End): {0}")]
    SameOnEveryFrontEnd(String),
    #[error("the certificate cannot be used: {0}")]
    Unusable(String),
}

/// Checks the three rules and returns the certificate ready to store. `key_pem` is `None` when
/// the store holds no private key for the certificate.
pub fn check_rules(cert_pem: &str, key_pem: Option<&str>, sip_domain: &str) -> Result<StoredCertificate, RuleError> {
    let cert = VerifyingKey::from_pem(cert_pem).map_err(|e| match e {
        CertError::KeyTooSmall(bits) => RuleError::KeySize(format!("the key has {bits} bits")),
        CertError::NotRsa => RuleError::KeySize("the key is not RSA (tokens are signed with RS256)".into()),
        other => RuleError::Unusable(other.to_string()),
    })?;
    let described =
        tandem_pki::describe(&rustls_pki_types::CertificateDer::from(cert.der().to_vec()), std::path::Path::new("-"))
            .map_err(|e| RuleError::Unusable(e.to_string()))?;
    if described.is_ca {
        return Err(RuleError::Unusable(
            "it is a certification authority certificate; use a server certificate".into(),
        ));
    }
    if !cert.subject.to_ascii_lowercase().contains(&sip_domain.to_ascii_lowercase()) {
        return Err(RuleError::SipDomainInSubject { subject: cert.subject.clone(), domain: sip_domain.into() });
    }
    let Some(key_pem) = key_pem else {
        return Err(RuleError::SameOnEveryFrontEnd(format!(
            "the certificate store has no private key for {}, so it cannot be deployed to every Front End of the pool; pass --path FILE with the certificate and its key",
            cert.thumbprint
        )));
    };
    SigningKey::from_pem(cert_pem, key_pem).map_err(|e| RuleError::Unusable(e.to_string()))?;
    Ok(StoredCertificate {
        thumbprint: cert.thumbprint.clone(),
        subject: cert.subject.clone(),
        key_bits: cert.bits,
        not_after_unix: cert.not_after_unix,
        effective_date: None,
        cert_pem: cert_pem.into(),
        key_pem: key_pem.into(),
    })
}

/// The certificates as stored, with any due roll applied.
pub async fn certificates(store: &Store) -> Result<TokenIssuerCertificates, OAuthError> {
    let stored: TokenIssuerCertificates = load(store, SETTING_CERTIFICATES).await?.unwrap_or_default();
    Ok(stored.at(tandem_store::now_unix()))
}

/// Set-CsCertificate -Type OAuthTokenIssuer: replaces the current certificate now, or with
/// `roll_at` schedules it (`-Roll -EffectiveDate`); the replaced one becomes the previous.
pub async fn set_certificate(
    store: &Store,
    mut cert: StoredCertificate,
    roll_at: Option<i64>,
) -> Result<(), OAuthError> {
    let mut certs = certificates(store).await?;
    match roll_at {
        Some(at) => {
            cert.effective_date = Some(at);
            certs.next = Some(cert);
        }
        None => {
            if certs.current.as_ref().is_some_and(|c| c.thumbprint != cert.thumbprint) {
                certs.previous = certs.current.take();
            }
            certs.current = Some(cert);
            certs.next = None;
        }
    }
    save(store, SETTING_CERTIFICATES, &certs.at(tandem_store::now_unix())).await
}

/// First start: assigns the Front End's TLS certificate when it satisfies the three rules, else a
/// generated one whose Subject names the SIP domain. Returns what was done, or `None`.
pub async fn ensure_default_certificate(
    store: &Store,
    sip_domain: &str,
    tls: Option<(&str, &str)>,
) -> Result<Option<String>, OAuthError> {
    if certificates(store).await?.current.is_some() {
        return Ok(None);
    }
    let (cert, how) = match tls.map(|(c, k)| check_rules(c, Some(k), sip_domain)) {
        Some(Ok(cert)) => (cert, "the Front End's TLS certificate".to_owned()),
        other => {
            let why = match other {
                Some(Err(e)) => format!(" (the TLS certificate breaks {e})"),
                _ => String::new(),
            };
            let pair =
                tandem_pki::signing::self_signed(GENERATED_CN, sip_domain, &[], tandem_pki::signing::SIGNING_VALIDITY)
                    .map_err(|e| OAuthError::Generate(e.to_string()))?;
            let cert = check_rules(&pair.cert_pem, Some(&pair.key_pem), sip_domain)
                .map_err(|e| OAuthError::Generate(e.to_string()))?;
            (cert, format!("a generated certificate{why}"))
        }
    };
    let msg = format!("OAuthTokenIssuer certificate {} assigned: {how}", cert.thumbprint);
    set_certificate(store, cert, None).await?;
    Ok(Some(msg))
}

// ------------------------------------------------------------------ metadata document

/// Our auth metadata document as served at `location`.
pub async fn metadata_document(
    store: &Store,
    sip_domain: &str,
    location: &str,
) -> Result<MetadataDocument, OAuthError> {
    let cfg = configuration(store, sip_domain).await?;
    let certs = certificates(store).await?;
    let keys = certs.published();
    if keys.is_empty() {
        return Err(OAuthError::NoCertificate);
    }
    let refs: Vec<&VerifyingKey> = keys.iter().collect();
    Ok(metadata::build("Tandem Front End", &cfg.service_name, &cfg.realm, &refs, location))
}

#[derive(Debug, Clone)]
struct MetadataState {
    store: Store,
    sip_domain: String,
    default_host: String,
}

async fn serve_metadata(State(s): State<MetadataState>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| tandem_oauth::metadata::is_plain_host(h))
        .unwrap_or(&s.default_host)
        .to_owned();
    let location = format!("https://{host}{}", crate::paths::AUTH_METADATA);
    match metadata_document(&s.store, &s.sip_domain, &location).await {
        Ok(doc) => (StatusCode::OK, axum::Json(doc)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the auth metadata document");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// `/metadata/json/1` on the Front End HTTPS listener.
pub fn routes(store: Store, sip_domain: &str, pool_fqdn: &str) -> Router {
    Router::new().route(crate::paths::AUTH_METADATA, get(serve_metadata)).with_state(MetadataState {
        store,
        sip_domain: sip_domain.into(),
        default_host: pool_fqdn.into(),
    })
}

// ------------------------------------------------------------------ partner applications

pub async fn partner_applications(store: &Store) -> Result<Vec<PartnerApplication>, OAuthError> {
    Ok(load(store, SETTING_PARTNERS).await?.unwrap_or_default())
}

pub async fn save_partner_applications(store: &Store, partners: &[PartnerApplication]) -> Result<(), OAuthError> {
    save(store, SETTING_PARTNERS, &partners).await
}

/// The HTTPS client for metadata, trusting the configured CA.
pub async fn metadata_client(store: &Store) -> Result<reqwest::Client, OAuthError> {
    let ca = store.setting(SETTING_TRUSTED_CA).await?.filter(|s| !s.trim().is_empty());
    tandem_http::client::https_client(ca.as_deref()).map_err(|e| OAuthError::Corrupt(SETTING_TRUSTED_CA, e.to_string()))
}

/// Downloads and checks a metadata document; the error is the seed's wording.
pub async fn fetch_metadata(
    client: &reqwest::Client,
    url: &str,
) -> Result<(String, metadata::PartnerMetadata), String> {
    tandem_oauth::partner::check_download(
        url,
        tandem_http::client::get_limited(client, url, metadata::MAX_DOCUMENT_BYTES).await.map_err(|e| e.to_string()),
    )
}

/// Fetches every partner's metadata again and saves what changed.
pub async fn refresh_partner_metadata(store: &Store) -> Result<usize, OAuthError> {
    let client = metadata_client(store).await?;
    let mut partners = partner_applications(store).await?;
    let mut changed = 0;
    for p in partners.iter_mut() {
        let Some(url) = p.auth_metadata_url.clone() else { continue };
        let result = fetch_metadata(&client, &url).await.map(|(body, _)| body);
        if p.record_fetch(result, tandem_store::now_unix()) {
            changed += 1;
        }
    }
    if changed > 0 {
        // Merge into what is stored now, so an admin change made meanwhile is kept.
        let mut latest = partner_applications(store).await?;
        tandem_oauth::partner::merge_refreshed(&mut latest, &partners);
        save_partner_applications(store, &latest).await?;
    }
    Ok(changed)
}

/// Re-fetches partners' metadata every [`METADATA_REFRESH`].
pub fn spawn_metadata_refresh(store: Store, tasks: &TaskTracker, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(METADATA_REFRESH);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = refresh_partner_metadata(&store).await {
                tracing::warn!(error = %e, "partner metadata refresh failed");
            }
        }
    });
}

// ------------------------------------------------------------------ issuing tokens

/// Issues user tokens for EWS calls to the mailbox, cached until shortly before expiry.
#[derive(Debug)]
pub struct TokenIssuer {
    store: Store,
    sip_domain: String,
    cache: IssuedTokenCache,
    key: Mutex<Option<(Instant, Arc<SigningKey>, OAuthConfiguration)>>,
}

/// How long a loaded signing key and configuration are used before the store is read again.
const KEY_RELOAD: Duration = Duration::from_secs(5);

impl TokenIssuer {
    pub fn new(store: Store, sip_domain: &str) -> TokenIssuer {
        TokenIssuer { store, sip_domain: sip_domain.into(), cache: IssuedTokenCache::new(), key: Mutex::new(None) }
    }

    async fn signing(&self) -> Result<(Arc<SigningKey>, OAuthConfiguration), OAuthError> {
        {
            let guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, key, cfg)) = guard.as_ref()
                && at.elapsed() < KEY_RELOAD
            {
                return Ok((key.clone(), cfg.clone()));
            }
        }
        let cfg = configuration(&self.store, &self.sip_domain).await?;
        let certs = certificates(&self.store).await?;
        let current = certs.current.ok_or(OAuthError::NoCertificate)?;
        let mut guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let key = match guard.as_ref() {
            Some((_, k, _)) if k.certificate().thumbprint == current.thumbprint => k.clone(),
            _ => {
                self.cache.clear();
                Arc::new(SigningKey::from_pem(&current.cert_pem, &current.key_pem)?)
            }
        };
        *guard = Some((Instant::now(), key.clone(), cfg.clone()));
        Ok((key, cfg))
    }

    /// A token acting as `user` towards the mailbox host `target_host` (its EWS URL's host).
    pub async fn user_token(&self, target_host: &str, user: &UserIdentity) -> Result<Arc<str>, OAuthError> {
        let (key, cfg) = self.signing().await?;
        let now = tandem_store::now_unix();
        let cache_key = format!(
            "{}|{}|{}|{}",
            key.certificate().thumbprint,
            cfg.realm,
            target_host.to_ascii_lowercase(),
            user.smtp
        );
        if let Some(t) = self.cache.get(&cache_key, now) {
            return Ok(t);
        }
        let aud = Audience::new(EXCHANGE_APP_ID, target_host, &cfg.realm);
        let token: Arc<str> = Arc::from(tandem_oauth::token::mint_user_token(
            &key,
            &cfg.service_name,
            &cfg.realm,
            &aud,
            user,
            now,
            TOKEN_LIFETIME_SECS,
        )?);
        self.cache.insert(&cache_key, token.clone(), now + TOKEN_LIFETIME_SECS);
        Ok(token)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", tmp.path().join("fe.db").display());
        let store = crate::admin::open_store_at(&url).await.unwrap();
        (tmp, store)
    }

    #[test]
    fn the_three_rules() {
        let good =
            tandem_pki::signing::self_signed("pool.litwareinc.com", "litwareinc.com", &[], time::Duration::days(30))
                .unwrap();
        assert!(check_rules(&good.cert_pem, Some(&good.key_pem), "litwareinc.com").is_ok());
        let e = check_rules(&good.cert_pem, Some(&good.key_pem), "fabrikam.com").unwrap_err();
        assert!(e.to_string().starts_with("rule 1 (the SIP domain in the Subject)"), "{e}");
        let e = check_rules(&good.cert_pem, None, "litwareinc.com").unwrap_err();
        assert!(e.to_string().starts_with("rule 3 (the same certificate on every Front End)"), "{e}");
        let small_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "litwareinc.com");
        let ec = params.self_signed(&small_key).unwrap();
        let e = check_rules(&ec.pem(), Some(&small_key.serialize_pem()), "litwareinc.com").unwrap_err();
        assert!(e.to_string().starts_with("rule 2 (a key of at least 2048 bits)"), "{e}");
    }

    #[tokio::test]
    async fn default_certificate_roll_and_metadata() {
        let (_tmp, store) = store().await;
        let done = ensure_default_certificate(&store, "litwareinc.com", None).await.unwrap().unwrap();
        assert!(done.contains("generated"), "{done}");
        assert!(ensure_default_certificate(&store, "litwareinc.com", None).await.unwrap().is_none());
        let first = certificates(&store).await.unwrap().current.unwrap();
        let doc =
            metadata_document(&store, "litwareinc.com", "https://pool.litwareinc.com/metadata/json/1").await.unwrap();
        assert_eq!(doc.issuer, format!("{LYNC_APP_ID}@litwareinc.com"));
        assert_eq!(doc.keys.len(), 1);

        // A roll scheduled in the future publishes the next certificate and keeps signing with the current.
        let pair = tandem_pki::signing::self_signed("x", "litwareinc.com", &[], time::Duration::days(30)).unwrap();
        let next = check_rules(&pair.cert_pem, Some(&pair.key_pem), "litwareinc.com").unwrap();
        set_certificate(&store, next.clone(), Some(tandem_store::now_unix() + 3600)).await.unwrap();
        let certs = certificates(&store).await.unwrap();
        assert_eq!(certs.current.as_ref().unwrap().thumbprint, first.thumbprint);
        assert_eq!(certs.published().len(), 2);
        // Once due, it becomes current and the old one previous.
        let rolled = certs.at(tandem_store::now_unix() + 7200);
        assert_eq!(rolled.current.unwrap().thumbprint, next.thumbprint);
        assert_eq!(rolled.previous.unwrap().thumbprint, first.thumbprint);

        let issuer = TokenIssuer::new(store.clone(), "litwareinc.com");
        let alice = UserIdentity { smtp: "alice@litwareinc.com".into(), sip: None };
        let t1 = issuer.user_token("mail.litwareinc.com", &alice).await.unwrap();
        let t2 = issuer.user_token("mail.litwareinc.com", &alice).await.unwrap();
        assert!(Arc::ptr_eq(&t1, &t2), "the second token comes from the cache");
    }

    #[tokio::test]
    async fn configuration_defaults() {
        let (_tmp, store) = store().await;
        let cfg = configuration(&store, "litwareinc.com").await.unwrap();
        assert_eq!(cfg.realm, "litwareinc.com");
        assert_eq!(cfg.service_name, LYNC_APP_ID);
        let json = serde_json::to_value(&cfg).unwrap();
        assert!(json.get("ExchangeAutodiscoverUrl").is_some());
    }
}

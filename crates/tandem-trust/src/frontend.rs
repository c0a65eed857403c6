//! The Front End's side of server-to-server OAuth: the OAuthTokenIssuer certificate (with the
//! seed's three rules), the global CsOAuthConfiguration, the auth metadata document at
//! `/metadata/json/1`, and the [`TokenIssuer`] the Exchange connector uses.
//!
//! Everything lives in the Front End store's settings map, which every Front End of a pool
//! shares: the global certificate (with its key) is therefore the same on every Front End, and
//! admin commands take effect at the next request without a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tandem_config::paths::frontend as paths;
use tandem_oauth::metadata::{self, MetadataDocument};
use tandem_oauth::token::{Audience, UserIdentity};
use tandem_oauth::{
    CertError, EXCHANGE_APP_ID, IssuedTokenCache, LYNC_APP_ID, SigningKey, TOKEN_LIFETIME_SECS, VerifyingKey,
};
use tandem_store::Store;
use tandem_types::Role;

use crate::TrustError;
use crate::rollover::Rollover;

const ROLE: Role = Role::Frontend;

async fn load<T: for<'de> Deserialize<'de>>(store: &Store, name: &'static str) -> Result<Option<T>, TrustError> {
    crate::load(store, ROLE, name).await
}

async fn save<T: Serialize>(store: &Store, name: &'static str, value: &T) -> Result<(), TrustError> {
    crate::save(store, ROLE, name, value).await
}

pub const SETTING_CONFIGURATION: &str = "oauth.configuration";
pub const SETTING_CERTIFICATES: &str = "oauth.token_issuer_certificates";
pub const SETTING_PARTNERS: &str = "oauth.partner_applications";
/// The ExchangeAutodiscoverUrl first start derived from the configuration, kept so a later start
/// tells it from one an administrator set: a derived value follows the configuration.
pub const SETTING_DERIVED_AUTODISCOVER_URL: &str = "oauth.derived_exchange_autodiscover_url";
/// Subject CN of a certificate the Front End generates when its TLS certificate cannot serve.
pub const GENERATED_CN: &str = "Tandem OAuthTokenIssuer";

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

pub async fn configuration(store: &Store, sip_domain: &str) -> Result<OAuthConfiguration, TrustError> {
    Ok(load(store, SETTING_CONFIGURATION).await?.unwrap_or_else(|| OAuthConfiguration::defaults(sip_domain)))
}

pub async fn set_configuration(store: &Store, cfg: &OAuthConfiguration) -> Result<(), TrustError> {
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
    /// When it stopped signing (a previous certificate), so it is dropped after the overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
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
    /// The slots as a rollover state.
    pub fn rollover(self) -> Rollover<StoredCertificate> {
        Rollover::from_slots(self.current, self.next, self.previous)
    }

    /// The slots of a rollover state.
    pub fn of(state: Rollover<StoredCertificate>) -> TokenIssuerCertificates {
        let (current, next, previous) = state.into_slots();
        TokenIssuerCertificates { current, previous, next }
    }

    /// Applies a scheduled roll whose effective date has come.
    pub fn at(self, now: i64) -> TokenIssuerCertificates {
        TokenIssuerCertificates::of(self.rollover().promote_due(now).0)
    }

    /// Keys for the metadata document: current first, then next and previous.
    pub fn published(&self) -> Vec<VerifyingKey> {
        crate::published_keys(
            [&self.current, &self.next, &self.previous].map(|c| c.as_ref().map(|c| c.cert_pem.as_str())),
        )
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
        retired_at: None,
        cert_pem: cert_pem.into(),
        key_pem: key_pem.into(),
    })
}

/// The certificates as stored, with any due roll applied.
pub async fn certificates(store: &Store) -> Result<TokenIssuerCertificates, TrustError> {
    let stored: TokenIssuerCertificates = load(store, SETTING_CERTIFICATES).await?.unwrap_or_default();
    Ok(stored.at(tandem_store::now_unix()))
}

/// Set-CsCertificate -Type OAuthTokenIssuer: replaces the current certificate now, or with
/// `roll_at` schedules it (`-Roll -EffectiveDate`); the replaced one becomes the previous.
pub async fn set_certificate(
    store: &Store,
    mut cert: StoredCertificate,
    roll_at: Option<i64>,
) -> Result<(), TrustError> {
    let mut certs = certificates(store).await?;
    match roll_at {
        Some(at) => {
            cert.effective_date = Some(at);
            certs.next = Some(cert);
        }
        None => {
            if certs.current.as_ref().is_some_and(|c| c.thumbprint != cert.thumbprint) {
                // Kept published for the overlap from now, then dropped by the renewal task.
                certs.previous = certs.current.take().map(|mut p| {
                    p.retired_at = Some(tandem_store::now_unix());
                    p
                });
            }
            certs.current = Some(cert);
            certs.next = None;
        }
    }
    save_certificates(store, &certs.at(tandem_store::now_unix())).await
}

/// Stores the certificate slots as they are.
pub async fn save_certificates(store: &Store, certs: &TokenIssuerCertificates) -> Result<(), TrustError> {
    save(store, SETTING_CERTIFICATES, certs).await
}

/// A new self-signed OAuthTokenIssuer certificate for `sip_domain` (meeting the three rules),
/// valid for `validity_days`. CPU-heavy (an RSA key): async callers run it off the workers.
pub fn generate_certificate(sip_domain: &str, validity_days: u32) -> Result<StoredCertificate, TrustError> {
    let validity = time::Duration::days(i64::from(validity_days));
    let pair = tandem_pki::signing::self_signed(GENERATED_CN, sip_domain, &[], validity)
        .map_err(|e| TrustError::GenerateTokenIssuer(e.to_string()))?;
    check_rules(&pair.cert_pem, Some(&pair.key_pem), sip_domain)
        .map_err(|e| TrustError::GenerateTokenIssuer(e.to_string()))
}

/// First start: assigns the Front End's TLS certificate when it satisfies the three rules, else a
/// generated one whose Subject names the SIP domain. Returns what was done, or `None`.
pub async fn ensure_default_certificate(
    store: &Store,
    sip_domain: &str,
    tls: Option<(&str, &str)>,
    validity_days: u32,
) -> Result<Option<String>, TrustError> {
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
            let domain = sip_domain.to_owned();
            let cert = tokio::task::spawn_blocking(move || generate_certificate(&domain, validity_days))
                .await
                .map_err(|e| TrustError::GenerateTokenIssuer(e.to_string()))??;
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
) -> Result<MetadataDocument, TrustError> {
    let cfg = configuration(store, sip_domain).await?;
    let certs = certificates(store).await?;
    let keys = certs.published();
    if keys.is_empty() {
        return Err(TrustError::NoTokenIssuerCertificate);
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
    let location = crate::metadata_location(&headers, &s.default_host, paths::AUTH_METADATA);
    crate::metadata_answer(metadata_document(&s.store, &s.sip_domain, &location).await)
}

/// `/metadata/json/1` on the Front End HTTPS listener.
pub fn routes(store: Store, sip_domain: &str, pool_fqdn: &str) -> Router {
    Router::new().route(paths::AUTH_METADATA, get(serve_metadata)).with_state(MetadataState {
        store,
        sip_domain: sip_domain.into(),
        default_host: pool_fqdn.into(),
    })
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

    async fn signing(&self) -> Result<(Arc<SigningKey>, OAuthConfiguration), TrustError> {
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
        let current = certs.current.ok_or(TrustError::NoTokenIssuerCertificate)?;
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
    pub async fn user_token(&self, target_host: &str, user: &UserIdentity) -> Result<Arc<str>, TrustError> {
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
        let store = Store::open(&url, &[]).await.unwrap();
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
        let done = ensure_default_certificate(&store, "litwareinc.com", None, 1825).await.unwrap().unwrap();
        assert!(done.contains("generated"), "{done}");
        assert!(ensure_default_certificate(&store, "litwareinc.com", None, 1825).await.unwrap().is_none());
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

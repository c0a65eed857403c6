//! The Mailbox's side of server-to-server auth (Exchange's AuthConfig): the self-signed
//! "Tandem Mailbox Server Auth Certificate" with current/next/previous slots, the accepted
//! domains (users a partner may act as), the auth metadata document at
//! `/autodiscover/metadata/json/1`, and the [`TokenIssuer`] for calls to the Front End (the
//! reverse direction of the trust, as Exchange calls Skype for Business).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tandem_config::MailboxConfig;
use tandem_config::paths::mailbox as paths;
use tandem_oauth::metadata::{self, MetadataDocument};
use tandem_oauth::token::{Audience, UserIdentity};
use tandem_oauth::{
    CertError, EXCHANGE_APP_ID, IssuedTokenCache, LYNC_APP_ID, SigningKey, TOKEN_LIFETIME_SECS, VerifyingKey,
};
use tandem_store::Store;
use tandem_types::Role;

use crate::TrustError;
use crate::bearer::AuthState;
use crate::partners;
use crate::rollover::Rollover;

const ROLE: Role = Role::Mailbox;

pub const SETTING_AUTH_CONFIG: &str = "auth.config";
/// JSON list of accepted domains (users a partner may act as); default: the mailbox FQDN's parent.
pub const SETTING_ACCEPTED_DOMAINS: &str = "auth.accepted_domains";
/// Subject CN of the certificate created on first start.
pub const AUTH_CERT_CN: &str = "Tandem Mailbox Server Auth Certificate";

async fn load<T: for<'de> Deserialize<'de>>(store: &Store, name: &'static str) -> Result<Option<T>, TrustError> {
    crate::load(store, ROLE, name).await
}

async fn save<T: Serialize>(store: &Store, name: &'static str, value: &T) -> Result<(), TrustError> {
    crate::save(store, ROLE, name, value).await
}

/// A certificate with its key, kept in the mailbox store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCertificate {
    pub thumbprint: String,
    pub subject: String,
    pub not_after_unix: i64,
    #[serde(default)]
    pub effective_date: Option<i64>,
    /// When it stopped signing (a previous certificate), so it is dropped after the overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl AuthCertificate {
    /// Checks that the pair is an RSA ≥ 2048 certificate with its key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<AuthCertificate, CertError> {
        let key = tandem_oauth::SigningKey::from_pem(cert_pem, key_pem)?;
        let c = key.certificate();
        Ok(AuthCertificate {
            thumbprint: c.thumbprint.clone(),
            subject: c.subject.clone(),
            not_after_unix: c.not_after_unix,
            effective_date: None,
            retired_at: None,
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        })
    }
}

/// Exchange's AuthConfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    pub service_name: String,
    /// Empty: the document says `*`.
    pub realm: String,
    pub current: Option<AuthCertificate>,
    pub next: Option<AuthCertificate>,
    pub previous: Option<AuthCertificate>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service_name: EXCHANGE_APP_ID.into(),
            realm: String::new(),
            current: None,
            next: None,
            previous: None,
        }
    }
}

/// What `get-auth-config` shows, with the cmdlet's property names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthConfigView {
    pub name: &'static str,
    pub service_name: String,
    pub realm: String,
    pub current_certificate_thumbprint: Option<String>,
    pub previous_certificate_thumbprint: Option<String>,
    pub next_certificate_thumbprint: Option<String>,
    pub next_certificate_effective_date: Option<i64>,
}

impl AuthConfig {
    /// The certificate slots as a rollover state (taken out of the config).
    pub fn take_rollover(&mut self) -> Rollover<AuthCertificate> {
        Rollover::from_slots(self.current.take(), self.next.take(), self.previous.take())
    }

    /// Puts a rollover state back into the slots.
    pub fn put_rollover(&mut self, state: Rollover<AuthCertificate>) {
        (self.current, self.next, self.previous) = state.into_slots();
    }

    /// Makes a next certificate whose effective date has come the current one.
    pub fn at(mut self, now: i64) -> AuthConfig {
        let (state, _) = self.take_rollover().promote_due(now);
        self.put_rollover(state);
        self
    }

    /// `-PublishCertificate`: next becomes current, current becomes previous.
    pub fn publish_next(&mut self) -> bool {
        let (state, event) = self.take_rollover().promote(tandem_store::now_unix());
        self.put_rollover(state);
        event.is_some()
    }

    /// Keys for the metadata document: current, next, previous.
    pub fn published(&self) -> Vec<VerifyingKey> {
        crate::published_keys(
            [&self.current, &self.next, &self.previous].map(|c| c.as_ref().map(|c| c.cert_pem.as_str())),
        )
    }

    /// A certificate already known to the config, by thumbprint.
    pub fn find(&self, thumbprint: &str) -> Option<&AuthCertificate> {
        [&self.current, &self.next, &self.previous].into_iter().flatten().find(|c| c.thumbprint == thumbprint)
    }

    pub fn view(&self) -> AuthConfigView {
        AuthConfigView {
            name: "Auth Configuration",
            service_name: self.service_name.clone(),
            realm: self.realm.clone(),
            current_certificate_thumbprint: self.current.as_ref().map(|c| c.thumbprint.clone()),
            previous_certificate_thumbprint: self.previous.as_ref().map(|c| c.thumbprint.clone()),
            next_certificate_thumbprint: self.next.as_ref().map(|c| c.thumbprint.clone()),
            next_certificate_effective_date: self.next.as_ref().and_then(|c| c.effective_date),
        }
    }
}

pub async fn auth_config(store: &Store) -> Result<AuthConfig, TrustError> {
    let cfg: AuthConfig = load(store, SETTING_AUTH_CONFIG).await?.unwrap_or_default();
    Ok(cfg.at(tandem_store::now_unix()))
}

pub async fn save_auth_config(store: &Store, cfg: &AuthConfig) -> Result<(), TrustError> {
    save(store, SETTING_AUTH_CONFIG, cfg).await
}

/// A new self-signed Auth certificate (RSA 2048) valid for `validity_days`. CPU-heavy (an RSA
/// key): async callers run it off the workers.
pub fn generate_auth_certificate(organization: &str, validity_days: u32) -> Result<AuthCertificate, TrustError> {
    let validity = time::Duration::days(i64::from(validity_days));
    let pair = tandem_pki::signing::self_signed(AUTH_CERT_CN, organization, &[], validity)
        .map_err(|e| TrustError::GenerateAuthCertificate(e.to_string()))?;
    AuthCertificate::from_pem(&pair.cert_pem, &pair.key_pem)
        .map_err(|e| TrustError::GenerateAuthCertificate(e.to_string()))
}

/// First start: creates the self-signed Auth certificate (RSA 2048, `validity_days`) when none is set.
pub async fn ensure_auth_certificate(
    store: &Store,
    organization: &str,
    validity_days: u32,
) -> Result<Option<String>, TrustError> {
    let mut cfg = auth_config(store).await?;
    if cfg.current.is_some() {
        return Ok(None);
    }
    let org = organization.to_owned();
    let cert = tokio::task::spawn_blocking(move || generate_auth_certificate(&org, validity_days))
        .await
        .map_err(|e| TrustError::GenerateAuthCertificate(e.to_string()))??;
    let msg = format!("{AUTH_CERT_CN} {} created", cert.thumbprint);
    cfg.current = Some(cert);
    save_auth_config(store, &cfg).await?;
    Ok(Some(msg))
}

/// Our auth metadata document as served at `location`.
pub async fn metadata_document(store: &Store, location: &str) -> Result<MetadataDocument, TrustError> {
    let cfg = auth_config(store).await?;
    let keys = cfg.published();
    if keys.is_empty() {
        return Err(TrustError::NoAuthCertificate);
    }
    let refs: Vec<&VerifyingKey> = keys.iter().collect();
    Ok(metadata::build("Tandem Mailbox", &cfg.service_name, &cfg.realm, &refs, location))
}

pub async fn accepted_domains(store: &Store, config: &MailboxConfig) -> Result<Vec<String>, TrustError> {
    match load::<Vec<String>>(store, SETTING_ACCEPTED_DOMAINS).await? {
        Some(d) if !d.is_empty() => Ok(d),
        _ => {
            let fqdn = config.fqdn.as_str();
            Ok(vec![fqdn.split_once('.').map(|(_, p)| p).unwrap_or(fqdn).to_owned()])
        }
    }
}

/// `/autodiscover/metadata/json/1`.
pub fn routes(auth: Arc<AuthState>) -> Router {
    Router::new().route(paths::AUTH_METADATA, get(serve_metadata)).with_state(auth)
}

async fn serve_metadata(State(auth): State<Arc<AuthState>>, headers: HeaderMap) -> Response {
    let location = crate::metadata_location(&headers, auth.own_host(), paths::AUTH_METADATA);
    crate::metadata_answer(metadata_document(auth.store(), &location).await)
}

// ------------------------------------------------------------------ calling the Front End

/// Where the Front End this mailbox trusts answers HTTPS: the origin of its partner
/// application's metadata URL (`Lync`), so the server whose tokens EWS accepts is the one the
/// Mailbox calls back, with no second setting to keep in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendLocation {
    /// `https://host[:port]`, without a trailing slash.
    pub base_url: String,
    /// The host alone: the audience's host part.
    pub host: String,
}

/// The Front End partner application's location, or `None` when no enabled `Lync` partner with
/// a metadata URL is configured (`tandem exchange configure-enterprise-partner-application`).
pub async fn frontend_location(store: &Store) -> Result<Option<FrontendLocation>, TrustError> {
    let apps = partners::list(store, ROLE).await?;
    let url = apps
        .iter()
        .filter(|p| p.enabled && p.application_identifier == LYNC_APP_ID)
        .find_map(|p| p.auth_metadata_url.as_deref().and_then(|u| reqwest::Url::parse(u).ok()));
    Ok(url.and_then(|u| {
        let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
        let base_url = match u.port() {
            Some(port) => format!("{}://{}:{port}", u.scheme(), u.host_str()?),
            None => format!("{}://{}", u.scheme(), u.host_str()?),
        };
        Some(FrontendLocation { base_url, host })
    }))
}

/// The realm the Mailbox's tokens name: AuthConfig's realm when set; else the realm the Front
/// End's metadata document publishes (what it validates against, as Exchange takes a partner's
/// realm from its metadata); else the first accepted domain.
pub async fn token_realm(store: &Store, config: &MailboxConfig) -> Result<String, TrustError> {
    let cfg = auth_config(store).await?;
    if !cfg.realm.is_empty() {
        return Ok(cfg.realm);
    }
    let apps = partners::list(store, ROLE).await?;
    let published = apps
        .iter()
        .filter(|p| p.enabled && p.application_identifier == LYNC_APP_ID)
        .filter_map(|p| p.trusted().ok()?.realm)
        .find(|r| !r.is_empty() && r != "*");
    if let Some(realm) = published {
        return Ok(realm);
    }
    Ok(accepted_domains(store, config).await?.into_iter().next().unwrap_or_default())
}

/// Issues user tokens for the Mailbox's calls to the Front End (its meeting API, its web
/// services), signed by the current Auth certificate; cached until shortly before expiry.
#[derive(Debug)]
pub struct TokenIssuer {
    store: Store,
    config: MailboxConfig,
    cache: IssuedTokenCache,
    key: Mutex<Option<LoadedKey>>,
}

#[derive(Debug)]
struct LoadedKey {
    at: Instant,
    key: Arc<SigningKey>,
    service_name: String,
    realm: String,
}

/// How long a loaded signing key and realm are used before the store is read again.
const KEY_RELOAD: Duration = Duration::from_secs(5);

impl TokenIssuer {
    /// `store` is the mailbox store.
    pub fn new(store: Store, config: &MailboxConfig) -> TokenIssuer {
        TokenIssuer { store, config: config.clone(), cache: IssuedTokenCache::new(), key: Mutex::new(None) }
    }

    async fn signing(&self) -> Result<(Arc<SigningKey>, String, String), TrustError> {
        {
            let guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(k) = guard.as_ref()
                && k.at.elapsed() < KEY_RELOAD
            {
                return Ok((k.key.clone(), k.service_name.clone(), k.realm.clone()));
            }
        }
        let cfg = auth_config(&self.store).await?;
        let realm = token_realm(&self.store, &self.config).await?;
        let current = cfg.current.ok_or(TrustError::NoAuthCertificate)?;
        let mut guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let key = match guard.as_ref() {
            Some(k) if k.key.certificate().thumbprint == current.thumbprint => k.key.clone(),
            _ => {
                self.cache.clear();
                Arc::new(SigningKey::from_pem(&current.cert_pem, &current.key_pem)?)
            }
        };
        *guard = Some(LoadedKey {
            at: Instant::now(),
            key: key.clone(),
            service_name: cfg.service_name.clone(),
            realm: realm.clone(),
        });
        Ok((key, cfg.service_name, realm))
    }

    /// A token acting as `user` towards the Front End host `target_host` (the host of the URL
    /// called, see [`frontend_location`]): audience `00000004-…/<host>@<realm>`, issuer
    /// `00000002-…@<realm>`, the user's smtp (and sip, when given) claims.
    pub async fn user_token(&self, target_host: &str, user: &UserIdentity) -> Result<Arc<str>, TrustError> {
        let (key, service_name, realm) = self.signing().await?;
        let now = tandem_store::now_unix();
        let cache_key = format!(
            "{}|{realm}|{}|{}|{}",
            key.certificate().thumbprint,
            target_host.to_ascii_lowercase(),
            user.smtp,
            user.sip.as_deref().unwrap_or_default()
        );
        if let Some(t) = self.cache.get(&cache_key, now) {
            return Ok(t);
        }
        let aud = Audience::new(LYNC_APP_ID, target_host, &realm);
        let token: Arc<str> = Arc::from(tandem_oauth::token::mint_user_token(
            &key,
            &service_name,
            &realm,
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

    use crate::testkit::setup;

    #[tokio::test]
    async fn auth_certificate_rollover_and_metadata() {
        let (_tmp, store, _) = setup().await;
        let made = ensure_auth_certificate(&store, "litwareinc.com", 1825).await.unwrap().unwrap();
        assert!(made.contains(AUTH_CERT_CN));
        let mut cfg = auth_config(&store).await.unwrap();
        let first = cfg.current.clone().unwrap();
        assert!(first.subject.contains(AUTH_CERT_CN));
        let p = tandem_pki::signing::self_signed("next", "litwareinc.com", &[], time::Duration::days(30)).unwrap();
        let mut next = AuthCertificate::from_pem(&p.cert_pem, &p.key_pem).unwrap();
        next.effective_date = Some(tandem_store::now_unix() + 3600);
        cfg.next = Some(next.clone());
        save_auth_config(&store, &cfg).await.unwrap();
        let doc = metadata_document(&store, "https://mail/autodiscover/metadata/json/1").await.unwrap();
        assert_eq!(doc.keys.len(), 2);
        assert_eq!(doc.service_name, EXCHANGE_APP_ID);
        assert_eq!(doc.issuer, format!("{EXCHANGE_APP_ID}@*"));
        let mut cfg = auth_config(&store).await.unwrap();
        assert!(cfg.publish_next());
        assert_eq!(cfg.current.as_ref().unwrap().thumbprint, next.thumbprint);
        assert_eq!(cfg.previous.as_ref().unwrap().thumbprint, first.thumbprint);
        cfg.previous = None;
        save_auth_config(&store, &cfg).await.unwrap();
        assert_eq!(metadata_document(&store, "x").await.unwrap().keys.len(), 1);
    }
}

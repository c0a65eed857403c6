//! Mailbox server-to-server auth (Exchange's AuthConfig and PartnerApplication): the self-signed
//! "Tandem Mailbox Server Auth Certificate" with current/next/previous slots, the auth metadata
//! document at `/autodiscover/metadata/json/1`, partner applications whose metadata is fetched
//! again periodically (and at once when a token names an unknown key, so a partner's certificate
//! rollover needs no restart), and [`validate_bearer`], which EWS calls for every request.
//!
//! Everything lives in the mailbox store's settings map; the running role reads it again every
//! [`RELOAD_AFTER`], so admin commands apply without a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tandem_config::MailboxConfig;
use tandem_oauth::metadata::{self, MetadataDocument};
use tandem_oauth::token::{TokenError, TrustedPartner, Validated, ValidationPolicy, www_authenticate};
use tandem_oauth::{EXCHANGE_APP_ID, PartnerApplication, ValidationCache, VerifyingKey};
use tandem_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const SETTING_AUTH_CONFIG: &str = "auth.config";
pub const SETTING_PARTNERS: &str = "auth.partner_applications";
/// PEM of the CA(s) trusted when fetching partners' metadata; empty: the system's roots.
pub const SETTING_TRUSTED_CA: &str = "auth.trusted_ca_pem";
/// JSON list of accepted domains (users a partner may act as); default: the mailbox FQDN's parent.
pub const SETTING_ACCEPTED_DOMAINS: &str = "auth.accepted_domains";
/// Subject CN of the certificate created on first start.
pub const AUTH_CERT_CN: &str = "Tandem Mailbox Server Auth Certificate";
/// How often partners' metadata is fetched again.
pub const METADATA_REFRESH: Duration = Duration::from_secs(300);
/// How long the running role uses settings before reading them again.
pub const RELOAD_AFTER: Duration = Duration::from_secs(2);
/// At most one refetch for an unknown key per this interval.
pub const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(10);
/// Validated tokens remembered.
pub const CACHE_CAPACITY: usize = 50_000;

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("mailbox store: {0}")]
    Store(#[from] StoreError),
    #[error("the stored setting {0} is corrupt: {1}")]
    Corrupt(&'static str, String),
    #[error("cannot create the auth certificate: {0}")]
    Generate(String),
    #[error("no auth certificate is configured; run `tandem exchange set-auth-config --certificate-thumbprint T`")]
    NoCertificate,
}

/// The mailbox store, opened as the role opens it.
pub use crate::open_store;

async fn load<T: for<'de> Deserialize<'de>>(store: &Store, name: &'static str) -> Result<Option<T>, AuthConfigError> {
    match store.setting(name).await? {
        None => Ok(None),
        Some(v) => serde_json::from_str(&v).map(Some).map_err(|e| AuthConfigError::Corrupt(name, e.to_string())),
    }
}

async fn save<T: Serialize>(store: &Store, name: &'static str, value: &T) -> Result<(), AuthConfigError> {
    let text = serde_json::to_string(value).map_err(|e| AuthConfigError::Corrupt(name, e.to_string()))?;
    Ok(store.set_setting(name, &text).await?)
}

/// A certificate with its key, kept in the mailbox store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCertificate {
    pub thumbprint: String,
    pub subject: String,
    pub not_after_unix: i64,
    #[serde(default)]
    pub effective_date: Option<i64>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl AuthCertificate {
    /// Checks that the pair is an RSA ≥ 2048 certificate with its key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<AuthCertificate, String> {
        let key = tandem_oauth::SigningKey::from_pem(cert_pem, key_pem).map_err(|e| e.to_string())?;
        let c = key.certificate();
        Ok(AuthCertificate {
            thumbprint: c.thumbprint.clone(),
            subject: c.subject.clone(),
            not_after_unix: c.not_after_unix,
            effective_date: None,
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
    /// Makes a next certificate whose effective date has come the current one.
    pub fn at(mut self, now: i64) -> AuthConfig {
        if self.next.as_ref().is_some_and(|n| n.effective_date.unwrap_or(0) <= now) {
            self.publish_next();
        }
        self
    }

    /// `-PublishCertificate`: next becomes current, current becomes previous.
    pub fn publish_next(&mut self) -> bool {
        match self.next.take() {
            Some(mut n) => {
                n.effective_date = None;
                self.previous = self.current.take();
                self.current = Some(n);
                true
            }
            None => false,
        }
    }

    /// Keys for the metadata document: current, next, previous.
    pub fn published(&self) -> Vec<VerifyingKey> {
        [&self.current, &self.next, &self.previous]
            .into_iter()
            .flatten()
            .filter_map(|c| VerifyingKey::from_pem(&c.cert_pem).ok())
            .collect()
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

pub async fn auth_config(store: &Store) -> Result<AuthConfig, AuthConfigError> {
    let cfg: AuthConfig = load(store, SETTING_AUTH_CONFIG).await?.unwrap_or_default();
    Ok(cfg.at(tandem_store::now_unix()))
}

pub async fn save_auth_config(store: &Store, cfg: &AuthConfig) -> Result<(), AuthConfigError> {
    save(store, SETTING_AUTH_CONFIG, cfg).await
}

/// First start: creates the self-signed Auth certificate (RSA 2048, 5 years) when none is set.
pub async fn ensure_auth_certificate(store: &Store, organization: &str) -> Result<Option<String>, AuthConfigError> {
    let mut cfg = auth_config(store).await?;
    if cfg.current.is_some() {
        return Ok(None);
    }
    let pair = tandem_pki::signing::self_signed(AUTH_CERT_CN, organization, &[], tandem_pki::signing::SIGNING_VALIDITY)
        .map_err(|e| AuthConfigError::Generate(e.to_string()))?;
    let cert = AuthCertificate::from_pem(&pair.cert_pem, &pair.key_pem).map_err(AuthConfigError::Generate)?;
    let msg = format!("{AUTH_CERT_CN} {} created", cert.thumbprint);
    cfg.current = Some(cert);
    save_auth_config(store, &cfg).await?;
    Ok(Some(msg))
}

/// Our auth metadata document as served at `location`.
pub async fn metadata_document(store: &Store, location: &str) -> Result<MetadataDocument, AuthConfigError> {
    let cfg = auth_config(store).await?;
    let keys = cfg.published();
    if keys.is_empty() {
        return Err(AuthConfigError::NoCertificate);
    }
    let refs: Vec<&VerifyingKey> = keys.iter().collect();
    Ok(metadata::build("Tandem Mailbox", &cfg.service_name, &cfg.realm, &refs, location))
}

// ------------------------------------------------------------------ partner applications

pub async fn partner_applications(store: &Store) -> Result<Vec<PartnerApplication>, AuthConfigError> {
    Ok(load(store, SETTING_PARTNERS).await?.unwrap_or_default())
}

pub async fn save_partner_applications(store: &Store, partners: &[PartnerApplication]) -> Result<(), AuthConfigError> {
    save(store, SETTING_PARTNERS, &partners).await
}

pub async fn accepted_domains(store: &Store, config: &MailboxConfig) -> Result<Vec<String>, AuthConfigError> {
    match load::<Vec<String>>(store, SETTING_ACCEPTED_DOMAINS).await? {
        Some(d) if !d.is_empty() => Ok(d),
        _ => {
            let fqdn = config.fqdn.as_str();
            Ok(vec![fqdn.split_once('.').map(|(_, p)| p).unwrap_or(fqdn).to_owned()])
        }
    }
}

/// The HTTPS client for metadata, trusting the configured CA.
pub async fn metadata_client(store: &Store) -> Result<reqwest::Client, AuthConfigError> {
    let ca = store.setting(SETTING_TRUSTED_CA).await?.filter(|s| !s.trim().is_empty());
    tandem_http::client::https_client(ca.as_deref())
        .map_err(|e| AuthConfigError::Corrupt(SETTING_TRUSTED_CA, e.to_string()))
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

/// Fetches every partner's metadata again and saves what changed; returns how many changed.
pub async fn refresh_partner_metadata(store: &Store) -> Result<usize, AuthConfigError> {
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

// ------------------------------------------------------------------ validating tokens

#[derive(Debug)]
struct Snapshot {
    loaded: Instant,
    raw: String,
    generation: u64,
    policy: ValidationPolicy,
    partners: Arc<Vec<TrustedPartner>>,
    challenge: HeaderValue,
}

/// What EWS needs to check S2S tokens: the store, this server's names and the caches.
#[derive(Debug)]
pub struct AuthState {
    store: Store,
    config: MailboxConfig,
    cache: ValidationCache,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    last_refetch: Mutex<Option<Instant>>,
}

/// A refused request: the 401 to send.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// `None` when no credentials were sent at all.
    pub error: Option<TokenError>,
    pub challenge: HeaderValue,
}

impl Refusal {
    /// The `x-ms-diagnostics` value, if a token was refused.
    pub fn diagnostic(&self) -> Option<String> {
        self.error.as_ref().map(TokenError::diagnostic)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = (StatusCode::UNAUTHORIZED, "401 Unauthorized").into_response();
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        if let Some(d) = self.diagnostic().and_then(|d| HeaderValue::from_str(&d).ok()) {
            resp.headers_mut().insert("x-ms-diagnostics", d);
        }
        resp
    }
}

impl AuthState {
    pub fn new(store: Store, config: &MailboxConfig) -> Arc<AuthState> {
        Arc::new(AuthState {
            store,
            config: config.clone(),
            cache: ValidationCache::new(CACHE_CAPACITY),
            snapshot: Mutex::new(None),
            last_refetch: Mutex::new(None),
        })
    }

    async fn snapshot(&self, force: bool) -> Result<Arc<Snapshot>, AuthConfigError> {
        let old = self.snapshot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(s) = &old
            && !force
            && s.loaded.elapsed() < RELOAD_AFTER
        {
            return Ok(s.clone());
        }
        let cfg = auth_config(&self.store).await?;
        let apps = partner_applications(&self.store).await?;
        let domains = accepted_domains(&self.store, &self.config).await?;
        let raw = format!(
            "{}|{}|{:?}",
            serde_json::to_string(&cfg.view()).unwrap_or_default(),
            serde_json::to_string(&apps).unwrap_or_default(),
            domains
        );
        let snap = match &old {
            Some(s) if s.raw == raw => Snapshot {
                loaded: Instant::now(),
                raw,
                generation: s.generation,
                policy: s.policy.clone(),
                partners: s.partners.clone(),
                challenge: s.challenge.clone(),
            },
            _ => {
                let mut partners = Vec::new();
                for app in &apps {
                    match app.trusted() {
                        Ok(p) => partners.push(p),
                        Err(e) => tracing::warn!(partner = %app.name, error = %e, "partner metadata unusable"),
                    }
                }
                let mut hostnames =
                    vec![self.config.fqdn.to_string(), self.config.autodiscover_fqdn.to_string(), "localhost".into()];
                hostnames.push(self.config.https_listen.ip().to_string());
                let mut realms = domains.clone();
                if !cfg.realm.is_empty() {
                    realms.push(cfg.realm.clone());
                }
                let policy = ValidationPolicy::new(&cfg.service_name, hostnames, realms, domains);
                let challenge = HeaderValue::from_str(&www_authenticate(
                    &cfg.service_name,
                    &ValidationPolicy::trusted_issuers(&partners),
                ))
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
                Snapshot {
                    loaded: Instant::now(),
                    raw,
                    generation: old.as_ref().map(|s| s.generation + 1).unwrap_or(1),
                    policy,
                    partners: Arc::new(partners),
                    challenge,
                }
            }
        };
        let snap = Arc::new(snap);
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
        Ok(snap)
    }

    fn refetch_allowed(&self) -> bool {
        let mut last = self.last_refetch.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < UNKNOWN_KEY_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The challenge for a request without credentials.
    pub async fn challenge(&self) -> Refusal {
        let challenge = match self.snapshot(false).await {
            Ok(s) => s.challenge.clone(),
            Err(_) => HeaderValue::from_static("Bearer"),
        };
        Refusal { error: None, challenge }
    }

    /// Validates an S2S token. An unknown `x5t` triggers one metadata refetch (rate-limited),
    /// which is how a partner's certificate rollover is picked up between refreshes.
    pub async fn validate(&self, token: &str) -> Result<Arc<Validated>, Refusal> {
        let snap = match self.snapshot(false).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the auth configuration");
                return Err(Refusal {
                    error: Some(TokenError::Malformed(format!("the server cannot check tokens now: {e}"))),
                    challenge: HeaderValue::from_static("Bearer"),
                });
            }
        };
        let now = tandem_store::now_unix();
        if let Some(v) = self.cache.get(token, snap.generation, now) {
            return Ok(v);
        }
        let mut result = tandem_oauth::token::validate(token, &snap.policy, &snap.partners, now);
        let mut snap = snap;
        if matches!(result, Err(TokenError::UnknownKey(_))) && self.refetch_allowed() {
            match refresh_partner_metadata(&self.store).await {
                Ok(n) if n > 0 => {
                    if let Ok(s) = self.snapshot(true).await {
                        snap = s;
                        result = tandem_oauth::token::validate(token, &snap.policy, &snap.partners, now);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "metadata refetch failed"),
            }
        }
        match result {
            Ok(v) => {
                let v = Arc::new(v);
                self.cache.insert(token, snap.generation, v.clone(), now);
                Ok(v)
            }
            Err(e) => {
                tracing::info!(diagnostic = %e.diagnostic(), "S2S token refused");
                Err(Refusal { error: Some(e), challenge: snap.challenge.clone() })
            }
        }
    }
}

/// The bearer token of `Authorization: Bearer …`, if the request carries one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// For EWS: `Ok(None)` when the request carries no bearer token (try other schemes, or answer
/// `auth.challenge().await`), `Ok(Some(v))` for an accepted S2S token — `v.user` is the mailbox to
/// act on, `v.rights` the granted roles — and `Err(refusal)` (a ready 401 response) otherwise.
pub async fn validate_bearer(auth: &AuthState, headers: &HeaderMap) -> Result<Option<Arc<Validated>>, Refusal> {
    match bearer_token(headers) {
        None => Ok(None),
        Some(token) => auth.validate(token).await.map(Some),
    }
}

// ------------------------------------------------------------------ routes

async fn serve_metadata(State(auth): State<Arc<AuthState>>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| tandem_oauth::metadata::is_plain_host(h))
        .map(str::to_owned)
        .unwrap_or_else(|| auth.config.fqdn.to_string());
    let location = format!("https://{host}{}", crate::paths::AUTH_METADATA);
    match metadata_document(&auth.store, &location).await {
        Ok(doc) => (StatusCode::OK, axum::Json(doc)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the auth metadata document");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// `/autodiscover/metadata/json/1`.
pub fn routes(auth: Arc<AuthState>) -> Router {
    Router::new().route(crate::paths::AUTH_METADATA, get(serve_metadata)).with_state(auth)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tandem_oauth::token::{Audience, UserIdentity, mint_user_token};
    use tandem_oauth::{LYNC_APP_ID, SigningKey, TrustLevel};

    async fn setup() -> (tempfile::TempDir, Store, MailboxConfig) {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", tmp.path().join("mbx.db").display());
        let store = Store::open(&url, &[]).await.unwrap();
        let cfg = tandem_config::Config::defaults(tmp.path(), &tandem_config::Overrides::default()).unwrap().mailbox;
        (tmp, store, cfg)
    }

    fn lync_metadata(keys: &[&SigningKey]) -> String {
        let v: Vec<&VerifyingKey> = keys.iter().map(|k| k.certificate()).collect();
        serde_json::to_string(&metadata::build(
            "Lync",
            LYNC_APP_ID,
            "litwareinc.com",
            &v,
            "https://pool/metadata/json/1",
        ))
        .unwrap()
    }

    fn signing() -> SigningKey {
        let p = tandem_pki::signing::self_signed("pool", "litwareinc.com", &[], time::Duration::days(30)).unwrap();
        SigningKey::from_pem(&p.cert_pem, &p.key_pem).unwrap()
    }

    fn partner(doc: String, enabled: bool) -> PartnerApplication {
        PartnerApplication {
            name: "Lync".into(),
            application_identifier: LYNC_APP_ID.into(),
            auth_metadata_url: None,
            realm: None,
            enabled,
            application_trust_level: TrustLevel::Full,
            accept_security_identifier_information: false,
            linked_account: None,
            application_type: Some("Lync".into()),
            roles: vec!["UserApplication".into(), "ArchiveApplication".into()],
            metadata: Some(doc),
            metadata_fetched_at: Some(0),
            metadata_error: None,
        }
    }

    #[tokio::test]
    async fn auth_certificate_rollover_and_metadata() {
        let (_tmp, store, _) = setup().await;
        let made = ensure_auth_certificate(&store, "litwareinc.com").await.unwrap().unwrap();
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

    #[tokio::test]
    async fn validate_bearer_accepts_refuses_and_applies_changes() {
        let (_tmp, store, cfg) = setup().await;
        let key = signing();
        save_partner_applications(&store, &[partner(lync_metadata(&[&key]), true)]).await.unwrap();
        let auth = AuthState::new(store.clone(), &cfg);
        let alice = UserIdentity { smtp: "alice@litwareinc.com".into(), sip: None };
        let aud = Audience::new(EXCHANGE_APP_ID, cfg.fqdn.as_str(), "litwareinc.com");
        let token =
            mint_user_token(&key, LYNC_APP_ID, "litwareinc.com", &aud, &alice, tandem_store::now_unix(), 600).unwrap();

        let mut headers = HeaderMap::new();
        assert!(validate_bearer(&auth, &headers).await.unwrap().is_none());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        let v = validate_bearer(&auth, &headers).await.unwrap().unwrap();
        assert_eq!(v.user.as_deref(), Some("alice@litwareinc.com"));
        assert_eq!(v.rights, vec![tandem_oauth::Right::UserApplication, tandem_oauth::Right::ArchiveApplication]);
        // Cached: the same Arc comes back.
        let again = validate_bearer(&auth, &headers).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&v, &again));

        // Disabling the partner applies without a restart, and the 401 carries the challenge.
        save_partner_applications(&store, &[partner(lync_metadata(&[&key]), false)]).await.unwrap();
        tokio::time::sleep(RELOAD_AFTER + Duration::from_millis(100)).await;
        let refusal = validate_bearer(&auth, &headers).await.unwrap_err();
        assert_eq!(refusal.error.as_ref().unwrap().category(), "invalid_issuer");
        let resp = refusal.into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with(&format!("Bearer client_id=\"{EXCHANGE_APP_ID}\"")), "{challenge}");
        assert!(challenge.contains("token_types=\"app_asserted_user_v1 service_asserted_app_v1\""));
        assert!(resp.headers()["x-ms-diagnostics"].to_str().unwrap().starts_with("2000003;reason="));
    }
}

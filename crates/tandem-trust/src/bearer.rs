//! Bearer validation for the Mailbox's EWS and Autodiscover: [`validate_bearer`] checks an
//! `Authorization: Bearer` S2S token against the partner applications' metadata with every rule
//! of MS-XOAUTH, caching what it accepted. Settings are read again every [`RELOAD_AFTER`]; a
//! token naming an unknown key triggers one (rate-limited) metadata refetch, which is how a
//! partner's certificate rollover is picked up between refreshes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_config::MailboxConfig;
use tandem_oauth::ValidationCache;
use tandem_oauth::token::{TokenError, TrustedPartner, Validated, ValidationPolicy, www_authenticate};
use tandem_store::Store;
use tandem_types::Role;

use crate::TrustError;
use crate::mailbox::{accepted_domains, auth_config};
use crate::partners;

/// How long the running role uses settings before reading them again.
pub const RELOAD_AFTER: Duration = Duration::from_secs(2);
/// At most one refetch for an unknown key per this interval.
pub const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(10);
/// Validated tokens remembered.
pub const CACHE_CAPACITY: usize = 50_000;

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
    /// When the last unknown-key refetch ran; held across the refetch, so requests that meet
    /// the same new key meanwhile wait for it and check against its result instead of failing.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
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
            last_refetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The mailbox store the settings are read from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The mailbox's configuration (its names).
    pub fn config(&self) -> &MailboxConfig {
        &self.config
    }

    async fn snapshot(&self, force: bool) -> Result<Arc<Snapshot>, TrustError> {
        let old = self.snapshot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(s) = &old
            && !force
            && s.loaded.elapsed() < RELOAD_AFTER
        {
            return Ok(s.clone());
        }
        let cfg = auth_config(&self.store).await?;
        let apps = partners::list(&self.store, Role::Mailbox).await?;
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
        if matches!(result, Err(TokenError::UnknownKey(_))) {
            let mut last = self.last_refetch.lock().await;
            // A refetch that finished while this request waited may have brought the key.
            if let Ok(s) = self.snapshot(false).await
                && s.generation != snap.generation
            {
                snap = s;
                result = tandem_oauth::token::validate(token, &snap.policy, &snap.partners, now);
            }
            if matches!(result, Err(TokenError::UnknownKey(_)))
                && last.is_none_or(|t| t.elapsed() >= UNKNOWN_KEY_REFETCH)
            {
                *last = Some(Instant::now());
                // Reload even when nothing changed here: another process (an admin command, a
                // second mailbox) may have stored the new document already.
                if let Err(e) = partners::refresh(&self.store, Role::Mailbox).await {
                    tracing::warn!(error = %e, "metadata refetch failed");
                }
                if let Ok(s) = self.snapshot(true).await {
                    snap = s;
                    result = tandem_oauth::token::validate(token, &snap.policy, &snap.partners, now);
                }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tandem_oauth::metadata;
    use tandem_oauth::token::{Audience, UserIdentity, mint_user_token};
    use tandem_oauth::{EXCHANGE_APP_ID, LYNC_APP_ID, PartnerApplication, SigningKey, TrustLevel, VerifyingKey};

    use crate::testkit::setup;

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
    async fn validate_bearer_accepts_refuses_and_applies_changes() {
        let (_tmp, store, cfg) = setup().await;
        let key = signing();
        partners::save_list(&store, Role::Mailbox, &[partner(lync_metadata(&[&key]), true)]).await.unwrap();
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
        partners::save_list(&store, Role::Mailbox, &[partner(lync_metadata(&[&key]), false)]).await.unwrap();
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

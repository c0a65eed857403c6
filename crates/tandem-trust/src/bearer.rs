//! Bearer validation for both roles: [`validate_bearer`] checks an `Authorization: Bearer` S2S
//! token against the role's partner applications' metadata with every rule of MS-XOAUTH,
//! caching what it accepted. The Mailbox's EWS and Autodiscover accept the Front End's tokens
//! ([`AuthState::mailbox`], partner `Lync`); the Front End's web services accept the Mailbox's
//! ([`AuthState::frontend`], partner `microsoft.exchange`). Only the role's own names and where its
//! settings live differ; the rules, the caches and the refetch are one implementation. Settings
//! are read again every [`RELOAD_AFTER`]; a token naming an unknown key triggers one
//! (rate-limited) metadata refetch, which is how a partner's certificate rollover is picked up
//! between refreshes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_config::{FrontendConfig, MailboxConfig};
use tandem_oauth::ValidationCache;
use tandem_oauth::token::{TokenError, TrustedPartner, Validated, ValidationPolicy, www_authenticate};
use tandem_store::Store;
use tandem_types::Role;

use crate::TrustError;
use crate::mailbox::{accepted_domains, auth_config};
use crate::{frontend, partners};

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

/// Which role checks the tokens: it decides this server's names (the audience), the realms and
/// user domains accepted, and which store settings hold the partners.
#[derive(Debug, Clone)]
enum Side {
    /// Exchange's EWS and Autodiscover; the partners are `auth.partner_applications`.
    Mailbox(MailboxConfig),
    /// The Front End's web services; the partners are `oauth.partner_applications`.
    Frontend {
        /// The SIP domain: the default OAuth realm and the domain of the users a partner may act as.
        sip_domain: String,
        /// The pool FQDN first, then every other name the Front End answers HTTPS for.
        hostnames: Vec<String>,
    },
}

/// What this role's own configuration says the policy is, read from its store.
struct Policy {
    /// Everything read, to tell a change from the last snapshot.
    raw: String,
    service_name: String,
    hostnames: Vec<String>,
    realms: Vec<String>,
    user_domains: Vec<String>,
    apps: Vec<tandem_oauth::PartnerApplication>,
}

impl Side {
    fn role(&self) -> Role {
        match self {
            Side::Mailbox(_) => Role::Mailbox,
            Side::Frontend { .. } => Role::Frontend,
        }
    }

    async fn policy(&self, store: &Store) -> Result<Policy, TrustError> {
        let apps = partners::list(store, self.role()).await?;
        let apps_raw = serde_json::to_string(&apps).unwrap_or_default();
        match self {
            Side::Mailbox(config) => {
                let cfg = auth_config(store).await?;
                let domains = accepted_domains(store, config).await?;
                let raw = format!("{}|{apps_raw}|{domains:?}", serde_json::to_string(&cfg.view()).unwrap_or_default());
                let hostnames = vec![
                    config.fqdn.to_string(),
                    config.autodiscover_fqdn.to_string(),
                    "localhost".into(),
                    config.https_listen.ip().to_string(),
                ];
                let mut realms = domains.clone();
                if !cfg.realm.is_empty() {
                    realms.push(cfg.realm.clone());
                }
                Ok(Policy { raw, service_name: cfg.service_name, hostnames, realms, user_domains: domains, apps })
            }
            Side::Frontend { sip_domain, hostnames } => {
                let cfg = frontend::configuration(store, sip_domain).await?;
                let raw = format!("{}|{apps_raw}", serde_json::to_string(&cfg).unwrap_or_default());
                let mut user_domains = vec![sip_domain.clone()];
                if !cfg.realm.eq_ignore_ascii_case(sip_domain) {
                    user_domains.push(cfg.realm.clone());
                }
                Ok(Policy {
                    raw,
                    service_name: cfg.service_name,
                    hostnames: hostnames.clone(),
                    realms: vec![cfg.realm],
                    user_domains,
                    apps,
                })
            }
        }
    }
}

/// What a role needs to check S2S tokens: the store, this server's names and the caches.
#[derive(Debug)]
pub struct AuthState {
    store: Store,
    side: Side,
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
    /// The Mailbox's validator (EWS, Autodiscover): tokens from its partners, such as the Front
    /// End (`Lync`), for this mailbox server's names; `store` is the mailbox store.
    pub fn mailbox(store: Store, config: &MailboxConfig) -> Arc<AuthState> {
        AuthState::with_side(store, Side::Mailbox(config.clone()))
    }

    /// The Front End's validator (its web services): tokens from its partners, such as the
    /// Mailbox (`microsoft.exchange`), whose audience names this pool (or another name it
    /// answers HTTPS for) and the CsOAuthConfiguration realm, acting as users of `sip_domain`;
    /// `store` is the Front End store.
    pub fn frontend(store: Store, config: &FrontendConfig, sip_domain: &str) -> Arc<AuthState> {
        let mut hostnames = vec![config.pool_fqdn.to_string(), config.sip_fqdn.to_string(), "localhost".into()];
        hostnames.push(config.https_listen.ip().to_string());
        AuthState::with_side(store, Side::Frontend { sip_domain: sip_domain.to_owned(), hostnames })
    }

    fn with_side(store: Store, side: Side) -> Arc<AuthState> {
        Arc::new(AuthState {
            store,
            side,
            cache: ValidationCache::new(CACHE_CAPACITY),
            snapshot: Mutex::new(None),
            last_refetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The role's store the settings are read from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The role whose tokens these are checked for.
    pub fn role(&self) -> Role {
        self.side.role()
    }

    /// This server's main host name (the mailbox FQDN, the pool FQDN).
    pub fn own_host(&self) -> &str {
        match &self.side {
            Side::Mailbox(config) => config.fqdn.as_str(),
            Side::Frontend { hostnames, .. } => hostnames.first().map(String::as_str).unwrap_or("localhost"),
        }
    }

    async fn snapshot(&self, force: bool) -> Result<Arc<Snapshot>, TrustError> {
        let old = self.snapshot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(s) = &old
            && !force
            && s.loaded.elapsed() < RELOAD_AFTER
        {
            return Ok(s.clone());
        }
        let Policy { raw, service_name, hostnames, realms, user_domains, apps } = self.side.policy(&self.store).await?;
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
                let policy = ValidationPolicy::new(&service_name, hostnames, realms, user_domains);
                let challenge = HeaderValue::from_str(&www_authenticate(
                    &service_name,
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
                if let Err(e) = partners::refresh(&self.store, self.role()).await {
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

/// For EWS and the Front End's web services: `Ok(None)` when the request carries no bearer token (try other schemes, or answer
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
        let auth = AuthState::mailbox(store.clone(), &cfg);
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

    /// The reverse direction: the Mailbox's TokenIssuer mints, the Front End's validator checks
    /// against its `microsoft.exchange` partner application, and refuses what it must.
    #[tokio::test]
    async fn frontend_accepts_the_mailboxs_tokens_and_refuses_others() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tandem_config::Config::defaults(tmp.path(), &tandem_config::Overrides::default()).unwrap();
        let open = |name: &str| format!("sqlite://{}", tmp.path().join(name).display());
        let mstore = Store::open(&open("mbx.db"), &[]).await.unwrap();
        let fstore = Store::open(&open("fe.db"), &[]).await.unwrap();
        crate::mailbox::ensure_auth_certificate(&mstore, "litwareinc.com", 30).await.unwrap();
        let doc =
            crate::mailbox::metadata_document(&mstore, "https://mail/autodiscover/metadata/json/1").await.unwrap();
        let exchange = PartnerApplication {
            name: "microsoft.exchange".into(),
            application_identifier: EXCHANGE_APP_ID.into(),
            enabled: true,
            application_trust_level: TrustLevel::Full,
            metadata: Some(serde_json::to_string(&doc).unwrap()),
            metadata_fetched_at: Some(0),
            ..PartnerApplication::default()
        };
        partners::save_list(&fstore, Role::Frontend, &[exchange]).await.unwrap();
        let domain = cfg.domain.as_str();
        let pool = cfg.frontend.pool_fqdn.as_str();
        let auth = AuthState::frontend(fstore.clone(), &cfg.frontend, domain);
        assert_eq!(auth.own_host(), pool);
        let issuer = crate::mailbox::TokenIssuer::new(mstore.clone(), &cfg.mailbox);
        let alice = UserIdentity { smtp: format!("alice@{domain}"), sip: Some(format!("sip:alice@{domain}")) };

        // Accepted: the user and the partner come through, and the issuer's cache answers again.
        let token = issuer.user_token(pool, &alice).await.unwrap();
        assert!(Arc::ptr_eq(&token, &issuer.user_token(pool, &alice).await.unwrap()));
        let v = auth.validate(&token).await.unwrap();
        assert_eq!(v.partner, "microsoft.exchange");
        assert_eq!(v.user.as_deref(), Some(alice.smtp.as_str()));
        assert_eq!(v.sip, alice.sip);
        assert_eq!(v.claims["actor"]["iss"], format!("{EXCHANGE_APP_ID}@{domain}"));
        assert_eq!(v.claims["outer"]["aud"], format!("{LYNC_APP_ID}/{pool}@{domain}"));

        let refused = |token: String| {
            let auth = auth.clone();
            async move { auth.validate(&token).await.unwrap_err().error.unwrap() }
        };
        let current = crate::mailbox::auth_config(&mstore).await.unwrap().current.unwrap();
        let mailbox_key = SigningKey::from_pem(&current.cert_pem, &current.key_pem).unwrap();
        let now = tandem_store::now_unix();
        let aud = Audience::new(LYNC_APP_ID, pool, domain);

        // A forged signature: the actor's claims changed under the Mailbox's signature.
        let (outer_header, rest) = token.split_once('.').unwrap();
        let outer: serde_json::Value =
            serde_json::from_slice(&tandem_oauth::b64url_decode(rest.trim_end_matches('.')).unwrap()).unwrap();
        let actor = outer["actortoken"].as_str().unwrap();
        let parts: Vec<&str> = actor.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&tandem_oauth::b64url_decode(parts[1]).unwrap()).unwrap();
        claims["exp"] = serde_json::Value::String((now + 86_400 * 365).to_string());
        let forged_actor = format!("{}.{}.{}", parts[0], tandem_oauth::b64url(claims.to_string().as_bytes()), parts[2]);
        let mut forged_outer = outer.clone();
        forged_outer["actortoken"] = serde_json::Value::String(forged_actor);
        let forged = format!("{outer_header}.{}.", tandem_oauth::b64url(forged_outer.to_string().as_bytes()));
        assert!(matches!(refused(forged).await, TokenError::BadSignature(_)));

        // Signed with a key of its own, which no partner publishes.
        let own = signing();
        let e = refused(mint_user_token(&own, EXCHANGE_APP_ID, domain, &aud, &alice, now, 600).unwrap()).await;
        assert!(matches!(e, TokenError::UnknownKey(_)), "{e}");

        // Meant for another server: the mailbox's audience, or another host.
        let to_mailbox = Audience::new(EXCHANGE_APP_ID, pool, domain);
        let e = refused(mint_user_token(&mailbox_key, EXCHANGE_APP_ID, domain, &to_mailbox, &alice, now, 600).unwrap())
            .await;
        assert!(matches!(e, TokenError::WrongAudience { .. }), "{e}");
        let other_host = issuer.user_token("pool.fabrikam.com", &alice).await.unwrap();
        assert!(matches!(refused(other_host.to_string()).await, TokenError::WrongAudience { .. }));

        // Expired (past the clock skew allowed).
        let e =
            refused(mint_user_token(&mailbox_key, EXCHANGE_APP_ID, domain, &aud, &alice, now - 7200, 3600).unwrap())
                .await;
        assert!(matches!(e, TokenError::Expired { .. }), "{e}");

        // The right key under an issuer that is not a partner of the Front End.
        let e = refused(mint_user_token(&mailbox_key, LYNC_APP_ID, domain, &aud, &alice, now, 600).unwrap()).await;
        assert!(matches!(e, TokenError::UntrustedIssuer(_)), "{e}");

        // A user outside the organisation's domains.
        let stranger = UserIdentity { smtp: "eve@fabrikam.com".into(), sip: None };
        let e = refused(issuer.user_token(pool, &stranger).await.unwrap().to_string()).await;
        assert!(matches!(e, TokenError::UserOutsideRealm(_)), "{e}");

        // No token at all: the challenge names the Front End and its partner.
        let challenge = auth.challenge().await.challenge;
        let challenge = challenge.to_str().unwrap();
        assert!(challenge.starts_with(&format!("Bearer client_id=\"{LYNC_APP_ID}\"")), "{challenge}");
        assert!(challenge.contains(&format!("{EXCHANGE_APP_ID}@*")), "{challenge}");
    }
}

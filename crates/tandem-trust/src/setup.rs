//! The trust setup `tandem up` performs on first start (the seed's steps 2a, 2b, 4 and 6), and
//! the checks of those steps that `tandem integration status` reports.
//!
//! Before the roles start, [`before_start`] makes sure each role has its signing certificate,
//! trusts the deployment CA for metadata downloads, and (Front End) knows the Autodiscover URL.
//! Once both listen, [`after_start`] registers each role as the other's partner application
//! through the real metadata URLs, as an administrator would with the cmdlets.

use std::sync::Arc;

use serde::Serialize;
use tandem_config::{Config, Endpoints, RoleSelection};
use tandem_oauth::token::{UserIdentity, Validated};
use tandem_oauth::{EXCHANGE_APP_ID, LYNC_APP_ID, PartnerApplication, PartnerMetadata};
use tandem_pki::Pki;
use tandem_store::Store;
use tandem_types::Role;

use crate::partners::{self, EnterpriseApp};
use crate::rollover::{Expiry, Policy};
use crate::{TrustError, bearer, frontend, mailbox, store_err};

/// Before the roles start: certificates and the trust anchors for metadata downloads. Each
/// store is the role's, when this process runs the role. Returns the steps done.
pub async fn before_start(
    cfg: &Config,
    frontend_store: Option<&Store>,
    mailbox_store: Option<&Store>,
) -> Result<Vec<String>, TrustError> {
    let pki = Pki::new(cfg.pki_dir());
    let ca_path = pki.ca_cert_path();
    let ca =
        std::fs::read_to_string(&ca_path).map_err(|e| TrustError::Setup(format!("reading the deployment CA: {e}")))?;
    let domain = cfg.domain.to_string();
    let mut done = Vec::new();
    // In the seed's order: 2a (Mailbox), then 2b and 4 (Front End).
    if let Some(store) = mailbox_store.filter(|_| cfg.mailbox.enabled) {
        if let Some(m) =
            mailbox::ensure_auth_certificate(store, &domain, cfg.certificates.signing_validity_days).await?
        {
            done.push(format!("step 2a: {m}"));
        }
        set_once(store, Role::Mailbox, partners::setting_trusted_ca(Role::Mailbox), &ca).await?;
        let domains = serde_json::to_string(&[&domain])
            .map_err(|e| TrustError::Corrupt(mailbox::SETTING_ACCEPTED_DOMAINS, e.to_string()))?;
        set_once(store, Role::Mailbox, mailbox::SETTING_ACCEPTED_DOMAINS, &domains).await?;
    }
    if let Some(store) = frontend_store.filter(|_| cfg.frontend.enabled) {
        let name = Role::Frontend.as_str();
        let tls = (
            std::fs::read_to_string(pki.server_cert_path(name)).unwrap_or_default(),
            std::fs::read_to_string(pki.server_cert_path(name).with_extension("key")).unwrap_or_default(),
        );
        if let Some(m) = frontend::ensure_default_certificate(
            store,
            &domain,
            Some((&tls.0, &tls.1)),
            cfg.certificates.signing_validity_days,
        )
        .await?
        {
            done.push(format!("step 2b: {m}"));
        }
        set_once(store, Role::Frontend, partners::setting_trusted_ca(Role::Frontend), &ca).await?;
        if let Some(url) = derive_autodiscover_url(cfg, store).await? {
            done.push(format!("step 4: ExchangeAutodiscoverUrl set to {url}"));
        }
    }
    Ok(done)
}

/// The ExchangeAutodiscoverUrl the configuration implies: the mailbox's Autodiscover name with
/// its HTTPS port.
pub fn autodiscover_url_of(cfg: &Config) -> String {
    let port = cfg.mailbox.https_listen.port();
    let host = cfg.mailbox.autodiscover_fqdn.to_string();
    if port == 443 {
        format!("https://{host}/autodiscover/autodiscover.svc")
    } else {
        format!("https://{host}:{port}/autodiscover/autodiscover.svc")
    }
}

/// Step 4: sets ExchangeAutodiscoverUrl from the configuration when none is set, and again when
/// the one set is the value derived last time (an administrator's own value stays). Returns the
/// URL when it set one.
async fn derive_autodiscover_url(cfg: &Config, store: &Store) -> Result<Option<String>, TrustError> {
    let domain = cfg.domain.to_string();
    let derived = autodiscover_url_of(cfg);
    let mut oc = frontend::configuration(store, &domain).await?;
    let last = store.setting(frontend::SETTING_DERIVED_AUTODISCOVER_URL).await.map_err(store_err(Role::Frontend))?;
    match (&oc.exchange_autodiscover_url, &last) {
        (None, _) => oc.exchange_autodiscover_allowed_domains = Some(format!("*.{domain}")),
        (Some(current), Some(last)) if current == last && *last != derived => {}
        _ => return Ok(None),
    }
    oc.exchange_autodiscover_url = Some(derived.clone());
    frontend::set_configuration(store, &oc).await?;
    store.set_setting(frontend::SETTING_DERIVED_AUTODISCOVER_URL, &derived).await.map_err(store_err(Role::Frontend))?;
    Ok(Some(derived))
}

/// Writes a setting unless an administrator (or an earlier start) set it.
async fn set_once(store: &Store, role: Role, name: &str, value: &str) -> Result<(), TrustError> {
    if store.setting(name).await.map_err(store_err(role))?.is_none() {
        store.set_setting(name, value).await.map_err(store_err(role))?;
    }
    Ok(())
}

/// After the roles listen: partner applications both ways pointing at the local metadata URLs
/// (when this process runs both roles and a direction is missing). Returns every setup step
/// done, `done` (from [`before_start`]) first.
pub async fn after_start(
    cfg: &Config,
    roles: RoleSelection,
    frontend_store: &Store,
    mailbox_store: &Store,
    mut done: Vec<String>,
) -> Vec<String> {
    if roles.runs_both(cfg) {
        match partners_both_ways(cfg, frontend_store, mailbox_store).await {
            Ok(mut d) => done.append(&mut d),
            Err(e) => {
                tracing::error!(error = %e, "setup step 6 (partner applications) failed");
                done.push(format!("step 6 FAILED: {e}; `tandem integration status` shows what to do"));
            }
        }
    }
    done
}

async fn partners_both_ways(cfg: &Config, fe_store: &Store, mbx_store: &Store) -> Result<Vec<String>, TrustError> {
    let e = Endpoints::of(cfg);
    let mut done = Vec::new();
    let mut fe_list = partners::list(fe_store, Role::Frontend).await?;
    if !fe_list.iter().any(|p| p.application_identifier == EXCHANGE_APP_ID) {
        let client = partners::metadata_client(fe_store, Role::Frontend).await?;
        let (p, _) = partners::download(&client, "microsoft.exchange", &e.mailbox.auth_metadata_url).await?;
        fe_list.push(p);
        partners::save_list(fe_store, Role::Frontend, &fe_list).await?;
        done.push(format!(
            "step 6: Front End partner application microsoft.exchange (Full) -> {}",
            e.mailbox.auth_metadata_url
        ));
    }
    let mut mbx_list = partners::list(mbx_store, Role::Mailbox).await?;
    if !mbx_list.iter().any(|p| p.application_identifier == LYNC_APP_ID) {
        let client = partners::metadata_client(mbx_store, Role::Mailbox).await?;
        let (p, _) = partners::enterprise_partner(&client, &e.frontend.auth_metadata_url, EnterpriseApp::Lync).await?;
        partners::upsert(&mut mbx_list, p);
        partners::save_list(mbx_store, Role::Mailbox, &mbx_list).await?;
        done.push(format!(
            "step 6: Mailbox partner application Lync (UserApplication, ArchiveApplication) -> {}",
            e.frontend.auth_metadata_url
        ));
    }
    Ok(done)
}

// ------------------------------------------------------------------ integration status

/// One setup step as `integration status` reports it.
#[derive(Debug, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub name: &'static str,
    pub status: &'static str,
    pub reason: String,
}

impl Step {
    /// A step that passed (`Ok`, with what was found) or failed (`Err`, with what to do).
    pub fn new(step: &'static str, name: &'static str, r: Result<String, String>) -> Step {
        match r {
            Ok(reason) => Step { step, name, status: "pass", reason },
            Err(reason) => Step { step, name, status: "fail", reason },
        }
    }

    pub fn passed(&self) -> bool {
        self.status != "fail"
    }

    /// Adds a certificate's expiry to a passing step: a note, or (a warning threshold reached
    /// with no successor published) the status `warn`, which still passes.
    fn with_expiry(mut self, expiry: Option<Expiry>) -> Step {
        let Some(e) = expiry else { return self };
        if self.status != "pass" {
            return self;
        }
        if e.needs_attention() {
            self.status = "warn";
            self.reason = format!(
                "{}; WARNING: the certificate {} (within the {}-day warning) and no successor is published",
                self.reason,
                e.describe(),
                e.warning.unwrap_or_default()
            );
        } else {
            self.reason = format!("{}; {}", self.reason, e.describe());
        }
        self
    }
}

async fn fetch_doc(client: &reqwest::Client, url: &str) -> Result<PartnerMetadata, String> {
    partners::fetch_metadata(client, url).await.map(|(_, d)| d).map_err(|e| e.to_string())
}

/// Step 1: both roles answer `/readyz`. `client` trusts the deployment CA.
pub async fn servers_running(client: &reqwest::Client, e: &Endpoints) -> Step {
    let mut up = Vec::new();
    for (name, url) in [("Mailbox", &e.mailbox.ready_url), ("Front End", &e.frontend.ready_url)] {
        match client.get(url.as_str()).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => up.push(format!("{name} not ready (HTTP {})", r.status().as_u16())),
            Err(err) => up.push(format!("{name} not reachable at {url}: {}", tandem_http::client::root_cause(&err))),
        }
    }
    Step::new(
        "1",
        "Both servers installed and running",
        if up.is_empty() {
            Ok("both roles answer /readyz".into())
        } else {
            Err(format!("{}; start them with `tandem up`", up.join("; ")))
        },
    )
}

/// Step 2a: the Mailbox's Auth certificate exists, is valid and is published (with its expiry
/// judged by `policy`).
pub async fn auth_certificate(
    client: &reqwest::Client,
    e: &Endpoints,
    mstore: &Store,
    policy: &Policy,
) -> Result<Step, TrustError> {
    let mut auth = mailbox::auth_config(mstore).await?;
    let now = tandem_store::now_unix();
    let state = auth.take_rollover();
    let expiry = state.expiry(now, policy);
    auth.put_rollover(state);
    let r = match &auth.current {
        None => {
            Err("no current Auth certificate; run `tandem exchange set-auth-config --certificate-thumbprint T`"
                .to_owned())
        }
        Some(c) if policy.seconds_left(c.not_after_unix, now) < 0 => {
            Err(format!("the Auth certificate {} expired; roll a new one with set-auth-config", c.thumbprint))
        }
        Some(c) => match fetch_doc(client, &e.mailbox.auth_metadata_url).await {
            Ok(doc) if doc.keys.iter().any(|k| k.thumbprint == c.thumbprint) => {
                Ok(format!("current {} published at {}", c.thumbprint, e.mailbox.auth_metadata_url))
            }
            Ok(_) => {
                Err(format!("{} does not list the current certificate {}", e.mailbox.auth_metadata_url, c.thumbprint))
            }
            Err(err) => Err(err),
        },
    };
    Ok(Step::new("2a", "Exchange server-to-server auth certificate", r).with_expiry(expiry))
}

/// Step 2b: the Front End's OAuthTokenIssuer certificate meets the three rules and is published.
pub async fn token_issuer_certificate(
    client: &reqwest::Client,
    e: &Endpoints,
    fstore: &Store,
    sip_domain: &str,
    policy: &Policy,
) -> Result<Step, TrustError> {
    let certs = frontend::certificates(fstore).await?;
    let now = tandem_store::now_unix();
    let expiry = certs.clone().rollover().expiry(now, policy);
    let r = match &certs.current {
        None => Err(
            "no OAuthTokenIssuer certificate; run `tandem cs set-certificate --type OAuthTokenIssuer --thumbprint T`"
                .to_owned(),
        ),
        Some(c) if policy.seconds_left(c.not_after_unix, now) < 0 => Err(format!(
            "the OAuthTokenIssuer certificate {} expired; assign a new one with `tandem cs set-certificate --type OAuthTokenIssuer`",
            c.thumbprint
        )),
        Some(c) => match frontend::check_rules(&c.cert_pem, Some(&c.key_pem), sip_domain) {
            Err(rule) => Err(rule.to_string()),
            Ok(_) => match fetch_doc(client, &e.frontend.auth_metadata_url).await {
                Ok(doc) if doc.keys.iter().any(|k| k.thumbprint == c.thumbprint) => Ok(format!(
                    "{} meets the three rules (SIP domain in Subject, {} bits, one pool-wide certificate) and is published at {}",
                    c.thumbprint, c.key_bits, e.frontend.auth_metadata_url
                )),
                Ok(_) => Err(format!("{} does not list {}", e.frontend.auth_metadata_url, c.thumbprint)),
                Err(err) => Err(err),
            },
        },
    };
    Ok(Step::new("2b", "Skype for Business OAuthTokenIssuer certificate", r).with_expiry(expiry))
}

fn check_partner(list: &[PartnerApplication], app: &str, side: &str, fix: &str) -> Result<String, String> {
    let p = list
        .iter()
        .find(|p| p.application_identifier == app)
        .ok_or_else(|| format!("{side} has no partner application for {app}; run `{fix}`"))?;
    if !p.enabled {
        return Err(format!("{side}: partner application {} is disabled", p.name));
    }
    let t = p.trusted().map_err(|e| format!("{side}: partner application {}: {e}", p.name))?;
    if t.keys.is_empty() {
        return Err(format!("{side}: partner application {} has no keys", p.name));
    }
    if let Some(err) = &p.metadata_error {
        return Err(format!("{side}: the last metadata refresh of {} failed: {err}", p.name));
    }
    Ok(format!("{side}: {} ({}, {} key(s))", p.name, p.application_trust_level, t.keys.len()))
}

/// Step 6: each role has the other as an enabled partner application with usable keys.
pub async fn partners_in_both_directions(fstore: &Store, mstore: &Store) -> Result<Step, TrustError> {
    let fe_partners = partners::list(fstore, Role::Frontend).await?;
    let mbx_partners = partners::list(mstore, Role::Mailbox).await?;
    let a = check_partner(
        &fe_partners,
        EXCHANGE_APP_ID,
        "Front End",
        "tandem cs new-partner-application --identity microsoft.exchange --metadata-url https://<mailbox>/autodiscover/metadata/json/1 --application-trust-level Full",
    );
    let b = check_partner(
        &mbx_partners,
        LYNC_APP_ID,
        "Mailbox",
        "tandem exchange configure-enterprise-partner-application --auth-metadata-url https://<pool>/metadata/json/1 --application-type Lync",
    );
    let r = match (a, b) {
        (Ok(a), Ok(b)) => Ok(format!("{a}; {b}")),
        (Err(x), Ok(_)) | (Ok(_), Err(x)) => Err(x),
        (Err(x), Err(y)) => Err(format!("{x}; {y}")),
    };
    Ok(Step::new("6", "Partner applications in both directions", r))
}

/// The first half of step 7: a token as the Front End issues it for `smtp`, checked as the
/// Mailbox's EWS checks it. `Err` says which side fails.
pub async fn token_accepted(
    cfg: &Config,
    fstore: &Store,
    mstore: &Store,
    smtp: &str,
) -> Result<Arc<Validated>, String> {
    let issuer = frontend::TokenIssuer::new(fstore.clone(), cfg.domain.as_str());
    let token = issuer
        .user_token(cfg.mailbox.fqdn.as_str(), &UserIdentity { smtp: smtp.to_owned(), sip: None })
        .await
        .map_err(|err| format!("the Front End cannot issue a token: {err}"))?;
    let auth = bearer::AuthState::mailbox(mstore.clone(), &cfg.mailbox);
    auth.validate(&token).await.map_err(|refusal| {
        format!("the mailbox refuses the Front End's token: {}", refusal.diagnostic().unwrap_or_default())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_derived_autodiscover_url_follows_the_configuration() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", tmp.path().join("fe.db").display()), &[]).await.unwrap();
        let mut cfg = Config::defaults(tmp.path(), &tandem_config::Overrides::default()).unwrap();
        let first = derive_autodiscover_url(&cfg, &store).await.unwrap().unwrap();
        assert!(first.ends_with(":8443/autodiscover/autodiscover.svc"), "{first}");
        assert_eq!(derive_autodiscover_url(&cfg, &store).await.unwrap(), None, "unchanged: nothing to do");

        // The port changes in tandem.toml: the derived URL follows.
        cfg.mailbox.https_listen.set_port(9443);
        let second = derive_autodiscover_url(&cfg, &store).await.unwrap().unwrap();
        assert!(second.ends_with(":9443/autodiscover/autodiscover.svc"), "{second}");

        // An administrator's own URL stays, whatever the configuration says.
        let mut oc = frontend::configuration(&store, cfg.domain.as_str()).await.unwrap();
        oc.exchange_autodiscover_url = Some("https://autodiscover.fabrikam.com/autodiscover/autodiscover.svc".into());
        frontend::set_configuration(&store, &oc).await.unwrap();
        cfg.mailbox.https_listen.set_port(10443);
        assert_eq!(derive_autodiscover_url(&cfg, &store).await.unwrap(), None);
        let kept = frontend::configuration(&store, cfg.domain.as_str()).await.unwrap();
        assert_eq!(kept.exchange_autodiscover_url, oc.exchange_autodiscover_url);
        assert_eq!(kept.exchange_autodiscover_allowed_domains.as_deref(), Some("*.litwareinc.com"));
    }
}

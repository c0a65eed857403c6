//! The running roles' certificate task: every check interval it moves each signing certificate
//! (the Mailbox's Auth certificate, the Front End's OAuthTokenIssuer) through the
//! [`rollover`](crate::rollover) states, generating a successor when the current one enters the
//! renewal window, and reports expiry: a log line when a warning threshold is crossed, and the
//! `tandem_certificate_*` gauges on `/metrics`. The TLS renewal in the binary reports through
//! [`Reporter`] too, so both kinds warn alike.

use std::collections::HashMap;
use std::time::Duration;

use tandem_store::Store;
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::frontend::{self, TokenIssuerCertificates};
use crate::mailbox::{self, AuthConfig};
use crate::rollover::{Event, Expiry, Policy, Rolling, Rollover};
use crate::{TrustError, load, save};

/// Metric label of the Mailbox's Auth certificate.
pub const AUTH: &str = "auth";
/// Metric label of the Front End's OAuthTokenIssuer certificate.
pub const OAUTH_TOKEN_ISSUER: &str = "oauth_token_issuer";

/// A signing certificate the task looks after, with its role's store.
#[derive(Debug, Clone)]
pub enum Managed {
    /// The OAuthTokenIssuer certificate; successors name `sip_domain` in the Subject.
    Frontend { store: Store, sip_domain: String },
    /// The Auth certificate; successors carry `organization`.
    Mailbox { store: Store, organization: String },
}

impl Managed {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Managed::Frontend { .. } => OAUTH_TOKEN_ISSUER,
            Managed::Mailbox { .. } => AUTH,
        }
    }

    /// The name administrators know.
    pub fn title(&self) -> &'static str {
        match self {
            Managed::Frontend { .. } => "OAuthTokenIssuer certificate",
            Managed::Mailbox { .. } => "Auth certificate",
        }
    }
}

/// What one check did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub events: Vec<Event>,
    pub expiry: Option<Expiry>,
    /// Set when a successor was due but could not be made (the reason).
    pub blocked: Option<String>,
}

/// Advances the slots, generating a successor when one is due. `stored` is what the store
/// holds now; returns the new slots and the report.
async fn step<C: Rolling + Send + 'static>(
    stored: Rollover<C>,
    now: i64,
    policy: &Policy,
    generate: impl FnOnce() -> Result<C, TrustError> + Send + 'static,
) -> Result<(Rollover<C>, Report), TrustError> {
    let (mut state, mut events) = stored.advance(now, policy);
    let mut blocked = None;
    if state.needs_successor(now, policy) {
        if policy.successor_would_roll_at_once() {
            blocked = Some(format!(
                "a successor valid {} days would itself be inside the {}-day renewal window (clock offset {} days); raise certificates.signing_validity_days",
                policy.signing_validity_days,
                policy.renew_before / 86_400,
                policy.clock_offset / 86_400
            ));
        } else {
            let successor = tokio::task::spawn_blocking(generate)
                .await
                .map_err(|e| TrustError::Setup(format!("certificate generation stopped: {e}")))??;
            let (s, e) = state.publish(successor, now, policy);
            state = s;
            events.push(e);
        }
    }
    let expiry = state.expiry(now, policy);
    Ok((state, Report { events, expiry, blocked }))
}

/// One check of one certificate at `now`; saves what changed (unless an administrator changed
/// the slots meanwhile: the next check starts from theirs).
pub async fn check(managed: &Managed, policy: &Policy, now: i64) -> Result<Report, TrustError> {
    match managed {
        Managed::Frontend { store, sip_domain } => {
            let before: TokenIssuerCertificates =
                load(store, Role::Frontend, frontend::SETTING_CERTIFICATES).await?.unwrap_or_default();
            let (domain, days) = (sip_domain.clone(), policy.signing_validity_days);
            let (state, report) =
                step(before.clone().rollover(), now, policy, move || frontend::generate_certificate(&domain, days))
                    .await?;
            let after = TokenIssuerCertificates::of(state);
            if after != before {
                let latest: TokenIssuerCertificates =
                    load(store, Role::Frontend, frontend::SETTING_CERTIFICATES).await?.unwrap_or_default();
                if latest == before {
                    frontend::save_certificates(store, &after).await?;
                }
            }
            Ok(report)
        }
        Managed::Mailbox { store, organization } => {
            let mut before: AuthConfig =
                load(store, Role::Mailbox, mailbox::SETTING_AUTH_CONFIG).await?.unwrap_or_default();
            let original = before.clone();
            let (org, days) = (organization.clone(), policy.signing_validity_days);
            let (state, report) =
                step(before.take_rollover(), now, policy, move || mailbox::generate_auth_certificate(&org, days))
                    .await?;
            let mut after = original.clone();
            after.put_rollover(state);
            if after != original {
                let latest: AuthConfig =
                    load(store, Role::Mailbox, mailbox::SETTING_AUTH_CONFIG).await?.unwrap_or_default();
                if latest == original {
                    save(store, Role::Mailbox, mailbox::SETTING_AUTH_CONFIG, &after).await?;
                }
            }
            Ok(report)
        }
    }
}

/// Logs and publishes certificate expiry: one log line when a certificate crosses a warning
/// threshold (or gets out of one), gauges on every report.
#[derive(Debug, Default)]
pub struct Reporter {
    warned: HashMap<String, Option<u32>>,
}

impl Reporter {
    /// Reports `expiry` of the certificate `label` (`title` in log lines).
    pub fn expiry(&mut self, label: &str, title: &str, expiry: &Expiry) {
        metrics::gauge!("tandem_certificate_expiry_days", "certificate" => label.to_owned())
            .set(expiry.days_left as f64);
        metrics::gauge!("tandem_certificate_warning_threshold_days", "certificate" => label.to_owned())
            .set(f64::from(expiry.warning.unwrap_or(0)));
        let last = self.warned.insert(label.to_owned(), expiry.warning);
        if last == Some(expiry.warning) {
            return;
        }
        match expiry.warning {
            Some(t) if expiry.successor.is_some() => tracing::info!(
                certificate = title, thumbprint = %expiry.thumbprint, days_left = expiry.days_left, threshold_days = t,
                "certificate {}", expiry.describe()
            ),
            Some(t) => tracing::warn!(
                certificate = title, thumbprint = %expiry.thumbprint, days_left = expiry.days_left, threshold_days = t,
                "certificate {} and has no successor yet", expiry.describe()
            ),
            None if last.flatten().is_some() => tracing::info!(
                certificate = title, thumbprint = %expiry.thumbprint, days_left = expiry.days_left,
                "certificate {}: no longer within a warning threshold", expiry.describe()
            ),
            None => {}
        }
    }

    /// Reports a check's rollover events and expiry.
    pub fn report(&mut self, managed: &Managed, report: &Report) {
        let (label, title) = (managed.label(), managed.title());
        for e in &report.events {
            let event = match e {
                Event::Published { thumbprint, effective } => {
                    tracing::info!(certificate = title, %thumbprint, effective_unix = effective,
                        "successor published as next in the metadata document");
                    "published"
                }
                Event::Promoted { thumbprint, previous } => {
                    tracing::info!(certificate = title, %thumbprint, previous = previous.as_deref().unwrap_or(""),
                        "next certificate is now current; the old one stays published as previous");
                    "promoted"
                }
                Event::Retired { thumbprint } => {
                    tracing::info!(certificate = title, %thumbprint, "previous certificate no longer published");
                    "retired"
                }
            };
            metrics::counter!("tandem_certificate_rollovers_total", "certificate" => label, "event" => event)
                .increment(1);
        }
        if let Some(why) = &report.blocked {
            tracing::error!(certificate = title, "no successor generated: {why}");
        }
        if let Some(e) = &report.expiry {
            self.expiry(label, title, e);
        }
    }
}

/// Checks every certificate in `managed` now and then every `interval` until shutdown.
pub fn spawn(
    managed: Vec<Managed>,
    policy: Policy,
    interval: Duration,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    tasks.spawn(async move {
        let mut reporter = Reporter::default();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            for m in &managed {
                match check(m, &policy, tandem_store::now_unix()).await {
                    Ok(report) => reporter.report(m, &report),
                    Err(e) => tracing::error!(certificate = m.title(), error = %e, "certificate check failed"),
                }
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tandem_config::CertificatesConfig;

    use crate::testkit::setup;

    const DAY: i64 = 86_400;

    #[tokio::test]
    async fn both_certificates_roll_over_by_themselves() {
        let (_tmp, mstore, _) = setup().await;
        let fstore_dir = tempfile::tempdir().unwrap();
        let fstore =
            Store::open(&format!("sqlite://{}", fstore_dir.path().join("fe.db").display()), &[]).await.unwrap();
        mailbox::ensure_auth_certificate(&mstore, "litwareinc.com", 1825).await.unwrap();
        frontend::ensure_default_certificate(&fstore, "litwareinc.com", None, 1825).await.unwrap();
        let first_auth = mailbox::auth_config(&mstore).await.unwrap().current.unwrap();
        let first_fe = frontend::certificates(&fstore).await.unwrap().current.unwrap();
        let policy = Policy::of(&CertificatesConfig {
            overlap_seconds: 600,
            signing_validity_days: 3650,
            ..CertificatesConfig::default()
        });
        let managed = [
            Managed::Mailbox { store: mstore.clone(), organization: "litwareinc.com".into() },
            Managed::Frontend { store: fstore.clone(), sip_domain: "litwareinc.com".into() },
        ];
        let t0 = tandem_store::now_unix();
        // Today: nothing to do.
        for m in &managed {
            let r = check(m, &policy, t0).await.unwrap();
            assert!(r.events.is_empty() && r.expiry.as_ref().unwrap().warning.is_none(), "{r:?}");
        }
        // 1770 days on (55 days left): each gets a successor published as next.
        let shifted = Policy { clock_offset: 1770 * DAY, ..policy.clone() };
        for m in &managed {
            let r = check(m, &shifted, t0).await.unwrap();
            assert!(matches!(r.events.as_slice(), [Event::Published { effective, .. }] if *effective == t0 + 600));
            assert_eq!(r.expiry.as_ref().unwrap().warning, Some(60));
            assert!(r.expiry.unwrap().successor.is_some());
        }
        let auth = mailbox::auth_config(&mstore).await.unwrap();
        let next_auth = auth.next.clone().unwrap();
        assert_eq!(auth.current.as_ref().unwrap().thumbprint, first_auth.thumbprint);
        assert!(next_auth.subject.contains(mailbox::AUTH_CERT_CN));
        assert_eq!(mailbox::metadata_document(&mstore, "x").await.unwrap().keys.len(), 2);
        let fe = frontend::certificates(&fstore).await.unwrap();
        let next_fe = fe.next.clone().unwrap();
        assert!(frontend::check_rules(&next_fe.cert_pem, Some(&next_fe.key_pem), "litwareinc.com").is_ok());
        // A second check publishes nothing more.
        for m in &managed {
            assert!(check(m, &shifted, t0 + 1).await.unwrap().events.is_empty());
        }
        // On the effective date: promoted, the old one previous; the new one is far from expiry.
        for m in &managed {
            let r = check(m, &shifted, t0 + 600).await.unwrap();
            assert!(matches!(r.events.as_slice(), [Event::Promoted { .. }]), "{r:?}");
            assert!(r.expiry.as_ref().unwrap().warning.is_none());
        }
        let auth = mailbox::auth_config(&mstore).await.unwrap();
        assert_eq!(auth.current.as_ref().unwrap().thumbprint, next_auth.thumbprint);
        assert_eq!(auth.previous.as_ref().unwrap().thumbprint, first_auth.thumbprint);
        let fe = frontend::certificates(&fstore).await.unwrap();
        assert_eq!(fe.previous.as_ref().unwrap().thumbprint, first_fe.thumbprint);
        assert_eq!(frontend::metadata_document(&fstore, "litwareinc.com", "x").await.unwrap().keys.len(), 2);
        // After the overlap the previous certificates are dropped.
        for m in &managed {
            let r = check(m, &shifted, t0 + 1200).await.unwrap();
            assert!(matches!(r.events.as_slice(), [Event::Retired { .. }]), "{r:?}");
        }
        assert!(mailbox::auth_config(&mstore).await.unwrap().previous.is_none());
        assert_eq!(frontend::metadata_document(&fstore, "litwareinc.com", "x").await.unwrap().keys.len(), 1);

        // A clock offset beyond the signing validity generates nothing and says why.
        let looping = Policy { clock_offset: 3640 * DAY, ..policy };
        let r = check(&managed[0], &looping, t0 + 1300).await.unwrap();
        assert!(r.events.is_empty());
        assert!(r.blocked.unwrap().contains("signing_validity_days"));
    }
}

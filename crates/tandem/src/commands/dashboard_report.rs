//! The deployment report of the dashboard at `/admin/` (`tandem_frontend::admin_dashboard`): the
//! setup steps from the code `tandem integration status` runs, the certificates of both roles
//! with their slots, and the partner applications of both roles.

use std::sync::Arc;

use serde_json::{Value, json};
use tandem_config::Config;
use tandem_frontend::admin_dashboard::{DeploymentReport, ReportFuture};
use tandem_types::Role;

use super::{fe_store, mbx_store};

/// The report for one deployment's configuration.
#[derive(Debug)]
pub struct DashboardReport {
    cfg: Arc<Config>,
}

impl DashboardReport {
    pub fn new(cfg: Config) -> DashboardReport {
        DashboardReport { cfg: Arc::new(cfg) }
    }
}

impl DeploymentReport for DashboardReport {
    fn report(&self) -> ReportFuture {
        let cfg = self.cfg.clone();
        Box::pin(async move { report(&cfg).await })
    }
}

async fn report(cfg: &Config) -> Value {
    let steps = match super::integration::integration_status(cfg).await {
        Ok(s) => serde_json::to_value(s).unwrap_or_default(),
        Err(e) => json!([{"step": "-", "name": "integration status", "status": "fail", "reason": describe(&e)}]),
    };
    let mut certificates = Vec::new();
    let mut partners = Vec::new();
    let mut problems = Vec::new();
    match fe_store(cfg).await {
        Ok(store) => {
            match tandem_trust::frontend::certificates(&store).await {
                Ok(c) => {
                    for (slot, c) in [("current", &c.current), ("next", &c.next), ("previous", &c.previous)] {
                        if let Some(c) = c {
                            certificates.push(json!({"use": "OAuthTokenIssuer (Front End)", "slot": slot,
                                "thumbprint": c.thumbprint, "subject": c.subject, "not_after": c.not_after_unix,
                                "effective_date": c.effective_date}));
                        }
                    }
                }
                Err(e) => problems.push(format!("OAuthTokenIssuer certificates: {e}")),
            }
            partners_of(&store, Role::Frontend, &mut partners, &mut problems).await;
        }
        Err(e) => problems.push(describe(&e)),
    }
    match mbx_store(cfg).await {
        Ok(store) => {
            match tandem_trust::mailbox::auth_config(&store).await {
                Ok(c) => {
                    for (slot, c) in [("current", &c.current), ("next", &c.next), ("previous", &c.previous)] {
                        if let Some(c) = c {
                            certificates.push(json!({"use": "Auth (Mailbox)", "slot": slot,
                                "thumbprint": c.thumbprint, "subject": c.subject, "not_after": c.not_after_unix,
                                "effective_date": c.effective_date}));
                        }
                    }
                }
                Err(e) => problems.push(format!("Auth certificates: {e}")),
            }
            partners_of(&store, Role::Mailbox, &mut partners, &mut problems).await;
        }
        Err(e) => problems.push(describe(&e)),
    }
    let note = (!problems.is_empty()).then(|| problems.join("; "));
    json!({"steps": steps, "certificates": certificates, "partners": partners, "note": note})
}

async fn partners_of(store: &tandem_store::Store, role: Role, out: &mut Vec<Value>, problems: &mut Vec<String>) {
    match tandem_trust::partners::list(store, role).await {
        Ok(list) => out.extend(list.into_iter().map(|p| {
            json!({"role": role.as_str(), "name": p.name, "application_identifier": p.application_identifier,
                "enabled": p.enabled, "trust_level": p.application_trust_level.to_string(),
                "metadata_url": p.auth_metadata_url})
        })),
        Err(e) => problems.push(format!("{} partner applications: {e}", role.as_str())),
    }
}

fn describe(f: &crate::failure::Failure) -> String {
    match f {
        crate::failure::Failure::Usage(m) => m.clone(),
        crate::failure::Failure::Runtime(e) => format!("{e:#}"),
    }
}

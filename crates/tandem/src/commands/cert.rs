//! `tandem cert`: the deployment's certificates (Get-ExchangeCertificate / Get-CsCertificate):
//! the TLS certificates and CA in the PKI folder, and the token-signing certificates (the
//! Mailbox's Auth certificate, the Front End's OAuthTokenIssuer) in each slot, each with the days
//! left and the warning threshold reached (`[certificates]` in tandem.toml).

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use tandem_config::Config;
use tandem_pki::{CertInfo, Pki};
use tandem_trust::rollover::{Policy, warning_threshold};
use tandem_trust::{frontend as fe, mailbox as mbx};

use super::{Location, fe_store, fmt_time, mbx_store, quiet_logs};
use crate::failure::{CliResult, usage};

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Subject, names, key size, SHA-1 thumbprint, expiry and expiry warning of every
    /// certificate: TLS, CA, and the signing certificates in their current/next/previous slots.
    List {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
        /// With --json, add the token-signing certificates (they have no file: `path` names the
        /// store and slot). Text output always shows them.
        #[arg(long)]
        signing: bool,
    },
}

pub async fn run(cmd: CertCommand) -> CliResult {
    quiet_logs();
    match cmd {
        CertCommand::List { location, json, signing } => list(&location.config()?, json, signing || !json).await,
    }
}

/// One row: the certificate's description, what it is for, and its expiry as judged by policy.
fn row(info: &CertInfo, usage: &str, slot: Option<&str>, extra: Value, policy: &Policy, now: i64) -> Value {
    let days_left = policy.seconds_left(info.not_after_unix, now).div_euclid(86_400);
    let mut v = serde_json::to_value(info).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("use".into(), json!(usage));
        o.insert("slot".into(), json!(slot));
        o.insert("days_left".into(), json!(days_left));
        o.insert("warning_threshold_days".into(), json!(warning_threshold(days_left, &policy.warn_days)));
        if let Some(extra) = extra.as_object() {
            o.extend(extra.clone());
        }
    }
    v
}

/// A stored signing certificate described as the PKI files are; `label` stands in for a path.
fn describe_pem(pem: &str, label: &str) -> Option<CertInfo> {
    tandem_pki::describe_pem(pem, std::path::Path::new(label)).ok()
}

async fn list(cfg: &Config, json: bool, signing: bool) -> CliResult {
    let pki = Pki::new(cfg.pki_dir());
    let certs = pki.list().with_context(|| format!("cannot read {}", pki.dir().display()))?;
    if certs.is_empty() {
        return Err(usage(format!("no certificates in {}: run `tandem up` first", pki.dir().display())));
    }
    let policy = Policy::of(&cfg.certificates);
    let now = tandem_store::now_unix();
    let mut rows: Vec<Value> =
        certs.iter().map(|c| row(c, if c.is_ca { "CA" } else { "TLS" }, None, json!({}), &policy, now)).collect();
    if signing && cfg.mailbox.enabled {
        let auth = mbx::auth_config(&mbx_store(cfg).await?).await.context("reading the auth configuration")?;
        for (slot, c) in [("current", &auth.current), ("next", &auth.next), ("previous", &auth.previous)] {
            let Some(c) = c else { continue };
            if let Some(info) = describe_pem(&c.cert_pem, &format!("mailbox store: Auth certificate ({slot})")) {
                let extra = json!({"effective_date": c.effective_date.map(fmt_time)});
                rows.push(row(&info, "Auth", Some(slot), extra, &policy, now));
            }
        }
    }
    if signing && cfg.frontend.enabled {
        let certs =
            fe::certificates(&fe_store(cfg).await?).await.context("reading the OAuthTokenIssuer certificates")?;
        for (slot, c) in [("current", &certs.current), ("next", &certs.next), ("previous", &certs.previous)] {
            let Some(c) = c else { continue };
            if let Some(info) = describe_pem(&c.cert_pem, &format!("Front End store: OAuthTokenIssuer ({slot})")) {
                let extra = json!({"effective_date": c.effective_date.map(fmt_time)});
                rows.push(row(&info, "OAuthTokenIssuer", Some(slot), extra, &policy, now));
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).context("serialising certificates")?);
        return Ok(());
    }
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    for r in &rows {
        let slot = r["slot"].as_str().map(|s| format!(" ({s})")).unwrap_or_default();
        println!("Use           : {}{slot}", text(r, "use"));
        println!("Path          : {}", text(r, "path"));
        println!("Subject       : {}", text(r, "subject"));
        println!("Issuer        : {}", text(r, "issuer"));
        let sans: Vec<&str> =
            r["subject_alt_names"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        println!("SANs          : {}", sans.join(", "));
        println!("Key           : {} {} bits", text(r, "key_algorithm"), r["key_bits"]);
        println!("Thumbprint    : {}", text(r, "thumbprint"));
        let ca = if r["is_ca"].as_bool() == Some(true) { "  (CA)" } else { "" };
        println!("NotAfter      : {}{ca}", text(r, "not_after"));
        if let Some(e) = r["effective_date"].as_str() {
            println!("EffectiveDate : {e}");
        }
        let days = r["days_left"].as_i64().unwrap_or(0);
        println!("ExpiresIn     : {days} day(s)");
        if let Some(t) = r["warning_threshold_days"].as_u64() {
            println!("Warning       : within the {t}-day expiry warning");
        }
        println!();
    }
    Ok(())
}

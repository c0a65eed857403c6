//! `tandem status`: each role's health and every endpoint (scripts read `--json`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tandem_config::{Config, Endpoints};
use tandem_pki::Pki;

use super::{Location, open_directory};
use crate::failure::{CliResult, runtime, usage};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    location: Location,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: StatusArgs) -> CliResult {
    status(&args.location.config()?, args.json).await
}

/// One role's health as `status` reports it.
#[derive(Debug, serde::Serialize)]
struct Health {
    healthy: bool,
    detail: serde_json::Value,
}

async fn probe(client: &reqwest::Client, url: &str) -> Health {
    match client.get(url).send().await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            let detail = resp.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null);
            Health { healthy: ok, detail }
        }
        Err(e) => Health {
            healthy: false,
            detail: json!({ "error": format!("not reachable: {}", tandem_http::client::root_cause(&e)) }),
        },
    }
}

async fn status(cfg: &Config, as_json: bool) -> CliResult {
    let pki = Pki::new(cfg.pki_dir());
    let ca_path = pki.ca_cert_path();
    let ca_pem =
        std::fs::read(&ca_path).map_err(|e| usage(format!("{}: {e}; run `tandem up` first", ca_path.display())))?;
    let ca = reqwest::Certificate::from_pem(&ca_pem).context("the CA certificate cannot be parsed")?;
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build the HTTPS client")?;
    let e = Endpoints::of(cfg);
    let mailbox = if e.mailbox.enabled { Some(probe(&client, &e.mailbox.ready_url).await) } else { None };
    let frontend = if e.frontend.enabled { Some(probe(&client, &e.frontend.ready_url).await) } else { None };
    let directory = open_directory(cfg).await?;
    let users = directory.list().await?;

    let all_healthy = [&mailbox, &frontend].iter().all(|h| h.as_ref().is_none_or(|h| h.healthy));
    let mut mbx = serde_json::to_value(&e.mailbox).context("serialising")?;
    let mut fe = serde_json::to_value(&e.frontend).context("serialising")?;
    for (v, h) in [(&mut mbx, &mailbox), (&mut fe, &frontend)] {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("healthy".into(), json!(h.as_ref().is_some_and(|h| h.healthy)));
            obj.insert("readiness".into(), h.as_ref().map(|h| h.detail.clone()).unwrap_or(json!("role disabled")));
        }
    }
    let report = json!({
        "domain": cfg.domain.to_string(),
        "data_dir": cfg.data_dir.display().to_string(),
        "ca_certificate": absolute(&ca_path).display().to_string(),
        "healthy": all_healthy,
        "mailbox": mbx,
        "frontend": fe,
        "users": users.iter().map(|u| json!({
            "name": u.name.as_str(),
            "sip_uri": u.sip_uri.to_string(),
            "smtp_address": u.smtp_address.to_string(),
            "display_name": u.display_name,
            "enabled": u.enabled,
        })).collect::<Vec<_>>(),
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report).context("serialising")?);
    } else {
        println!("Domain          : {}", cfg.domain);
        println!("CA certificate  : {}", absolute(&ca_path).display());
        for (name, h, url) in
            [("Mailbox", &mailbox, &e.mailbox.https_url), ("Front End", &frontend, &e.frontend.https_url)]
        {
            let state = match h {
                None => "disabled".to_owned(),
                Some(h) if h.healthy => "healthy".to_owned(),
                Some(h) => format!("NOT healthy: {}", h.detail),
            };
            println!("{name:<16}: {state}  {url}");
        }
        println!("Users           : {}", users.len());
    }
    if all_healthy { Ok(()) } else { Err(runtime("a role is not healthy")) }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

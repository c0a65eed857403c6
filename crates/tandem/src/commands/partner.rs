//! The partner-application command bodies both roles share: `tandem cs …-partner-application`
//! (New-/Get-/Set-/Remove-CsPartnerApplication, `--identity`, `--metadata-url`) and `tandem
//! exchange …-partner-application` (the Exchange cmdlets, `--name`, `--auth-metadata-url`). The
//! storage and download are `tandem_trust::partners`; what differs is named by a [`Side`].

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tandem_config::Config;
use tandem_oauth::partner::check_metadata_url;
use tandem_oauth::{PartnerApplication, PartnerMetadata};
use tandem_store::Store;
use tandem_trust::partners;
use tandem_types::Role;

use super::{Location, fe_store, fmt_time, mbx_store, print_json};
use crate::failure::{CliResult, Failure, usage};

/// A role's partner-application cmdlets: whose store, and the flags that name a partner and its
/// metadata URL.
#[derive(Debug, Clone, Copy)]
pub struct Side {
    pub role: Role,
    pub name_flag: &'static str,
    pub url_flag: &'static str,
}

pub const CS: Side = Side { role: Role::Frontend, name_flag: "--identity", url_flag: "--metadata-url" };
pub const EXCHANGE: Side = Side { role: Role::Mailbox, name_flag: "--name", url_flag: "--auth-metadata-url" };

impl Side {
    async fn store(self, cfg: &Config) -> CliResult<Store> {
        match self.role {
            Role::Frontend => fe_store(cfg).await,
            Role::Mailbox => mbx_store(cfg).await,
        }
    }

    /// `url` as the flag accepts it (absolute https), else exit 2.
    pub fn check_url(self, url: &str) -> CliResult {
        check_metadata_url(url, false).map_err(|e| usage(format!("{}: {e}", self.url_flag)))
    }

    fn no_such(self, name: &str) -> Failure {
        usage(format!("{} {name}: no such partner application", self.name_flag))
    }
}

/// `-Enabled` and `-AcceptSecurityIdentifierInformation`, which New- and Set-CsPartnerApplication
/// and New-PartnerApplication take, and the deployment.
#[derive(Debug, Args)]
pub struct Flags {
    #[arg(long)]
    pub enabled: Option<bool>,
    #[arg(long)]
    pub accept_security_identifier_information: Option<bool>,
    #[command(flatten)]
    pub location: Location,
}

impl Flags {
    /// The flags on a new partner: enabled unless told otherwise, no SID information accepted.
    pub fn apply_new(&self, p: &mut PartnerApplication) {
        p.enabled = self.enabled.unwrap_or(true);
        p.accept_security_identifier_information = self.accept_security_identifier_information.unwrap_or(false);
    }
}

/// Where a listing reads from, and whether it prints JSON.
#[derive(Debug, Args)]
pub struct Output {
    #[command(flatten)]
    pub location: Location,
    #[arg(long)]
    pub json: bool,
}

async fn load(side: Side, store: &Store) -> CliResult<Vec<PartnerApplication>> {
    Ok(partners::list(store, side.role).await.context("reading partner applications")?)
}

async fn store_list(side: Side, store: &Store, list: &[PartnerApplication]) -> CliResult {
    Ok(partners::save_list(store, side.role, list).await.context("saving partner applications")?)
}

async fn client(side: Side, store: &Store) -> CliResult<reqwest::Client> {
    Ok(partners::metadata_client(store, side.role).await.context("the HTTPS client")?)
}

/// A partner application made from the document at `url`, or the seed's error (exit 1).
pub async fn download(
    client: &reqwest::Client,
    name: &str,
    url: &str,
) -> CliResult<(PartnerApplication, PartnerMetadata)> {
    partners::download(client, name, url).await.map_err(|e| Failure::Runtime(e.into()))
}

/// New-(Cs)PartnerApplication: `make` downloads and configures the partner with the role's
/// metadata client; with `replace`, a partner of the same name is replaced, else refused.
pub async fn create(
    side: Side,
    cfg: &Config,
    name: &str,
    replace: bool,
    make: impl AsyncFnOnce(&reqwest::Client) -> CliResult<(PartnerApplication, PartnerMetadata)>,
) -> CliResult {
    let store = side.store(cfg).await?;
    let mut list = load(side, &store).await?;
    if !replace && partners::named(&list, name).next().is_some() {
        return Err(usage(format!(
            "{} {name}: already exists; use set-partner-application or remove it first",
            side.name_flag
        )));
    }
    let client = client(side, &store).await?;
    let (p, doc) = make(&client).await?;
    println!("partner application {name} created: {} with {} key(s)", p.application_identifier, doc.keys.len());
    partners::upsert(&mut list, p);
    store_list(side, &store, &list).await
}

/// Get-(Cs)PartnerApplication: all, or the one named.
pub async fn get(side: Side, name: Option<&str>, output: Output) -> CliResult {
    let store = side.store(&output.location.config()?).await?;
    let list = load(side, &store).await?;
    let list: Vec<_> = match name {
        Some(n) => {
            let found: Vec<_> = partners::named(&list, n).cloned().collect();
            if found.is_empty() {
                return Err(side.no_such(n));
            }
            found
        }
        None => list,
    };
    print_partners(&list, output.json)
}

/// Set-(Cs)PartnerApplication: `apply` changes the partner, given the partner made from the new
/// metadata URL when one is passed (checked by the caller); then `-Enabled` applies.
pub async fn set(
    side: Side,
    cfg: &Config,
    name: &str,
    url: Option<String>,
    enabled: Option<bool>,
    apply: impl FnOnce(&mut PartnerApplication, Option<PartnerApplication>),
) -> CliResult {
    let store = side.store(cfg).await?;
    let mut list = load(side, &store).await?;
    let Some(p) = list.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) else {
        return Err(side.no_such(name));
    };
    let fresh = match url {
        Some(u) => {
            let client = client(side, &store).await?;
            Some(download(&client, &p.name, &u).await?.0)
        }
        None => None,
    };
    apply(p, fresh);
    if let Some(e) = enabled {
        p.enabled = e;
    }
    println!("partner application {} saved (enabled: {})", p.name, p.enabled);
    store_list(side, &store, &list).await
}

/// Remove-(Cs)PartnerApplication.
pub async fn remove(side: Side, cfg: &Config, name: &str) -> CliResult {
    let store = side.store(cfg).await?;
    let mut list = load(side, &store).await?;
    let before = list.len();
    list.retain(|p| !p.name.eq_ignore_ascii_case(name));
    if list.len() == before {
        return Err(side.no_such(name));
    }
    store_list(side, &store, &list).await?;
    println!("partner application {name} removed");
    Ok(())
}

fn partner_json(p: &PartnerApplication) -> serde_json::Value {
    json!({
        "Identity": p.name,
        "Name": p.name,
        "ApplicationIdentifier": p.application_identifier,
        "MetadataUrl": p.auth_metadata_url,
        "AuthMetadataUrl": p.auth_metadata_url,
        "Realm": p.realm,
        "Enabled": p.enabled,
        "ApplicationTrustLevel": p.application_trust_level.to_string(),
        "AcceptSecurityIdentifierInformation": p.accept_security_identifier_information,
        "LinkedAccount": p.linked_account,
        "ApplicationType": p.application_type,
        "Roles": p.roles,
        "CertificateThumbprints": p.trusted().map(|t| t.keys.iter().map(|k| k.thumbprint.clone()).collect::<Vec<_>>()).unwrap_or_default(),
        "MetadataFetchedAt": p.metadata_fetched_at.map(fmt_time),
        "MetadataError": p.metadata_error,
    })
}

fn print_partners(list: &[PartnerApplication], json: bool) -> CliResult {
    if json {
        return print_json(&list.iter().map(partner_json).collect::<Vec<_>>());
    }
    for p in list {
        let v = partner_json(p);
        if let Some(obj) = v.as_object() {
            for (k, v) in obj {
                let shown = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                println!("{k:<38}: {shown}");
            }
        }
        println!();
    }
    Ok(())
}

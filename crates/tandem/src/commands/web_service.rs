//! The UC web API's and the dashboard's settings: `tandem cs set-web-service-configuration` /
//! `get-web-service-configuration` (Set-/Get-CsWebServiceConfiguration
//! -CrossDomainAuthorizationList: the origins allowed to call the UC web API from a browser),
//! and the CsAdministrator role that may sign in to the dashboard at `/admin/`:
//! `add-admin-role-member` / `remove-admin-role-member` (what Add-/Remove-ADGroupMember
//! -Identity CSAdministrator did) and `get-admin-role-assignment` (Get-CsAdminRoleAssignment).
//! The running Front End applies what these write within two seconds.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_frontend::store::FrontendStore;
use tandem_frontend::ucwa::cors::origin_of;

use super::{Location, fe_store, open_directory, print_json};
use crate::failure::{CliResult, usage};

/// The one administrative role the dashboard knows.
pub const CS_ADMINISTRATOR: &str = "CsAdministrator";

#[derive(Debug, Subcommand)]
pub enum WebServiceCommand {
    /// Set-CsWebServiceConfiguration -CrossDomainAuthorizationList: the browser origins
    /// (https://host[:port]) allowed to call the UC web API; an empty value allows none.
    SetWebServiceConfiguration {
        /// Only `global`.
        #[arg(long, default_value = "global")]
        identity: String,
        /// Origins, comma-separated (https://mail.litwareinc.com,https://owa.litwareinc.com:8443).
        #[arg(long, value_delimiter = ',', num_args = 0.., required = true)]
        cross_domain_authorization_list: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsWebServiceConfiguration: the list set, or the default in force (the Mailbox's origin).
    GetWebServiceConfiguration {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Adds users to the CsAdministrator role (the dashboard at /admin/ signs them in).
    AddAdminRoleMember {
        /// Only CsAdministrator.
        #[arg(long, default_value = CS_ADMINISTRATOR)]
        identity: String,
        /// Account names, SIP URIs or SMTP addresses, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Removes users from the CsAdministrator role.
    RemoveAdminRoleMember {
        #[arg(long, default_value = CS_ADMINISTRATOR)]
        identity: String,
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsAdminRoleAssignment: the role's members, or whether --identity is one.
    GetAdminRoleAssignment {
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

fn check_role(identity: &str) -> CliResult {
    if identity.eq_ignore_ascii_case(CS_ADMINISTRATOR) {
        Ok(())
    } else {
        Err(usage(format!("--identity {identity}: the only administrative role is {CS_ADMINISTRATOR}")))
    }
}

async fn member_keys(location: &Location, members: &[String]) -> CliResult<Vec<String>> {
    let cfg = location.config()?;
    let dir = open_directory(&cfg).await?;
    let mut out = Vec::new();
    for m in members.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
        let u = dir.find(m).await?.ok_or_else(|| {
            usage(format!("--members {m}: no such user in the directory; add one with `tandem user add`"))
        })?;
        out.push(u.sip_uri.key());
    }
    Ok(out)
}

pub async fn run(cmd: WebServiceCommand) -> CliResult {
    match cmd {
        WebServiceCommand::SetWebServiceConfiguration { identity, cross_domain_authorization_list, location } => {
            if !identity.eq_ignore_ascii_case("global") {
                return Err(usage(format!("--identity {identity}: only `global` exists")));
            }
            let mut origins = Vec::new();
            for o in cross_domain_authorization_list.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
                let origin = origin_of(o).ok_or_else(|| {
                    usage(format!("--cross-domain-authorization-list {o}: not an origin; write https://host[:port]"))
                })?;
                origins.push(origin);
            }
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            fe.set_cross_domain_authorization_list(&origins).await.context("saving the web service configuration")?;
            println!(
                "CrossDomainAuthorizationList: {}; the running Front End applies it within two seconds",
                if origins.is_empty() { "(none allowed)".to_owned() } else { origins.join(", ") }
            );
            Ok(())
        }
        WebServiceCommand::GetWebServiceConfiguration { location, json } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let row = fe.web_service_configuration().await.context("reading the web service configuration")?;
            let oauth = tandem_trust::frontend::configuration(fe.store(), cfg.domain.as_str())
                .await
                .context("reading the OAuth configuration")?;
            let default = oauth.exchange_autodiscover_url.as_deref().and_then(origin_of);
            let (list, source) = match row.cross_domain_authorization_list {
                Some(l) => (l, "set"),
                None => (default.into_iter().collect(), "default (the Mailbox's origin, from ExchangeAutodiscoverUrl)"),
            };
            if json {
                print_json(&json!({"Identity": "Global", "CrossDomainAuthorizationList": list, "Source": source}))
            } else {
                println!("Identity                     : Global");
                println!("CrossDomainAuthorizationList : {}", list.join(", "));
                println!("Source                       : {source}");
                Ok(())
            }
        }
        WebServiceCommand::AddAdminRoleMember { identity, members, location } => {
            check_role(&identity)?;
            let keys = member_keys(&location, &members).await?;
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let mut all = fe.administrators().await.context("reading the CsAdministrator role")?;
            all.extend(keys.iter().cloned());
            fe.set_administrators(&all).await.context("saving the CsAdministrator role")?;
            println!("{CS_ADMINISTRATOR}: added {}", keys.join(", "));
            Ok(())
        }
        WebServiceCommand::RemoveAdminRoleMember { identity, members, location } => {
            check_role(&identity)?;
            let keys = member_keys(&location, &members).await?;
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let all: Vec<String> = fe
                .administrators()
                .await
                .context("reading the CsAdministrator role")?
                .into_iter()
                .filter(|m| !keys.contains(m))
                .collect();
            fe.set_administrators(&all).await.context("saving the CsAdministrator role")?;
            println!(
                "{CS_ADMINISTRATOR}: removed {}; their dashboard sessions end at their next request",
                keys.join(", ")
            );
            Ok(())
        }
        WebServiceCommand::GetAdminRoleAssignment { identity, location, json } => {
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let all = fe.administrators().await.context("reading the CsAdministrator role")?;
            let shown: Vec<serde_json::Value> = match identity {
                Some(i) => {
                    let key = member_keys(&location, &[i]).await?.pop().unwrap_or_default();
                    let roles: Vec<&str> = if all.contains(&key) { vec![CS_ADMINISTRATOR] } else { vec![] };
                    vec![json!({"Identity": key, "Roles": roles})]
                }
                None => all.iter().map(|m| json!({"Identity": m, "Roles": [CS_ADMINISTRATOR]})).collect(),
            };
            if json {
                print_json(&shown)
            } else {
                for s in &shown {
                    let roles: Vec<&str> = s["Roles"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    println!("{:<40} {}", s["Identity"].as_str().unwrap_or(""), roles.join(", "));
                }
                Ok(())
            }
        }
    }
}

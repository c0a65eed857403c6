//! The Unified Contact Store cmdlets: `tandem cs set-user-services-policy` /
//! `get-user-services-policy` (Set-/Get-CsUserServicesPolicy -UcsAllowed, global or per user),
//! `tandem cs invoke-ucs-rollback` (Invoke-CsUcsRollback: the list back into the Front End store,
//! kept out of the mailbox for seven days), `tandem cs import-contact-list` (the contact-list
//! part of Import-CsUserData: a list into the Front End store, which the user's next sign-in
//! moves into the mailbox when the policy allows), and `tandem test unified-contact-store`
//! (Test-CsUnifiedContactStore: where the list lives and whether both stores agree). The running
//! Front End follows what these write within a second.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_config::Config;
use tandem_directory::User;
use tandem_frontend::exchange_connector::ExchangeConnector;
use tandem_frontend::store::{FeGroup, FrontendStore, GLOBAL_POLICY, ListLocation, UserServicesPolicyRow};
use tandem_frontend::ucs;
use tandem_types::SipUri;

use super::test::deployment_client;
use super::{Location, fe_store, fmt_time, open_directory, print_json};
use crate::failure::{CliResult, Failure, runtime, usage};

/// The largest contact-list file read (a list of 1,000 contacts with long names fits well).
const MAX_FILE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum UcsCommand {
    /// Set-CsUserServicesPolicy -UcsAllowed: whether users' contact lists live in their
    /// mailbox (the Unified Contact Store); global (default true) or one user's.
    SetUserServicesPolicy {
        /// `global`, or a user's SIP URI for their own instance.
        #[arg(long, default_value = "global")]
        identity: String,
        /// true: the list moves into the mailbox at the next sign-in; false: a list not yet
        /// moved stays in the Front End store (a moved one stays in the mailbox; see
        /// invoke-ucs-rollback).
        #[arg(long = "ucs-allowed", action = clap::ArgAction::Set, required = true)]
        ucs_allowed: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsUserServicesPolicy: the instances set, or the one in force for --identity.
    GetUserServicesPolicy {
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Invoke-CsUcsRollback: the user's contact list back from the mailbox into the Front End
    /// store, not migrated again for seven days.
    InvokeUcsRollback {
        /// The user's SIP URI (sip:alice@litwareinc.com).
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Import-CsUserData (the contact list): a resource-lists document (RFC 4826, as XCAP
    /// serves it) made the user's contact list in the Front End store, whole or not at all.
    ImportContactList {
        /// The user's SIP URI.
        #[arg(long)]
        identity: String,
        /// The document: one `<list name="group">` per group, one `<entry uri="sip:…">` per contact.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        location: Location,
    },
}

/// `global`, or the lookup key of an existing user's SIP URI.
async fn policy_identity(cfg: &Config, identity: &str) -> CliResult<String> {
    if identity.eq_ignore_ascii_case(GLOBAL_POLICY) {
        return Ok(GLOBAL_POLICY.to_owned());
    }
    Ok(user_of(cfg, "--identity", identity).await?.sip_uri.key())
}

/// The SIP-enabled user `identity` names.
async fn user_of(cfg: &Config, flag: &str, identity: &str) -> CliResult<User> {
    let uri: SipUri = identity
        .parse()
        .map_err(|e: tandem_types::ParseError| usage(format!("{flag} {identity}: {e} (sip:user@domain)")))?;
    match open_directory(cfg).await?.find(&uri.key()).await? {
        Some(u) if u.can_use_sip() => Ok(u),
        Some(_) => Err(usage(format!("{flag} {identity}: the user is not enabled for SIP (`tandem user show`)"))),
        None => Err(usage(format!("{flag} {identity}: no such user (`tandem user list`)"))),
    }
}

fn groups_json(groups: &[FeGroup]) -> serde_json::Value {
    json!(groups.iter().map(|g| json!({"Name": g.name, "Contacts": g.contacts})).collect::<Vec<_>>())
}

fn count(groups: &[FeGroup]) -> usize {
    let mut all: Vec<&str> = groups.iter().flat_map(|g| g.contacts.iter().map(|c| c.uri.as_str())).collect();
    all.sort_unstable();
    all.dedup();
    all.len()
}

pub async fn run(cmd: UcsCommand) -> CliResult {
    match cmd {
        UcsCommand::SetUserServicesPolicy { identity, ucs_allowed, location } => {
            let cfg = location.config()?;
            let key = policy_identity(&cfg, &identity).await?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            fe.set_user_services_policy(&UserServicesPolicyRow {
                identity: key.clone(),
                ucs_allowed: Some(ucs_allowed),
            })
            .await
            .context("saving the user services policy")?;
            println!(
                "user services policy {key}: UcsAllowed {ucs_allowed}; the running Front End applies it within a second"
            );
            Ok(())
        }
        UcsCommand::GetUserServicesPolicy { identity, location, json } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let rows = fe.user_services_policies().await.context("reading the user services policies")?;
            let shown: Vec<serde_json::Value> = match identity {
                Some(i) => {
                    let key = policy_identity(&cfg, &i).await?;
                    vec![json!({"Identity": key, "UcsAllowed": ucs::ucs_allowed(&rows, &key),
                        "Set": rows.iter().find(|r| r.identity == key).and_then(|r| r.ucs_allowed)})]
                }
                None => {
                    let mut v: Vec<serde_json::Value> =
                        rows.iter().map(|r| json!({"Identity": r.identity, "UcsAllowed": r.ucs_allowed})).collect();
                    if !rows.iter().any(|r| r.identity == GLOBAL_POLICY) {
                        v.insert(0, json!({"Identity": GLOBAL_POLICY, "UcsAllowed": true}));
                    }
                    v
                }
            };
            if json {
                return print_json(&shown);
            }
            for v in &shown {
                println!("Identity   : {}", v["Identity"].as_str().unwrap_or_default());
                println!("UcsAllowed : {}", v["UcsAllowed"]);
                println!();
            }
            Ok(())
        }
        UcsCommand::InvokeUcsRollback { identity, location, json } => {
            let cfg = location.config()?;
            let user = user_of(&cfg, "--identity", &identity).await?;
            if !user.can_use_mailbox() {
                return Err(usage(format!("--identity {identity}: the user has no mailbox, so no list to roll back")));
            }
            let aor = user.sip_uri.key();
            let store = fe_store(&cfg).await?;
            let fe = FrontendStore::new(store.clone());
            let policies = fe.user_services_policies().await.context("reading the user services policies")?;
            let state = fe.contact_list_state(&aor).await.context("reading where the list lives")?;
            if ucs::location(state.as_ref(), ucs::ucs_allowed(&policies, &aor)) == ListLocation::FrontEnd {
                return Err(usage(format!(
                    "--identity {identity}: the contact list already lives in the Front End store (`tandem test unified-contact-store`)"
                )));
            }
            let connector = ExchangeConnector::new(store, cfg.domain.as_str(), deployment_client(&cfg)?);
            let now = ucs::now();
            let groups = ucs::rollback(&fe, &connector, &aor, &user.smtp_address.to_string(), now)
                .await
                .map_err(|e| runtime(format!("rolling back {aor}: {e}")))?;
            let until = now + i64::try_from(ucs::ROLLBACK_HOLD.as_secs()).unwrap_or(i64::MAX);
            if json {
                return print_json(&json!({"Identity": aor, "Location": ListLocation::FrontEnd,
                    "Groups": groups.len(), "Contacts": count(&groups), "MigrationBlockedUntil": fmt_time(until)}));
            }
            println!(
                "{aor}: {} contacts in {} groups now live in the Front End store; not migrated again before {}",
                count(&groups),
                groups.len(),
                fmt_time(until)
            );
            Ok(())
        }
        UcsCommand::ImportContactList { identity, file, location } => {
            let cfg = location.config()?;
            let user = user_of(&cfg, "--identity", &identity).await?;
            let size = std::fs::metadata(&file).map_err(|e| usage(format!("--file {}: {e}", file.display())))?.len();
            if size > MAX_FILE {
                return Err(usage(format!(
                    "--file {}: {size} bytes; a contact list file is at most {MAX_FILE}",
                    file.display()
                )));
            }
            let body = std::fs::read(&file).map_err(|e| usage(format!("--file {}: {e}", file.display())))?;
            let groups =
                ucs::parse_list_document(&body).map_err(|e| usage(format!("--file {}: {e}", file.display())))?;
            let directory = open_directory(&cfg).await?;
            tandem_frontend::xcap::check_front_end_list(&directory, &groups).await.map_err(|e| match e {
                tandem_frontend::xcap::FrontEndListError::Refused(e) => {
                    usage(format!("--file {}: {e}", file.display()))
                }
                other => runtime(other),
            })?;
            let aor = user.sip_uri.key();
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            fe.put_fe_contact_list(&aor, &groups, None).await.context("writing the contact list")?;
            println!(
                "{aor}: {} contacts in {} groups imported into the Front End store; the next sign-in moves them into the mailbox when the user services policy allows",
                count(&groups),
                groups.len()
            );
            Ok(())
        }
    }
}

/// Test-CsUnifiedContactStore: where the list lives, what each store holds, and whether they
/// agree (the list in the mailbox and no other copy; or, in the Front End store, the mailbox
/// holding the same contacts or none).
pub async fn test_unified_contact_store(location: &Location, sip: &str, json_out: bool) -> CliResult {
    let cfg = location.config()?;
    let user = user_of(&cfg, "--user-sip-address", sip).await?;
    let aor = user.sip_uri.key();
    let store = fe_store(&cfg).await?;
    let fe = FrontendStore::new(store.clone());
    let policies = fe.user_services_policies().await.context("reading the user services policies")?;
    let allowed = ucs::ucs_allowed(&policies, &aor);
    let state = fe.contact_list_state(&aor).await.context("reading where the list lives")?;
    let place = ucs::location(state.as_ref(), allowed);
    let fe_groups = fe.fe_contact_list(&aor).await.context("reading the Front End store's list")?;
    let mailbox: Result<Vec<FeGroup>, String> = if user.can_use_mailbox() {
        let connector = ExchangeConnector::new(store, cfg.domain.as_str(), deployment_client(&cfg)?);
        match connector.mailbox(&user.smtp_address.to_string()).await {
            Ok(m) => {
                connector.client().get_im_item_list(&m).await.map(|l| ucs::groups_of(&l)).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    } else {
        Err("the user has no mailbox".into())
    };
    let fe_pairs = ucs::pairs(&fe_groups);
    let (agree, detail) = match (&mailbox, place) {
        (Err(e), _) => (false, format!("the mailbox's list cannot be read: {e}")),
        (Ok(_), ListLocation::Mailbox) if fe_pairs.is_empty() => {
            (true, "the list lives in the mailbox (Unified Contact Store); the Front End store holds no copy".into())
        }
        (Ok(_), ListLocation::Mailbox) => (
            false,
            format!("the list lives in the mailbox but the Front End store still holds {} contacts", fe_pairs.len()),
        ),
        (Ok(m), ListLocation::FrontEnd) => {
            let m_pairs = ucs::pairs(m);
            if m_pairs.is_empty() || m_pairs == fe_pairs {
                (true, "the list lives in the Front End store; the mailbox holds the same contacts or none".into())
            } else {
                let only_fe = fe_pairs.difference(&m_pairs).count();
                let only_m = m_pairs.difference(&fe_pairs).count();
                (
                    false,
                    format!(
                        "the list lives in the Front End store; {only_fe} group memberships are only there, {only_m} only in the mailbox (the next migration merges them)"
                    ),
                )
            }
        }
    };
    let blocked_until = state.as_ref().map(|s| s.migrate_after).filter(|t| *t > ucs::now());
    let out = json!({
        "UserSipAddress": aor,
        "Result": if agree { "Success" } else { "Failure" },
        "Location": place,
        "UcsAllowed": allowed,
        "MigrationBlockedUntil": blocked_until.map(fmt_time),
        "Agree": agree,
        "Detail": detail,
        "FrontEndStore": {"Contacts": count(&fe_groups), "Groups": groups_json(&fe_groups)},
        "Mailbox": match &mailbox {
            Ok(g) => json!({"Reachable": true, "Contacts": count(g), "Groups": groups_json(g)}),
            Err(e) => json!({"Reachable": false, "Error": e}),
        },
    });
    if json_out {
        print_json(&out)?;
    } else {
        println!("{} {aor}: {detail}", if agree { "PASS" } else { "FAIL" });
        println!(
            "Location              : {}",
            if place == ListLocation::Mailbox { "mailbox" } else { "Front End store" }
        );
        println!("UcsAllowed            : {allowed}");
        if let Some(t) = blocked_until {
            println!("MigrationBlockedUntil : {}", fmt_time(t));
        }
        println!("Front End store       : {} contacts", count(&fe_groups));
        match &mailbox {
            Ok(g) => println!("Mailbox               : {} contacts", count(g)),
            Err(e) => println!("Mailbox               : unreachable ({e})"),
        }
    }
    if agree { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("the contact stores do not agree"))) }
}

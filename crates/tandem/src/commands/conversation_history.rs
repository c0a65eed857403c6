//! `tandem cs set-conversation-history-configuration` and `get-conversation-history-configuration`
//! (Set-/Get-CsConversationHistoryConfiguration): server-side conversation history, on by
//! default, with the idle time that ends a conversation; the running Front End reads the
//! settings within a second. `get` also shows what waits for the mailbox. Also
//! Set-/Get-CsArchivingConfiguration and the global Set-/Get-CsArchivingPolicy: with archiving
//! on, IM transcripts are also written to each participant's Recoverable Items\Purges.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_frontend::conversation_history::{self as history, Settings};
use tandem_frontend::store::{ArchivingConfigRow, ArchivingPolicyRow, FrontendStore, HistoryConfigRow};

use super::{Location, fe_store, fmt_time, print_json};
use crate::failure::{CliResult, usage};

/// Longest idle timeout accepted: a day.
const MAX_IDLE_SECS: i64 = 86_400;
/// Most look-ups of an earlier item accepted (the cmdlet's own range is not documented).
const MAX_RETRY: i64 = 100;

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Set-CsConversationHistoryConfiguration (one global instance).
    SetConversationHistoryConfiguration {
        /// Only `global`.
        #[arg(long, default_value = "global")]
        identity: String,
        /// false: the Front End writes no transcripts (on by default in Tandem).
        #[arg(long)]
        enable_server_conversation_history: Option<bool>,
        /// Seconds without a message that end a conversation (1 to 86400; default
        /// frontend.conversation_idle_timeout, 600). Tandem's parameter.
        #[arg(long)]
        idle_timeout: Option<i64>,
        /// How many attempts look for an earlier item of the conversation before a new one is
        /// written without the look-up (default 3).
        #[arg(long)]
        max_continued_conversation_retry: Option<i64>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsConversationHistoryConfiguration, and the transcripts waiting for the mailbox.
    GetConversationHistoryConfiguration {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Set-CsArchivingConfiguration (one global instance).
    SetArchivingConfiguration {
        /// Only `global`.
        #[arg(long, default_value = "global")]
        identity: String,
        /// None, ImOnly or ImAndWebConf (default None).
        #[arg(long)]
        enable_archiving: Option<String>,
        /// true: archives go to the users' mailboxes (Recoverable Items\Purges); default false.
        #[arg(long)]
        enable_exchange_archiving: Option<bool>,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsArchivingConfiguration.
    GetArchivingConfiguration {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Set-CsArchivingPolicy: the global policy or a tag policy made with new-archiving-policy.
    SetArchivingPolicy {
        /// `global` or `tag:NAME`.
        #[arg(long, default_value = "global")]
        identity: String,
        /// true: conversations between users of the organisation are archived (default false).
        #[arg(long)]
        archive_internal: Option<bool>,
        /// true: conversations with users outside it (no federation yet: none) are archived.
        #[arg(long)]
        archive_external: Option<bool>,
        #[command(flatten)]
        location: Location,
    },
    /// New-CsArchivingPolicy: a per-user (tag) policy, granted with grant-archiving-policy.
    NewArchivingPolicy {
        /// `tag:NAME`.
        #[arg(long)]
        identity: String,
        #[arg(long)]
        archive_internal: Option<bool>,
        #[arg(long)]
        archive_external: Option<bool>,
        #[command(flatten)]
        location: Location,
    },
    /// Grant-CsArchivingPolicy: which policy a user's conversations follow.
    GrantArchivingPolicy {
        /// The user, e.g. sip:bob@litwareinc.com.
        #[arg(long)]
        identity: String,
        /// The tag policy (`NAME` or `tag:NAME`); `global` or empty for the global policy.
        #[arg(long)]
        policy_name: String,
        #[command(flatten)]
        location: Location,
    },
    /// Get-CsArchivingPolicy: the global policy, one tag policy (`--identity tag:NAME`), or all
    /// (`--identity all`).
    GetArchivingPolicy {
        #[arg(long, default_value = "global")]
        identity: String,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

/// A tag policy's identity (`tag:name`, lowercased) from `NAME` or `tag:NAME`.
fn tag_identity(flag: &str, v: &str) -> CliResult<String> {
    let name = v.strip_prefix("tag:").or_else(|| v.strip_prefix("Tag:")).unwrap_or(v);
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || "-_ ".contains(c)) || name.len() > 64 {
        return Err(usage(format!("{flag} {v}: a policy name (letters, digits, - _ and spaces, at most 64)")));
    }
    Ok(format!("tag:{}", name.to_lowercase()))
}

fn policy_json(identity: &str, internal: Option<bool>, external: Option<bool>) -> serde_json::Value {
    json!({
        "Identity": identity,
        "ArchiveInternal": internal.unwrap_or(false),
        "ArchiveExternal": external.unwrap_or(false),
    })
}

/// Only the global instance exists.
fn global_only(identity: &str) -> CliResult {
    if identity.eq_ignore_ascii_case("global") {
        Ok(())
    } else {
        Err(usage(format!("--identity {identity}: only global (per-user instances are not supported yet)")))
    }
}

fn print_fields(v: &serde_json::Value) {
    for (k, val) in v.as_object().into_iter().flatten() {
        let text = if val.is_null() { "-".to_owned() } else { val.to_string() };
        println!("{k:<32}: {}", text.trim_matches('"'));
    }
}

pub async fn run(cmd: HistoryCommand) -> CliResult {
    match cmd {
        HistoryCommand::SetConversationHistoryConfiguration {
            identity,
            enable_server_conversation_history,
            idle_timeout,
            max_continued_conversation_retry,
            location,
        } => {
            if !identity.eq_ignore_ascii_case("global") {
                return Err(usage(format!("--identity {identity}: only global (one instance, as the cmdlet has)")));
            }
            if let Some(s) = idle_timeout
                && !(1..=MAX_IDLE_SECS).contains(&s)
            {
                return Err(usage(format!("--idle-timeout {s}: seconds from 1 to {MAX_IDLE_SECS}")));
            }
            if let Some(n) = max_continued_conversation_retry
                && !(0..=MAX_RETRY).contains(&n)
            {
                return Err(usage(format!("--max-continued-conversation-retry {n}: from 0 to {MAX_RETRY}")));
            }
            let row = HistoryConfigRow {
                enable_server_conversation_history,
                idle_timeout_secs: idle_timeout,
                max_continued_conversation_retry,
            };
            if row == HistoryConfigRow::default() {
                return Err(usage("nothing to set: pass at least one setting (see --help)"));
            }
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            fe.set_history_configuration(&row).await.context("saving the conversation history configuration")?;
            println!("conversation history configuration saved; the running Front End applies it within a second");
            Ok(())
        }
        HistoryCommand::GetConversationHistoryConfiguration { location, json } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let row = fe.history_configuration().await.context("reading the configuration")?;
            let s = Settings::of(&row, cfg.frontend.conversation_idle_timeout);
            let backlog = fe.history_backlog().await.context("reading the queue")?;
            let pending = fe.pending_history_items().await.context("reading the queue")?;
            let items: Vec<serde_json::Value> = pending
                .iter()
                .map(|p| {
                    json!({"Owner": p.owner, "Folder": p.folder, "Conversation": p.conversation_id, "Attempts": p.attempts,
                           "NextAttempt": fmt_time(p.next_attempt_at / 1000), "LastError": p.last_error})
                })
                .collect();
            let v = json!({
                "Identity": "Global",
                "EnableServerConversationHistory": s.enabled,
                "IdleTimeout": s.idle.as_secs(),
                "MaxContinuedConversationRetry": s.max_continued_conversation_retry,
                "Folder": history::FOLDER,
                "ItemClass": history::ITEM_CLASS,
                "MissedItemClass": history::MISSED_ITEM_CLASS,
                "OpenConversations": backlog.open_conversations,
                "PendingItems": backlog.pending_items,
                "FailingItems": backlog.failing_items,
                "LastError": backlog.last_error,
                "Pending": items,
            });
            if json {
                return print_json(&v);
            }
            for (k, val) in v.as_object().into_iter().flatten() {
                if k == "Pending" {
                    continue;
                }
                let text = if val.is_null() { "-".to_owned() } else { val.to_string() };
                println!("{k:<32}: {}", text.trim_matches('"'));
            }
            for p in &pending {
                println!(
                    "  pending: {} {} (conversation {}), {} failed attempt(s), next {}{}",
                    p.owner,
                    p.folder,
                    p.conversation_id,
                    p.attempts,
                    fmt_time(p.next_attempt_at / 1000),
                    p.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        HistoryCommand::SetArchivingConfiguration {
            identity,
            enable_archiving,
            enable_exchange_archiving,
            location,
        } => {
            global_only(&identity)?;
            let mode = match enable_archiving.as_deref() {
                None => None,
                Some(m) => Some(
                    ["None", "ImOnly", "ImAndWebConf"]
                        .into_iter()
                        .find(|v| v.eq_ignore_ascii_case(m))
                        .ok_or_else(|| usage(format!("--enable-archiving {m}: None, ImOnly or ImAndWebConf")))?
                        .to_owned(),
                ),
            };
            let row = ArchivingConfigRow { enable_archiving: mode, enable_exchange_archiving, ..Default::default() };
            if row == ArchivingConfigRow::default() {
                return Err(usage("nothing to set: pass --enable-archiving or --enable-exchange-archiving"));
            }
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            fe.set_archiving_configuration(&row).await.context("saving the archiving configuration")?;
            println!("archiving configuration saved; the running Front End applies it within a second");
            Ok(())
        }
        HistoryCommand::SetArchivingPolicy { identity, archive_internal, archive_external, location } => {
            if archive_internal.is_none() && archive_external.is_none() {
                return Err(usage("nothing to set: pass --archive-internal or --archive-external"));
            }
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            if identity.eq_ignore_ascii_case("global") {
                let row = ArchivingConfigRow { archive_internal, archive_external, ..Default::default() };
                fe.set_archiving_configuration(&row).await.context("saving the archiving policy")?;
                println!("archiving policy Global saved; the running Front End applies it within a second");
                return Ok(());
            }
            let id = tag_identity("--identity", &identity)?;
            let row = ArchivingPolicyRow { identity: id.clone(), archive_internal, archive_external };
            if !fe.put_archiving_policy(&row, false).await.context("saving the archiving policy")? {
                return Err(usage(format!("--identity {identity}: no such policy (new-archiving-policy makes one)")));
            }
            println!("archiving policy {id} saved; the running Front End applies it to the next transcripts");
            Ok(())
        }
        HistoryCommand::NewArchivingPolicy { identity, archive_internal, archive_external, location } => {
            if identity.eq_ignore_ascii_case("global") {
                return Err(usage("--identity global: the global policy always exists (set-archiving-policy)"));
            }
            let id = tag_identity("--identity", &identity)?;
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let row = ArchivingPolicyRow { identity: id.clone(), archive_internal, archive_external };
            if !fe.put_archiving_policy(&row, true).await.context("saving the archiving policy")? {
                return Err(usage(format!(
                    "--identity {identity}: the policy exists (set-archiving-policy changes it)"
                )));
            }
            println!("archiving policy {id} created; grant it with grant-archiving-policy");
            Ok(())
        }
        HistoryCommand::GrantArchivingPolicy { identity, policy_name, location } => {
            if identity.eq_ignore_ascii_case("global") {
                return Err(usage("--identity: a user, e.g. sip:bob@<domain>"));
            }
            let key = super::client_policy::identity_key(&location, &identity).await?;
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let tag = if policy_name.is_empty() || policy_name.eq_ignore_ascii_case("global") {
                None
            } else {
                let id = tag_identity("--policy-name", &policy_name)?;
                if fe.archiving_policy(&id).await.context("reading the archiving policy")?.is_none() {
                    return Err(usage(format!(
                        "--policy-name {policy_name}: no such policy (get-archiving-policy --identity all)"
                    )));
                }
                Some(id)
            };
            fe.grant_archiving_policy(&key, tag.as_deref()).await.context("saving the grant")?;
            println!("{key} follows archiving policy {}", tag.as_deref().unwrap_or("Global"));
            Ok(())
        }
        HistoryCommand::GetArchivingConfiguration { location, json } => {
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let a = fe.archiving_configuration().await.context("reading the archiving configuration")?;
            let v = json!({
                "Identity": "Global",
                "EnableArchiving": a.enable_archiving.as_deref().unwrap_or("None"),
                "EnableExchangeArchiving": a.enable_exchange_archiving.unwrap_or(false),
                "ArchivesImNow": history::archives_im(&a),
                "Folder": history::ARCHIVE_FOLDER,
            });
            if json {
                return print_json(&v);
            }
            print_fields(&v);
            Ok(())
        }
        HistoryCommand::GetArchivingPolicy { identity, location, json } => {
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let a = fe.archiving_configuration().await.context("reading the archiving policy")?;
            let global = policy_json("Global", a.archive_internal, a.archive_external);
            let v = if identity.eq_ignore_ascii_case("global") {
                global
            } else if identity.eq_ignore_ascii_case("all") {
                let mut all = vec![global];
                for p in fe.archiving_policies().await.context("reading the archiving policies")? {
                    all.push(policy_json(&p.identity, p.archive_internal, p.archive_external));
                }
                serde_json::Value::Array(all)
            } else {
                let id = tag_identity("--identity", &identity)?;
                let p = fe.archiving_policy(&id).await.context("reading the archiving policy")?;
                let p = p.ok_or_else(|| usage(format!("--identity {identity}: no such policy")))?;
                policy_json(&p.identity, p.archive_internal, p.archive_external)
            };
            if json {
                return print_json(&v);
            }
            match &v {
                serde_json::Value::Array(all) => {
                    for p in all {
                        print_fields(p);
                        println!();
                    }
                }
                one => print_fields(one),
            }
            Ok(())
        }
    }
}

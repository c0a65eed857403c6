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
use tandem_frontend::store::{ArchivingConfigRow, FrontendStore, HistoryConfigRow};

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
    /// Set-CsArchivingPolicy (the global policy).
    SetArchivingPolicy {
        /// Only `global` (per-user policies, New-/Grant-CsArchivingPolicy, are not supported yet).
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
    /// Get-CsArchivingPolicy (the global policy).
    GetArchivingPolicy {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
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
            global_only(&identity)?;
            let row = ArchivingConfigRow { archive_internal, archive_external, ..Default::default() };
            if row == ArchivingConfigRow::default() {
                return Err(usage("nothing to set: pass --archive-internal or --archive-external"));
            }
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            fe.set_archiving_configuration(&row).await.context("saving the archiving policy")?;
            println!("archiving policy Global saved; the running Front End applies it within a second");
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
        HistoryCommand::GetArchivingPolicy { location, json } => {
            let fe = FrontendStore::new(fe_store(&location.config()?).await?);
            let a = fe.archiving_configuration().await.context("reading the archiving policy")?;
            let v = json!({
                "Identity": "Global",
                "ArchiveInternal": a.archive_internal.unwrap_or(false),
                "ArchiveExternal": a.archive_external.unwrap_or(false),
            });
            if json {
                return print_json(&v);
            }
            print_fields(&v);
            Ok(())
        }
    }
}

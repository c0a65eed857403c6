//! `tandem ediscovery`: Search-Mailbox / New-MailboxSearch for the administrator. `search`
//! prints hit counts per mailbox, then the items; `export` writes the hits as `.eml` files or
//! mbox with progress on stderr; `audit` lists who searched what and when (every search and
//! export is logged before its results are shown).

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tandem_mailbox::ediscovery::{self, EdiscoveryError, Format, Request};

use super::{Location, fmt_time, mbx_store, parse_date, print_json};
use crate::failure::{CliResult, Failure, usage};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Eml,
    Mbox,
}

#[derive(Debug, Subcommand)]
pub enum EdiscoveryCommand {
    /// Search-Mailbox -SearchQuery -EstimateResultOnly, then the results: every folder of the
    /// mailboxes, Recoverable Items (Purges, held items) among them.
    Search {
        #[command(flatten)]
        filter: Filter,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// New-MailboxSearch with export: the hits as one .eml per item or one mbox per mailbox.
    Export {
        #[command(flatten)]
        filter: Filter,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// The folder written to (created when missing).
        #[arg(long)]
        output: std::path::PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// The audit log of eDiscovery searches and exports, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
}

#[derive(Debug, clap::Args)]
pub struct Filter {
    /// The query (AQS: words, "phrases", subject:, body:, from:, to:, participants:,
    /// received:A..B, AND, OR, parentheses).
    #[arg(long)]
    query: String,
    /// A mailbox to search (repeat for more); all mailboxes when none.
    #[arg(long = "mailbox")]
    mailboxes: Vec<String>,
    /// Received on or after this date.
    #[arg(long)]
    start_date: Option<String>,
    /// Received before this date.
    #[arg(long)]
    end_date: Option<String>,
}

/// Who runs the command, for the audit log.
fn actor() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into())
}

async fn request(cfg: &tandem_config::Config, f: &Filter) -> CliResult<Request> {
    let mut mailboxes = Vec::new();
    if !f.mailboxes.is_empty() {
        let dir = super::open_directory(cfg).await?;
        for m in &f.mailboxes {
            let user = dir.get(m).await.map_err(|e| usage(format!("--mailbox {m}: {e}")))?;
            mailboxes.push(user.name.to_string());
        }
    }
    Ok(Request {
        query: f.query.clone(),
        mailboxes,
        start: f.start_date.as_deref().map(|d| parse_date("--start-date", d)).transpose()?,
        end: f.end_date.as_deref().map(|d| parse_date("--end-date", d)).transpose()?,
        actor: actor(),
    })
}

fn failed(e: EdiscoveryError) -> Failure {
    match e {
        EdiscoveryError::Query(q) => usage(format!("--query: {q}")),
        other => Failure::Runtime(anyhow::Error::new(other)),
    }
}

/// A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise.
fn progress(done: usize, total: usize) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    if tty {
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        eprint!("\r[{}{}] {done}/{total}", "#".repeat(filled), " ".repeat(width - filled));
        if done == total {
            eprintln!();
        }
    } else if done == total || (total >= 10 && done.is_multiple_of(total / 10)) {
        eprintln!("exported {done} of {total}");
    }
}

pub async fn run(cmd: EdiscoveryCommand) -> CliResult {
    match cmd {
        EdiscoveryCommand::Search { filter, json, location } => {
            let cfg = location.config()?;
            let req = request(&cfg, &filter).await?;
            let store = mbx_store(&cfg).await?;
            let report = ediscovery::search(&store, &req).await.map_err(failed)?;
            if json {
                return print_json(&json!({
                    "Query": req.query,
                    "Mailboxes": report.counts.iter().map(|(m, n)| json!({"Mailbox": m, "ResultItemsCount": n})).collect::<Vec<_>>(),
                    "Results": report.hits.iter().map(|h| json!({
                        "Mailbox": h.mailbox,
                        "Folder": h.folder,
                        "ItemId": h.item_id,
                        "ItemClass": h.item_class,
                        "Subject": h.subject,
                        "Received": fmt_time(h.received_at),
                    })).collect::<Vec<_>>(),
                }));
            }
            let total: i64 = report.counts.iter().map(|(_, n)| n).sum();
            println!("{:<24} {:>10}", "Mailbox", "Hits");
            for (m, n) in &report.counts {
                println!("{m:<24} {n:>10}");
            }
            println!("{:<24} {total:>10}", "total");
            println!();
            for h in &report.hits {
                println!(
                    "{}  {:<12} {:<24} {:<36} {}",
                    fmt_time(h.received_at),
                    h.mailbox,
                    h.folder,
                    h.item_class,
                    h.subject
                );
            }
            Ok(())
        }
        EdiscoveryCommand::Export { filter, format, output, location } => {
            let cfg = location.config()?;
            let req = request(&cfg, &filter).await?;
            let store = mbx_store(&cfg).await?;
            let format = match format {
                ExportFormat::Eml => Format::Eml,
                ExportFormat::Mbox => Format::Mbox,
            };
            let n = ediscovery::export(&store, &req, format, &output, progress).await.map_err(failed)?;
            println!("exported {n} items to {}", output.display());
            Ok(())
        }
        EdiscoveryCommand::Audit { limit, json, location } => {
            let store = mbx_store(&location.config()?).await?;
            let log = ediscovery::audit_log(&store, limit).await.context("reading the audit log")?;
            if json {
                return print_json(
                    &log.iter()
                        .map(|e| json!({"At": fmt_time(e.at), "Actor": e.actor, "Action": e.action, "Query": e.query, "Scope": e.scope, "Hits": e.hits}))
                        .collect::<Vec<_>>(),
                );
            }
            for e in &log {
                println!(
                    "{}  {:<12} {:<7} {:>8} hits  {}  [{}]",
                    fmt_time(e.at),
                    e.actor,
                    e.action,
                    e.hits,
                    e.query,
                    e.scope
                );
            }
            Ok(())
        }
    }
}

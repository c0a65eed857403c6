//! `tandem exchange enable-um-mailbox`, `disable-um-mailbox`, `get-um-mailbox`,
//! `set-um-mailbox`, `set-um-mailbox-pin` and `set-um-mailbox-greeting`: the Exchange UM
//! cmdlets (Enable-/Disable-/Get-/Set-UMMailbox, Set-UMMailboxPIN) for Tandem's voicemail, and
//! the greeting upload that Exchange left to Outlook Voice Access. They write the Front End
//! store; the running Front End reads a user's row at each call, so a change applies to the
//! next call without a restart.

use std::io::Read as _;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_config::Config;
use tandem_frontend::store::{FrontendStore, UmMailboxRow};
use tandem_frontend::voicemail::{greeting, pin};

use super::{Location, fe_store, fmt_time, print_json};
use crate::failure::{CliResult, usage};

/// Rings before call answering when none are set: four rings of
/// `frontend.voicemail_seconds_per_ring` (5 s) are Skype for Business's 20 s.
pub const DEFAULT_CALL_ANSWERING_RINGS: u32 = 4;
/// Most rings accepted (two minutes at the default ring).
pub const MAX_CALL_ANSWERING_RINGS: u32 = 24;

#[derive(Debug, Subcommand)]
pub enum UmCommand {
    /// Enable-UMMailbox: the user's unanswered calls go to voicemail in their Inbox.
    EnableUmMailbox {
        /// -Identity: the user (name, SIP URI or SMTP address).
        #[arg(long)]
        identity: String,
        /// -Pin: read the PIN for calling in (6 to 24 digits) from standard input's first line.
        #[arg(long)]
        pin_stdin: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Disable-UMMailbox: calls ring as before and are no longer answered; messages already
    /// left stay in the mailbox.
    DisableUmMailbox {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Location,
    },
    /// Get-UMMailbox: the UM-enabled users, or one.
    GetUmMailbox {
        #[arg(long)]
        identity: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Set-UMMailbox: how many rings before an unanswered call goes to voicemail.
    SetUmMailbox {
        #[arg(long)]
        identity: String,
        /// Rings (1 to 24; one ring is frontend.voicemail_seconds_per_ring, 5 s by default).
        #[arg(long)]
        call_answering_rings: Option<u32>,
        #[command(flatten)]
        location: Location,
    },
    /// Set-UMMailboxPIN: the PIN for calling in, from standard input's first line.
    SetUmMailboxPin {
        #[arg(long)]
        identity: String,
        #[arg(long, required = true)]
        pin_stdin: bool,
        #[command(flatten)]
        location: Location,
    },
    /// The greeting callers hear: a WAV file (8 kHz, 16-bit, mono PCM, 0.2 s to 5 minutes), or
    /// --default to go back to the generated one.
    SetUmMailboxGreeting {
        #[arg(long)]
        identity: String,
        #[arg(long, value_name = "FILE", required_unless_present = "default", conflicts_with = "default")]
        file: Option<std::path::PathBuf>,
        #[arg(long)]
        default: bool,
        #[command(flatten)]
        location: Location,
    },
}

/// The directory user behind `identity`, who must have a mailbox and SIP.
async fn um_user(cfg: &Config, identity: &str) -> CliResult<tandem_directory::User> {
    let dir = super::open_directory(cfg).await?;
    let user = dir.get(identity).await?;
    if !user.can_use_mailbox() {
        return Err(usage(format!("--identity {identity}: the user has no enabled mailbox to leave voicemail in")));
    }
    Ok(user)
}

async fn existing(fe: &FrontendStore, identity: &str, aor: &str) -> CliResult<UmMailboxRow> {
    fe.um_mailbox(aor).await.context("reading the UM mailbox")?.ok_or_else(|| {
        usage(format!("--identity {identity}: not UM-enabled; enable it with `tandem exchange enable-um-mailbox`"))
    })
}

fn read_pin() -> CliResult<String> {
    let mut s = String::new();
    std::io::stdin().take(4096).read_to_string(&mut s).context("cannot read the PIN from standard input")?;
    let line = s.lines().next().unwrap_or("").trim().to_owned();
    pin::hash(&line).map_err(|e| usage(format!("--pin-stdin: {e}")))
}

fn show(row: &UmMailboxRow) -> serde_json::Value {
    json!({
        "Identity": row.aor,
        "PrimarySmtpAddress": row.smtp,
        "UMEnabled": true,
        "CallAnsweringRings": row.call_answering_rings,
        "PinSet": row.pin_hash.is_some(),
        "Greeting": if row.greeting.is_some() { "Custom" } else { "Default" },
        "WhenChanged": fmt_time(row.updated_at),
    })
}

pub async fn run(cmd: UmCommand) -> CliResult {
    match cmd {
        UmCommand::EnableUmMailbox { identity, pin_stdin, location } => {
            let cfg = location.config()?;
            let user = um_user(&cfg, &identity).await?;
            let pin_hash = if pin_stdin { Some(read_pin()?) } else { None };
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let aor = user.sip_uri.key();
            if fe.um_mailbox(&aor).await.context("reading the UM mailbox")?.is_some() {
                return Err(usage(format!("--identity {identity}: already UM-enabled (see get-um-mailbox)")));
            }
            let row = UmMailboxRow {
                aor,
                smtp: user.smtp_address.to_string(),
                pin_hash,
                call_answering_rings: DEFAULT_CALL_ANSWERING_RINGS,
                greeting: None,
                updated_at: tandem_store::now_unix(),
            };
            fe.put_um_mailbox(&row).await.context("storing the UM mailbox")?;
            println!("{} is UM-enabled: unanswered calls go to voicemail in {}", user.name, row.smtp);
            Ok(())
        }
        UmCommand::DisableUmMailbox { identity, location } => {
            let cfg = location.config()?;
            let user = super::open_directory(&cfg).await?.get(&identity).await?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            if !fe.delete_um_mailbox(&user.sip_uri.key()).await.context("removing the UM mailbox")? {
                return Err(usage(format!("--identity {identity}: not UM-enabled")));
            }
            println!("{} is no longer UM-enabled", user.name);
            Ok(())
        }
        UmCommand::GetUmMailbox { identity, json, location } => {
            let cfg = location.config()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let rows = match &identity {
                Some(id) => {
                    let user = super::open_directory(&cfg).await?.get(id).await?;
                    vec![existing(&fe, id, &user.sip_uri.key()).await?]
                }
                None => fe.um_mailboxes().await.context("reading the UM mailboxes")?,
            };
            if json {
                return print_json(&serde_json::Value::Array(rows.iter().map(show).collect()));
            }
            if rows.is_empty() {
                println!("no UM-enabled mailboxes");
            }
            for r in &rows {
                println!(
                    "{:<36} {:<32} rings {:<3} PIN {:<4} greeting {}",
                    r.aor,
                    r.smtp,
                    r.call_answering_rings,
                    if r.pin_hash.is_some() { "set" } else { "none" },
                    if r.greeting.is_some() { "custom" } else { "default" }
                );
            }
            Ok(())
        }
        UmCommand::SetUmMailbox { identity, call_answering_rings, location } => {
            let Some(rings) = call_answering_rings else {
                return Err(usage("nothing to set: pass --call-answering-rings"));
            };
            if !(1..=MAX_CALL_ANSWERING_RINGS).contains(&rings) {
                return Err(usage(format!("--call-answering-rings {rings}: from 1 to {MAX_CALL_ANSWERING_RINGS}")));
            }
            let cfg = location.config()?;
            let user = super::open_directory(&cfg).await?.get(&identity).await?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let mut row = existing(&fe, &identity, &user.sip_uri.key()).await?;
            row.call_answering_rings = rings;
            row.updated_at = tandem_store::now_unix();
            fe.put_um_mailbox(&row).await.context("storing the UM mailbox")?;
            let secs = rings * cfg.frontend.voicemail_seconds_per_ring;
            println!("{}: calls ring {rings} time(s) ({secs} s) before voicemail answers", user.name);
            Ok(())
        }
        UmCommand::SetUmMailboxPin { identity, pin_stdin: _, location } => {
            let cfg = location.config()?;
            let user = super::open_directory(&cfg).await?.get(&identity).await?;
            let hash = read_pin()?;
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let mut row = existing(&fe, &identity, &user.sip_uri.key()).await?;
            row.pin_hash = Some(hash);
            row.updated_at = tandem_store::now_unix();
            fe.put_um_mailbox(&row).await.context("storing the UM mailbox")?;
            println!("{}: PIN set", user.name);
            Ok(())
        }
        UmCommand::SetUmMailboxGreeting { identity, file, default, location } => {
            let cfg = location.config()?;
            let user = super::open_directory(&cfg).await?.get(&identity).await?;
            let greeting = match (&file, default) {
                (Some(path), _) => {
                    let shown = path.display();
                    let f = std::fs::File::open(path)
                        .map_err(|e| usage(format!("--file {shown}: cannot open it ({e})")))?;
                    let mut bytes = Vec::new();
                    f.take(tandem_frontend::media::wav::MAX_WAV_BYTES as u64 + 1)
                        .read_to_end(&mut bytes)
                        .map_err(|e| usage(format!("--file {shown}: cannot read it ({e})")))?;
                    let samples = greeting::check(&bytes).map_err(|e| usage(format!("--file {shown}: {e}")))?;
                    println!("{}: greeting of {:.1} s", user.name, samples.len() as f64 / 8000.0);
                    Some(bytes)
                }
                (None, _) => None,
            };
            let fe = FrontendStore::new(fe_store(&cfg).await?);
            let mut row = existing(&fe, &identity, &user.sip_uri.key()).await?;
            if greeting.is_none() {
                println!("{}: the default greeting", user.name);
            }
            row.greeting = greeting;
            row.updated_at = tandem_store::now_unix();
            fe.put_um_mailbox(&row).await.context("storing the UM mailbox")?;
            Ok(())
        }
    }
}

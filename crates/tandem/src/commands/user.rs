//! `tandem user`: directory users (New-Mailbox + Enable-CsUser, Set-ADAccountPassword,
//! Disable-ADAccount / Disable-CsUser, Import-Csv | New-Mailbox).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use tandem_config::Config;
use tandem_directory::{DirectoryError, EnabledFlag, NewUser, User};
use tandem_types::{SipUri, SmtpAddress, UserName};

use super::{Location, open_directory};
use crate::failure::{CliResult, Failure, usage};

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (visible to other local users in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    fn read(&self) -> CliResult<String> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        if self.password_stdin {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("cannot read the password from standard input")?;
            let line = s.lines().next().unwrap_or("").to_owned();
            return Ok(line);
        }
        Err(usage("a password is needed: pass --password P or --password-stdin"))
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add users in bulk from a CSV file (the Import-Csv | New-Mailbox pipeline): columns
    /// name,display_name,sip_address,primary_smtp_address,password with a header line; empty
    /// addresses take the defaults. Every row is checked before any is added.
    Import {
        /// The CSV file.
        #[arg(long)]
        csv: PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// Add a user with a mailbox and SIP address (New-Mailbox + Enable-CsUser).
    Add {
        /// Account name, e.g. dave.
        name: String,
        #[arg(long)]
        display_name: String,
        /// Default: sip:NAME@DOMAIN.
        #[arg(long)]
        sip_address: Option<String>,
        /// Default: NAME@DOMAIN.
        #[arg(long)]
        primary_smtp_address: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Show one user by name, SIP URI or SMTP address.
    Show {
        identity: String,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (HTTP and SIP digest credentials together).
    SetPassword {
        identity: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        location: Location,
    },
    /// Disable the account, or only its SIP or mailbox access.
    Disable {
        identity: String,
        /// Only SIP (Disable-CsUser); the mailbox stays.
        #[arg(long, conflicts_with = "mailbox")]
        sip: bool,
        /// Only the mailbox; SIP stays.
        #[arg(long)]
        mailbox: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Enable the account, or only its SIP or mailbox access.
    Enable {
        identity: String,
        #[arg(long, conflicts_with = "mailbox")]
        sip: bool,
        #[arg(long)]
        mailbox: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Unlock-ADAccount: end a user's lockout after repeated failed sign-ins, at once in every
    /// running role.
    Unlock {
        identity: String,
        #[command(flatten)]
        location: Location,
    },
    /// Remove a user and their credentials.
    Remove {
        identity: String,
        #[command(flatten)]
        location: Location,
    },
}

fn user_json(u: &User, locked_until: Option<i64>) -> serde_json::Value {
    json!({
        "locked_out": locked_until.is_some(),
        "lockout_ends_at": locked_until,
        "name": u.name.as_str(),
        "display_name": u.display_name,
        "sip_uri": u.sip_uri.to_string(),
        "smtp_address": u.smtp_address.to_string(),
        "enabled": u.enabled,
        "sip_enabled": u.sip_enabled,
        "mailbox_enabled": u.mailbox_enabled,
        "external_email_address": u.external_email_address.as_ref().map(ToString::to_string),
        "created_at": u.created_at,
        "password_changed_at": u.password_changed_at,
    })
}

fn print_user(u: &User, locked_until: Option<i64>) {
    println!("Name            : {}", u.name);
    println!("DisplayName     : {}", u.display_name);
    println!("SipAddress      : {}", u.sip_uri);
    println!("PrimarySmtpAddress : {}", u.smtp_address);
    println!("Enabled         : {}", u.enabled);
    println!("SipEnabled      : {}", u.sip_enabled);
    println!("MailboxEnabled  : {}", u.mailbox_enabled);
    if let Some(external) = &u.external_email_address {
        println!("ExternalEmailAddress : SMTP:{external}");
    }
    match locked_until {
        Some(t) => println!("LockedOut       : True (until {}; `tandem user unlock {}` ends it)", fmt_unix(t), u.name),
        None => println!("LockedOut       : False"),
    }
}

/// Unix seconds as an RFC 3339 UTC time.
fn fmt_unix(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

pub async fn run(cmd: UserCommand) -> CliResult {
    match cmd {
        UserCommand::Add { name, display_name, sip_address, primary_smtp_address, password, location, json } => {
            let cfg = location.config()?;
            // Everything is parsed before the directory is touched.
            let name: UserName = name.parse().map_err(|e: tandem_types::ParseError| usage(e.to_string()))?;
            let sip_uri: SipUri = match sip_address {
                Some(s) => s.parse().map_err(|e: tandem_types::ParseError| usage(format!("--sip-address: {e}")))?,
                None => SipUri::new(name.as_str(), &cfg.domain).map_err(|e| usage(e.to_string()))?,
            };
            let smtp_address: SmtpAddress = match primary_smtp_address {
                Some(s) => {
                    s.parse().map_err(|e: tandem_types::ParseError| usage(format!("--primary-smtp-address: {e}")))?
                }
                None => SmtpAddress::new(name.as_str(), &cfg.domain).map_err(|e| usage(e.to_string()))?,
            };
            let password = password.read()?;
            if password.chars().count() < tandem_directory::MIN_PASSWORD_LEN {
                return Err(DirectoryError::WeakPassword.into());
            }
            let dir = open_directory(&cfg).await?;
            let user = dir.add(&NewUser { name, display_name, sip_uri, smtp_address, password }).await?;
            if json {
                println!("{}", user_json(&user, None));
            } else {
                print_user(&user, None);
            }
            Ok(())
        }
        UserCommand::List { location, json } => {
            let dir = open_directory(&location.config()?).await?;
            let users = dir.list().await?;
            if json {
                let locked = dir.lockouts().await?;
                let rows =
                    users.iter().map(|u| user_json(u, locked.get(&u.name.as_str().to_ascii_lowercase()).copied()));
                println!("{}", serde_json::Value::Array(rows.collect()));
            } else {
                println!(
                    "{:<12} {:<24} {:<30} {:<30} Enabled",
                    "Name", "DisplayName", "SipAddress", "PrimarySmtpAddress"
                );
                for u in &users {
                    println!(
                        "{:<12} {:<24} {:<30} {:<30} {}",
                        u.name,
                        u.display_name,
                        u.sip_uri.to_string(),
                        u.smtp_address.to_string(),
                        u.enabled
                    );
                }
            }
            Ok(())
        }
        UserCommand::Show { identity, location, json } => {
            let dir = open_directory(&location.config()?).await?;
            let u = dir.get(&identity).await?;
            let locked_until = dir.locked_out_until(&identity).await?;
            if json {
                println!("{}", user_json(&u, locked_until));
            } else {
                print_user(&u, locked_until);
            }
            Ok(())
        }
        UserCommand::Unlock { identity, location } => {
            let dir = open_directory(&location.config()?).await?;
            let name = dir.get(&identity).await?.name;
            if dir.unlock(&identity).await? {
                println!("{name} unlocked");
            } else {
                println!("{name} was not locked out");
            }
            Ok(())
        }
        UserCommand::SetPassword { identity, password, location } => {
            let cfg = location.config()?;
            let password = password.read()?;
            let dir = open_directory(&cfg).await?;
            dir.set_password(&identity, &password).await?;
            println!("password of {identity} changed");
            Ok(())
        }
        UserCommand::Disable { identity, sip, mailbox, location } => {
            set_flag(&location, &identity, flag(sip, mailbox), false).await
        }
        UserCommand::Enable { identity, sip, mailbox, location } => {
            set_flag(&location, &identity, flag(sip, mailbox), true).await
        }
        UserCommand::Remove { identity, location } => {
            let dir = open_directory(&location.config()?).await?;
            let u = dir.remove(&identity).await?;
            println!("removed {} ({}, {})", u.name, u.sip_uri, u.smtp_address);
            Ok(())
        }
        UserCommand::Import { csv, location } => import_users(&location.config()?, &csv).await,
    }
}

/// Parses every row first (exit 2 naming the line on the first bad one, nothing added), then
/// adds them with progress on stderr.
async fn import_users(cfg: &Config, file: &Path) -> CliResult {
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h.split(',').map(|c| c.trim().to_ascii_lowercase()).collect(),
        None => return Err(usage(format!("{}: empty file", file.display()))),
    };
    let expected = ["name", "display_name", "sip_address", "primary_smtp_address", "password"];
    if header != expected {
        return Err(usage(format!("{}: line 1: the header must be {}", file.display(), expected.join(","))));
    }
    let mut users = Vec::new();
    let mut lines_of = Vec::new();
    for (i, line) in lines {
        let at = |what: String| usage(format!("{}: line {}: {what}", file.display(), i + 1));
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [name, display, sip, smtp, password] = cols.as_slice() else {
            return Err(at(format!("expected 5 columns, found {}", cols.len())));
        };
        let name: UserName = name.parse().map_err(|e: tandem_types::ParseError| at(e.to_string()))?;
        let sip_uri = if sip.is_empty() { SipUri::new(name.as_str(), &cfg.domain) } else { sip.parse() }
            .map_err(|e| at(e.to_string()))?;
        let smtp_address = if smtp.is_empty() { SmtpAddress::new(name.as_str(), &cfg.domain) } else { smtp.parse() }
            .map_err(|e| at(e.to_string()))?;
        if display.is_empty() {
            return Err(at("display_name is empty".into()));
        }
        if password.chars().count() < tandem_directory::MIN_PASSWORD_LEN {
            return Err(at(DirectoryError::WeakPassword.to_string()));
        }
        lines_of.push(i + 1);
        users.push(NewUser {
            name,
            display_name: (*display).to_owned(),
            sip_uri,
            smtp_address,
            password: (*password).to_owned(),
        });
    }
    let dir = open_directory(cfg).await?;
    let total = users.len();
    // Adds run a few at once, so the password hashing (most of the time) uses every core; they
    // are taken back in file order, so an error names the first failing line and how many
    // lines before it were added.
    let window = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) * 2;
    let mut running = std::collections::VecDeque::new();
    let mut pending = users.into_iter().enumerate();
    let mut done = 0;
    loop {
        while running.len() < window {
            let Some((n, u)) = pending.next() else { break };
            let dir = dir.clone();
            running.push_back((n, tokio::spawn(async move { (dir.add(&u).await, u.name) })));
        }
        let Some((n, job)) = running.pop_front() else { break };
        let (added, name) = job.await.map_err(|e| Failure::Runtime(anyhow::anyhow!("user import task: {e}")))?;
        if let Err(e) = added {
            // The adds already under way finish; the message counts every user added.
            for (_, job) in running {
                if matches!(job.await, Ok((Ok(_), _))) {
                    done += 1;
                }
            }
            let line = lines_of[n];
            return Err(match e {
                DirectoryError::Duplicate { .. } => usage(format!(
                    "{}: line {line}: user {name}: {e} ({done} of {total} added; fix the line and import the rest)",
                    file.display()
                )),
                other => Failure::Runtime(anyhow::anyhow!(
                    "line {line}: user {name}: {other} ({done} of {total} added; import the rest again)"
                )),
            });
        }
        done += 1;
        if done % 100 == 0 || done == total {
            eprintln!("imported {done} of {total}");
        }
    }
    println!("imported {total} users");
    Ok(())
}

fn flag(sip: bool, mailbox: bool) -> EnabledFlag {
    match (sip, mailbox) {
        (true, _) => EnabledFlag::Sip,
        (_, true) => EnabledFlag::Mailbox,
        _ => EnabledFlag::Account,
    }
}

async fn set_flag(location: &Location, identity: &str, flag: EnabledFlag, on: bool) -> CliResult {
    let dir = open_directory(&location.config()?).await?;
    let u = dir.set_enabled(identity, flag, on).await?;
    let what = match flag {
        EnabledFlag::Account => "account",
        EnabledFlag::Sip => "SIP",
        EnabledFlag::Mailbox => "mailbox",
    };
    println!("{what} of {} {}", u.name, if on { "enabled" } else { "disabled" });
    Ok(())
}

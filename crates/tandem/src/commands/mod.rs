//! The command line: the top-level parser and one module per command group, each holding its
//! clap definitions beside its handlers. Shared here: where a command finds the deployment
//! ([`Location`]), opening the stores, and the small formatting helpers several groups use.

mod cert;
mod client_policy;
mod conference;
mod config;
mod conversation_history;
mod cs;
mod dashboard_report;
mod dns;
mod ediscovery;
mod exchange;
mod integration;
mod partner;
mod serve;
mod status;
mod test;
mod ucs;
mod um;
mod user;
mod web_service;

/// The deployment's HTTPS client, which the running Front End also uses for calendar presence.
pub(crate) use self::dashboard_report::DashboardReport;
pub(crate) use self::test::deployment_client;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tandem_config::{Config, LogFormat};
use tandem_directory::Directory;
use tandem_store::Store;

use crate::deployment;
use crate::failure::{CliResult, usage};

#[derive(Debug, Parser)]
#[command(
    name = "tandem",
    version,
    about = "Tandem: the Front End (Skype for Business Server) and Mailbox (Exchange Server) roles in one binary"
)]
pub struct Cli {
    /// Log lines as human-readable text or JSON (overrides the configuration).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(a: LogFormatArg) -> Self {
        match a {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stand up both roles with an embedded store and a demo organisation.
    Up(serve::UpArgs),
    /// Run roles from a configuration file, as a real deployment does (one role per server).
    Serve(serve::ServeArgs),
    /// Role health and endpoints.
    Status(status::StatusArgs),
    /// Configuration files.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Directory users (New-Mailbox / Enable-CsUser / Set-ADAccountPassword / Disable-ADAccount).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Certificates (Get-ExchangeCertificate / Get-CsCertificate).
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Front End (Skype for Business Server) administration: the Cs cmdlets.
    #[command(subcommand)]
    Cs(cs::CsCommand),
    /// Mailbox (Exchange Server) administration: the Exchange cmdlets and scripts.
    #[command(subcommand)]
    Exchange(exchange::ExchangeCommand),
    /// eDiscovery across mailboxes (Search-Mailbox / New-MailboxSearch), audited.
    #[command(subcommand)]
    Ediscovery(ediscovery::EdiscoveryCommand),
    /// DNS records the deployment needs.
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// Checks an administrator runs (Test-… cmdlets).
    #[command(subcommand)]
    Test(test::TestCommand),
    /// The seed's integration setup steps.
    #[command(subcommand)]
    Integration(integration::IntegrationCommand),
}

pub async fn run(cli: Cli) -> CliResult {
    let log_format = cli.log_format.map(LogFormat::from);
    match cli.command {
        Command::Up(args) => serve::up(args, log_format).await,
        Command::Serve(args) => serve::serve(args, log_format).await,
        Command::Status(args) => status::run(args).await,
        Command::Config(cmd) => config::run(cmd),
        Command::User(cmd) => {
            crate::logging::init(log_format.unwrap_or_default(), "warn");
            user::run(cmd).await
        }
        Command::Cert(cmd) => cert::run(cmd).await,
        Command::Cs(cmd) => cs::run(cmd).await,
        Command::Exchange(cmd) => {
            crate::logging::init(log_format.unwrap_or_default(), "warn");
            exchange::run(cmd).await
        }
        Command::Ediscovery(cmd) => {
            crate::logging::init(log_format.unwrap_or_default(), "warn");
            ediscovery::run(cmd).await
        }
        Command::Dns(cmd) => dns::run(cmd),
        Command::Test(cmd) => test::run(cmd).await,
        Command::Integration(cmd) => integration::run(cmd).await,
    }
}

/// Where an admin command finds the deployment.
#[derive(Debug, Args, Clone)]
struct Location {
    /// The deployment's data directory (holds tandem.toml) [default: ./tandem-data]
    #[arg(long, conflicts_with = "config")]
    data_dir: Option<PathBuf>,
    /// A configuration file instead of the data directory's own.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Location {
    fn config(&self) -> CliResult<Config> {
        deployment::locate(self.data_dir.as_deref(), self.config.as_deref())
    }
}

/// Warnings only, for commands whose output is what they print.
fn quiet_logs() {
    crate::logging::init(LogFormat::Human, "warn");
}

async fn open_directory(cfg: &Config) -> CliResult<Directory> {
    Ok(Directory::open(&cfg.directory.url()).await.context("cannot open the directory")?)
}

async fn fe_store(cfg: &Config) -> CliResult<Store> {
    Ok(tandem_frontend::admin::open_store(&cfg.frontend).await.context("cannot open the Front End store")?)
}

async fn mbx_store(cfg: &Config) -> CliResult<Store> {
    Ok(tandem_mailbox::open_store(&cfg.mailbox).await.context("cannot open the mailbox store")?)
}

fn print_json<T: Serialize>(v: &T) -> CliResult {
    println!("{}", serde_json::to_string_pretty(v).context("serialising")?);
    Ok(())
}

fn check_guid(flag: &str, s: &str) -> CliResult {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = parts.len() == 5
        && parts.iter().zip(lens).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok { Ok(()) } else { Err(usage(format!("{flag} {s}: not a GUID such as {}", tandem_oauth::LYNC_APP_ID))) }
}

/// A date an administrator typed: `now`, Unix seconds, RFC 3339, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (UTC).
fn parse_date(flag: &str, s: &str) -> CliResult<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(tandem_store::now_unix());
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    if let Ok(t) =
        time::PrimitiveDateTime::parse(s, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"))
    {
        return Ok(t.assume_utc().unix_timestamp());
    }
    if let Ok(d) = time::Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    Err(usage(format!("{flag} {s}: not a date; use 2026-12-01, 2026-12-01T09:00:00Z, Unix seconds or now")))
}

fn fmt_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_guids() {
        assert_eq!(parse_date("x", "1800000000").ok(), Some(1_800_000_000));
        assert_eq!(parse_date("x", "2027-01-01").ok(), Some(1_798_761_600));
        assert_eq!(parse_date("x", "2027-01-01T00:00:00Z").ok(), Some(1_798_761_600));
        assert!(parse_date("x", "soon").is_err());
        assert!(check_guid("--service-name", tandem_oauth::LYNC_APP_ID).is_ok());
        assert!(check_guid("--service-name", "nope").is_err());
    }
}

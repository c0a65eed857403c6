//! The command line: parsing with clap and one function per command.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tandem_config::{Config, LogFormat, Overrides};
use tandem_directory::{Directory, DirectoryError, EnabledFlag, NewUser, User};
use tandem_types::{SipUri, SmtpAddress, UserName};

use crate::deployment::{self, Demo, Endpoints, RoleSelection};
use crate::{CliResult, Failure, logging, usage};

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Stand up both roles with an embedded store and a demo organisation.
    Up {
        /// Where state is kept [default: ./tandem-data]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The organisation's SIP and SMTP domain [default: litwareinc.com]
        #[arg(long)]
        domain: Option<String>,
        /// Start from this configuration file (first start only; later starts use the data directory's).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run roles from a configuration file, as a real deployment does (one role per server).
    Serve {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "all")]
        role: RoleSelection,
    },
    /// Role health and endpoints.
    Status {
        #[command(flatten)]
        location: Location,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Directory users (New-Mailbox / Enable-CsUser / Set-ADAccountPassword / Disable-ADAccount).
    #[command(subcommand)]
    User(UserCommand),
    /// Certificates (Get-ExchangeCertificate / Get-CsCertificate).
    #[command(subcommand)]
    Cert(CertCommand),
    /// Front End (Skype for Business Server) administration: the Cs cmdlets.
    #[command(subcommand)]
    Cs(CsCommand),
    /// Mailbox (Exchange Server) administration: the Exchange cmdlets and scripts.
    #[command(subcommand)]
    Exchange(ExchangeCommand),
    #[command(flatten)]
    OAuth(crate::cli_oauth::OAuthTopCommand),
}

#[derive(Debug, Subcommand)]
enum CsCommand {
    #[command(flatten)]
    OAuth(crate::cli_oauth::CsOAuthCommand),
    /// Registered SIP endpoints (Get-CsUserPoolInfo / the registrar's view of Get-CsRegistrarStatus).
    GetRegistrations {
        /// Only this user's endpoints: a SIP URI (sip:alice@litwareinc.com) or account name.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ExchangeCommand {
    /// Auth configuration and partner applications (Get-/Set-AuthConfig, *-PartnerApplication).
    #[command(flatten)]
    OAuth(crate::cli_oauth::ExchangeCommand),
    /// Get-ClientAccessServer: the Autodiscover URI and the web services' URLs in force.
    GetClientAccessServer {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Set-ClientAccessServer (and the virtual directories' -InternalUrl/-ExternalUrl); applies to
    /// the running server at once. An empty value clears a URL ($null).
    #[command(alias = "set-client-access-service")]
    SetClientAccessServer(Box<SetClientAccessServerArgs>),
}

/// Set-ClientAccessServer parameters.
#[derive(Debug, Args)]
struct SetClientAccessServerArgs {
    /// -Identity: the server name (optional; there is one mailbox server).
    #[arg(long)]
    identity: Option<String>,
    /// -AutoDiscoverServiceInternalUri, e.g. https://autodiscover.<domain>/autodiscover/autodiscover.xml
    #[arg(long)]
    autodiscover_service_internal_uri: Option<String>,
    /// Set-WebServicesVirtualDirectory -InternalUrl
    #[arg(long)]
    ews_internal_url: Option<String>,
    /// Set-WebServicesVirtualDirectory -ExternalUrl
    #[arg(long)]
    ews_external_url: Option<String>,
    /// Set-OwaVirtualDirectory -InternalUrl
    #[arg(long)]
    owa_internal_url: Option<String>,
    /// Set-OwaVirtualDirectory -ExternalUrl
    #[arg(long)]
    owa_external_url: Option<String>,
    /// Set-OabVirtualDirectory -InternalUrl
    #[arg(long)]
    oab_internal_url: Option<String>,
    /// Set-OabVirtualDirectory -ExternalUrl
    #[arg(long)]
    oab_external_url: Option<String>,
    /// Set-UMVirtualDirectory -InternalUrl
    #[arg(long)]
    um_internal_url: Option<String>,
    /// Set-UMVirtualDirectory -ExternalUrl
    #[arg(long)]
    um_external_url: Option<String>,
    #[command(flatten)]
    location: Location,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Parse a configuration file and report the first problem.
    Check { file: PathBuf },
    /// Print a commented example configuration.
    Example,
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Subject, names, key size, SHA-1 thumbprint and expiry of every certificate.
    List {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct PasswordArgs {
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
enum UserCommand {
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
    /// Remove a user and their credentials.
    Remove {
        identity: String,
        #[command(flatten)]
        location: Location,
    },
}

pub async fn run(cli: Cli) -> CliResult {
    let log_format = cli.log_format.map(LogFormat::from);
    match cli.command {
        Command::Up { data_dir, domain, config } => {
            let (mut cfg, first) = deployment::for_up(data_dir.as_deref(), domain.as_deref(), config.as_deref())?;
            let demo = Demo::from_env()?;
            if let Some(f) = log_format {
                cfg.log.format = f;
            }
            logging::init(cfg.log.format, &cfg.log.level);
            if first {
                let file = deployment::write_config(&cfg)?;
                tracing::info!(config = %file.display(), "first start: configuration written");
            }
            deployment::run(cfg, RoleSelection::All, Some(demo), true).await
        }
        Command::Serve { config, role } => {
            let overrides = Overrides { log_format, ..Overrides::default() };
            let cfg = Config::load(&config, &overrides)?;
            logging::init(cfg.log.format, &cfg.log.level);
            deployment::run(cfg, role, None, false).await
        }
        Command::Status { location, json } => status(&location.config()?, json).await,
        Command::Config(ConfigCommand::Check { file }) => {
            let cfg = Config::load(&file, &Overrides::default())?;
            println!("{}: ok (domain {}, data in {})", file.display(), cfg.domain, cfg.data_dir.display());
            Ok(())
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", tandem_config::EXAMPLE);
            Ok(())
        }
        Command::Cert(CertCommand::List { location, json }) => cert_list(&location.config()?, json),
        Command::Cs(CsCommand::GetRegistrations { user, location, json }) => {
            let cfg = location.config()?;
            let user = match user {
                None => None,
                Some(u) if u.to_ascii_lowercase().starts_with("sip:") => Some(
                    u.parse::<SipUri>().map_err(|e: tandem_types::ParseError| usage(format!("--user: {e}")))?.key(),
                ),
                Some(name) => Some(open_directory(&cfg).await?.get(&name).await?.sip_uri.key()),
            };
            let store =
                tandem_frontend::admin::open_store(&cfg.frontend).await.context("cannot open the Front End store")?;
            let rows = tandem_frontend::admin::registrations(&store, user.as_deref())
                .await
                .context("reading registrations")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).context("serialising")?);
            } else {
                println!("{:<30} {:<40} {:<5} {:<22} {:>8}", "SipAddress", "Contact", "Proto", "Source", "Expires");
                for r in &rows {
                    println!(
                        "{:<30} {:<40} {:<5} {:<22} {:>8}",
                        r.sip_uri, r.contact, r.transport, r.source, r.expires_in
                    );
                }
            }
            Ok(())
        }
        Command::Cs(CsCommand::OAuth(cmd)) => crate::cli_oauth::cs(cmd).await,
        Command::OAuth(cmd) => crate::cli_oauth::top(cmd).await,
        Command::User(cmd) => {
            logging::init(log_format.unwrap_or_default(), "warn");
            user(cmd).await
        }
        Command::Exchange(cmd) => {
            logging::init(log_format.unwrap_or_default(), "warn");
            exchange(cmd).await
        }
    }
}

async fn open_directory(cfg: &Config) -> CliResult<Directory> {
    Ok(Directory::open(&cfg.directory.url()).await.context("cannot open the directory")?)
}

impl From<DirectoryError> for Failure {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Store(_) | DirectoryError::Hash(_) | DirectoryError::Corrupt(..) => {
                Failure::Runtime(e.into())
            }
            other => usage(other.to_string()),
        }
    }
}

fn user_json(u: &User) -> serde_json::Value {
    json!({
        "name": u.name.as_str(),
        "display_name": u.display_name,
        "sip_uri": u.sip_uri.to_string(),
        "smtp_address": u.smtp_address.to_string(),
        "enabled": u.enabled,
        "sip_enabled": u.sip_enabled,
        "mailbox_enabled": u.mailbox_enabled,
        "created_at": u.created_at,
        "password_changed_at": u.password_changed_at,
    })
}

fn print_user(u: &User) {
    println!("Name            : {}", u.name);
    println!("DisplayName     : {}", u.display_name);
    println!("SipAddress      : {}", u.sip_uri);
    println!("PrimarySmtpAddress : {}", u.smtp_address);
    println!("Enabled         : {}", u.enabled);
    println!("SipEnabled      : {}", u.sip_enabled);
    println!("MailboxEnabled  : {}", u.mailbox_enabled);
}

async fn user(cmd: UserCommand) -> CliResult {
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
                println!("{}", user_json(&user));
            } else {
                print_user(&user);
            }
            Ok(())
        }
        UserCommand::List { location, json } => {
            let dir = open_directory(&location.config()?).await?;
            let users = dir.list().await?;
            if json {
                println!("{}", serde_json::Value::Array(users.iter().map(user_json).collect()));
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
            if json {
                println!("{}", user_json(&u));
            } else {
                print_user(&u);
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
    for (n, u) in users.iter().enumerate() {
        dir.add(u).await.map_err(|e| match e {
            DirectoryError::Duplicate { .. } => {
                usage(format!("{}: user {}: {e} ({n} of {total} added before it)", file.display(), u.name))
            }
            other => Failure::Runtime(anyhow::anyhow!("user {}: {other} ({n} of {total} added before it)", u.name)),
        })?;
        if (n + 1) % 100 == 0 || n + 1 == total {
            eprintln!("imported {} of {total}", n + 1);
        }
    }
    println!("imported {total} users");
    Ok(())
}

async fn exchange(cmd: ExchangeCommand) -> CliResult {
    use tandem_mailbox::client_access::{self, Defaults, Setting};
    match cmd {
        ExchangeCommand::OAuth(c) => crate::cli_oauth::exchange(c).await,
        ExchangeCommand::GetClientAccessServer { location, json } => {
            let cfg = location.config()?;
            let store = tandem_mailbox::open_store(&cfg.mailbox).await.context("cannot open the mailbox store")?;
            let cas = client_access::load(&store, &Defaults::of(&cfg.mailbox)).await.context("reading settings")?;
            if json {
                let mut obj = serde_json::Map::new();
                obj.insert("Name".into(), json!(cas.name));
                obj.insert("Fqdn".into(), json!(cas.fqdn));
                for (s, v, set) in cas.entries() {
                    obj.insert(s.label().into(), json!(v));
                    obj.insert(format!("{}IsDefault", s.label()), json!(!set));
                }
                println!("{}", serde_json::Value::Object(obj));
            } else {
                println!("{:<32}: {}", "Name", cas.name);
                println!("{:<32}: {}", "Fqdn", cas.fqdn);
                for (s, v, set) in cas.entries() {
                    let shown = v.unwrap_or("");
                    let note = if set { "" } else { "  (default)" };
                    println!("{:<32}: {shown}{note}", s.label());
                }
            }
            Ok(())
        }
        ExchangeCommand::SetClientAccessServer(args) => {
            let SetClientAccessServerArgs {
                identity,
                autodiscover_service_internal_uri,
                ews_internal_url,
                ews_external_url,
                owa_internal_url,
                owa_external_url,
                oab_internal_url,
                oab_external_url,
                um_internal_url,
                um_external_url,
                location,
            } = *args;
            let cfg = location.config()?;
            let changes: Vec<(Setting, String)> = [
                (Setting::AutoDiscoverServiceInternalUri, autodiscover_service_internal_uri),
                (Setting::EwsInternalUrl, ews_internal_url),
                (Setting::EwsExternalUrl, ews_external_url),
                (Setting::OwaInternalUrl, owa_internal_url),
                (Setting::OwaExternalUrl, owa_external_url),
                (Setting::OabInternalUrl, oab_internal_url),
                (Setting::OabExternalUrl, oab_external_url),
                (Setting::UmInternalUrl, um_internal_url),
                (Setting::UmExternalUrl, um_external_url),
            ]
            .into_iter()
            .filter_map(|(s, v)| v.map(|v| (s, v.trim().to_owned())))
            .collect();
            if changes.is_empty() {
                return Err(usage(
                    "nothing to set: pass --autodiscover-service-internal-uri URI or another URL option",
                ));
            }
            for (s, v) in &changes {
                client_access::validate(*s, v).map_err(|e| usage(e.to_string()))?;
            }
            let defaults = Defaults::of(&cfg.mailbox);
            if let Some(id) = identity {
                let name = defaults.fqdn.split('.').next().unwrap_or("").to_owned();
                if !id.eq_ignore_ascii_case(&name) && !id.eq_ignore_ascii_case(&defaults.fqdn) {
                    return Err(usage(format!(
                        "--identity {id}: no such server; this deployment's mailbox server is {name} ({})",
                        defaults.fqdn
                    )));
                }
            }
            let store = tandem_mailbox::open_store(&cfg.mailbox).await.context("cannot open the mailbox store")?;
            client_access::set(&store, &changes).await.map_err(|e| match e {
                client_access::SetError::Invalid(e) => usage(e.to_string()),
                other => Failure::Runtime(other.into()),
            })?;
            for (s, v) in &changes {
                println!("{:<32}: {}", s.label(), if v.is_empty() { "$null" } else { v });
            }
            Ok(())
        }
    }
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

fn cert_list(cfg: &Config, json: bool) -> CliResult {
    let pki = deployment::pki(cfg);
    let certs = pki.list().with_context(|| format!("cannot read {}", pki.dir().display()))?;
    if certs.is_empty() {
        return Err(usage(format!("no certificates in {}: run `tandem up` first", pki.dir().display())));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&certs).context("serialising certificates")?);
        return Ok(());
    }
    for c in &certs {
        println!("Path          : {}", c.path);
        println!("Subject       : {}", c.subject);
        println!("Issuer        : {}", c.issuer);
        println!("SANs          : {}", c.subject_alt_names.join(", "));
        println!("Key           : {} {} bits", c.key_algorithm, c.key_bits);
        println!("Thumbprint    : {}", c.thumbprint);
        println!("NotAfter      : {}{}", c.not_after, if c.is_ca { "  (CA)" } else { "" });
        println!();
    }
    Ok(())
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
        Err(e) => Health { healthy: false, detail: json!({ "error": format!("not reachable: {}", root_cause(&e)) }) },
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn status(cfg: &Config, as_json: bool) -> CliResult {
    let pki = deployment::pki(cfg);
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
    if all_healthy { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("a role is not healthy"))) }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

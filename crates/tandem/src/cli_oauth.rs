//! Server-to-server trust commands: the seed's setup steps under the cmdlets' names
//! (`tandem cs set-certificate | get-/set-oauth-configuration | …-partner-application`,
//! `tandem exchange get-/set-auth-config | new-partner-application |
//! configure-enterprise-partner-application`), `tandem dns plan`, `tandem test dns |
//! oauth-connectivity | oauth-token`, `tandem integration status`, and the setup `up` performs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use tandem_config::{Config, LogFormat};
use tandem_frontend::oauth as fe;
use tandem_mailbox::auth_config as mbx;
use tandem_oauth::partner::{check_allowed_domains, check_autodiscover_url, check_metadata_url};
use tandem_oauth::token::UserIdentity;
use tandem_oauth::{EXCHANGE_APP_ID, LYNC_APP_ID, PartnerApplication, SHAREPOINT_APP_ID, TrustLevel};
use tandem_store::Store;

use crate::deployment::{self, Endpoints};
use crate::{CliResult, Failure, usage};

/// Where an admin command finds the deployment.
#[derive(Debug, Args, Clone)]
pub struct Loc {
    /// The deployment's data directory (holds tandem.toml) [default: ./tandem-data]
    #[arg(long, conflicts_with = "config")]
    data_dir: Option<PathBuf>,
    /// A configuration file instead of the data directory's own.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Loc {
    fn config(&self) -> CliResult<Config> {
        deployment::locate(self.data_dir.as_deref(), self.config.as_deref())
    }
}

/// Front End (Skype for Business) trust commands, merged into `tandem cs`.
#[derive(Debug, Subcommand)]
pub enum CsOAuthCommand {
    /// Assign the OAuthTokenIssuer certificate (Set-CsCertificate -Type OAuthTokenIssuer / Import-CsCertificate).
    SetCertificate {
        /// Only `global` (the pool-wide certificate).
        #[arg(long, default_value = "global")]
        identity: String,
        /// Only OAuthTokenIssuer is managed here.
        #[arg(long = "type")]
        cert_type: String,
        /// A certificate in the store (`tandem cert list`), by SHA-1 thumbprint.
        #[arg(long, conflicts_with = "path", required_unless_present = "path")]
        thumbprint: Option<String>,
        /// A PEM file holding the certificate and its private key.
        #[arg(long)]
        path: Option<PathBuf>,
        /// Schedule the certificate to take over at --effective-date.
        #[arg(long)]
        roll: bool,
        /// When a rolled certificate takes over: RFC 3339, YYYY-MM-DD (UTC), Unix seconds or `now`.
        #[arg(long)]
        effective_date: Option<String>,
        #[command(flatten)]
        location: Loc,
    },
    /// The OAuthTokenIssuer certificates: current, previous and scheduled (Get-CsCertificate -Type OAuthTokenIssuer).
    GetCertificate {
        #[arg(long = "type")]
        cert_type: String,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Get-CsOAuthConfiguration.
    #[command(name = "get-oauth-configuration")]
    GetOAuthConfiguration {
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Set-CsOAuthConfiguration (one global instance).
    #[command(name = "set-oauth-configuration")]
    SetOAuthConfiguration {
        #[arg(long, default_value = "global")]
        identity: String,
        #[arg(long)]
        realm: Option<String>,
        #[arg(long)]
        service_name: Option<String>,
        /// https://autodiscover.<domain>/autodiscover/autodiscover.svc (empty clears it).
        #[arg(long)]
        exchange_autodiscover_url: Option<String>,
        /// `;`-separated list such as "*.litwareinc.com;*.fabrikam.com" (empty clears it).
        #[arg(long)]
        exchange_autodiscover_allowed_domains: Option<String>,
        #[command(flatten)]
        location: Loc,
    },
    /// New-CsPartnerApplication -MetadataUrl (downloads and checks the document).
    NewPartnerApplication {
        #[arg(long)]
        identity: String,
        #[arg(long)]
        metadata_url: String,
        /// Full, Application or User.
        #[arg(long, default_value = "Full")]
        application_trust_level: String,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        accept_security_identifier_information: Option<bool>,
        #[command(flatten)]
        location: Loc,
    },
    /// Get-CsPartnerApplication.
    GetPartnerApplication {
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Set-CsPartnerApplication (enable/disable, trust level, metadata URL).
    SetPartnerApplication {
        #[arg(long)]
        identity: String,
        #[arg(long)]
        metadata_url: Option<String>,
        #[arg(long)]
        application_trust_level: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        accept_security_identifier_information: Option<bool>,
        #[command(flatten)]
        location: Loc,
    },
    /// Remove-CsPartnerApplication.
    RemovePartnerApplication {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Loc,
    },
}

/// Top-level command groups of the trust work, merged into `tandem`.
#[derive(Debug, Subcommand)]
pub enum OAuthTopCommand {
    /// DNS records the deployment needs.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Checks an administrator runs (Test-… cmdlets).
    #[command(subcommand)]
    Test(TestCommand),
    /// The seed's integration setup steps.
    #[command(subcommand)]
    Integration(IntegrationCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExchangeCommand {
    /// Get-AuthConfig.
    GetAuthConfig {
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Set-AuthConfig: one parameter set at a time.
    SetAuthConfig {
        /// NewCertificateParameter: the next certificate (from the certificate store).
        #[arg(long, requires = "new_certificate_effective_date")]
        new_certificate_thumbprint: Option<String>,
        #[arg(long, requires = "new_certificate_thumbprint")]
        new_certificate_effective_date: Option<String>,
        /// PublishAuthCertificateParameter: the next certificate becomes current now.
        #[arg(long)]
        publish_certificate: bool,
        #[arg(long)]
        clear_previous_certificate: bool,
        /// CurrentCertificateParameter: replace the current certificate now.
        #[arg(long)]
        certificate_thumbprint: Option<String>,
        /// Accepted for compatibility; every mailbox reads the shared store at once.
        #[arg(long)]
        skip_immediate_certificate_deployment: bool,
        /// AuthConfigSettings.
        #[arg(long)]
        realm: Option<String>,
        #[arg(long)]
        service_name: Option<String>,
        #[command(flatten)]
        location: Loc,
    },
    /// New-PartnerApplication -AuthMetadataUrl.
    NewPartnerApplication {
        #[arg(long)]
        name: String,
        #[arg(long)]
        auth_metadata_url: String,
        #[arg(long)]
        realm: Option<String>,
        #[arg(long)]
        linked_account: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        accept_security_identifier_information: Option<bool>,
        #[command(flatten)]
        location: Loc,
    },
    /// Get-PartnerApplication.
    GetPartnerApplication {
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Set-PartnerApplication (enable/disable, metadata URL).
    SetPartnerApplication {
        #[arg(long)]
        name: String,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        auth_metadata_url: Option<String>,
        #[command(flatten)]
        location: Loc,
    },
    /// Remove-PartnerApplication.
    RemovePartnerApplication {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        location: Loc,
    },
    /// Configure-EnterprisePartnerApplication.ps1 (no iisreset needed).
    ConfigureEnterprisePartnerApplication {
        #[arg(long)]
        auth_metadata_url: String,
        /// Lync or SharePoint.
        #[arg(long)]
        application_type: String,
        #[command(flatten)]
        location: Loc,
    },
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// The zone records the deployment needs.
    Plan {
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Resolve the planned records through a resolver (the system's, or --name-server).
    Dns {
        /// A name server to ask instead of the system's, IP or IP:PORT (repeatable).
        #[arg(long)]
        name_server: Vec<String>,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Test-OAuthConnectivity: call a service with an S2S token acting as a mailbox.
    #[command(name = "oauth-connectivity")]
    OAuthConnectivity {
        /// EWS or AutoD.
        #[arg(long)]
        service: String,
        #[arg(long)]
        target_uri: String,
        #[arg(long)]
        mailbox: String,
        /// Also print the token sent (to replay it with curl, or inspect it with `tandem test oauth-token`).
        #[arg(long)]
        show_token: bool,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Test-CsExStorageConnectivity: write an item into the user's mailbox through the whole
    /// chain the Front End uses (DNS, SOAP Autodiscover, S2S token, EWS), read it back, and say
    /// which hop failed and what to do.
    #[command(name = "ex-storage-connectivity")]
    ExStorageConnectivity {
        /// The user, e.g. sip:alice@litwareinc.com.
        #[arg(long)]
        sip_uri: String,
        /// ConversationHistory (default), Inbox or Dumpster.
        #[arg(long, default_value = "ConversationHistory")]
        folder: String,
        /// Remove the test item afterwards.
        #[arg(long)]
        delete_item: bool,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
    /// Check an S2S token as the mailbox's EWS would, and show its claims or why it is refused.
    #[command(name = "oauth-token")]
    OAuthToken {
        /// The token (a leading "Bearer " is ignored).
        #[arg(long)]
        token: String,
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// The seed's setup steps with pass/fail and the reason.
    Status {
        #[command(flatten)]
        location: Loc,
        #[arg(long)]
        json: bool,
    },
}

fn quiet_logs() {
    crate::logging::init(LogFormat::Human, "warn");
}

async fn fe_store(cfg: &Config) -> CliResult<Store> {
    Ok(tandem_frontend::admin::open_store(&cfg.frontend).await.context("cannot open the Front End store")?)
}

async fn mbx_store(cfg: &Config) -> CliResult<Store> {
    Ok(mbx::open_store(&cfg.mailbox).await.context("cannot open the mailbox store")?)
}

fn print_json<T: Serialize>(v: &T) -> CliResult {
    println!("{}", serde_json::to_string_pretty(v).context("serialising")?);
    Ok(())
}

fn check_global(identity: &str) -> CliResult {
    if identity.eq_ignore_ascii_case("global") {
        Ok(())
    } else {
        Err(usage(format!("--identity {identity}: only `global` exists (one pool-wide instance)")))
    }
}

fn check_guid(flag: &str, s: &str) -> CliResult {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = parts.len() == 5
        && parts.iter().zip(lens).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()));
    if ok { Ok(()) } else { Err(usage(format!("{flag} {s}: not a GUID such as {LYNC_APP_ID}"))) }
}

fn parse_trust(flag: &str, s: &str) -> CliResult<TrustLevel> {
    s.parse().map_err(|e: String| usage(format!("{flag} {e}")))
}

/// A date an administrator typed: `now`, Unix seconds, RFC 3339, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (UTC).
pub fn parse_date(flag: &str, s: &str) -> CliResult<i64> {
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

/// A metadata document downloaded with the role's HTTPS client, or the seed's error (exit 1).
async fn download(client: &reqwest::Client, url: &str) -> CliResult<(String, tandem_oauth::PartnerMetadata)> {
    fe::fetch_metadata(client, url).await.map_err(|e| Failure::Runtime(anyhow::anyhow!(e)))
}

fn new_partner(name: &str, url: &str, body: String, doc: &tandem_oauth::PartnerMetadata) -> PartnerApplication {
    PartnerApplication {
        name: name.into(),
        application_identifier: doc.service_name.clone(),
        auth_metadata_url: Some(url.into()),
        realm: None,
        enabled: true,
        application_trust_level: TrustLevel::Full,
        accept_security_identifier_information: false,
        linked_account: None,
        application_type: None,
        roles: vec![],
        metadata: Some(body),
        metadata_fetched_at: Some(tandem_store::now_unix()),
        metadata_error: None,
    }
}

// ------------------------------------------------------------------ cs

pub async fn cs(cmd: CsOAuthCommand) -> CliResult {
    quiet_logs();
    match cmd {
        CsOAuthCommand::SetCertificate { identity, cert_type, thumbprint, path, roll, effective_date, location } => {
            check_global(&identity)?;
            if !cert_type.eq_ignore_ascii_case("OAuthTokenIssuer") {
                return Err(usage(format!(
                    "--type {cert_type}: only OAuthTokenIssuer is assigned here; TLS certificates are renewed by tandem itself (`tandem cert list`)"
                )));
            }
            let roll_at = match (roll, effective_date) {
                (true, Some(d)) => Some(parse_date("--effective-date", &d)?),
                (true, None) => return Err(usage("--roll requires --effective-date (as Set-CsCertificate -Roll)")),
                (false, Some(_)) => return Err(usage("--effective-date is only meaningful with --roll")),
                (false, None) => None,
            };
            let cfg = location.config()?;
            let domain = cfg.domain.to_string();
            let (flag, cert_pem, key_pem) = match (&thumbprint, &path) {
                (Some(t), _) => {
                    let pki = deployment::pki(&cfg);
                    let found =
                        pki.find_by_thumbprint(t).context("reading the certificate store")?.ok_or_else(|| {
                            usage(format!(
                                "--thumbprint {t}: no such certificate in {}; `tandem cert list` shows them",
                                pki.dir().display()
                            ))
                        })?;
                    let key = match &found.key_path {
                        Some(p) => {
                            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
                        }
                        None => None,
                    };
                    (format!("--thumbprint {t}"), found.cert_pem, key)
                }
                (None, Some(p)) => {
                    let text = std::fs::read_to_string(p).map_err(|e| usage(format!("--path {}: {e}", p.display())))?;
                    let has_key = text.contains("PRIVATE KEY-----");
                    (format!("--path {}", p.display()), text.clone(), has_key.then_some(text))
                }
                (None, None) => return Err(usage("pass --thumbprint T or --path FILE")),
            };
            let cert =
                fe::check_rules(&cert_pem, key_pem.as_deref(), &domain).map_err(|e| usage(format!("{flag}: {e}")))?;
            let store = fe_store(&cfg).await?;
            let thumb = cert.thumbprint.clone();
            fe::set_certificate(&store, cert, roll_at).await.context("saving the certificate")?;
            match roll_at {
                Some(at) => println!(
                    "OAuthTokenIssuer {thumb} scheduled to take over at {}; published in /metadata/json/1 now",
                    fmt_time(at)
                ),
                None => println!(
                    "OAuthTokenIssuer {thumb} is now the current certificate (the previous one stays published)"
                ),
            }
            Ok(())
        }
        CsOAuthCommand::GetCertificate { cert_type, location, json } => {
            if !cert_type.eq_ignore_ascii_case("OAuthTokenIssuer") {
                return Err(usage(format!(
                    "--type {cert_type}: only OAuthTokenIssuer is shown here; see `tandem cert list`"
                )));
            }
            let store = fe_store(&location.config()?).await?;
            let certs = fe::certificates(&store).await.context("reading the certificates")?;
            let row = |slot: &str, c: &Option<fe::StoredCertificate>| {
                c.as_ref().map(|c| {
                    json!({"Use": "OAuthTokenIssuer", "Slot": slot, "Thumbprint": c.thumbprint, "Subject": c.subject,
                           "KeyBits": c.key_bits, "NotAfter": fmt_time(c.not_after_unix),
                           "EffectiveDate": c.effective_date.map(fmt_time)})
                })
            };
            let rows: Vec<_> = [("current", &certs.current), ("next", &certs.next), ("previous", &certs.previous)]
                .into_iter()
                .filter_map(|(s, c)| row(s, c))
                .collect();
            if json {
                return print_json(&rows);
            }
            for r in rows {
                println!(
                    "{:<9} {}  {}  {}",
                    r["Slot"].as_str().unwrap_or(""),
                    r["Thumbprint"].as_str().unwrap_or(""),
                    r["Subject"].as_str().unwrap_or(""),
                    r["EffectiveDate"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        CsOAuthCommand::GetOAuthConfiguration { location, json } => {
            let cfg = location.config()?;
            let store = fe_store(&cfg).await?;
            let c = fe::configuration(&store, cfg.domain.as_str()).await.context("reading the configuration")?;
            if json {
                return print_json(&c);
            }
            println!("Identity                           : {}", c.identity);
            println!("Realm                              : {}", c.realm);
            println!("ServiceName                        : {}", c.service_name);
            println!("ExchangeAutodiscoverUrl            : {}", c.exchange_autodiscover_url.unwrap_or_default());
            println!(
                "ExchangeAutodiscoverAllowedDomains : {}",
                c.exchange_autodiscover_allowed_domains.unwrap_or_default()
            );
            Ok(())
        }
        CsOAuthCommand::SetOAuthConfiguration {
            identity,
            realm,
            service_name,
            exchange_autodiscover_url,
            exchange_autodiscover_allowed_domains,
            location,
        } => {
            check_global(&identity)?;
            if let Some(r) = &realm
                && (r.is_empty() || r.contains(['/', '@', ' ']))
            {
                return Err(usage(format!("--realm {r}: a realm is a domain name such as litwareinc.com")));
            }
            if let Some(s) = &service_name {
                check_guid("--service-name", s)?;
            }
            let url = match exchange_autodiscover_url {
                Some(u) if u.is_empty() => Some(None),
                Some(u) => {
                    check_autodiscover_url(&u).map_err(|e| usage(format!("--exchange-autodiscover-url: {e}")))?;
                    Some(Some(u))
                }
                None => None,
            };
            let domains = match exchange_autodiscover_allowed_domains {
                Some(d) if d.is_empty() => Some(None),
                Some(d) => {
                    let list = check_allowed_domains(&d)
                        .map_err(|e| usage(format!("--exchange-autodiscover-allowed-domains: {e}")))?;
                    Some(Some(list.join(";")))
                }
                None => None,
            };
            let cfg = location.config()?;
            let store = fe_store(&cfg).await?;
            let mut c = fe::configuration(&store, cfg.domain.as_str()).await.context("reading the configuration")?;
            if let Some(r) = realm {
                c.realm = r;
            }
            if let Some(s) = service_name {
                c.service_name = s;
            }
            if let Some(u) = url {
                c.exchange_autodiscover_url = u;
            }
            if let Some(d) = domains {
                c.exchange_autodiscover_allowed_domains = d;
            }
            fe::set_configuration(&store, &c).await.context("saving the configuration")?;
            println!("OAuth configuration saved (realm {}, service name {})", c.realm, c.service_name);
            Ok(())
        }
        CsOAuthCommand::NewPartnerApplication {
            identity,
            metadata_url,
            application_trust_level,
            enabled,
            accept_security_identifier_information,
            location,
        } => {
            let level = parse_trust("--application-trust-level", &application_trust_level)?;
            if identity.trim().is_empty() {
                return Err(usage("--identity: a name such as microsoft.exchange"));
            }
            check_metadata_url(&metadata_url, false).map_err(|e| usage(format!("--metadata-url: {e}")))?;
            let cfg = location.config()?;
            let store = fe_store(&cfg).await?;
            let mut list = fe::partner_applications(&store).await.context("reading partner applications")?;
            if list.iter().any(|p| p.name.eq_ignore_ascii_case(&identity)) {
                return Err(usage(format!(
                    "--identity {identity}: already exists; use set-partner-application or remove it first"
                )));
            }
            let client = fe::metadata_client(&store).await.context("the HTTPS client")?;
            let (body, doc) = download(&client, &metadata_url).await?;
            if identity.eq_ignore_ascii_case("microsoft.exchange") && doc.service_name != EXCHANGE_APP_ID {
                return Err(usage(format!(
                    "--metadata-url: the document names the service {}, but microsoft.exchange must be {EXCHANGE_APP_ID}",
                    doc.service_name
                )));
            }
            let mut p = new_partner(&identity, &metadata_url, body, &doc);
            p.application_trust_level = level;
            p.enabled = enabled.unwrap_or(true);
            p.accept_security_identifier_information = accept_security_identifier_information.unwrap_or(false);
            println!(
                "partner application {identity} created: {} with {} key(s)",
                p.application_identifier,
                doc.keys.len()
            );
            list.push(p);
            fe::save_partner_applications(&store, &list).await.context("saving partner applications")?;
            Ok(())
        }
        CsOAuthCommand::GetPartnerApplication { identity, location, json } => {
            let store = fe_store(&location.config()?).await?;
            let list = fe::partner_applications(&store).await.context("reading partner applications")?;
            let list: Vec<_> = match &identity {
                Some(id) => {
                    let found: Vec<_> = list.into_iter().filter(|p| p.name.eq_ignore_ascii_case(id)).collect();
                    if found.is_empty() {
                        return Err(usage(format!("--identity {id}: no such partner application")));
                    }
                    found
                }
                None => list,
            };
            print_partners(&list, json)
        }
        CsOAuthCommand::SetPartnerApplication {
            identity,
            metadata_url,
            application_trust_level,
            enabled,
            accept_security_identifier_information,
            location,
        } => {
            let level = application_trust_level.map(|l| parse_trust("--application-trust-level", &l)).transpose()?;
            if let Some(u) = &metadata_url {
                check_metadata_url(u, false).map_err(|e| usage(format!("--metadata-url: {e}")))?;
            }
            let store = fe_store(&location.config()?).await?;
            let mut list = fe::partner_applications(&store).await.context("reading partner applications")?;
            let Some(p) = list.iter_mut().find(|p| p.name.eq_ignore_ascii_case(&identity)) else {
                return Err(usage(format!("--identity {identity}: no such partner application")));
            };
            if let Some(u) = metadata_url {
                let client = fe::metadata_client(&store).await.context("the HTTPS client")?;
                let (body, doc) = download(&client, &u).await?;
                *p = PartnerApplication { name: p.name.clone(), ..new_partner(&p.name, &u, body, &doc) };
            }
            if let Some(l) = level {
                p.application_trust_level = l;
            }
            if let Some(e) = enabled {
                p.enabled = e;
            }
            if let Some(a) = accept_security_identifier_information {
                p.accept_security_identifier_information = a;
            }
            println!("partner application {} saved (enabled: {})", p.name, p.enabled);
            fe::save_partner_applications(&store, &list).await.context("saving partner applications")?;
            Ok(())
        }
        CsOAuthCommand::RemovePartnerApplication { identity, location } => {
            let store = fe_store(&location.config()?).await?;
            let mut list = fe::partner_applications(&store).await.context("reading partner applications")?;
            let before = list.len();
            list.retain(|p| !p.name.eq_ignore_ascii_case(&identity));
            if list.len() == before {
                return Err(usage(format!("--identity {identity}: no such partner application")));
            }
            fe::save_partner_applications(&store, &list).await.context("saving partner applications")?;
            println!("partner application {identity} removed");
            Ok(())
        }
    }
}

// ------------------------------------------------------------------ exchange

/// A certificate with its key for the mailbox: from the AuthConfig itself or the certificate store.
fn find_auth_certificate(cfg: &Config, auth: &mbx::AuthConfig, flag: &str, t: &str) -> CliResult<mbx::AuthCertificate> {
    let want = tandem_oauth::normalize_thumbprint(t);
    if let Some(c) = auth.find(&want) {
        return Ok(c.clone());
    }
    let pki = deployment::pki(cfg);
    let found = pki.find_by_thumbprint(&want).context("reading the certificate store")?.ok_or_else(|| {
        usage(format!("{flag} {t}: no such certificate in {}; `tandem cert list` shows them", pki.dir().display()))
    })?;
    let key_path =
        found.key_path.ok_or_else(|| usage(format!("{flag} {t}: the certificate store has no private key for it")))?;
    let key = std::fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    mbx::AuthCertificate::from_pem(&found.cert_pem, &key).map_err(|e| usage(format!("{flag} {t}: {e}")))
}

async fn exchange_new_partner(
    cfg: &Config,
    name: &str,
    url: &str,
    configure: impl FnOnce(&mut PartnerApplication, &tandem_oauth::PartnerMetadata) -> CliResult,
    replace: bool,
) -> CliResult {
    check_metadata_url(url, false).map_err(|e| usage(format!("--auth-metadata-url: {e}")))?;
    let store = mbx_store(cfg).await?;
    let mut list = mbx::partner_applications(&store).await.context("reading partner applications")?;
    if !replace && list.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
        return Err(usage(format!("--name {name}: already exists; use set-partner-application or remove it first")));
    }
    let client = mbx::metadata_client(&store).await.context("the HTTPS client")?;
    let (body, doc) = download(&client, url).await?;
    let mut p = new_partner(name, url, body, &doc);
    configure(&mut p, &doc)?;
    list.retain(|x| !x.name.eq_ignore_ascii_case(name));
    println!("partner application {name} created: {} with {} key(s)", p.application_identifier, doc.keys.len());
    list.push(p);
    mbx::save_partner_applications(&store, &list).await.context("saving partner applications")?;
    Ok(())
}

pub async fn exchange(cmd: ExchangeCommand) -> CliResult {
    quiet_logs();
    match cmd {
        ExchangeCommand::GetAuthConfig { location, json } => {
            let store = mbx_store(&location.config()?).await?;
            let v = mbx::auth_config(&store).await.context("reading the auth configuration")?.view();
            if json {
                return print_json(&v);
            }
            println!("Name                           : {}", v.name);
            println!("ServiceName                    : {}", v.service_name);
            println!("Realm                          : {}", v.realm);
            println!("CurrentCertificateThumbprint   : {}", v.current_certificate_thumbprint.unwrap_or_default());
            println!("PreviousCertificateThumbprint  : {}", v.previous_certificate_thumbprint.unwrap_or_default());
            println!("NextCertificateThumbprint      : {}", v.next_certificate_thumbprint.unwrap_or_default());
            println!(
                "NextCertificateEffectiveDate   : {}",
                v.next_certificate_effective_date.map(fmt_time).unwrap_or_default()
            );
            Ok(())
        }
        ExchangeCommand::SetAuthConfig {
            new_certificate_thumbprint,
            new_certificate_effective_date,
            publish_certificate,
            clear_previous_certificate,
            certificate_thumbprint,
            skip_immediate_certificate_deployment: _,
            realm,
            service_name,
            location,
        } => {
            let sets = [
                new_certificate_thumbprint.is_some(),
                publish_certificate || clear_previous_certificate,
                certificate_thumbprint.is_some(),
                realm.is_some() || service_name.is_some(),
            ];
            match sets.iter().filter(|s| **s).count() {
                0 => {
                    return Err(usage(
                        "nothing to set: pass --new-certificate-thumbprint with --new-certificate-effective-date, --publish-certificate, --clear-previous-certificate, --certificate-thumbprint, --realm or --service-name",
                    ));
                }
                1 => {}
                _ => {
                    return Err(usage(
                        "these parameters belong to different parameter sets of Set-AuthConfig; run one set at a time (new certificate | publish/clear previous | current certificate | realm/service name)",
                    ));
                }
            }
            if let Some(s) = &service_name {
                check_guid("--service-name", s)?;
            }
            let at = new_certificate_effective_date
                .map(|d| parse_date("--new-certificate-effective-date", &d))
                .transpose()?;
            let cfg = location.config()?;
            let store = mbx_store(&cfg).await?;
            let mut auth = mbx::auth_config(&store).await.context("reading the auth configuration")?;
            if let Some(t) = new_certificate_thumbprint {
                let mut c = find_auth_certificate(&cfg, &auth, "--new-certificate-thumbprint", &t)?;
                if auth.current.as_ref().is_some_and(|cur| cur.thumbprint == c.thumbprint) {
                    return Err(usage(format!(
                        "--new-certificate-thumbprint {t}: it is already the current certificate"
                    )));
                }
                c.effective_date = at;
                println!(
                    "next certificate {} (effective {}); published in the metadata document now",
                    c.thumbprint,
                    at.map(fmt_time).unwrap_or_default()
                );
                auth.next = Some(c);
            }
            if publish_certificate {
                if !auth.publish_next() {
                    return Err(usage(
                        "--publish-certificate: there is no next certificate; set one with --new-certificate-thumbprint",
                    ));
                }
                println!(
                    "certificate {} is now current",
                    auth.current.as_ref().map(|c| c.thumbprint.as_str()).unwrap_or("")
                );
            }
            if clear_previous_certificate {
                match auth.previous.take() {
                    Some(p) => println!("previous certificate {} cleared", p.thumbprint),
                    None => println!("there was no previous certificate"),
                }
            }
            if let Some(t) = certificate_thumbprint {
                let c = find_auth_certificate(&cfg, &auth, "--certificate-thumbprint", &t)?;
                if auth.current.as_ref().is_some_and(|cur| cur.thumbprint != c.thumbprint) {
                    auth.previous = auth.current.take();
                }
                println!("certificate {} is now current", c.thumbprint);
                auth.current = Some(c);
            }
            if let Some(r) = realm {
                auth.realm = r;
            }
            if let Some(s) = service_name {
                auth.service_name = s;
            }
            mbx::save_auth_config(&store, &auth).await.context("saving the auth configuration")?;
            Ok(())
        }
        ExchangeCommand::NewPartnerApplication {
            name,
            auth_metadata_url,
            realm,
            linked_account,
            enabled,
            accept_security_identifier_information,
            location,
        } => {
            let cfg = location.config()?;
            exchange_new_partner(
                &cfg,
                &name,
                &auth_metadata_url,
                |p, _| {
                    p.realm = realm;
                    p.linked_account = linked_account;
                    p.enabled = enabled.unwrap_or(true);
                    p.accept_security_identifier_information = accept_security_identifier_information.unwrap_or(false);
                    Ok(())
                },
                false,
            )
            .await
        }
        ExchangeCommand::GetPartnerApplication { name, location, json } => {
            let store = mbx_store(&location.config()?).await?;
            let list = mbx::partner_applications(&store).await.context("reading partner applications")?;
            let list: Vec<_> = match &name {
                Some(n) => {
                    let found: Vec<_> = list.into_iter().filter(|p| p.name.eq_ignore_ascii_case(n)).collect();
                    if found.is_empty() {
                        return Err(usage(format!("--name {n}: no such partner application")));
                    }
                    found
                }
                None => list,
            };
            print_partners(&list, json)
        }
        ExchangeCommand::SetPartnerApplication { name, enabled, auth_metadata_url, location } => {
            if let Some(u) = &auth_metadata_url {
                check_metadata_url(u, false).map_err(|e| usage(format!("--auth-metadata-url: {e}")))?;
            }
            let store = mbx_store(&location.config()?).await?;
            let mut list = mbx::partner_applications(&store).await.context("reading partner applications")?;
            let Some(p) = list.iter_mut().find(|p| p.name.eq_ignore_ascii_case(&name)) else {
                return Err(usage(format!("--name {name}: no such partner application")));
            };
            if let Some(u) = auth_metadata_url {
                let client = mbx::metadata_client(&store).await.context("the HTTPS client")?;
                let (body, doc) = download(&client, &u).await?;
                p.application_identifier = doc.service_name.clone();
                p.auth_metadata_url = Some(u);
                p.metadata = Some(body);
                p.metadata_error = None;
                p.metadata_fetched_at = Some(tandem_store::now_unix());
            }
            if let Some(e) = enabled {
                p.enabled = e;
            }
            println!("partner application {} saved (enabled: {})", p.name, p.enabled);
            mbx::save_partner_applications(&store, &list).await.context("saving partner applications")?;
            Ok(())
        }
        ExchangeCommand::RemovePartnerApplication { name, location } => {
            let store = mbx_store(&location.config()?).await?;
            let mut list = mbx::partner_applications(&store).await.context("reading partner applications")?;
            let before = list.len();
            list.retain(|p| !p.name.eq_ignore_ascii_case(&name));
            if list.len() == before {
                return Err(usage(format!("--name {name}: no such partner application")));
            }
            mbx::save_partner_applications(&store, &list).await.context("saving partner applications")?;
            println!("partner application {name} removed");
            Ok(())
        }
        ExchangeCommand::ConfigureEnterprisePartnerApplication { auth_metadata_url, application_type, location } => {
            let cfg = location.config()?;
            configure_enterprise(&cfg, &auth_metadata_url, &application_type).await
        }
    }
}

async fn configure_enterprise(cfg: &Config, url: &str, application_type: &str) -> CliResult {
    let (name, app_id) = match application_type.to_ascii_lowercase().as_str() {
        "lync" => ("Lync", LYNC_APP_ID),
        "sharepoint" => ("SharePoint", SHAREPOINT_APP_ID),
        _ => return Err(usage(format!("--application-type {application_type}: use Lync or SharePoint"))),
    };
    let url_owned = url.to_owned();
    exchange_new_partner(
        cfg,
        name,
        url,
        move |p, doc| {
            if doc.service_name != app_id {
                return Err(usage(format!(
                    "--auth-metadata-url {url_owned}: the document names the service {}, not {name} ({app_id})",
                    doc.service_name
                )));
            }
            p.application_type = Some(name.into());
            p.linked_account = Some(format!("{name}Enterprise-ApplicationAccount"));
            p.roles = vec!["UserApplication".into(), "ArchiveApplication".into()];
            Ok(())
        },
        true,
    )
    .await
}

// ------------------------------------------------------------------ dns

/// One record the deployment needs.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The target as a zone file writes it.
    pub value: String,
    /// For A records: the address expected, when known.
    pub expect_ip: Option<IpAddr>,
    pub purpose: &'static str,
}

fn ip_for(cfg: &Config, listen: SocketAddr, host: &str) -> Option<IpAddr> {
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        return Some(listen.ip());
    }
    cfg.hosts.iter().find(|(h, _)| h.as_str().eq_ignore_ascii_case(host)).map(|(_, ip)| *ip)
}

pub fn dns_plan(cfg: &Config) -> Vec<PlannedRecord> {
    let d = cfg.domain.as_str();
    let mail = cfg.mailbox.fqdn.to_string();
    let pool = cfg.frontend.pool_fqdn.to_string();
    let sip = cfg.frontend.sip_fqdn.to_string();
    let mut out = Vec::new();
    let a = |name: &str, ip: Option<IpAddr>, purpose| PlannedRecord {
        name: format!("{name}."),
        kind: "A",
        value: ip.map(|i| i.to_string()).unwrap_or_else(|| "<address of the server>".into()),
        expect_ip: ip,
        purpose,
    };
    out.push(a(&mail, ip_for(cfg, cfg.mailbox.https_listen, &mail), "the Mailbox server (Exchange)"));
    out.push(PlannedRecord {
        name: format!("{}.", cfg.mailbox.autodiscover_fqdn),
        kind: "CNAME",
        value: format!("{mail}."),
        expect_ip: None,
        purpose: "seed step 5: autodiscover.<domain> resolves to the Exchange server",
    });
    out.push(a(&pool, ip_for(cfg, cfg.frontend.https_listen, &pool), "the Front End pool"));
    out.push(a(&sip, ip_for(cfg, cfg.frontend.sip_tls_listen, &sip), "SIP access for clients"));
    let tls_port = cfg.frontend.sip_tls_listen.port();
    out.push(PlannedRecord {
        name: format!("_sipinternaltls._tcp.{d}."),
        kind: "SRV",
        value: format!("0 0 {tls_port} {pool}."),
        expect_ip: None,
        purpose: "internal client sign-in (Skype for Business)",
    });
    out.push(PlannedRecord {
        name: format!("_sip._tls.{d}."),
        kind: "SRV",
        value: format!("0 0 {tls_port} {sip}."),
        expect_ip: None,
        purpose: "SIP over TLS (RFC 3263)",
    });
    out.push(PlannedRecord {
        name: format!("_sip._tcp.{d}."),
        kind: "SRV",
        value: format!("0 0 {} {sip}.", cfg.frontend.sip_tcp_listen.port()),
        expect_ip: None,
        purpose: "SIP over TCP (RFC 3263)",
    });
    out
}

/// One record checked through the resolver.
#[derive(Debug, Serialize)]
pub struct DnsCheck {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub expected: String,
    pub found: Vec<String>,
    pub ok: bool,
    pub reason: String,
}

fn resolver(name_servers: &[String]) -> CliResult<hickory_resolver::TokioResolver> {
    use hickory_resolver::Resolver;
    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    if name_servers.is_empty() {
        return Ok(Resolver::builder_tokio()
            .context("cannot read the system's resolver configuration")?
            .build()
            .context("cannot build the resolver")?);
    }
    let mut servers = Vec::new();
    for ns in name_servers {
        let addr: SocketAddr = ns
            .parse()
            .or_else(|_| ns.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| usage(format!("--name-server {ns}: use an IP address or IP:PORT")))?;
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = addr.port();
        let mut server = NameServerConfig::udp_and_tcp(addr.ip());
        server.connections = vec![udp, tcp];
        servers.push(server);
    }
    let mut builder =
        Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), TokioRuntimeProvider::default());
    builder.options_mut().attempts = 1;
    builder.options_mut().timeout = Duration::from_secs(3);
    Ok(builder.build().context("cannot build the resolver")?)
}

pub async fn check_dns(plan: &[PlannedRecord], name_servers: &[String]) -> CliResult<Vec<DnsCheck>> {
    use hickory_resolver::proto::rr::{RData, RecordType};
    let r = resolver(name_servers)?;
    let mut out = Vec::new();
    for rec in plan {
        let rtype = match rec.kind {
            "A" => RecordType::A,
            "CNAME" => RecordType::CNAME,
            _ => RecordType::SRV,
        };
        let (found, err) = match r.lookup(rec.name.as_str(), rtype).await {
            Ok(lookup) => {
                let mut v = Vec::new();
                for record in lookup.answers() {
                    match &record.data {
                        RData::A(a) if rtype == RecordType::A => v.push(a.0.to_string()),
                        RData::CNAME(c) if rtype == RecordType::CNAME => v.push(c.0.to_string()),
                        RData::SRV(s) if rtype == RecordType::SRV => {
                            v.push(format!("{} {} {} {}", s.priority, s.weight, s.port, s.target))
                        }
                        _ => {}
                    }
                }
                (v, None)
            }
            Err(e) => (vec![], Some(e.to_string())),
        };
        let want = rec.value.to_ascii_lowercase();
        let ok = match rec.kind {
            "A" => match rec.expect_ip {
                Some(ip) => found.contains(&ip.to_string()),
                None => !found.is_empty(),
            },
            _ => found.iter().any(|f| f.to_ascii_lowercase() == want),
        };
        let reason = if ok {
            "resolves as planned".to_owned()
        } else if let Some(e) = err {
            format!("no answer: {e}; add the record to the zone (`tandem dns plan`)")
        } else {
            format!("answers {:?}, expected {}; fix the record in the zone", found, rec.value)
        };
        out.push(DnsCheck { name: rec.name.clone(), kind: rec.kind, expected: rec.value.clone(), found, ok, reason });
    }
    Ok(out)
}

pub async fn dns(cmd: DnsCommand) -> CliResult {
    match cmd {
        DnsCommand::Plan { location, json } => {
            let plan = dns_plan(&location.config()?);
            if json {
                return print_json(&plan);
            }
            for r in &plan {
                println!("{:<44} 3600 IN {:<5} {:<40} ; {}", r.name, r.kind, r.value, r.purpose);
            }
            Ok(())
        }
    }
}

// ------------------------------------------------------------------ test

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]"))?
    } else {
        host.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then_some(host)
}

/// An HTTPS client trusting the deployment CA, resolving the deployment's names through the
/// static host table (as the Front End's own resolver does in a lab).
fn deployment_client(cfg: &Config) -> CliResult<reqwest::Client> {
    let ca_path = deployment::pki(cfg).ca_cert_path();
    let ca =
        std::fs::read(&ca_path).map_err(|e| usage(format!("{}: {e}; run `tandem up` first", ca_path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&ca).context("the CA certificate cannot be parsed")?;
    let mut b = reqwest::Client::builder().tls_certs_only(certs).timeout(Duration::from_secs(10));
    for (host, ip) in &cfg.hosts {
        b = b.resolve(host.as_str(), SocketAddr::new(*ip, 0));
    }
    Ok(b.build().context("cannot build the HTTPS client")?)
}

fn soap_probe(service: &str, mailbox: &str) -> String {
    if service == "AutoD" {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>{mailbox}</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>"#
        )
    } else {
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>"#.to_owned()
    }
}

pub async fn test(cmd: TestCommand) -> CliResult {
    quiet_logs();
    match cmd {
        TestCommand::ExStorageConnectivity { sip_uri, folder, delete_item, location, json } => {
            ex_storage_connectivity(&location.config()?, &sip_uri, &folder, delete_item, json).await
        }
        TestCommand::Dns { name_server, location, json } => {
            let cfg = location.config()?;
            let checks = check_dns(&dns_plan(&cfg), &name_server).await?;
            let ok = checks.iter().all(|c| c.ok);
            if json {
                print_json(&json!({"ok": ok, "records": checks}))?;
            } else {
                for c in &checks {
                    println!("{} {:<44} {:<5} {}", if c.ok { "PASS" } else { "FAIL" }, c.name, c.kind, c.reason);
                }
            }
            if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("some DNS records are missing or wrong"))) }
        }
        TestCommand::OAuthToken { token, location, json } => {
            let cfg = location.config()?;
            let store = mbx_store(&cfg).await?;
            let auth = mbx::AuthState::new(store, &cfg.mailbox);
            let token = token.trim();
            let token = token.strip_prefix("Bearer ").or_else(|| token.strip_prefix("bearer ")).unwrap_or(token).trim();
            match auth.validate(token).await {
                Ok(v) => {
                    if json {
                        print_json(&json!({"accepted": true, "result": *v}))?;
                    } else {
                        println!(
                            "accepted: partner {} ({}) acting as {}",
                            v.partner,
                            v.application_id,
                            v.user.as_deref().unwrap_or("itself")
                        );
                        println!("rights: {:?}", v.rights);
                        println!("{}", serde_json::to_string_pretty(&v.claims).context("serialising")?);
                    }
                    Ok(())
                }
                Err(refusal) => {
                    let diag = refusal.diagnostic().unwrap_or_default();
                    let challenge = refusal.challenge.to_str().unwrap_or("").to_owned();
                    if json {
                        print_json(
                            &json!({"accepted": false, "x-ms-diagnostics": diag, "www-authenticate": challenge}),
                        )?;
                    } else {
                        println!("refused: {diag}");
                        println!("WWW-Authenticate: {challenge}");
                    }
                    Err(Failure::Runtime(anyhow::anyhow!("the token is refused")))
                }
            }
        }
        TestCommand::OAuthConnectivity { service, target_uri, mailbox, show_token, location, json } => {
            let service = match service.to_ascii_lowercase().as_str() {
                "ews" => "EWS",
                "autod" => "AutoD",
                _ => return Err(usage(format!("--service {service}: use EWS or AutoD"))),
            };
            check_metadata_url(&target_uri, false).map_err(|e| usage(format!("--target-uri: {e}")))?;
            let host = host_of(&target_uri).ok_or_else(|| usage(format!("--target-uri {target_uri}: no host")))?;
            let smtp: tandem_types::SmtpAddress =
                mailbox.parse().map_err(|e: tandem_types::ParseError| usage(format!("--mailbox: {e}")))?;
            let cfg = location.config()?;
            let store = fe_store(&cfg).await?;
            let issuer = fe::TokenIssuer::new(store, cfg.domain.as_str());
            let user = UserIdentity { smtp: smtp.to_string(), sip: None };
            let token = issuer.user_token(&host, &user).await.context("issuing the token")?;
            let client = deployment_client(&cfg)?;
            let resp = client
                .post(&target_uri)
                .header("Content-Type", "text/xml; charset=utf-8")
                .bearer_auth(&*token)
                .body(soap_probe(service, &smtp.to_string()))
                .send()
                .await;
            let (ok, status, detail) = match resp {
                Err(e) => (false, 0, format!("cannot reach {target_uri}: {}", tandem_http::client::root_cause(&e))),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let diag = r.headers().get("x-ms-diagnostics").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    match status {
                        401 => (
                            false,
                            status,
                            format!(
                                "the token was refused: {}; check the partner application on the mailbox (`tandem exchange get-partner-application`)",
                                diag.unwrap_or_else(|| "no x-ms-diagnostics".into())
                            ),
                        ),
                        404 => (false, status, format!("no {service} endpoint at {target_uri}")),
                        200..=299 => (true, status, "the token was accepted and the service answered".into()),
                        _ => (true, status, format!("the token was accepted; the service answered HTTP {status}")),
                    }
                }
            };
            if json {
                let mut v = json!({"ok": ok, "service": service, "target_uri": target_uri, "mailbox": smtp.to_string(), "status": status, "detail": detail});
                if show_token {
                    v["token"] = json!(&*token);
                }
                print_json(&v)?;
            } else {
                println!("{} {service} {target_uri} as {smtp}: {detail}", if ok { "PASS" } else { "FAIL" });
                if show_token {
                    println!("token: {token}");
                }
            }
            if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("OAuth connectivity failed"))) }
        }
    }
}

// ------------------------------------------------------------------ setup and status

/// Before the roles start: certificates and the trust anchors for metadata downloads.
pub async fn setup_before_start(cfg: &Config, mailbox: bool, frontend: bool) -> anyhow::Result<Vec<String>> {
    let pki = deployment::pki(cfg);
    let ca = std::fs::read_to_string(pki.ca_cert_path()).context("reading the deployment CA")?;
    let domain = cfg.domain.to_string();
    let mut done = Vec::new();
    if frontend && cfg.frontend.enabled {
        let store = tandem_frontend::admin::open_store(&cfg.frontend).await?;
        let name = tandem_types::Role::Frontend.as_str();
        let tls = (
            std::fs::read_to_string(pki.server_cert_path(name)).unwrap_or_default(),
            std::fs::read_to_string(pki.server_cert_path(name).with_extension("key")).unwrap_or_default(),
        );
        if let Some(m) = fe::ensure_default_certificate(&store, &domain, Some((&tls.0, &tls.1))).await? {
            done.push(format!("step 2b: {m}"));
        }
        if store.setting(fe::SETTING_TRUSTED_CA).await?.is_none() {
            store.set_setting(fe::SETTING_TRUSTED_CA, &ca).await?;
        }
        let mut oc = fe::configuration(&store, &domain).await?;
        if oc.exchange_autodiscover_url.is_none() {
            let port = cfg.mailbox.https_listen.port();
            let host = cfg.mailbox.autodiscover_fqdn.to_string();
            oc.exchange_autodiscover_url = Some(if port == 443 {
                format!("https://{host}/autodiscover/autodiscover.svc")
            } else {
                format!("https://{host}:{port}/autodiscover/autodiscover.svc")
            });
            oc.exchange_autodiscover_allowed_domains = Some(format!("*.{domain}"));
            fe::set_configuration(&store, &oc).await?;
            done.push(format!(
                "step 4: ExchangeAutodiscoverUrl set to {}",
                oc.exchange_autodiscover_url.unwrap_or_default()
            ));
        }
        store.close().await;
    }
    if mailbox && cfg.mailbox.enabled {
        let store = mbx::open_store(&cfg.mailbox).await?;
        if let Some(m) = mbx::ensure_auth_certificate(&store, &domain).await? {
            done.push(format!("step 2a: {m}"));
        }
        if store.setting(mbx::SETTING_TRUSTED_CA).await?.is_none() {
            store.set_setting(mbx::SETTING_TRUSTED_CA, &ca).await?;
        }
        if store.setting(mbx::SETTING_ACCEPTED_DOMAINS).await?.is_none() {
            store.set_setting(mbx::SETTING_ACCEPTED_DOMAINS, &serde_json::to_string(&[&domain])?).await?;
        }
        store.close().await;
    }
    Ok(done)
}

/// After the roles listen: partner applications both ways pointing at the local metadata URLs
/// (when this process runs both roles and a direction is missing); prints every setup step done.
pub async fn setup_after_start(cfg: &Config, roles: deployment::RoleSelection, mut done: Vec<String>, show: bool) {
    let both = cfg.mailbox.enabled
        && cfg.frontend.enabled
        && roles.runs(tandem_types::Role::Mailbox)
        && roles.runs(tandem_types::Role::Frontend);
    if both {
        match partners_both_ways(cfg).await {
            Ok(mut d) => done.append(&mut d),
            Err(e) => {
                let why = e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
                tracing::error!(error = %why, "setup step 6 (partner applications) failed");
                done.push(format!("step 6 FAILED: {why}; `tandem integration status` shows what to do"));
            }
        }
    }
    for d in &done {
        tracing::info!(step = %d, "integration setup");
    }
    if show && !done.is_empty() {
        println!("\nIntegration setup (the seed's steps):");
        for d in &done {
            println!("  {d}");
        }
    }
}

async fn partners_both_ways(cfg: &Config) -> anyhow::Result<Vec<String>> {
    let e = Endpoints::of(cfg);
    let mut done = Vec::new();
    let fe_store = tandem_frontend::admin::open_store(&cfg.frontend).await?;
    let mut fe_list = fe::partner_applications(&fe_store).await?;
    if !fe_list.iter().any(|p| p.application_identifier == EXCHANGE_APP_ID) {
        let client = fe::metadata_client(&fe_store).await?;
        let (body, doc) =
            fe::fetch_metadata(&client, &e.mailbox.auth_metadata_url).await.map_err(anyhow::Error::msg)?;
        fe_list.push(new_partner("microsoft.exchange", &e.mailbox.auth_metadata_url, body, &doc));
        fe::save_partner_applications(&fe_store, &fe_list).await?;
        done.push(format!(
            "step 6: Front End partner application microsoft.exchange (Full) -> {}",
            e.mailbox.auth_metadata_url
        ));
    }
    fe_store.close().await;
    let mbx_store = mbx::open_store(&cfg.mailbox).await?;
    let has_lync = mbx::partner_applications(&mbx_store).await?.iter().any(|p| p.application_identifier == LYNC_APP_ID);
    mbx_store.close().await;
    if !has_lync {
        configure_enterprise(cfg, &e.frontend.auth_metadata_url, "Lync").await.map_err(|f| match f {
            Failure::Usage(m) => anyhow::anyhow!(m),
            Failure::Runtime(e) => e,
        })?;
        done.push(format!(
            "step 6: Mailbox partner application Lync (UserApplication, ArchiveApplication) -> {}",
            e.frontend.auth_metadata_url
        ));
    }
    Ok(done)
}

/// One setup step as `integration status` reports it.
#[derive(Debug, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub name: &'static str,
    pub status: &'static str,
    pub reason: String,
}

fn step(step: &'static str, name: &'static str, r: Result<String, String>) -> Step {
    match r {
        Ok(reason) => Step { step, name, status: "pass", reason },
        Err(reason) => Step { step, name, status: "fail", reason },
    }
}

async fn fetch_doc(client: &reqwest::Client, url: &str) -> Result<tandem_oauth::PartnerMetadata, String> {
    fe::fetch_metadata(client, url).await.map(|(_, d)| d)
}

pub async fn integration_status(cfg: &Config) -> CliResult<Vec<Step>> {
    let e = Endpoints::of(cfg);
    let client = deployment_client(cfg)?;
    let mut steps = Vec::new();
    // 1
    let mut up = Vec::new();
    for (name, url) in [("Mailbox", &e.mailbox.ready_url), ("Front End", &e.frontend.ready_url)] {
        match client.get(url.as_str()).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => up.push(format!("{name} not ready (HTTP {})", r.status().as_u16())),
            Err(err) => up.push(format!("{name} not reachable at {url}: {}", tandem_http::client::root_cause(&err))),
        }
    }
    steps.push(step(
        "1",
        "Both servers installed and running",
        if up.is_empty() {
            Ok("both roles answer /readyz".into())
        } else {
            Err(format!("{}; start them with `tandem up`", up.join("; ")))
        },
    ));

    let mstore = mbx_store(cfg).await?;
    let fstore = fe_store(cfg).await?;
    // 2a
    let auth = mbx::auth_config(&mstore).await.context("reading the auth configuration")?;
    let r = match &auth.current {
        None => {
            Err("no current Auth certificate; run `tandem exchange set-auth-config --certificate-thumbprint T`"
                .to_owned())
        }
        Some(c) if c.not_after_unix < tandem_store::now_unix() => {
            Err(format!("the Auth certificate {} expired; roll a new one with set-auth-config", c.thumbprint))
        }
        Some(c) => match fetch_doc(&client, &e.mailbox.auth_metadata_url).await {
            Ok(doc) if doc.keys.iter().any(|k| k.thumbprint == c.thumbprint) => {
                Ok(format!("current {} published at {}", c.thumbprint, e.mailbox.auth_metadata_url))
            }
            Ok(_) => {
                Err(format!("{} does not list the current certificate {}", e.mailbox.auth_metadata_url, c.thumbprint))
            }
            Err(err) => Err(err),
        },
    };
    steps.push(step("2a", "Exchange server-to-server auth certificate", r));
    // 2b
    let certs = fe::certificates(&fstore).await.context("reading the OAuthTokenIssuer certificate")?;
    let r = match &certs.current {
        None => Err(
            "no OAuthTokenIssuer certificate; run `tandem cs set-certificate --type OAuthTokenIssuer --thumbprint T`"
                .to_owned(),
        ),
        Some(c) => match fe::check_rules(&c.cert_pem, Some(&c.key_pem), cfg.domain.as_str()) {
            Err(rule) => Err(rule.to_string()),
            Ok(_) => match fetch_doc(&client, &e.frontend.auth_metadata_url).await {
                Ok(doc) if doc.keys.iter().any(|k| k.thumbprint == c.thumbprint) => Ok(format!(
                    "{} meets the three rules (SIP domain in Subject, {} bits, one pool-wide certificate) and is published at {}",
                    c.thumbprint, c.key_bits, e.frontend.auth_metadata_url
                )),
                Ok(_) => Err(format!("{} does not list {}", e.frontend.auth_metadata_url, c.thumbprint)),
                Err(err) => Err(err),
            },
        },
    };
    steps.push(step("2b", "Skype for Business OAuthTokenIssuer certificate", r));
    // 3
    let ca = tandem_mailbox::client_access::load(&mstore, &tandem_mailbox::client_access::Defaults::of(&cfg.mailbox))
        .await
        .context("reading the client access settings")?;
    let r = match ca.get(tandem_mailbox::client_access::Setting::AutoDiscoverServiceInternalUri) {
        Some(u) => Ok(format!("AutoDiscoverServiceInternalUri {u}")),
        None => Err("AutoDiscoverServiceInternalUri is $null; run `tandem exchange set-client-access-server --autodiscover-service-internal-uri https://autodiscover.<domain>/autodiscover/autodiscover.xml`".to_owned()),
    };
    steps.push(step("3", "Exchange Autodiscover (AutoDiscoverServiceInternalUri)", r));
    // 4
    let oc = fe::configuration(&fstore, cfg.domain.as_str()).await.context("reading the OAuth configuration")?;
    let r = match &oc.exchange_autodiscover_url {
        None => Err("ExchangeAutodiscoverUrl is not set; run `tandem cs set-oauth-configuration --exchange-autodiscover-url https://autodiscover.<domain>/autodiscover/autodiscover.svc`".to_owned()),
        Some(u) => match check_autodiscover_url(u) {
            Err(e) => Err(e),
            Ok(()) => match client.post(u.as_str()).header("Content-Type", "text/xml; charset=utf-8").body(soap_probe("AutoD", "probe@invalid")).send().await {
                Err(err) => Err(format!("ExchangeAutodiscoverUrl {u} does not answer: {}", tandem_http::client::root_cause(&err))),
                Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => Err(format!("ExchangeAutodiscoverUrl {u}: HTTP 404, no Autodiscover service there")),
                Ok(resp) => Ok(format!("ExchangeAutodiscoverUrl {u} answers (HTTP {} without credentials)", resp.status().as_u16())),
            },
        },
    };
    steps.push(step("4", "Point Skype for Business at Autodiscover", r));
    // 5
    let ad = cfg.mailbox.autodiscover_fqdn.to_string();
    let r = match cfg.hosts.iter().find(|(h, _)| h.as_str().eq_ignore_ascii_case(&ad)) {
        Some((_, ip)) => Ok(format!(
            "{ad} → {ip} through the static host table in tandem.toml (lab); `tandem test dns` checks the real zone"
        )),
        None => {
            let plan: Vec<PlannedRecord> =
                dns_plan(cfg).into_iter().filter(|r| r.name.trim_end_matches('.') == ad).collect();
            match check_dns(&plan, &[]).await {
                Ok(c) if c.iter().all(|c| c.ok) => Ok(format!("{ad} resolves to {}", cfg.mailbox.fqdn)),
                Ok(c) => Err(c.into_iter().map(|c| c.reason).collect::<Vec<_>>().join("; ")),
                Err(_) => Err("the system resolver cannot be used".into()),
            }
        }
    };
    steps.push(step("5", "DNS record autodiscover.<domain>", r));
    // 6
    let fe_partners = fe::partner_applications(&fstore).await.context("reading partner applications")?;
    let mbx_partners = mbx::partner_applications(&mstore).await.context("reading partner applications")?;
    let check_partner = |list: &[PartnerApplication], app: &str, side: &str, fix: &str| -> Result<String, String> {
        let p = list
            .iter()
            .find(|p| p.application_identifier == app)
            .ok_or_else(|| format!("{side} has no partner application for {app}; run `{fix}`"))?;
        if !p.enabled {
            return Err(format!("{side}: partner application {} is disabled", p.name));
        }
        let t = p.trusted().map_err(|e| format!("{side}: partner application {}: {e}", p.name))?;
        if t.keys.is_empty() {
            return Err(format!("{side}: partner application {} has no keys", p.name));
        }
        if let Some(err) = &p.metadata_error {
            return Err(format!("{side}: the last metadata refresh of {} failed: {err}", p.name));
        }
        Ok(format!("{side}: {} ({}, {} key(s))", p.name, p.application_trust_level, t.keys.len()))
    };
    let a = check_partner(
        &fe_partners,
        EXCHANGE_APP_ID,
        "Front End",
        "tandem cs new-partner-application --identity microsoft.exchange --metadata-url https://<mailbox>/autodiscover/metadata/json/1 --application-trust-level Full",
    );
    let b = check_partner(
        &mbx_partners,
        LYNC_APP_ID,
        "Mailbox",
        "tandem exchange configure-enterprise-partner-application --auth-metadata-url https://<pool>/metadata/json/1 --application-type Lync",
    );
    let r = match (a, b) {
        (Ok(a), Ok(b)) => Ok(format!("{a}; {b}")),
        (Err(x), Ok(_)) | (Ok(_), Err(x)) => Err(x),
        (Err(x), Err(y)) => Err(format!("{x}; {y}")),
    };
    steps.push(step("6", "Partner applications in both directions", r));
    // 7: a token as the Front End issues it, checked as the mailbox's EWS checks it.
    let alice = tandem_types::SmtpAddress::new("alice", &cfg.domain).map(|a| a.to_string()).unwrap_or_default();
    let issuer = fe::TokenIssuer::new(fstore.clone(), cfg.domain.as_str());
    let r = match issuer.user_token(cfg.mailbox.fqdn.as_str(), &UserIdentity { smtp: alice.clone(), sip: None }).await {
        Err(err) => Err(format!("the Front End cannot issue a token: {err}")),
        Ok(token) => {
            let auth = mbx::AuthState::new(mstore.clone(), &cfg.mailbox);
            match auth.validate(&token).await {
                Ok(v) => {
                    // Then the whole path: Autodiscover, EWS write, read back, remove.
                    let connector = tandem_frontend::exchange_connector::ExchangeConnector::new(
                        fstore.clone(),
                        cfg.domain.as_str(),
                        deployment_client(cfg)?,
                    );
                    let subject = format!("tandem integration status {}", tandem_store::now_unix());
                    let path = async {
                        let item =
                            connector.create_item(&alice, "conversationhistory", &subject, "setup check").await?;
                        let read = connector.get_item_subject(&alice, &item).await?;
                        connector.delete_item(&alice, &item).await?;
                        Ok::<_, tandem_frontend::exchange_connector::ConnectorError>(read == subject)
                    };
                    match path.await {
                        Ok(true) => Ok(format!(
                            "a Front End token acting as {alice} is accepted ({:?}); an item was written to and read back from the Conversation History folder through Autodiscover and EWS, then removed",
                            v.rights
                        )),
                        Ok(false) => Err("the item read back differs from the one written".to_owned()),
                        Err(e) => Err(format!("the token is accepted, but the EWS path fails: {e}")),
                    }
                }
                Err(refusal) => Err(format!(
                    "the mailbox refuses the Front End's token: {}",
                    refusal.diagnostic().unwrap_or_default()
                )),
            }
        }
    };
    steps.push(step("7", "Verify the integration (S2S token)", r));
    Ok(steps)
}

pub async fn integration(cmd: IntegrationCommand) -> CliResult {
    quiet_logs();
    match cmd {
        IntegrationCommand::Status { location, json } => {
            let cfg = location.config()?;
            let steps = integration_status(&cfg).await?;
            let ok = steps.iter().all(|s| s.status != "fail");
            if json {
                print_json(&json!({"ok": ok, "steps": steps}))?;
            } else {
                for s in &steps {
                    println!("{:<3} {:<12} {:<55} {}", s.step, s.status.to_uppercase(), s.name, s.reason);
                }
            }
            if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("a setup step fails"))) }
        }
    }
}

pub async fn top(cmd: OAuthTopCommand) -> CliResult {
    match cmd {
        OAuthTopCommand::Dns(c) => dns(c).await,
        OAuthTopCommand::Test(c) => test(c).await,
        OAuthTopCommand::Integration(c) => integration(c).await,
    }
}

/// Test-CsExStorageConnectivity, hop by hop.
async fn ex_storage_connectivity(cfg: &Config, sip_uri: &str, folder: &str, delete: bool, json: bool) -> CliResult {
    use tandem_frontend::exchange_connector::{ExchangeConnector, Hop};
    let sip: tandem_types::SipUri =
        sip_uri.parse().map_err(|e: tandem_types::ParseError| usage(format!("--sip-uri: {e}")))?;
    let distinguished = match folder.to_ascii_lowercase().as_str() {
        "conversationhistory" => "conversationhistory",
        "inbox" => "inbox",
        "dumpster" => "recoverableitemsdeletions",
        _ => return Err(usage(format!("--folder {folder}: use ConversationHistory, Inbox or Dumpster"))),
    };
    let directory =
        tandem_directory::Directory::open(&cfg.directory.url()).await.context("cannot open the directory")?;
    let user = directory
        .find(&sip.key())
        .await
        .context("directory lookup")?
        .ok_or_else(|| usage(format!("--sip-uri {sip}: no such user; `tandem user list` shows who exists")))?;
    let smtp = user.smtp_address.to_string();
    let connector = ExchangeConnector::new(fe_store(cfg).await?, cfg.domain.as_str(), deployment_client(cfg)?);
    let mut hops: Vec<serde_json::Value> = Vec::new();
    let mut report = |hop: &str, ok: bool, detail: String| {
        if !json {
            println!("{} {hop:<13} {detail}", if ok { "PASS" } else { "FAIL" });
        }
        hops.push(json!({"hop": hop, "ok": ok, "detail": detail}));
    };
    let outcome: Result<(), tandem_frontend::exchange_connector::ConnectorError> = async {
        // DNS: the Autodiscover host, through the static host table or the system's resolver.
        let autod = connector.autodiscover_url().await?;
        let host = host_of(&autod).unwrap_or_default();
        let resolved = match cfg.hosts.iter().find(|(h, _)| h.as_str() == host) {
            Some((_, ip)) => format!("{host} → {ip} (static host table)"),
            None => match tokio::net::lookup_host((host.as_str(), 443)).await {
                Ok(mut a) => format!("{host} → {}", a.next().map(|a| a.ip().to_string()).unwrap_or_default()),
                Err(e) => {
                    return Err(tandem_frontend::exchange_connector::ConnectorError {
                        hop: Hop::Dns,
                        message: format!("{host} does not resolve: {e}"),
                        hint: "create the record `tandem dns plan` lists, then `tandem test dns`".into(),
                    });
                }
            },
        };
        report("DNS", true, resolved);
        let ews = connector.ews_url(&smtp).await?;
        report("Autodiscover", true, format!("{autod} → EWS {ews} for {smtp} (S2S token accepted)"));
        let subject = format!(
            "Test-CsExStorageConnectivity {} {}",
            tandem_store::now_unix(),
            tandem_frontend::sip::random_token()
        );
        let item = connector
            .create_item(&smtp, distinguished, &subject, "Written by tandem test ex-storage-connectivity.")
            .await?;
        report("EWS write", true, format!("CreateItem in {folder} as {smtp}"));
        let read = connector.get_item_subject(&smtp, &item).await?;
        if read != subject {
            return Err(tandem_frontend::exchange_connector::ConnectorError {
                hop: Hop::Ews,
                message: format!("read back `{read}`, wrote `{subject}`"),
                hint: "see the mailbox's log".into(),
            });
        }
        report("EWS read", true, format!("GetItem returned the item ({subject})"));
        if delete {
            connector.delete_item(&smtp, &item).await?;
            report("EWS delete", true, "DeleteItem (HardDelete)".into());
        }
        Ok(())
    }
    .await;
    let ok = outcome.is_ok();
    if let Err(e) = &outcome {
        report(&format!("{:?}", e.hop), false, format!("{}; {}", e.message, e.hint));
    }
    if json {
        print_json(&json!({"ok": ok, "sip_uri": sip.to_string(), "mailbox": smtp, "folder": folder, "hops": hops}))?;
    }
    if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("Exchange storage connectivity failed"))) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hosts() {
        assert_eq!(parse_date("x", "1800000000").ok(), Some(1_800_000_000));
        assert_eq!(parse_date("x", "2027-01-01").ok(), Some(1_798_761_600));
        assert_eq!(parse_date("x", "2027-01-01T00:00:00Z").ok(), Some(1_798_761_600));
        assert!(parse_date("x", "soon").is_err());
        assert_eq!(
            host_of("https://mail.litwareinc.com:8443/EWS/Exchange.asmx").as_deref(),
            Some("mail.litwareinc.com")
        );
        assert!(check_guid("--service-name", LYNC_APP_ID).is_ok());
        assert!(check_guid("--service-name", "nope").is_err());
    }
}

//! `tandem cs`: the Front End (Skype for Business Server) cmdlets: the OAuthTokenIssuer
//! certificate (Set-/Get-CsCertificate), CsOAuthConfiguration, CsPartnerApplication, and the
//! registrar's view (Get-CsUserPoolInfo), calendar presence (Set-CsClientPolicy; see
//! `client_policy`), server-side conversation history (see `conversation_history`) and the
//! Unified Contact Store's policy, rollback and import (see `ucs`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_oauth::partner::{check_allowed_domains, check_autodiscover_url};
use tandem_oauth::{EXCHANGE_APP_ID, TrustLevel};
use tandem_pki::Pki;
use tandem_trust::frontend as fe;
use tandem_types::SipUri;

use super::{Location, check_guid, fe_store, fmt_time, open_directory, parse_date, partner, print_json, quiet_logs};
use crate::failure::{CliResult, usage};

#[derive(Debug, Subcommand)]
pub enum CsCommand {
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
        location: Location,
    },
    /// The OAuthTokenIssuer certificates: current, previous and scheduled (Get-CsCertificate -Type OAuthTokenIssuer).
    GetCertificate {
        #[arg(long = "type")]
        cert_type: String,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Get-CsOAuthConfiguration.
    #[command(name = "get-oauth-configuration")]
    GetOAuthConfiguration {
        #[command(flatten)]
        location: Location,
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
        location: Location,
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
        #[command(flatten)]
        flags: partner::Flags,
    },
    /// Get-CsPartnerApplication.
    GetPartnerApplication {
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        output: partner::Output,
    },
    /// Set-CsPartnerApplication (enable/disable, trust level, metadata URL).
    SetPartnerApplication {
        #[arg(long)]
        identity: String,
        #[arg(long)]
        metadata_url: Option<String>,
        #[arg(long)]
        application_trust_level: Option<String>,
        #[command(flatten)]
        flags: partner::Flags,
    },
    /// Remove-CsPartnerApplication.
    RemovePartnerApplication {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        location: Location,
    },
    #[command(flatten)]
    Presence(super::client_policy::PresenceCommand),
    #[command(flatten)]
    History(super::conversation_history::HistoryCommand),
    #[command(flatten)]
    Ucs(super::ucs::UcsCommand),
    #[command(flatten)]
    Conference(super::conference::ConferenceCommand),
    #[command(flatten)]
    WebService(super::web_service::WebServiceCommand),
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

pub async fn run(cmd: CsCommand) -> CliResult {
    if !matches!(cmd, CsCommand::GetRegistrations { .. }) {
        quiet_logs();
    }
    match cmd {
        CsCommand::SetCertificate { identity, cert_type, thumbprint, path, roll, effective_date, location } => {
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
                    let pki = Pki::new(cfg.pki_dir());
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
        CsCommand::GetCertificate { cert_type, location, json } => {
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
        CsCommand::GetOAuthConfiguration { location, json } => {
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
        CsCommand::SetOAuthConfiguration {
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
        CsCommand::NewPartnerApplication { identity, metadata_url, application_trust_level, flags } => {
            let level = parse_trust("--application-trust-level", &application_trust_level)?;
            if identity.trim().is_empty() {
                return Err(usage("--identity: a name such as microsoft.exchange"));
            }
            partner::CS.check_url(&metadata_url)?;
            let cfg = flags.location.config()?;
            partner::create(partner::CS, &cfg, &identity, false, async |client| {
                let (mut p, doc) = partner::download(client, &identity, &metadata_url).await?;
                if identity.eq_ignore_ascii_case("microsoft.exchange") && doc.service_name != EXCHANGE_APP_ID {
                    return Err(usage(format!(
                        "--metadata-url: the document names the service {}, but microsoft.exchange must be {EXCHANGE_APP_ID}",
                        doc.service_name
                    )));
                }
                p.application_trust_level = level;
                flags.apply_new(&mut p);
                Ok((p, doc))
            })
            .await
        }
        CsCommand::GetPartnerApplication { identity, output } => {
            partner::get(partner::CS, identity.as_deref(), output).await
        }
        CsCommand::SetPartnerApplication { identity, metadata_url, application_trust_level, flags } => {
            let level = application_trust_level.map(|l| parse_trust("--application-trust-level", &l)).transpose()?;
            if let Some(u) = &metadata_url {
                partner::CS.check_url(u)?;
            }
            let accept = flags.accept_security_identifier_information;
            partner::set(partner::CS, &flags.location.config()?, &identity, metadata_url, flags.enabled, |p, fresh| {
                // A new metadata URL makes the partner anew, as the document describes it.
                if let Some(fresh) = fresh {
                    *p = fresh;
                }
                if let Some(l) = level {
                    p.application_trust_level = l;
                }
                if let Some(a) = accept {
                    p.accept_security_identifier_information = a;
                }
            })
            .await
        }
        CsCommand::RemovePartnerApplication { identity, location } => {
            partner::remove(partner::CS, &location.config()?, &identity).await
        }
        CsCommand::Presence(cmd) => super::client_policy::run(cmd).await,
        CsCommand::History(cmd) => super::conversation_history::run(cmd).await,
        CsCommand::Ucs(cmd) => super::ucs::run(cmd).await,
        CsCommand::Conference(cmd) => super::conference::run(cmd).await,
        CsCommand::WebService(cmd) => super::web_service::run(cmd).await,
        CsCommand::GetRegistrations { user, location, json } => {
            let cfg = location.config()?;
            let user = match user {
                None => None,
                Some(u) if u.to_ascii_lowercase().starts_with("sip:") => Some(
                    u.parse::<SipUri>().map_err(|e: tandem_types::ParseError| usage(format!("--user: {e}")))?.key(),
                ),
                Some(name) => Some(open_directory(&cfg).await?.get(&name).await?.sip_uri.key()),
            };
            let store = fe_store(&cfg).await?;
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
    }
}

fn check_global(identity: &str) -> CliResult {
    if identity.eq_ignore_ascii_case("global") {
        Ok(())
    } else {
        Err(usage(format!("--identity {identity}: only `global` exists (one pool-wide instance)")))
    }
}

fn parse_trust(flag: &str, s: &str) -> CliResult<TrustLevel> {
    s.parse().map_err(|e: String| usage(format!("{flag} {e}")))
}

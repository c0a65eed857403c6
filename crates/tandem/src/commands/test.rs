//! `tandem test`: the checks an administrator runs (Test-CsExStorageConnectivity, Test-CsExUMConnectivity,
//! Test-OAuthConnectivity, Test-CsUnifiedContactStore, resolving the DNS plan, checking a token as
//! EWS would).
//!
//! The SOAP these checks send is written here by hand for now; a typed EWS client replaces it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_config::Config;
use tandem_ews_client::{EwsClientError, Probe, ProbeAnswer};
use tandem_frontend::exchange_connector::{ExchangeConnector, Hop};
use tandem_oauth::partner::check_metadata_url;
use tandem_oauth::token::UserIdentity;
use tandem_pki::Pki;
use tandem_trust::bearer::AuthState;
use tandem_trust::frontend as fe;

use super::dns::{check_dns, dns_plan};
use super::{Location, fe_store, mbx_store, open_directory, print_json, quiet_logs};
use crate::failure::{CliResult, Failure, usage};

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Resolve the planned records through a resolver (the system's, or --name-server).
    Dns {
        /// A name server to ask instead of the system's, IP or IP:PORT (repeatable).
        #[arg(long)]
        name_server: Vec<String>,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Test-OAuthConnectivity: call a service with an S2S token acting as a mailbox — EWS or
    /// AutoD with the Front End's token, or Generic (a Front End URL, as Exchange's
    /// `-Service Generic` tests its partners) with the Mailbox's.
    #[command(name = "oauth-connectivity")]
    OAuthConnectivity {
        /// EWS, AutoD or Generic.
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
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// The UC web API as the browser client uses it: a token minted as the Mailbox mints it for
    /// --user (the reverse trust), sent to the Front End's `/ucwa/v1/me`.
    #[command(name = "uc-web-api")]
    UcWebApi {
        /// The user: account name, SIP URI or SMTP address.
        #[arg(long)]
        user: String,
        /// Also print the token sent (to call the API with curl or a test).
        #[arg(long)]
        show_token: bool,
        #[command(flatten)]
        location: Location,
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
        /// ConversationHistory (default), Inbox or Dumpster (Recoverable Items\Deletions; its test
        /// item is always removed again).
        #[arg(long, default_value = "ConversationHistory")]
        folder: String,
        /// Remove the test item afterwards (always with --folder Dumpster).
        #[arg(long)]
        delete_item: bool,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Test-CsUnifiedContactStore: where the user's contact list lives (the mailbox or the Front
    /// End store), what each holds, and whether they agree.
    #[command(name = "unified-contact-store")]
    UnifiedContactStore {
        /// The user, e.g. sip:alice@litwareinc.com.
        #[arg(long)]
        user_sip_address: String,
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
    /// Test-CsExUMConnectivity: the path a voicemail takes, hop by hop: the user is
    /// UM-enabled, an RTP port of the media range can be bound here, Autodiscover and the S2S
    /// token, a short test voicemail written into the Inbox (CreateItem, as the voicemail user
    /// agent writes it), the message-waiting count that sees it (FindItem), then removed.
    #[command(name = "ex-um-connectivity")]
    ExUmConnectivity {
        /// The user, e.g. sip:bob@litwareinc.com.
        #[arg(long)]
        sip_uri: String,
        #[command(flatten)]
        location: Location,
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
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

pub fn host_of(url: &str) -> Option<String> {
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
pub fn deployment_client(cfg: &Config) -> CliResult<reqwest::Client> {
    let ca_path = Pki::new(cfg.pki_dir()).ca_cert_path();
    let ca =
        std::fs::read(&ca_path).map_err(|e| usage(format!("{}: {e}; run `tandem up` first", ca_path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&ca).context("the CA certificate cannot be parsed")?;
    let mut b = reqwest::Client::builder().tls_certs_only(certs).timeout(Duration::from_secs(10));
    for (host, ip) in &cfg.hosts {
        b = b.resolve(host.as_str(), SocketAddr::new(*ip, 0));
    }
    Ok(b.build().context("cannot build the HTTPS client")?)
}

pub async fn run(cmd: TestCommand) -> CliResult {
    quiet_logs();
    match cmd {
        TestCommand::ExStorageConnectivity { sip_uri, folder, delete_item, location, json } => {
            ex_storage_connectivity(&location.config()?, &sip_uri, &folder, delete_item, json).await
        }
        TestCommand::UnifiedContactStore { user_sip_address, location, json } => {
            super::ucs::test_unified_contact_store(&location, &user_sip_address, json).await
        }
        TestCommand::ExUmConnectivity { sip_uri, location, json } => {
            ex_um_connectivity(&location.config()?, &sip_uri, json).await
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
            let auth = AuthState::mailbox(store, &cfg.mailbox);
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
        TestCommand::UcWebApi { user, show_token, location, json } => {
            uc_web_api(&location.config()?, &user, show_token, json).await
        }
        TestCommand::OAuthConnectivity { service, target_uri, mailbox, show_token, location, json } => {
            let service = match service.to_ascii_lowercase().as_str() {
                "ews" => "EWS",
                "autod" => "AutoD",
                "generic" => "Generic",
                _ => return Err(usage(format!("--service {service}: use EWS, AutoD or Generic"))),
            };
            check_metadata_url(&target_uri, false).map_err(|e| usage(format!("--target-uri: {e}")))?;
            let host = host_of(&target_uri).ok_or_else(|| usage(format!("--target-uri {target_uri}: no host")))?;
            let smtp: tandem_types::SmtpAddress =
                mailbox.parse().map_err(|e: tandem_types::ParseError| usage(format!("--mailbox: {e}")))?;
            let cfg = location.config()?;
            if service == "Generic" {
                return generic_connectivity(&cfg, &target_uri, &host, &smtp.to_string(), show_token, json).await;
            }
            let store = fe_store(&cfg).await?;
            let issuer = fe::TokenIssuer::new(store.clone(), cfg.domain.as_str());
            let user = UserIdentity { smtp: smtp.to_string(), sip: None };
            let token = issuer.user_token(&host, &user).await.context("issuing the token")?;
            let connector = ExchangeConnector::new(store, cfg.domain.as_str(), deployment_client(&cfg)?);
            let smtp_text = smtp.to_string();
            let probe = if service == "AutoD" { Probe::Autodiscover { mailbox: &smtp_text } } else { Probe::EwsInbox };
            let resp = connector.client().probe(&target_uri, probe, Some(&token)).await;
            let (ok, status, detail) = match resp {
                Err(EwsClientError::Transport { cause, .. }) => {
                    (false, 0, format!("cannot reach {target_uri}: {cause}"))
                }
                Err(e) => (false, 0, format!("cannot reach {target_uri}: {e}")),
                Ok(ProbeAnswer { status, diagnostics: diag }) => match status {
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
                },
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

/// Test-OAuthConnectivity -Service Generic: a GET of a Front End URL with the token the Mailbox
/// signs for `smtp` (the reverse direction of the trust), and whether the Front End accepted it.
async fn generic_connectivity(
    cfg: &Config,
    target_uri: &str,
    host: &str,
    smtp: &str,
    show_token: bool,
    json: bool,
) -> CliResult {
    let store = mbx_store(cfg).await?;
    // The sip claim as the Mailbox sends it, when the directory knows the user.
    let user = open_directory(cfg).await?.find(smtp).await.context("reading the directory")?;
    let issuer = tandem_trust::mailbox::TokenIssuer::new(store, &cfg.mailbox);
    let identity = UserIdentity { smtp: smtp.to_owned(), sip: user.map(|u| u.sip_uri.to_string()) };
    let token = issuer.user_token(host, &identity).await.context("issuing the Mailbox's token")?;
    let resp = deployment_client(cfg)?.get(target_uri).bearer_auth(&*token).send().await;
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
                        "the token was refused: {}; check the Front End's partner application (`tandem cs get-partner-application`)",
                        diag.unwrap_or_else(|| "no x-ms-diagnostics".into())
                    ),
                ),
                _ => (true, status, format!("the token was accepted; the service answered HTTP {status}")),
            }
        }
    };
    if json {
        let mut v = json!({"ok": ok, "service": "Generic", "target_uri": target_uri, "mailbox": smtp, "status": status, "detail": detail});
        if show_token {
            v["token"] = json!(&*token);
        }
        print_json(&v)?;
    } else {
        println!("{} Generic {target_uri} as {smtp}: {detail}", if ok { "PASS" } else { "FAIL" });
        if show_token {
            println!("token: {token}");
        }
    }
    if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("OAuth connectivity failed"))) }
}

/// `tandem test uc-web-api`: mint as the Mailbox, call the Front End's API.
async fn uc_web_api(cfg: &Config, who: &str, show_token: bool, json: bool) -> CliResult {
    let directory =
        tandem_directory::Directory::open(&cfg.directory.url()).await.context("cannot open the directory")?;
    let user = directory
        .find(who)
        .await
        .context("directory lookup")?
        .ok_or_else(|| usage(format!("--user {who}: no such user; `tandem user list` shows who exists")))?;
    let mstore = super::mbx_store(cfg).await?;
    let location = tandem_trust::mailbox::frontend_location(&mstore).await.context("finding the Front End")?.ok_or_else(|| {
        Failure::Runtime(anyhow::anyhow!(
            "the Mailbox has no enabled Lync partner application, so it knows no Front End; run `tandem integration status`"
        ))
    })?;
    let issuer = tandem_trust::mailbox::TokenIssuer::new(mstore, &cfg.mailbox);
    let identity = UserIdentity { smtp: user.smtp_address.to_string(), sip: Some(user.sip_uri.to_string()) };
    let token = issuer.user_token(&location.host, &identity).await.context("minting the token as the Mailbox")?;
    let base = format!("{}{}", location.base_url.trim_end_matches('/'), tandem_frontend::ucwa::BASE);
    let resp = deployment_client(cfg)?.get(format!("{base}/me")).bearer_auth(&*token).send().await;
    let (ok, status, detail, me) = match resp {
        Err(e) => {
            (false, 0, format!("cannot reach {base}: {}", tandem_http::client::root_cause(&e)), serde_json::Value::Null)
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let diag = r.headers().get("x-ms-diagnostics").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            match status {
                200 if body["uri"] == json!(user.sip_uri.key()) => {
                    (true, status, "the token was accepted and the API answered as the user".to_owned(), body)
                }
                200 => (false, status, format!("the API answered as {} instead", body["uri"]), body),
                401 => (
                    false,
                    status,
                    format!(
                        "the token was refused: {}; check the microsoft.exchange partner application on the Front End (`tandem cs get-partner-application`)",
                        diag.unwrap_or_else(|| "no x-ms-diagnostics".into())
                    ),
                    body,
                ),
                _ => (false, status, format!("HTTP {status}: {}", body["message"]), body),
            }
        }
    };
    if json {
        let mut v =
            json!({"ok": ok, "ucwa": base, "user": user.sip_uri.key(), "status": status, "detail": detail, "me": me});
        if show_token {
            v["token"] = json!(&*token);
        }
        print_json(&v)?;
    } else {
        println!("{} {base}/me as {}: {detail}", if ok { "PASS" } else { "FAIL" }, user.sip_uri.key());
        if show_token {
            println!("token: {token}");
        }
    }
    if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("the UC web API check failed"))) }
}

/// Test-CsExStorageConnectivity, hop by hop.
async fn ex_storage_connectivity(cfg: &Config, sip_uri: &str, folder: &str, delete: bool, json: bool) -> CliResult {
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
        // A test item is not left in the dumpster (Test-CsExStorageConnectivity -Folder Dumpster).
        if delete || distinguished == "recoverableitemsdeletions" {
            connector.delete_item(&smtp, &item).await?;
            report("EWS delete", true, "DeleteItem (HardDelete)".into());
            // Gone, unless the mailbox is on hold: then Recoverable Items\Purges keeps it.
            match connector.get_item_subject(&smtp, &item).await {
                Err(e) if e.message.contains("ErrorItemNotFound") => {
                    report("EWS removed", true, "GetItem: ErrorItemNotFound, the test item is gone".into());
                }
                Ok(_) => report(
                    "EWS removed",
                    true,
                    "the test item is kept in Recoverable Items\\Purges: the mailbox is on litigation hold".into(),
                ),
                Err(e) => return Err(e),
            }
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

/// Test-CsExUMConnectivity, hop by hop (see the command's help).
async fn ex_um_connectivity(cfg: &Config, sip_uri: &str, json: bool) -> CliResult {
    use tandem_frontend::exchange_connector::ConnectorError;
    use tandem_frontend::voicemail::{deposit, mwi};
    let sip: tandem_types::SipUri =
        sip_uri.parse().map_err(|e: tandem_types::ParseError| usage(format!("--sip-uri: {e}")))?;
    let fe = tandem_frontend::store::FrontendStore::new(fe_store(cfg).await?);
    let mut hops: Vec<serde_json::Value> = Vec::new();
    let mut report = |hop: &str, ok: bool, detail: String| {
        if !json {
            println!("{} {hop:<13} {detail}", if ok { "PASS" } else { "FAIL" });
        }
        hops.push(json!({"hop": hop, "ok": ok, "detail": detail}));
    };
    let fail = |hop: Hop, message: String, hint: &str| ConnectorError { hop, message, hint: hint.into() };
    let mut smtp = String::new();
    let http = deployment_client(cfg)?;
    let outcome: Result<(), ConnectorError> = async {
        let um = fe
            .um_mailbox(&sip.key())
            .await
            .map_err(|e| fail(Hop::Ews, format!("the Front End store: {e}"), "check frontend.database_url"))?
            .ok_or_else(|| {
                fail(
                    Hop::Ews,
                    format!("{sip} is not UM-enabled"),
                    "enable it with `tandem exchange enable-um-mailbox --identity NAME`",
                )
            })?;
        smtp = um.smtp.clone();
        report("UM mailbox", true, format!("{sip} leaves voicemail in {smtp}, {} ring(s)", um.call_answering_rings));
        let f = &cfg.frontend;
        let pool =
            tandem_frontend::media::ports::PortPool::new(f.sip_udp_listen.ip(), f.media_port_min, f.media_port_max);
        match pool.bind().await {
            Ok((_, lease)) => report(
                "Media ports",
                true,
                format!(
                    "UDP {}:{} bound ({} ports in {}-{})",
                    f.sip_udp_listen.ip(),
                    lease.port,
                    pool.capacity(),
                    f.media_port_min,
                    f.media_port_max
                ),
            ),
            Err(e) => {
                report("Media ports", false, format!("{e} (a running Front End may hold them all; a warning only)"))
            }
        }
        let connector = ExchangeConnector::new(fe.store().clone(), cfg.domain.as_str(), http);
        let ews = connector.ews_url(&smtp).await?;
        report("Autodiscover", true, format!("EWS {ews} for {smtp} (S2S token accepted)"));
        let mailbox = connector.mailbox(&smtp).await?;
        let before = mwi::counts(&connector, &mailbox).await?;
        let vm = deposit::Voicemail {
            caller_uri: format!("sip:test-ex-um-connectivity@{}", cfg.domain),
            caller_name: Some("Test-CsExUMConnectivity".into()),
            callee_smtp: smtp.clone(),
            started_at: tandem_store::now_unix(),
            samples: tandem_frontend::media::tone(1000.0, 1000, 0.3),
        };
        let item = deposit::deposit(&connector, &vm).await?;
        report("EWS write", true, format!("CreateItem {} in the Inbox ({})", deposit::ITEM_CLASS, vm.subject()));
        let after = mwi::counts(&connector, &mailbox).await?;
        if after.0 != before.0 + 1 {
            connector.delete_item(&smtp, &item).await?;
            return Err(fail(
                Hop::Ews,
                format!("FindItem counts {} new voicemail(s) after writing one, {} before", after.0, before.0),
                "see the mailbox's log",
            ));
        }
        report("EWS read", true, format!("message waiting counts {}/{} (new/old)", after.0, after.1));
        connector.delete_item(&smtp, &item).await?;
        report("EWS delete", true, "DeleteItem (HardDelete)".into());
        Ok(())
    }
    .await;
    let ok = outcome.is_ok();
    if let Err(e) = &outcome {
        report(&format!("{:?}", e.hop), false, format!("{}; {}", e.message, e.hint));
    }
    if json {
        print_json(&json!({"ok": ok, "sip_uri": sip.to_string(), "mailbox": smtp, "hops": hops}))?;
    }
    if ok { Ok(()) } else { Err(Failure::Runtime(anyhow::anyhow!("Exchange UM connectivity failed"))) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://mail.litwareinc.com:8443/EWS/Exchange.asmx").as_deref(),
            Some("mail.litwareinc.com")
        );
    }
}

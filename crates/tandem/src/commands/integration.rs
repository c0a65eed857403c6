//! `tandem integration status`: the seed's setup steps with pass/fail and the reason.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tandem_config::{Config, Endpoints};
use tandem_oauth::partner::check_autodiscover_url;
use tandem_trust::frontend as fe;
use tandem_trust::setup::{self, Step};

use super::dns::{PlannedRecord, check_dns, dns_plan};
use super::test::deployment_client;
use super::{Location, fe_store, mbx_store, print_json, quiet_logs};
use crate::failure::{CliResult, Failure};
use tandem_ews_client::{EwsClientError, Probe};
use tandem_frontend::exchange_connector::ExchangeConnector;

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// The seed's setup steps with pass/fail and the reason.
    Status {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

/// Every setup step, pass or fail with the reason: the trust steps are checked by
/// `tandem_trust::setup`; Autodiscover (3, 4), DNS (5) and the EWS path of step 7 here.
pub async fn integration_status(cfg: &Config) -> CliResult<Vec<Step>> {
    let e = Endpoints::of(cfg);
    let client = deployment_client(cfg)?;
    let mut steps = vec![setup::servers_running(&client, &e).await];
    let mstore = mbx_store(cfg).await?;
    let fstore = fe_store(cfg).await?;
    let policy = tandem_trust::rollover::Policy::of(&cfg.certificates);
    steps.push(setup::auth_certificate(&client, &e, &mstore, &policy).await.context("reading the auth configuration")?);
    steps.push(
        setup::token_issuer_certificate(&client, &e, &fstore, cfg.domain.as_str(), &policy)
            .await
            .context("reading the OAuthTokenIssuer certificate")?,
    );
    // 3
    let ca = tandem_mailbox::client_access::load(&mstore, &tandem_mailbox::client_access::Defaults::of(&cfg.mailbox))
        .await
        .context("reading the client access settings")?;
    let r = match ca.get(tandem_mailbox::client_access::Setting::AutoDiscoverServiceInternalUri) {
        // A URI that does not answer would send Outlook-style clients nowhere: probe it.
        Some(u) => match client.get(u).send().await {
            Ok(_) => Ok(format!("AutoDiscoverServiceInternalUri {u}")),
            Err(e) => Err(format!(
                "AutoDiscoverServiceInternalUri {u} does not answer: {}; run `tandem exchange set-client-access-server --autodiscover-service-internal-uri https://autodiscover.<domain>[:port]/autodiscover/autodiscover.xml` with a URL that answers",
                tandem_http::client::root_cause(&e)
            )),
        },
        None => Err("AutoDiscoverServiceInternalUri is $null; run `tandem exchange set-client-access-server --autodiscover-service-internal-uri https://autodiscover.<domain>/autodiscover/autodiscover.xml`".to_owned()),
    };
    steps.push(Step::new("3", "Exchange Autodiscover (AutoDiscoverServiceInternalUri)", r));
    // 4
    let connector = ExchangeConnector::new(fstore.clone(), cfg.domain.as_str(), client.clone());
    let probes = connector.client();
    let oc = fe::configuration(&fstore, cfg.domain.as_str()).await.context("reading the OAuth configuration")?;
    let fix = format!(
        "point it at the mailbox with `tandem cs set-oauth-configuration --exchange-autodiscover-url {}`",
        setup::autodiscover_url_of(cfg)
    );
    let r = match &oc.exchange_autodiscover_url {
        None => Err("ExchangeAutodiscoverUrl is not set; run `tandem cs set-oauth-configuration --exchange-autodiscover-url https://autodiscover.<domain>/autodiscover/autodiscover.svc`".to_owned()),
        Some(u) => match check_autodiscover_url(u) {
            Err(e) => Err(e.to_string()),
            Ok(()) => match probes.probe(u.as_str(), Probe::Autodiscover { mailbox: "probe@invalid" }, None).await {
                Err(EwsClientError::Transport { cause, .. }) => Err(format!("ExchangeAutodiscoverUrl {u} does not answer: {cause}; {fix}")),
                Err(err) => Err(format!("ExchangeAutodiscoverUrl {u} does not answer: {err}; {fix}")),
                Ok(a) if a.status == 404 => Err(format!("ExchangeAutodiscoverUrl {u}: HTTP 404, no Autodiscover service there; {fix}")),
                Ok(a) => Ok(format!("ExchangeAutodiscoverUrl {u} answers (HTTP {} without credentials)", a.status)),
            },
        },
    };
    steps.push(Step::new("4", "Point Skype for Business at Autodiscover", r));
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
    steps.push(Step::new("5", "DNS record autodiscover.<domain>", r));
    steps.push(setup::partners_in_both_directions(&fstore, &mstore).await.context("reading partner applications")?);
    // 7: a token as the Front End issues it, checked as the mailbox's EWS checks it, then the
    // whole path: Autodiscover, EWS write, read back, remove.
    let alice = tandem_types::SmtpAddress::new("alice", &cfg.domain).map(|a| a.to_string()).unwrap_or_default();
    let r = match setup::token_accepted(cfg, &fstore, &mstore, &alice).await {
        Err(why) => Err(why),
        Ok(v) => {
            let connector = tandem_frontend::exchange_connector::ExchangeConnector::new(
                fstore.clone(),
                cfg.domain.as_str(),
                deployment_client(cfg)?,
            );
            let subject = format!("tandem integration status {}", tandem_store::now_unix());
            let path = async {
                let item = connector.create_item(&alice, "conversationhistory", &subject, "setup check").await?;
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
    };
    steps.push(Step::new("7", "Verify the integration (S2S token)", r));
    steps.push(calendar_presence(&fstore).await?);
    steps.push(conversation_history(&fstore).await?);
    Ok(steps)
}

/// Conversation history's queue, as the running Front End left it: transcripts whose writes
/// fail (retried with backoff) fail the step, with the last error.
async fn conversation_history(fstore: &tandem_store::Store) -> CliResult<Step> {
    let b = tandem_frontend::store::FrontendStore::new(fstore.clone())
        .history_backlog()
        .await
        .context("reading the conversation history queue")?;
    let r = if b.failing_items == 0 {
        Ok(format!(
            "{} conversation(s) open, {} transcript(s) being written to Conversation History",
            b.open_conversations, b.pending_items
        ))
    } else {
        Err(format!(
            "{} of {} transcript(s) could not be written to the mailbox yet (retried with backoff; \
             `tandem cs get-conversation-history-configuration` lists them): {}",
            b.failing_items,
            b.pending_items,
            b.last_error.as_deref().unwrap_or("no error recorded")
        ))
    };
    Ok(Step::new("his", "Server-side conversation history (EWS writes)", r))
}

/// The Front End's mailbox watches for calendar presence, as the running role last recorded
/// them: failing watches (with the hop and what to do) fail the step.
async fn calendar_presence(fstore: &tandem_store::Store) -> CliResult<Step> {
    let rows = tandem_frontend::store::FrontendStore::new(fstore.clone())
        .presence_status(None)
        .await
        .context("reading the presence records")?;
    let failing: Vec<String> = rows
        .iter()
        .filter(|r| r.calendar == "failing")
        .map(|r| format!("{}: {}", r.aor, r.calendar_error.as_deref().unwrap_or("failing")))
        .collect();
    let watching = rows.iter().filter(|r| r.calendar == "watching").count();
    let r = if failing.is_empty() {
        Ok(format!(
            "{watching} of {} users whose presence matters have their calendar watched (EWS streaming subscriptions)",
            rows.len()
        ))
    } else {
        Err(format!(
            "{} calendar watches fail, so those users show only what their endpoints publish (retried with backoff): {}",
            failing.len(),
            failing.join("; ")
        ))
    };
    Ok(Step::new("cal", "Presence from the calendar (streaming subscriptions)", r))
}

pub async fn run(cmd: IntegrationCommand) -> CliResult {
    quiet_logs();
    match cmd {
        IntegrationCommand::Status { location, json } => {
            let cfg = location.config()?;
            let steps = integration_status(&cfg).await?;
            let ok = steps.iter().all(Step::passed);
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

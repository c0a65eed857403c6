//! One deployment on this machine: its configuration, certificates, directory and running roles.
//!
//! `up` and `serve` both come here; they differ only in where the configuration comes from and
//! whether demo users are created.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tandem_config::{CONFIG_FILE_NAME, Config, Endpoints, Overrides, RoleSelection};
use tandem_directory::{Directory, NewUser};
use tandem_http::CertSlot;
use tandem_pki::{Pki, ServerCertSpec, ServerIdentity};
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::failure::{CliResult, usage};

/// How long shutdown waits for open connections and tasks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The demo organisation `up` creates on first start: account, display name.
pub const DEMO_USERS: [(&str, &str); 3] = [("alice", "Alice Anderson"), ("bob", "Bob Brown"), ("carol", "Carol Clark")];
/// Directory setting that records that the demo users were created once.
const DEMO_MARKER: &str = "demo_users_created";

/// The configuration for an admin command: `--config FILE`, else `DIR/tandem.toml`.
pub fn locate(data_dir: Option<&Path>, config: Option<&Path>) -> CliResult<Config> {
    if let Some(file) = config {
        return Ok(Config::load(file, &Overrides::default())?);
    }
    let dir = data_dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(tandem_config::DEFAULT_DATA_DIR));
    let file = dir.join(CONFIG_FILE_NAME);
    if !file.exists() {
        return Err(usage(format!(
            "no deployment in {}: run `tandem up --data-dir {}` first, or pass --config FILE",
            dir.display(),
            dir.display()
        )));
    }
    Ok(Config::load(&file, &Overrides::default())?)
}

/// The configuration for `up`: the one written on first start, else `--config`, else defaults
/// with the deployment names mapped to loopback. Returns it and whether this is the first start.
pub fn for_up(data_dir: Option<&Path>, domain: Option<&str>, config: Option<&Path>) -> CliResult<(Config, bool)> {
    let domain =
        domain.map(|d| d.parse().map_err(|e: tandem_types::ParseError| usage(format!("--domain: {e}")))).transpose()?;
    let overrides = Overrides { domain: domain.clone(), data_dir: data_dir.map(Path::to_path_buf), log_format: None };
    let cwd = std::env::current_dir().context("cannot read the current folder")?;

    // Where the data lives decides whether this is a restart.
    let probe = match config {
        Some(file) => Config::load(file, &overrides)?,
        None => Config::defaults(&cwd, &overrides)?,
    };
    let written = probe.data_dir.join(CONFIG_FILE_NAME);
    if written.exists() {
        let existing = Config::load(&written, &Overrides::default())?;
        if let Some(d) = &domain
            && *d != existing.domain
        {
            return Err(usage(format!(
                "--domain {d}: {} already holds a deployment for {}; use another --data-dir",
                existing.data_dir.display(),
                existing.domain
            )));
        }
        return Ok((existing, false));
    }
    let mut cfg = probe;
    if config.is_none() {
        for host in cfg.host_names() {
            cfg.hosts.insert(host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
    }
    Ok((cfg, true))
}

/// Writes the configuration into its data directory (first start of `up`).
pub fn write_config(cfg: &Config) -> anyhow::Result<PathBuf> {
    // Owner-only from the start: the stores and keys beneath it are secrets.
    tandem_store::secure_data_dir(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let file = cfg.data_dir.join(CONFIG_FILE_NAME);
    std::fs::write(&file, cfg.to_toml()).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

fn loopback_ips(addr: SocketAddr) -> Vec<IpAddr> {
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if !addr.ip().is_unspecified() && !ips.contains(&addr.ip()) {
        ips.push(addr.ip());
    }
    ips
}

/// What each role's TLS certificate must name.
pub fn cert_specs(cfg: &Config) -> Vec<ServerCertSpec> {
    vec![
        ServerCertSpec {
            name: Role::Mailbox.as_str().into(),
            common_name: cfg.mailbox.fqdn.to_string(),
            organization: cfg.domain.to_string(),
            dns_names: vec![
                cfg.mailbox.fqdn.to_string(),
                cfg.mailbox.autodiscover_fqdn.to_string(),
                "localhost".into(),
            ],
            ip_addresses: loopback_ips(cfg.mailbox.https_listen),
        },
        ServerCertSpec {
            name: Role::Frontend.as_str().into(),
            common_name: cfg.frontend.pool_fqdn.to_string(),
            organization: cfg.domain.to_string(),
            dns_names: vec![cfg.frontend.pool_fqdn.to_string(), cfg.frontend.sip_fqdn.to_string(), "localhost".into()],
            ip_addresses: loopback_ips(cfg.frontend.https_listen),
        },
    ]
}

/// Demo users to create on first start, with their shared password.
#[derive(Debug)]
pub struct Demo {
    pub password: String,
    /// True when the password was generated and must be printed.
    pub generated: bool,
}

impl Demo {
    /// From `TANDEM_DEMO_PASSWORD`, else a generated one.
    pub fn from_env() -> CliResult<Demo> {
        match std::env::var("TANDEM_DEMO_PASSWORD") {
            Ok(p) if p.chars().count() >= tandem_directory::MIN_PASSWORD_LEN => {
                Ok(Demo { password: p, generated: false })
            }
            Ok(_) => Err(usage(format!(
                "TANDEM_DEMO_PASSWORD is too short: use at least {} characters",
                tandem_directory::MIN_PASSWORD_LEN
            ))),
            Err(_) => {
                use rand::RngExt;
                const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
                let mut rng = rand::rng();
                let password = (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
                Ok(Demo { password, generated: true })
            }
        }
    }
}

/// Creates the demo users once per directory; returns whether it did.
async fn create_demo_users(cfg: &Config, directory: &Directory, demo: &Demo) -> anyhow::Result<bool> {
    if directory.store().setting(DEMO_MARKER).await?.is_some() {
        return Ok(false);
    }
    for (name, display) in DEMO_USERS {
        if directory.find(name).await?.is_some() {
            continue;
        }
        let new = NewUser {
            name: name.parse()?,
            display_name: display.into(),
            sip_uri: tandem_types::SipUri::new(name, &cfg.domain)?,
            smtp_address: tandem_types::SmtpAddress::new(name, &cfg.domain)?,
            password: demo.password.clone(),
        };
        directory.add(&new).await.with_context(|| format!("cannot create demo user {name}"))?;
    }
    directory.store().set_setting(DEMO_MARKER, &tandem_store::now_unix().to_string()).await?;
    Ok(true)
}

/// Open files (connections included) the roles need at their caps, in the worst case: both HTTPS
/// listeners and the three SIP stream listeners full, plus stores, certificates and clients.
fn open_files_needed(cfg: &Config) -> u64 {
    let https =
        u64::from(cfg.mailbox.https_limits.max_connections) + u64::from(cfg.frontend.https_limits.max_connections);
    https + 3 * u64::from(cfg.frontend.sip_max_stream_connections) + 1024
}

/// Raises the soft limit on open files to the hard limit, as servers do (the soft default is
/// often 1,024, a few hundred clients): the connection caps, not the descriptor limit, are what
/// bound the roles. Says so when even the hard limit is below what the caps allow.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // No hard limit (None): Linux still caps descriptors at fs.nr_open, 1,048,576 by default.
    let target = limit.maximum.unwrap_or(1 << 20);
    if let Some(current) = limit.current
        && current < target
    {
        match setrlimit(Resource::Nofile, rustix::process::Rlimit { current: Some(target), maximum: limit.maximum }) {
            Ok(()) => tracing::debug!(from = current, to = target, "open-files limit raised"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
        }
    }
}

/// Warns when the open-files limit is below what the connection caps allow.
fn check_open_files_limit(cfg: &Config) {
    let now = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let needed = open_files_needed(cfg);
    if let Some(now) = now
        && now < needed
    {
        tracing::warn!(
            limit = now,
            needed,
            "the open-files limit is below what the connection caps allow: raise it (LimitNOFILE, ulimit -n) or lower https_max_connections / sip_max_stream_connections"
        );
    }
}

/// Runs the selected roles until Ctrl-C or SIGTERM. `banner` is printed once everything listens.
/// `config_file` is the configuration the deployment was read from, named in errors that ask the
/// administrator to edit it.
pub async fn run(cfg: Config, config_file: &Path, roles: RoleSelection, demo: Option<Demo>, banner: bool) -> CliResult {
    let config_file = std::fs::canonicalize(config_file).unwrap_or_else(|_| config_file.to_path_buf());
    let started = Instant::now();
    raise_open_files_limit();
    check_open_files_limit(&cfg);
    let signals = StopSignals::install();
    let pki = pki_of(&cfg);
    let specs = cert_specs(&cfg);
    let (identities, created) =
        pki.ensure(cfg.domain.as_str(), &specs).with_context(|| format!("certificates in {}", pki.dir().display()))?;
    if created {
        tracing::info!(dir = %pki.dir().display(), "certificates written");
    }
    let directory =
        Directory::open(&cfg.directory.url()).await.context("cannot open the directory")?.with_lockout(cfg.lockout);
    let setup = trust_before_start(&cfg, roles).await?;
    if let Some(d) = &demo
        && create_demo_users(&cfg, &directory, d).await?
        && d.generated
    {
        // Printed now, not with the banner: a role that cannot start must not swallow it.
        let names: Vec<&str> = DEMO_USERS.iter().map(|(n, _)| *n).collect();
        println!(
            "\nDemo users {} created. Demo password (shown once): {}\n  (change it with `tandem user set-password NAME --password-stdin`)",
            names.join(", "),
            d.password
        );
    }

    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let mut slots: Vec<(ServerCertSpec, Arc<CertSlot>)> = Vec::new();
    let slot_for = |role: Role, identities: &[ServerIdentity]| -> anyhow::Result<Arc<CertSlot>> {
        let id = identities.iter().find(|i| i.name == role.as_str()).context("no certificate for the role")?;
        Ok(CertSlot::new(id.chain.clone(), id.key.clone_key())?)
    };

    let mut stores = Vec::new();
    let mut managed = Vec::new();
    let (mut fe_store, mut mbx_store) = (None, None);
    if cfg.mailbox.enabled && roles.runs(Role::Mailbox) {
        let slot = slot_for(Role::Mailbox, &identities)?;
        let running = tandem_mailbox::start(&cfg.mailbox, directory.clone(), slot.clone(), &tasks, shutdown.clone())
            .await
            .with_context(|| format!("the mailbox role cannot start (configuration: {})", config_file.display()))?;
        managed.push(tandem_trust::renewal::Managed::Mailbox {
            store: running.store.clone(),
            organization: cfg.domain.to_string(),
        });
        mbx_store = Some(running.store.clone());
        stores.push(running.store);
        slots.extend(specs.iter().filter(|s| s.name == Role::Mailbox.as_str()).cloned().map(|s| (s, slot.clone())));
    }
    if cfg.frontend.enabled && roles.runs(Role::Frontend) {
        let slot = slot_for(Role::Frontend, &identities)?;
        let running = tandem_frontend::start(
            &cfg.domain,
            &cfg.frontend,
            directory.clone(),
            slot.clone(),
            // The mailboxes are reached as `tandem test` reaches them: the deployment CA and names.
            crate::commands::deployment_client(&cfg)?,
            &tasks,
            shutdown.clone(),
        )
        .await
        .with_context(|| format!("the Front End role cannot start (configuration: {})", config_file.display()))?;
        managed.push(tandem_trust::renewal::Managed::Frontend {
            store: running.store.clone(),
            sip_domain: cfg.domain.to_string(),
        });
        fe_store = Some(running.store.clone());
        // The dashboard's setup steps are the ones `tandem integration status` checks.
        running.dashboard.attach_report(std::sync::Arc::new(crate::commands::DashboardReport::new(cfg.clone())));
        tandem_frontend::calendar_presence::spawn(
            running.sip.clone(),
            running.store.clone(),
            directory.clone(),
            running.connector.clone(),
            &tasks,
            shutdown.clone(),
        );
        // Conversation history writes transcripts to the mailbox through the same connector.
        tandem_frontend::conversation_history::spawn(
            &running.sip,
            running.store.clone(),
            directory.clone(),
            running.connector.clone(),
            cfg.frontend.conversation_idle_timeout,
            &tasks,
            shutdown.clone(),
        );
        // Voicemail answers calls and leaves messages through the same connector.
        tandem_frontend::voicemail::spawn(
            &running.sip,
            directory.clone(),
            &cfg.frontend,
            running.store.clone(),
            running.connector.clone(),
            &tasks,
            shutdown.clone(),
        );
        // The conference focus shares voicemail's media port range.
        tandem_frontend::conference::spawn(&running.sip, &cfg.frontend, &tasks, shutdown.clone());
        stores.push(running.store);
        slots.extend(specs.iter().filter(|s| s.name == Role::Frontend.as_str()).cloned().map(|s| (s, slot.clone())));
    }
    let interval = Duration::from_secs(cfg.certificates.check_interval_seconds);
    let policy = tandem_trust::rollover::Policy::of(&cfg.certificates);
    spawn_cert_renewal(&tasks, shutdown.clone(), pki.clone(), cfg.domain.to_string(), slots, interval, policy.clone());
    tandem_trust::renewal::spawn(managed, policy, interval, &tasks, shutdown.clone());

    if banner {
        print_banner(&cfg, &pki, &directory).await?;
    }
    // After the banner (scripts wait for it): partner applications need both listeners up.
    let done = match (&fe_store, &mbx_store) {
        (Some(f), Some(m)) => tandem_trust::setup::after_start(&cfg, roles, f, m, setup).await,
        _ => setup,
    };
    print_setup(&done, banner);
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, domain = %cfg.domain, "tandem is ready");

    signals.wait().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await.is_err() {
        tracing::warn!("some connections did not finish within {} s", SHUTDOWN_GRACE.as_secs());
    }
    for store in stores {
        store.close().await;
    }
    directory.store().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The trust setup before the roles start (certificates, trust anchors, the Autodiscover URL),
/// on the stores of the roles this process runs.
async fn trust_before_start(cfg: &Config, roles: RoleSelection) -> anyhow::Result<Vec<String>> {
    let fe = if roles.runs(Role::Frontend) && cfg.frontend.enabled {
        Some(tandem_frontend::admin::open_store(&cfg.frontend).await?)
    } else {
        None
    };
    let mbx = if roles.runs(Role::Mailbox) && cfg.mailbox.enabled {
        Some(tandem_mailbox::open_store(&cfg.mailbox).await?)
    } else {
        None
    };
    let done = tandem_trust::setup::before_start(cfg, fe.as_ref(), mbx.as_ref()).await;
    for store in fe.iter().chain(mbx.iter()) {
        store.close().await;
    }
    Ok(done?)
}

/// Prints every setup step done under the banner, or (without one) logs them: each step once.
fn print_setup(done: &[String], show: bool) {
    if !show {
        for d in done {
            tracing::info!(step = %d, "integration setup");
        }
    } else if !done.is_empty() {
        println!("\nIntegration setup (the seed's steps):");
        for d in done {
            println!("  {d}");
        }
    }
}

/// The deployment's certificate store, renewing TLS certificates at the same point the signing
/// certificates roll over (or at the first warning when automatic rollover is off).
pub fn pki_of(cfg: &Config) -> Pki {
    let c = &cfg.certificates;
    let days = if c.renew_before_days > 0 { c.renew_before_days } else { c.warn_days.first().copied().unwrap_or(30) };
    Pki::new(cfg.pki_dir())
        .with_renewal(time::Duration::days(i64::from(days)), time::Duration::days(c.clock_offset_days))
}

/// Reports the TLS certificates' expiry as the signing certificates' is reported.
fn report_tls(
    reporter: &mut tandem_trust::renewal::Reporter,
    policy: &tandem_trust::rollover::Policy,
    pki: &Pki,
    ids: &[ServerIdentity],
) {
    for id in ids {
        let Some(leaf) = id.chain.first() else { continue };
        let Ok(info) = tandem_pki::describe(leaf, &id.cert_path) else { continue };
        let days_left = pki.seconds_left(info.not_after_unix).div_euclid(86_400);
        let expiry = tandem_trust::rollover::Expiry {
            thumbprint: info.thumbprint,
            not_after: info.not_after_unix,
            days_left,
            warning: tandem_trust::rollover::warning_threshold(days_left, &policy.warn_days),
            successor: None,
        };
        reporter.expiry(&format!("tls_{}", id.name), &format!("TLS certificate {}", id.name), &expiry);
    }
}

/// Renews role certificates before they expire and swaps them into the running listeners.
fn spawn_cert_renewal(
    tasks: &TaskTracker,
    shutdown: CancellationToken,
    pki: Pki,
    domain: String,
    slots: Vec<(ServerCertSpec, Arc<CertSlot>)>,
    interval: Duration,
    policy: tandem_trust::rollover::Policy,
) {
    tasks.spawn(async move {
        let mut reporter = tandem_trust::renewal::Reporter::default();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let specs: Vec<ServerCertSpec> = slots.iter().map(|(s, _)| s.clone()).collect();
            match pki.ensure(&domain, &specs) {
                Ok((ids, true)) => {
                    report_tls(&mut reporter, &policy, &pki, &ids);
                    for id in ids {
                        if let Some((_, slot)) = slots.iter().find(|(s, _)| s.name == id.name)
                            && let Err(e) = slot.replace(id.chain, id.key)
                        {
                            tracing::error!(cert = %id.name, error = %e, "renewed certificate cannot be used");
                        }
                    }
                    tracing::info!("TLS certificates renewed and in use");
                }
                Ok((ids, false)) => report_tls(&mut reporter, &policy, &pki, &ids),
                Err(e) => tracing::error!(error = %e, "certificate renewal failed; fix the PKI folder before expiry"),
            }
        }
    });
}

/// Ctrl-C and SIGTERM, listened for from the start of `run`: a signal that arrives while the
/// roles start (a service manager, a test harness) must stop the process cleanly, not kill it.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    ctrl_c: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>,
}

impl StopSignals {
    fn install() -> StopSignals {
        StopSignals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
            #[cfg(unix)]
            interrupt: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
            // Elsewhere Ctrl-C's handler is registered when this is first polled.
            ctrl_c: Box::pin(tokio::signal::ctrl_c()),
        }
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        if let (Some(term), Some(interrupt)) = (self.term.as_mut(), self.interrupt.as_mut()) {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = self.ctrl_c.await;
    }
}

async fn print_banner(cfg: &Config, pki: &Pki, directory: &Directory) -> anyhow::Result<()> {
    let e = Endpoints::of(cfg);
    let mut out = String::new();
    out.push_str(&format!("\nTandem is up for {} (data: {})\n\n", cfg.domain, cfg.data_dir.display()));
    out.push_str(&format!("  {:<28} {}\n", "CA certificate (trust it)", pki.ca_cert_path().display()));
    if e.mailbox.enabled {
        out.push_str(&format!("\n  Mailbox role ({})\n", e.mailbox.fqdn));
        for (k, v) in [
            ("HTTPS", &e.mailbox.https_url),
            ("EWS", &e.mailbox.ews_url),
            ("Autodiscover (SOAP)", &e.mailbox.autodiscover_svc_url),
            ("Autodiscover (POX)", &e.mailbox.autodiscover_xml_url),
            ("Auth metadata", &e.mailbox.auth_metadata_url),
            ("Health / ready / metrics", &e.mailbox.health_url),
        ] {
            out.push_str(&format!("    {k:<26} {v}\n"));
        }
    }
    if e.frontend.enabled {
        out.push_str(&format!("\n  Front End role ({})\n", e.frontend.pool_fqdn));
        for (k, v) in [
            ("HTTPS", &e.frontend.https_url),
            ("SIP UDP / TCP", &format!("{} / {}", e.frontend.sip_udp, e.frontend.sip_tcp)),
            ("SIP TLS", &e.frontend.sip_tls),
            ("SIP WebSocket", &e.frontend.sip_ws),
            ("Auth metadata", &e.frontend.auth_metadata_url),
            ("Health / ready / metrics", &e.frontend.health_url),
        ] {
            out.push_str(&format!("    {k:<26} {v}\n"));
        }
    }
    let users = directory.list().await?;
    out.push_str(&format!("\n  Users ({})\n", users.len()));
    for u in &users {
        out.push_str(&format!("    {:<10} {:<28} {}\n", u.name, u.sip_uri, u.smtp_address));
    }
    out.push_str("\n  `tandem status --json` reports health; Ctrl-C stops.\n");
    println!("{out}");
    Ok(())
}

//! `tandem dns`: the zone records the deployment needs (`plan`), and resolving them through a
//! resolver, which `tandem test dns` and setup step 5 use.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use tandem_config::Config;

use super::{Location, print_json};
use crate::failure::{CliResult, usage};

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// The zone records the deployment needs.
    Plan {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

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

pub fn run(cmd: DnsCommand) -> CliResult {
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

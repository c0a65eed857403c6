//! What the configuration says about where the deployment answers: the URL paths each role
//! serves, every address a client uses (`tandem status --json`, the `up` banner, the trust
//! setup's metadata and Autodiscover URLs), which roles a process runs, and where the PKI lives.
//!
//! It lives here, below both roles, because the roles, the trust crate and the binary all derive
//! the same addresses from the same [`Config`], and none of them may depend on another for it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Serialize;
use tandem_types::Role;

use crate::Config;

/// Paths each role serves over HTTPS, relative to its base URL.
pub mod paths {
    /// The Mailbox role (Exchange).
    pub mod mailbox {
        pub const EWS: &str = "/EWS/Exchange.asmx";
        pub const AUTODISCOVER_SVC: &str = "/autodiscover/autodiscover.svc";
        pub const AUTODISCOVER_XML: &str = "/autodiscover/autodiscover.xml";
        pub const AUTH_METADATA: &str = "/autodiscover/metadata/json/1";
    }
    /// The Front End role (Skype for Business).
    pub mod frontend {
        pub const AUTH_METADATA: &str = "/metadata/json/1";
        /// SIP over WebSocket (RFC 7118).
        pub const SIP_WEBSOCKET: &str = "/sip-ws";
    }
}

impl Config {
    /// The deployment's PKI folder (CA and role certificates).
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }
}

/// Every address a client uses, as `status --json` and the `up` banner show them.
#[derive(Debug, Serialize)]
pub struct Endpoints {
    pub mailbox: MailboxEndpoints,
    pub frontend: FrontendEndpoints,
}

#[derive(Debug, Serialize)]
pub struct MailboxEndpoints {
    pub enabled: bool,
    pub fqdn: String,
    pub https_url: String,
    pub ews_url: String,
    pub autodiscover_svc_url: String,
    pub autodiscover_xml_url: String,
    pub auth_metadata_url: String,
    pub health_url: String,
    pub ready_url: String,
    pub metrics_url: String,
}

#[derive(Debug, Serialize)]
pub struct FrontendEndpoints {
    pub enabled: bool,
    pub pool_fqdn: String,
    pub https_url: String,
    pub sip_udp: String,
    pub sip_tcp: String,
    pub sip_tls: String,
    /// SIP over WebSocket (RFC 7118) on the Front End's HTTPS listener.
    pub sip_ws: String,
    pub auth_metadata_url: String,
    pub health_url: String,
    pub ready_url: String,
    pub metrics_url: String,
}

/// `https://host[:port]` reachable from this machine: the listen IP, or the FQDN when the role
/// listens on every address.
fn base_url(addr: SocketAddr, fqdn: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => fqdn.to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    if addr.port() == 443 { format!("https://{host}") } else { format!("https://{host}:{}", addr.port()) }
}

fn sip_addr(addr: SocketAddr, fqdn: &str) -> String {
    if addr.ip().is_unspecified() { format!("{fqdn}:{}", addr.port()) } else { addr.to_string() }
}

impl Endpoints {
    pub fn of(cfg: &Config) -> Endpoints {
        use paths::frontend as fe;
        use paths::mailbox as mbx;
        let m = base_url(cfg.mailbox.https_listen, cfg.mailbox.fqdn.as_str());
        let f = base_url(cfg.frontend.https_listen, cfg.frontend.pool_fqdn.as_str());
        let pool = cfg.frontend.pool_fqdn.as_str();
        Endpoints {
            mailbox: MailboxEndpoints {
                enabled: cfg.mailbox.enabled,
                fqdn: cfg.mailbox.fqdn.to_string(),
                ews_url: format!("{m}{}", mbx::EWS),
                autodiscover_svc_url: format!("{m}{}", mbx::AUTODISCOVER_SVC),
                autodiscover_xml_url: format!("{m}{}", mbx::AUTODISCOVER_XML),
                auth_metadata_url: format!("{m}{}", mbx::AUTH_METADATA),
                health_url: format!("{m}/healthz"),
                ready_url: format!("{m}/readyz"),
                metrics_url: format!("{m}/metrics"),
                https_url: m,
            },
            frontend: FrontendEndpoints {
                enabled: cfg.frontend.enabled,
                pool_fqdn: pool.to_owned(),
                sip_udp: sip_addr(cfg.frontend.sip_udp_listen, pool),
                sip_tcp: sip_addr(cfg.frontend.sip_tcp_listen, pool),
                sip_tls: sip_addr(cfg.frontend.sip_tls_listen, pool),
                sip_ws: format!("{}{}", f.replacen("https://", "wss://", 1), fe::SIP_WEBSOCKET),
                auth_metadata_url: format!("{f}{}", fe::AUTH_METADATA),
                health_url: format!("{f}/healthz"),
                ready_url: format!("{f}/readyz"),
                metrics_url: format!("{f}/metrics"),
                https_url: f,
            },
        }
    }
}

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RoleSelection {
    Mailbox,
    Frontend,
    All,
}

impl RoleSelection {
    pub fn runs(self, role: Role) -> bool {
        matches!(
            (self, role),
            (RoleSelection::All, _)
                | (RoleSelection::Mailbox, Role::Mailbox)
                | (RoleSelection::Frontend, Role::Frontend)
        )
    }

    /// Whether this process runs both roles and the configuration enables both (only then can
    /// first start register each as the other's partner).
    pub fn runs_both(self, cfg: &Config) -> bool {
        cfg.mailbox.enabled && cfg.frontend.enabled && self.runs(Role::Mailbox) && self.runs(Role::Frontend)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Overrides;

    #[test]
    fn endpoints_of_the_defaults() {
        let cfg = Config::defaults(std::path::Path::new("/tmp/x"), &Overrides::default()).unwrap();
        let e = Endpoints::of(&cfg);
        assert_eq!(e.mailbox.ews_url, "https://127.0.0.1:8443/EWS/Exchange.asmx");
        assert_eq!(e.frontend.auth_metadata_url, "https://127.0.0.1:4443/metadata/json/1");
        assert_eq!(e.frontend.sip_ws, "wss://127.0.0.1:4443/sip-ws");
        assert!(RoleSelection::All.runs_both(&cfg));
        assert!(!RoleSelection::Mailbox.runs_both(&cfg));
        assert!(RoleSelection::Mailbox.runs(Role::Mailbox) && !RoleSelection::Mailbox.runs(Role::Frontend));
    }
}

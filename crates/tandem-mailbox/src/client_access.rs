//! Client access settings (Get-/Set-ClientAccessServer and the virtual directories' internal and
//! external URLs), kept in the mailbox store's settings map and read on every Autodiscover
//! request, so `tandem exchange set-client-access-server` applies without a restart.

use std::net::{IpAddr, SocketAddr};

use tandem_config::MailboxConfig;
use tandem_store::Store;

use crate::data::settings::{server_settings_with, set_server_settings};
use crate::{DataError, paths};

/// One settable URL: its store key, its cmdlet parameter (kebab-case) and its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    AutoDiscoverServiceInternalUri,
    EwsInternalUrl,
    EwsExternalUrl,
    OwaInternalUrl,
    OwaExternalUrl,
    OabInternalUrl,
    OabExternalUrl,
    UmInternalUrl,
    UmExternalUrl,
}

impl Setting {
    pub const ALL: [Setting; 9] = [
        Setting::AutoDiscoverServiceInternalUri,
        Setting::EwsInternalUrl,
        Setting::EwsExternalUrl,
        Setting::OwaInternalUrl,
        Setting::OwaExternalUrl,
        Setting::OabInternalUrl,
        Setting::OabExternalUrl,
        Setting::UmInternalUrl,
        Setting::UmExternalUrl,
    ];

    fn key(self) -> &'static str {
        match self {
            Setting::AutoDiscoverServiceInternalUri => "cas.autodiscover_service_internal_uri",
            Setting::EwsInternalUrl => "cas.ews_internal_url",
            Setting::EwsExternalUrl => "cas.ews_external_url",
            Setting::OwaInternalUrl => "cas.owa_internal_url",
            Setting::OwaExternalUrl => "cas.owa_external_url",
            Setting::OabInternalUrl => "cas.oab_internal_url",
            Setting::OabExternalUrl => "cas.oab_external_url",
            Setting::UmInternalUrl => "cas.um_internal_url",
            Setting::UmExternalUrl => "cas.um_external_url",
        }
    }

    /// The name Exchange shows (Get-ClientAccessServer, Get-WebServicesVirtualDirectory…).
    pub fn label(self) -> &'static str {
        match self {
            Setting::AutoDiscoverServiceInternalUri => "AutoDiscoverServiceInternalUri",
            Setting::EwsInternalUrl => "EwsInternalUrl",
            Setting::EwsExternalUrl => "EwsExternalUrl",
            Setting::OwaInternalUrl => "OwaInternalUrl",
            Setting::OwaExternalUrl => "OwaExternalUrl",
            Setting::OabInternalUrl => "OabInternalUrl",
            Setting::OabExternalUrl => "OabExternalUrl",
            Setting::UmInternalUrl => "UmInternalUrl",
            Setting::UmExternalUrl => "UmExternalUrl",
        }
    }
}

/// Why a value is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingError {
    #[error("{label}: `{value}` is not an absolute https:// URL (or an empty value to clear it)")]
    NotHttpsUrl { label: &'static str, value: String },
}

/// Checks a value for a setting: an absolute `https://` URL with a host, or empty (`$null`).
pub fn validate(setting: Setting, value: &str) -> Result<(), SettingError> {
    let bad = || SettingError::NotHttpsUrl { label: setting.label(), value: value.to_owned() };
    if value.is_empty() {
        return Ok(());
    }
    let rest = value.strip_prefix("https://").ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(())
}

/// The values in force: each is the stored one, else the default; `None` means `$null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAccess {
    /// The server's name (the first label of its FQDN, as Exchange shows it).
    pub name: String,
    pub fqdn: String,
    values: Vec<(Setting, Option<String>, bool)>,
}

impl ClientAccess {
    /// The value of a setting, `None` when it is `$null`.
    pub fn get(&self, s: Setting) -> Option<&str> {
        self.values.iter().find(|(k, _, _)| *k == s).and_then(|(_, v, _)| v.as_deref())
    }

    /// Every setting with its value and whether it was set by an administrator.
    pub fn entries(&self) -> impl Iterator<Item = (Setting, Option<&str>, bool)> {
        self.values.iter().map(|(k, v, set)| (*k, v.as_deref(), *set))
    }
}

/// The defaults derived from the configuration. URLs handed to clients must be reachable from
/// this machine as they stand, so the web-service URLs use the listen address (as `tandem status`
/// prints it) unless the role listens on every address, where the FQDN is used.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub fqdn: String,
    /// `:port` when the HTTPS listener is not on 443, else empty.
    pub port_suffix: String,
    pub reachable_base: String,
}

impl Defaults {
    pub fn of(config: &MailboxConfig) -> Defaults {
        Defaults {
            fqdn: config.fqdn.to_string(),
            port_suffix: match config.https_listen.port() {
                443 => String::new(),
                port => format!(":{port}"),
            },
            reachable_base: reachable_base(config.https_listen, config.fqdn.as_str()),
        }
    }

    fn default(&self, s: Setting) -> Option<String> {
        let b = &self.reachable_base;
        match s {
            // Exchange's form (the server's name), with the port when the listener is not on 443,
            // so the default URI answers as it stands.
            Setting::AutoDiscoverServiceInternalUri => {
                Some(format!("https://{}{}/Autodiscover/Autodiscover.xml", self.fqdn, self.port_suffix))
            }
            Setting::EwsInternalUrl | Setting::EwsExternalUrl => Some(format!("{b}{}", paths::EWS)),
            Setting::OabInternalUrl => Some(format!("{b}/OAB/")),
            Setting::UmInternalUrl => Some(format!("{b}/UnifiedMessaging/Service.asmx")),
            // No web client is served yet (issue 16), so no OWA URL is published unless an
            // administrator sets one (`--owa-internal-url`): POX's WEB protocol and the SOAP
            // WebClientUrls settings then name it.
            Setting::OwaInternalUrl | Setting::OwaExternalUrl => None,
            Setting::OabExternalUrl | Setting::UmExternalUrl => None,
        }
    }
}

/// `https://host[:port]` for a listen address, as `tandem status` prints it.
pub fn reachable_base(addr: SocketAddr, fqdn: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => fqdn.to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    if addr.port() == 443 { format!("https://{host}") } else { format!("https://{host}:{}", addr.port()) }
}

/// Reads the settings in force (one query).
pub async fn load(store: &Store, defaults: &Defaults) -> Result<ClientAccess, DataError> {
    let stored = server_settings_with(store, "cas.").await?;
    let values = Setting::ALL
        .iter()
        .map(|s| match stored.iter().find(|(k, _)| k == s.key()) {
            Some((_, v)) if v.is_empty() => (*s, None, true),
            Some((_, v)) => (*s, Some(v.clone()), true),
            None => (*s, defaults.default(*s), false),
        })
        .collect();
    let name = defaults.fqdn.split('.').next().unwrap_or(&defaults.fqdn).to_ascii_uppercase();
    Ok(ClientAccess { name, fqdn: defaults.fqdn.clone(), values })
}

/// Stores new values (all or nothing); an empty value stores `$null`.
pub async fn set(store: &Store, changes: &[(Setting, String)]) -> Result<(), SetError> {
    for (s, v) in changes {
        validate(*s, v)?;
    }
    let values: Vec<(&str, &str)> = changes.iter().map(|(s, v)| (s.key(), v.as_str())).collect();
    set_server_settings(store, &values).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error(transparent)]
    Invalid(#[from] SettingError),
    #[error(transparent)]
    Store(#[from] DataError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_urls() {
        assert!(validate(Setting::EwsInternalUrl, "https://mail.x.com/EWS/Exchange.asmx").is_ok());
        assert!(validate(Setting::EwsInternalUrl, "").is_ok());
        assert!(validate(Setting::EwsInternalUrl, "http://mail.x.com/").is_err());
        assert!(validate(Setting::EwsInternalUrl, "https:///x").is_err());
        assert!(validate(Setting::EwsInternalUrl, "https://a b/").is_err());
    }

    #[test]
    fn reachable_bases() {
        assert_eq!(reachable_base("127.0.0.1:8443".parse().unwrap(), "mail.x.com"), "https://127.0.0.1:8443");
        assert_eq!(reachable_base("0.0.0.0:443".parse().unwrap(), "mail.x.com"), "https://mail.x.com");
    }

    #[tokio::test]
    async fn stores_and_reads_settings() {
        let db = tandem_store::testing::TestDatabase::sqlite();
        let store = Store::open(&db.url, crate::MIGRATIONS).await.unwrap();
        let d = Defaults {
            fqdn: "mail.x.com".into(),
            port_suffix: ":1".into(),
            reachable_base: "https://127.0.0.1:1".into(),
        };
        let ca = load(&store, &d).await.unwrap();
        assert_eq!(ca.get(Setting::EwsExternalUrl), Some("https://127.0.0.1:1/EWS/Exchange.asmx"));
        assert_eq!(
            ca.get(Setting::AutoDiscoverServiceInternalUri),
            Some("https://mail.x.com:1/Autodiscover/Autodiscover.xml")
        );
        assert_eq!(ca.name, "MAIL");
        set(
            &store,
            &[
                (Setting::EwsExternalUrl, "https://mail.x.com/EWS/Exchange.asmx".into()),
                (Setting::OabInternalUrl, String::new()),
            ],
        )
        .await
        .unwrap();
        let ca = load(&store, &d).await.unwrap();
        assert_eq!(ca.get(Setting::EwsExternalUrl), Some("https://mail.x.com/EWS/Exchange.asmx"));
        assert_eq!(ca.get(Setting::OabInternalUrl), None);
        assert!(set(&store, &[(Setting::UmExternalUrl, "ftp://x".into())]).await.is_err());
    }
}

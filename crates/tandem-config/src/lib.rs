//! `tandem.toml` parsed into a [`Config`] that is complete and valid by construction.
//!
//! The file is read into a raw serde shape that rejects unknown keys (the error names the key's
//! dotted path), then resolved: every default is a named constant or function below, values that
//! depend on the domain (host names) are derived here once, and relative paths are anchored.
//! Nothing downstream re-validates.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tandem_types::{DomainName, ParseError};

pub mod endpoints;
pub use endpoints::{Endpoints, FrontendEndpoints, MailboxEndpoints, RoleSelection, paths};

/// The seed's example organisation.
pub const DEFAULT_DOMAIN: &str = "litwareinc.com";
/// Where `tandem up` keeps its state when no `--data-dir` is given.
pub const DEFAULT_DATA_DIR: &str = "./tandem-data";
/// Host label of the mailbox server (Exchange's "mail.<domain>").
pub const DEFAULT_MAILBOX_HOST_LABEL: &str = "mail";
/// Host label the seed's DNS step points at the mailbox server.
pub const AUTODISCOVER_HOST_LABEL: &str = "autodiscover";
/// Host label of the Front End pool.
pub const DEFAULT_POOL_HOST_LABEL: &str = "pool";
/// Host label SIP clients use for automatic sign-in (`sip.<domain>`).
pub const SIP_HOST_LABEL: &str = "sip";
/// Mailbox role HTTPS (Autodiscover, EWS, metadata). Exchange uses 443; a lab needs no root.
pub const DEFAULT_MAILBOX_HTTPS_LISTEN: &str = "127.0.0.1:8443";
/// Front End HTTPS (metadata, web client); Skype for Business uses 4443 for external web services.
pub const DEFAULT_FRONTEND_HTTPS_LISTEN: &str = "127.0.0.1:4443";
pub const DEFAULT_SIP_UDP_LISTEN: &str = "127.0.0.1:5060";
pub const DEFAULT_SIP_TCP_LISTEN: &str = "127.0.0.1:5060";
pub const DEFAULT_SIP_TLS_LISTEN: &str = "127.0.0.1:5061";
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Digest algorithms the registrar challenges with, in order. MD5 alone by default: Debian's
/// baresip (libre) and sipsak give up when a challenge names an algorithm they do not know, even
/// next to MD5; SHA-256 (RFC 8760) is offered when listed here.
pub const DEFAULT_SIP_DIGEST_ALGORITHMS: &[&str] = &["MD5"];
/// SIP requests one source address may send per second before it is slowed (burst: twice this).
pub const DEFAULT_SIP_REQUESTS_PER_SECOND_PER_SOURCE: u32 = 2000;
/// A certificate is succeeded this many days before it expires: a token-signing certificate gets
/// a successor published as "next", a TLS certificate is reissued.
pub const DEFAULT_CERT_RENEW_BEFORE_DAYS: u32 = 60;
/// Expiry warnings (logs, `/metrics`, `tandem integration status`, `tandem cert list`) at these
/// many days left.
pub const DEFAULT_CERT_WARN_DAYS: &[u32] = &[60, 30, 7];
/// How long a successor is published before it signs, and its predecessor kept published after:
/// partners refresh metadata every 5 minutes, so a day leaves every one of them time to.
pub const DEFAULT_CERT_OVERLAP_SECONDS: u64 = 86_400;
/// How often the running roles look at their certificates.
pub const DEFAULT_CERT_CHECK_INTERVAL_SECONDS: u64 = 300;
/// Lifetime of a generated token-signing certificate (Exchange's Auth certificate: 5 years).
pub const DEFAULT_CERT_SIGNING_VALIDITY_DAYS: u32 = 5 * 365;
/// Account lockout (Active Directory's "Account lockout threshold"): failed password sign-ins
/// within the observation window that lock the account. Microsoft's security baseline for
/// Windows recommends 10; 0 turns account lockout off, as in AD.
pub const DEFAULT_LOCKOUT_THRESHOLD: u32 = 10;
/// AD's "Reset account lockout counter after": minutes after the last failure that clear the count.
pub const DEFAULT_LOCKOUT_OBSERVATION_WINDOW_MINUTES: u32 = 15;
/// AD's "Account lockout duration", in minutes.
pub const DEFAULT_LOCKOUT_DURATION_MINUTES: u32 = 15;
/// Failed sign-ins from one source address, over any accounts, within the observation window
/// that lock that address out for the lockout duration (higher than the account threshold:
/// many users may share one address behind NAT). 0 turns it off.
pub const DEFAULT_LOCKOUT_SOURCE_THRESHOLD: u32 = 100;
/// When a UDP registration is reached at its source address instead of its Contact.
pub const DEFAULT_SIP_NAT_DETECTION: NatDetection = NatDetection::Auto;
/// Concurrent SIP stream connections (TCP, TLS, WebSocket) per listener; beyond it new ones are
/// closed at once. Kamailio's `tcp_max_connections` default.
pub const DEFAULT_SIP_MAX_STREAM_CONNECTIONS: u32 = 2048;
/// Concurrent SIP stream connections from one source address (one NAT may hide many clients).
pub const DEFAULT_SIP_MAX_STREAM_CONNECTIONS_PER_SOURCE: u32 = 64;
/// A SIP stream with no traffic for this long is closed. RFC 5626 clients send a CRLF keep-alive
/// well within it (its recommended interval is 95 to 120 s).
pub const DEFAULT_SIP_STREAM_IDLE_TIMEOUT_SECS: u32 = 300;
/// Presence subscriptions one user may hold at once (a contact list of this many people).
pub const DEFAULT_SIP_MAX_SUBSCRIPTIONS_PER_USER: u32 = 1000;
/// Instant messages kept for one offline user before further ones are refused.
pub const DEFAULT_SIP_MAX_OFFLINE_MESSAGES_PER_USER: u32 = 500;
/// Seconds without a message after which a page-mode IM conversation ends and its transcript is
/// written to each participant's Conversation History (Skype for Business clients close an idle
/// conversation window after about as long). `tandem cs set-conversation-history-configuration
/// --idle-timeout` overrides it in the running Front End.
pub const DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS: u32 = 600;
/// Connections one HTTPS listener serves at once; past it a new connection is closed before any
/// TLS work, so a flood of idle connections cannot take every file descriptor from the other
/// listeners (IIS's per-site connection limit plays this part for Exchange).
pub const DEFAULT_HTTPS_MAX_CONNECTIONS: u32 = 4096;
/// Connections one source address holds on one HTTPS listener at once: one client cannot fill
/// the listener, while many users behind one NAT still fit.
pub const DEFAULT_HTTPS_MAX_CONNECTIONS_PER_SOURCE: u32 = 256;
/// Seconds a new HTTPS connection has to finish its TLS handshake.
pub const DEFAULT_HTTPS_HANDSHAKE_TIMEOUT_SECS: u32 = 10;
/// Seconds a client has to send a request's headers, on a new connection and between the
/// requests of a kept-alive one (HTTP/1.1); a slow client is closed after it (slowloris).
pub const DEFAULT_HTTPS_HEADER_READ_TIMEOUT_SECS: u32 = 30;
/// Seconds an HTTPS connection (HTTP/1.1 or HTTP/2) may carry no bytes in either direction while
/// no request is in progress before it is closed (IIS's connectionTimeout default, 120 s).
/// Streaming notifications send a keep-alive every 30 s, well within it.
pub const DEFAULT_HTTPS_IDLE_TIMEOUT_SECS: u32 = 120;
/// EWS pull and streaming subscriptions one account (an owner on one mailbox) may hold at once:
/// Exchange's default EwsMaxSubscriptions throttling policy. Beyond it Subscribe answers
/// `ErrorExceededSubscriptionCount`; other accounts still subscribe.
pub const DEFAULT_EWS_MAX_SUBSCRIPTIONS_PER_ACCOUNT: u32 = 5000;
/// EWS subscriptions one Mailbox role holds at once, over all accounts (`ErrorServerBusy`).
pub const DEFAULT_EWS_MAX_SUBSCRIPTIONS: u32 = 50_000;
/// Endpoints (devices) one user may have registered at once: Skype for Business's
/// MaxEndpointsPerUser (Set-CsRegistrarConfiguration) default. Beyond it a REGISTER for a new
/// endpoint gets 403.
pub const DEFAULT_SIP_MAX_ENDPOINTS_PER_USER: u32 = 8;
/// Overload control: a new SIP request that waited longer than this many milliseconds between
/// its arrival and its handling is answered `503` with `Retry-After` instead of being handled
/// (RFC 6357: refusing early and cheaply keeps the server's goodput near its maximum, where
/// handling late work lets every transaction time out). 100 ms is well under SIP's T1 (500 ms),
/// so a refused client hears back before it would retransmit. 0 turns it off.
pub const DEFAULT_SIP_MAX_QUEUE_DELAY_MS: u32 = 100;
/// The UDP port range the Front End's own media (voicemail) takes RTP ports from, inclusive.
pub const DEFAULT_MEDIA_PORT_MIN: u16 = 40000;
pub const DEFAULT_MEDIA_PORT_MAX: u16 = 40999;
/// Longest voicemail recorded, in seconds (Exchange UM's MaxCallDuration for call answering,
/// five minutes).
pub const DEFAULT_VOICEMAIL_MAX_SECONDS: u32 = 300;
/// Seconds of silence after something was said that end a voicemail recording.
pub const DEFAULT_VOICEMAIL_SILENCE_SECONDS: u32 = 10;
/// Seconds one ring of `set-um-mailbox --call-answering-rings` lasts: the default four rings are
/// the 20 s after which an unanswered call goes to voicemail.
pub const DEFAULT_VOICEMAIL_SECONDS_PER_RING: u32 = 5;
/// Name of the configuration file `tandem up` writes into its data directory.
pub const CONFIG_FILE_NAME: &str = "tandem.toml";

/// A commented example; `tandem config example` prints it and a test parses it.
pub const EXAMPLE: &str = include_str!("example.toml");

/// Why a configuration could not be used. Each message is one line that names the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: `{key}`: {message}")]
    Key { file: String, key: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line for log shippers.
    Json,
}

/// How the registrar decides that a UDP client sits behind a NAT, so that requests to it go to
/// the address its REGISTER came from rather than to its Contact (as Kamailio's `nat_uac_test`
/// does). Connection-oriented transports and RFC 5626 flows (`ob`, `reg-id`) always use the
/// connection or source they registered over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatDetection {
    /// Behind a NAT when the top Via's sent-by differs from the source address or port.
    #[default]
    Auto,
    /// Every UDP registration is reached at its source address.
    Always,
    /// Every UDP registration is reached at its Contact (RFC 3261 as written).
    Never,
}

/// Where a store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file (the embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL database URL (a pool).
    Postgres(String),
}

impl StoreLocation {
    fn parse(raw: Option<&str>, default_file: PathBuf) -> Result<Self, String> {
        match raw {
            None => Ok(StoreLocation::Sqlite(default_file)),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreLocation::Postgres(url.to_owned()))
            }
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(StoreLocation::Sqlite(PathBuf::from(path))),
                _ => Err(format!(
                    "`{url}` is not a database URL: use sqlite:///absolute/path.db or postgres://user@host/db"
                )),
            },
        }
    }

    pub fn url(&self) -> String {
        match self {
            StoreLocation::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreLocation::Postgres(u) => u.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `tandem_frontend=debug,info`.
    pub level: String,
}

/// Bounds of one role's HTTPS listener (the same keys in `[mailbox]` and `[frontend]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpsLimits {
    pub max_connections: u32,
    pub max_connections_per_source: u32,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for HttpsLimits {
    fn default() -> Self {
        HttpsLimits {
            max_connections: DEFAULT_HTTPS_MAX_CONNECTIONS,
            max_connections_per_source: DEFAULT_HTTPS_MAX_CONNECTIONS_PER_SOURCE,
            handshake_timeout: seconds(DEFAULT_HTTPS_HANDSHAKE_TIMEOUT_SECS),
            header_read_timeout: seconds(DEFAULT_HTTPS_HEADER_READ_TIMEOUT_SECS),
            idle_timeout: seconds(DEFAULT_HTTPS_IDLE_TIMEOUT_SECS),
        }
    }
}

/// Caps on EWS subscriptions (Mailbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EwsLimits {
    /// Per account: an owner (a signed-in user, or a partner application acting as a user) on
    /// one mailbox.
    pub max_subscriptions_per_account: u32,
    /// Per Mailbox role, over all accounts.
    pub max_subscriptions: u32,
}

impl Default for EwsLimits {
    fn default() -> Self {
        EwsLimits {
            max_subscriptions_per_account: DEFAULT_EWS_MAX_SUBSCRIPTIONS_PER_ACCOUNT,
            max_subscriptions: DEFAULT_EWS_MAX_SUBSCRIPTIONS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxConfig {
    pub enabled: bool,
    /// The mailbox server's FQDN (the seed's atl-exchange-001.litwareinc.com).
    pub fqdn: DomainName,
    /// `autodiscover.<domain>`, served by the same listener.
    pub autodiscover_fqdn: DomainName,
    pub https_listen: SocketAddr,
    pub store: StoreLocation,
    pub https_limits: HttpsLimits,
    pub ews_limits: EwsLimits,
    /// Seconds one minute of an EWS push subscription's StatusFrequency lasts, and the unit of
    /// its retry back-off (a retry after half of it, then doubling): 60, Exchange's timing
    /// ([`DEFAULT_EWS_PUSH_MINUTE_SECONDS`]); smaller only to test push timing without waiting.
    pub ews_push_minute_seconds: u32,
    /// EWS requests one user may have in progress at once (Exchange's throttling policy
    /// EwsMaxConcurrency, [`DEFAULT_EWS_MAX_CONCURRENCY`]); past it a request is refused with
    /// ErrorServerBusy and a BackOffMilliseconds hint. GetStreamingEvents connections do not count.
    pub ews_max_concurrency: u32,
    /// Seconds between the retention sweeps that purge items kept in Recoverable Items longer
    /// than their mailbox's RetainDeletedItemsFor, unless the mailbox is on hold
    /// ([`DEFAULT_RETENTION_SWEEP_SECONDS`]); smaller only to test retention without waiting.
    pub retention_sweep_seconds: u32,
}

/// How often the Mailbox looks for items past their deleted-item retention (an hour).
pub const DEFAULT_RETENTION_SWEEP_SECONDS: u32 = 3600;

/// Exchange's default EwsMaxConcurrency.
pub const DEFAULT_EWS_MAX_CONCURRENCY: u32 = 27;

/// Exchange's push timing: StatusFrequency counts real minutes, the first retry comes after 30 s.
pub const DEFAULT_EWS_PUSH_MINUTE_SECONDS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendConfig {
    pub enabled: bool,
    /// The Front End pool FQDN.
    pub pool_fqdn: DomainName,
    /// `sip.<domain>`, for client automatic sign-in.
    pub sip_fqdn: DomainName,
    pub https_listen: SocketAddr,
    pub sip_udp_listen: SocketAddr,
    pub sip_tcp_listen: SocketAddr,
    pub sip_tls_listen: SocketAddr,
    /// Flood protection per source address; 0 turns it off.
    pub sip_requests_per_second_per_source: u32,
    /// `MD5` and/or `SHA-256`, in challenge order.
    pub sip_digest_algorithms: Vec<String>,
    pub sip_nat_detection: NatDetection,
    /// Stream connections per SIP listener (TCP, TLS, and WebSocket counted together).
    pub sip_max_stream_connections: u32,
    pub sip_max_stream_connections_per_source: u32,
    pub sip_stream_idle_timeout_secs: u32,
    pub sip_max_subscriptions_per_user: u32,
    pub sip_max_offline_messages_per_user: u32,
    pub sip_max_endpoints_per_user: u32,
    /// Overload control bound ([`DEFAULT_SIP_MAX_QUEUE_DELAY_MS`]); 0 turns it off.
    pub sip_max_queue_delay_ms: u32,
    /// Seconds of silence that end an IM conversation ([`DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS`]).
    pub conversation_idle_timeout: u32,
    /// RTP ports of the Front End's own media, inclusive ([`DEFAULT_MEDIA_PORT_MIN`]–[`DEFAULT_MEDIA_PORT_MAX`]).
    pub media_port_min: u16,
    pub media_port_max: u16,
    /// Voicemail recording limits ([`DEFAULT_VOICEMAIL_MAX_SECONDS`], [`DEFAULT_VOICEMAIL_SILENCE_SECONDS`]).
    pub voicemail_max_seconds: u32,
    pub voicemail_silence_seconds: u32,
    /// One ring's length ([`DEFAULT_VOICEMAIL_SECONDS_PER_RING`]).
    pub voicemail_seconds_per_ring: u32,
    pub store: StoreLocation,
    pub https_limits: HttpsLimits,
}

/// Certificate lifecycle: automatic rollover of the token-signing certificates and renewal of the
/// TLS certificates, with the same thresholds for both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatesConfig {
    /// Days before expiry a certificate is succeeded; 0 turns automatic rollover off (warnings
    /// stay, TLS certificates are still renewed at the first warning).
    pub renew_before_days: u32,
    /// Warning thresholds in days, largest first.
    pub warn_days: Vec<u32>,
    /// Seconds a successor is published before it takes over, and its predecessor kept after.
    pub overlap_seconds: u64,
    pub check_interval_seconds: u64,
    /// Lifetime of the token-signing certificates tandem generates.
    pub signing_validity_days: u32,
    /// Days added to the clock when judging expiry (a test knob that moves time without waiting;
    /// 0 in production). Certificates are still issued and tokens checked on the real clock.
    pub clock_offset_days: i64,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        CertificatesConfig {
            renew_before_days: DEFAULT_CERT_RENEW_BEFORE_DAYS,
            warn_days: DEFAULT_CERT_WARN_DAYS.to_vec(),
            overlap_seconds: DEFAULT_CERT_OVERLAP_SECONDS,
            check_interval_seconds: DEFAULT_CERT_CHECK_INTERVAL_SECONDS,
            signing_validity_days: DEFAULT_CERT_SIGNING_VALIDITY_DAYS,
            clock_offset_days: 0,
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The SIP domain and primary SMTP domain of the organisation.
    pub domain: DomainName,
    /// Absolute: certificates, embedded databases and the written config live here.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    /// The directory (users and credentials), shared by both roles as Active Directory is.
    pub directory: StoreLocation,
    pub mailbox: MailboxConfig,
    pub frontend: FrontendConfig,
    pub certificates: CertificatesConfig,
    /// Static host table for the roles' own resolvers; a lab maps the deployment names to
    /// loopback here, a real deployment leaves it empty and uses DNS.
    pub hosts: BTreeMap<DomainName, IpAddr>,
    /// The account lockout policy for password sign-ins (in `[directory]`).
    pub lockout: LockoutConfig,
}

/// Account lockout policy: counters of failed password sign-ins per account and per source
/// address, each answered with growing back-off and, at its threshold, a temporary lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures that lock an account; 0: never.
    pub threshold: u32,
    /// A counter resets when no failure was counted for this long.
    pub observation_window: Duration,
    /// How long a lockout lasts.
    pub duration: Duration,
    /// Failures that lock a source address; 0: never.
    pub source_threshold: u32,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            threshold: DEFAULT_LOCKOUT_THRESHOLD,
            observation_window: minutes(DEFAULT_LOCKOUT_OBSERVATION_WINDOW_MINUTES),
            duration: minutes(DEFAULT_LOCKOUT_DURATION_MINUTES),
            source_threshold: DEFAULT_LOCKOUT_SOURCE_THRESHOLD,
        }
    }
}

fn minutes(m: u32) -> Duration {
    Duration::from_secs(u64::from(m) * 60)
}

fn seconds(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Whole seconds in a duration built by [`seconds`], for writing it back.
fn whole_seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

// ---- raw shape: exactly the keys a file may contain ----

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    deployment: RawDeployment,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    directory: RawDirectory,
    #[serde(default)]
    mailbox: RawMailbox,
    #[serde(default)]
    frontend: RawFrontend,
    #[serde(default)]
    certificates: RawCertificates,
    #[serde(default)]
    hosts: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    domain: Option<String>,
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    database_url: Option<String>,
    lockout_threshold: Option<u32>,
    lockout_observation_window_minutes: Option<u32>,
    lockout_duration_minutes: Option<u32>,
    lockout_source_threshold: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    enabled: Option<bool>,
    fqdn: Option<String>,
    https_listen: Option<String>,
    https_max_connections: Option<u32>,
    https_max_connections_per_source: Option<u32>,
    https_handshake_timeout_secs: Option<u32>,
    https_header_read_timeout_secs: Option<u32>,
    https_idle_timeout_secs: Option<u32>,
    ews_max_subscriptions_per_account: Option<u32>,
    ews_max_subscriptions: Option<u32>,
    database_url: Option<String>,
    ews_push_minute_seconds: Option<u32>,
    ews_max_concurrency: Option<u32>,
    retention_sweep_seconds: Option<u32>,
}

/// The HTTPS listener keys, which `[mailbox]` and `[frontend]` both have (no `flatten`: it does
/// not combine with `deny_unknown_fields`).
#[derive(Debug, Clone, Copy)]
struct RawHttps {
    max_connections: Option<u32>,
    max_connections_per_source: Option<u32>,
    handshake_timeout_secs: Option<u32>,
    header_read_timeout_secs: Option<u32>,
    idle_timeout_secs: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontend {
    enabled: Option<bool>,
    pool_fqdn: Option<String>,
    https_listen: Option<String>,
    sip_udp_listen: Option<String>,
    sip_tcp_listen: Option<String>,
    sip_tls_listen: Option<String>,
    sip_requests_per_second_per_source: Option<u32>,
    sip_digest_algorithms: Option<Vec<String>>,
    sip_nat_detection: Option<NatDetection>,
    sip_max_stream_connections: Option<u32>,
    sip_max_stream_connections_per_source: Option<u32>,
    sip_stream_idle_timeout_secs: Option<u32>,
    sip_max_subscriptions_per_user: Option<u32>,
    sip_max_offline_messages_per_user: Option<u32>,
    sip_max_endpoints_per_user: Option<u32>,
    sip_max_queue_delay_ms: Option<u32>,
    conversation_idle_timeout: Option<u32>,
    media_port_min: Option<u16>,
    media_port_max: Option<u16>,
    voicemail_max_seconds: Option<u32>,
    voicemail_silence_seconds: Option<u32>,
    voicemail_seconds_per_ring: Option<u32>,
    https_max_connections: Option<u32>,
    https_max_connections_per_source: Option<u32>,
    https_handshake_timeout_secs: Option<u32>,
    https_header_read_timeout_secs: Option<u32>,
    https_idle_timeout_secs: Option<u32>,
    database_url: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificates {
    renew_before_days: Option<u32>,
    warn_days: Option<Vec<u32>>,
    overlap_seconds: Option<u64>,
    check_interval_seconds: Option<u64>,
    signing_validity_days: Option<u32>,
    clock_offset_days: Option<i64>,
}

/// What a caller may impose over the file (the `up` flags).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub domain: Option<DomainName>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Reads and resolves a file; relative paths in it are taken from the file's folder.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file)
            .map_err(|source| ConfigError::Read { file: file.display().to_string(), source })?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &file.display().to_string(), &base, overrides)
    }

    /// Parses configuration text. `origin` names it in errors; `base` anchors relative paths.
    pub fn parse(text: &str, origin: &str, base: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::Syntax { file: origin.to_owned(), message: toml_message(&e, text) })?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = toml_message(e.inner(), text);
            ConfigError::Key { file: origin.to_owned(), key, message }
        })?;
        resolve(raw, origin, base, overrides)
    }

    /// The configuration `tandem up` uses when nothing is given: the defaults for a domain.
    pub fn defaults(base: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        resolve(RawConfig::default(), "defaults", base, overrides)
    }

    /// Every host name the deployment uses, for certificates and the lab host table.
    pub fn host_names(&self) -> Vec<DomainName> {
        vec![
            self.mailbox.fqdn.clone(),
            self.mailbox.autodiscover_fqdn.clone(),
            self.frontend.pool_fqdn.clone(),
            self.frontend.sip_fqdn.clone(),
        ]
    }

    /// Renders this configuration as a file that parses back to the same value.
    pub fn to_toml(&self) -> String {
        let store = |s: &StoreLocation, default: &Path| match s {
            StoreLocation::Sqlite(p) if p == default => None,
            other => Some(other.url()),
        };
        let raw = RawConfig {
            deployment: RawDeployment { domain: Some(self.domain.to_string()), data_dir: Some(self.data_dir.clone()) },
            log: RawLog { format: Some(self.log.format), level: Some(self.log.level.clone()) },
            directory: RawDirectory {
                database_url: store(&self.directory, &self.data_dir.join(DIRECTORY_DB_FILE)),
                lockout_threshold: Some(self.lockout.threshold),
                lockout_observation_window_minutes: Some(whole_minutes(self.lockout.observation_window)),
                lockout_duration_minutes: Some(whole_minutes(self.lockout.duration)),
                lockout_source_threshold: Some(self.lockout.source_threshold),
            },
            mailbox: RawMailbox {
                enabled: Some(self.mailbox.enabled),
                fqdn: Some(self.mailbox.fqdn.to_string()),
                https_listen: Some(self.mailbox.https_listen.to_string()),
                https_max_connections: Some(self.mailbox.https_limits.max_connections),
                https_max_connections_per_source: Some(self.mailbox.https_limits.max_connections_per_source),
                https_handshake_timeout_secs: Some(whole_seconds(self.mailbox.https_limits.handshake_timeout)),
                https_header_read_timeout_secs: Some(whole_seconds(self.mailbox.https_limits.header_read_timeout)),
                https_idle_timeout_secs: Some(whole_seconds(self.mailbox.https_limits.idle_timeout)),
                ews_max_subscriptions_per_account: Some(self.mailbox.ews_limits.max_subscriptions_per_account),
                ews_max_subscriptions: Some(self.mailbox.ews_limits.max_subscriptions),
                database_url: store(&self.mailbox.store, &self.data_dir.join(MAILBOX_DB_FILE)),
                ews_push_minute_seconds: Some(self.mailbox.ews_push_minute_seconds)
                    .filter(|s| *s != DEFAULT_EWS_PUSH_MINUTE_SECONDS),
                ews_max_concurrency: Some(self.mailbox.ews_max_concurrency),
                retention_sweep_seconds: Some(self.mailbox.retention_sweep_seconds)
                    .filter(|s| *s != DEFAULT_RETENTION_SWEEP_SECONDS),
            },
            frontend: RawFrontend {
                enabled: Some(self.frontend.enabled),
                pool_fqdn: Some(self.frontend.pool_fqdn.to_string()),
                https_listen: Some(self.frontend.https_listen.to_string()),
                sip_udp_listen: Some(self.frontend.sip_udp_listen.to_string()),
                sip_tcp_listen: Some(self.frontend.sip_tcp_listen.to_string()),
                sip_tls_listen: Some(self.frontend.sip_tls_listen.to_string()),
                sip_requests_per_second_per_source: Some(self.frontend.sip_requests_per_second_per_source),
                sip_digest_algorithms: Some(self.frontend.sip_digest_algorithms.clone()),
                sip_nat_detection: Some(self.frontend.sip_nat_detection),
                sip_max_stream_connections: Some(self.frontend.sip_max_stream_connections),
                sip_max_stream_connections_per_source: Some(self.frontend.sip_max_stream_connections_per_source),
                sip_stream_idle_timeout_secs: Some(self.frontend.sip_stream_idle_timeout_secs),
                sip_max_subscriptions_per_user: Some(self.frontend.sip_max_subscriptions_per_user),
                sip_max_offline_messages_per_user: Some(self.frontend.sip_max_offline_messages_per_user),
                sip_max_endpoints_per_user: Some(self.frontend.sip_max_endpoints_per_user),
                sip_max_queue_delay_ms: Some(self.frontend.sip_max_queue_delay_ms),
                conversation_idle_timeout: Some(self.frontend.conversation_idle_timeout),
                media_port_min: Some(self.frontend.media_port_min),
                media_port_max: Some(self.frontend.media_port_max),
                voicemail_max_seconds: Some(self.frontend.voicemail_max_seconds),
                voicemail_silence_seconds: Some(self.frontend.voicemail_silence_seconds),
                voicemail_seconds_per_ring: Some(self.frontend.voicemail_seconds_per_ring),
                https_max_connections: Some(self.frontend.https_limits.max_connections),
                https_max_connections_per_source: Some(self.frontend.https_limits.max_connections_per_source),
                https_handshake_timeout_secs: Some(whole_seconds(self.frontend.https_limits.handshake_timeout)),
                https_header_read_timeout_secs: Some(whole_seconds(self.frontend.https_limits.header_read_timeout)),
                https_idle_timeout_secs: Some(whole_seconds(self.frontend.https_limits.idle_timeout)),
                database_url: store(&self.frontend.store, &self.data_dir.join(FRONTEND_DB_FILE)),
            },
            certificates: RawCertificates {
                renew_before_days: Some(self.certificates.renew_before_days),
                warn_days: Some(self.certificates.warn_days.clone()),
                overlap_seconds: Some(self.certificates.overlap_seconds),
                check_interval_seconds: Some(self.certificates.check_interval_seconds),
                signing_validity_days: Some(self.certificates.signing_validity_days),
                // Written only when set, so a test knob never lands in a production file by default.
                clock_offset_days: (self.certificates.clock_offset_days != 0)
                    .then_some(self.certificates.clock_offset_days),
            },
            hosts: self.hosts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        // Serializing plain strings, bools and maps cannot fail.
        let body = toml::to_string(&raw).unwrap_or_default();
        format!("# Written by tandem; edit and check with `tandem config check`.\n{body}")
    }
}

pub const DIRECTORY_DB_FILE: &str = "directory.db";
pub const MAILBOX_DB_FILE: &str = "mailbox.db";
pub const FRONTEND_DB_FILE: &str = "frontend.db";

fn certificates(raw: RawCertificates) -> Result<CertificatesConfig, (&'static str, String)> {
    let d = CertificatesConfig::default();
    let renew_before_days = raw.renew_before_days.unwrap_or(d.renew_before_days);
    let mut warn_days = raw.warn_days.unwrap_or(d.warn_days);
    if warn_days.contains(&0) {
        return Err(("certificates.warn_days", "every threshold must be at least 1 day".into()));
    }
    warn_days.sort_unstable_by(|a, b| b.cmp(a));
    warn_days.dedup();
    let overlap_seconds = raw.overlap_seconds.unwrap_or(d.overlap_seconds);
    if overlap_seconds == 0 {
        return Err(("certificates.overlap_seconds", "must be at least 1 (partners need time to refresh)".into()));
    }
    let check_interval_seconds = raw.check_interval_seconds.unwrap_or(d.check_interval_seconds);
    if check_interval_seconds == 0 {
        return Err(("certificates.check_interval_seconds", "must be at least 1".into()));
    }
    let signing_validity_days = raw.signing_validity_days.unwrap_or(d.signing_validity_days);
    if signing_validity_days <= renew_before_days {
        return Err((
            "certificates.signing_validity_days",
            format!(
                "{signing_validity_days} must exceed certificates.renew_before_days ({renew_before_days}), or every new certificate would be rolled at once"
            ),
        ));
    }
    Ok(CertificatesConfig {
        renew_before_days,
        warn_days,
        overlap_seconds,
        check_interval_seconds,
        signing_validity_days,
        clock_offset_days: raw.clock_offset_days.unwrap_or(0),
    })
}

/// Minutes in a duration built by [`minutes`], for writing it back.
fn whole_minutes(d: Duration) -> u32 {
    u32::try_from(d.as_secs() / 60).unwrap_or(u32::MAX)
}

fn digest_algorithms(raw: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let list = raw.unwrap_or_else(|| DEFAULT_SIP_DIGEST_ALGORITHMS.iter().map(|s| (*s).to_owned()).collect());
    if list.is_empty() {
        return Err("must name at least one of \"MD5\", \"SHA-256\"".into());
    }
    let mut out: Vec<String> = Vec::new();
    for a in list {
        let canon = match a.to_ascii_uppercase().as_str() {
            "MD5" => "MD5",
            "SHA-256" => "SHA-256",
            _ => return Err(format!("`{a}` is not a digest algorithm; use \"MD5\" and/or \"SHA-256\"")),
        };
        if !out.iter().any(|x| x == canon) {
            out.push(canon.to_owned());
        }
    }
    Ok(out)
}

/// `line N: what`, from a TOML error, on one line.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let line = text.get(..span.start).map(|t| t.matches('\n').count() + 1).unwrap_or(1);
            format!("line {line}: {what}")
        }
        None => what,
    }
}

fn resolve(raw: RawConfig, origin: &str, base: &Path, ov: &Overrides) -> Result<Config, ConfigError> {
    let err = |key: &str, message: String| ConfigError::Key { file: origin.to_owned(), key: key.to_owned(), message };
    let parse_err = |key: &str, e: ParseError| err(key, e.to_string());

    let domain = match (&ov.domain, raw.deployment.domain.as_deref()) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.parse().map_err(|e| parse_err("deployment.domain", e))?,
        (None, None) => DEFAULT_DOMAIN.parse().map_err(|e| parse_err("deployment.domain", e))?,
    };
    let data_dir = ov.data_dir.clone().or(raw.deployment.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let data_dir = absolute(base, &data_dir);

    let listen = |key: &str, v: Option<&str>, default: &str| -> Result<SocketAddr, ConfigError> {
        v.unwrap_or(default)
            .parse()
            .map_err(|_| err(key, format!("`{}` is not an address:port such as 127.0.0.1:8443", v.unwrap_or(default))))
    };
    let fqdn = |key: &str, v: Option<&str>, label: &str| -> Result<DomainName, ConfigError> {
        match v {
            Some(v) => v.parse().map_err(|e| parse_err(key, e)),
            None => domain.prefixed(label).map_err(|e| parse_err(key, e)),
        }
    };
    let store =
        |key: &str, v: Option<&str>, file: &str| StoreLocation::parse(v, data_dir.join(file)).map_err(|m| err(key, m));

    // A limit of 0 would refuse everything; a limit is turned off by making it large.
    let positive = |key: &str, v: Option<u32>, default: u32| -> Result<u32, ConfigError> {
        match v.unwrap_or(default) {
            0 => Err(err(key, "must be at least 1".into())),
            n => Ok(n),
        }
    };
    let within = |key: &str, v: Option<u32>, default: u32, range: std::ops::RangeInclusive<u32>| {
        let n = v.unwrap_or(default);
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(err(key, format!("must be from {} to {} (default {default})", range.start(), range.end())))
        }
    };
    let level = raw.log.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    if level.trim().is_empty() {
        return Err(err("log.level", "must not be empty; use e.g. info or debug".into()));
    }

    let https_limits = |role: &str, raw: RawHttps| -> Result<HttpsLimits, ConfigError> {
        let key = |k: &str| format!("{role}.https_{k}");
        let secs = |k: &str, v: Option<u32>, d: u32| positive(&key(k), v, d).map(seconds);
        // A per-source cap above the listener's simply never binds.
        Ok(HttpsLimits {
            max_connections: positive(&key("max_connections"), raw.max_connections, DEFAULT_HTTPS_MAX_CONNECTIONS)?,
            max_connections_per_source: positive(
                &key("max_connections_per_source"),
                raw.max_connections_per_source,
                DEFAULT_HTTPS_MAX_CONNECTIONS_PER_SOURCE,
            )?,
            handshake_timeout: secs(
                "handshake_timeout_secs",
                raw.handshake_timeout_secs,
                DEFAULT_HTTPS_HANDSHAKE_TIMEOUT_SECS,
            )?,
            header_read_timeout: secs(
                "header_read_timeout_secs",
                raw.header_read_timeout_secs,
                DEFAULT_HTTPS_HEADER_READ_TIMEOUT_SECS,
            )?,
            idle_timeout: secs("idle_timeout_secs", raw.idle_timeout_secs, DEFAULT_HTTPS_IDLE_TIMEOUT_SECS)?,
        })
    };
    let m = &raw.mailbox;
    let mailbox_https = RawHttps {
        max_connections: m.https_max_connections,
        max_connections_per_source: m.https_max_connections_per_source,
        handshake_timeout_secs: m.https_handshake_timeout_secs,
        header_read_timeout_secs: m.https_header_read_timeout_secs,
        idle_timeout_secs: m.https_idle_timeout_secs,
    };
    let f = &raw.frontend;
    let frontend_https = RawHttps {
        max_connections: f.https_max_connections,
        max_connections_per_source: f.https_max_connections_per_source,
        handshake_timeout_secs: f.https_handshake_timeout_secs,
        header_read_timeout_secs: f.https_header_read_timeout_secs,
        idle_timeout_secs: f.https_idle_timeout_secs,
    };
    let ews_limits = EwsLimits {
        max_subscriptions_per_account: positive(
            "mailbox.ews_max_subscriptions_per_account",
            m.ews_max_subscriptions_per_account,
            DEFAULT_EWS_MAX_SUBSCRIPTIONS_PER_ACCOUNT,
        )?,
        max_subscriptions: positive(
            "mailbox.ews_max_subscriptions",
            m.ews_max_subscriptions,
            DEFAULT_EWS_MAX_SUBSCRIPTIONS,
        )?,
    };

    let mailbox = MailboxConfig {
        enabled: raw.mailbox.enabled.unwrap_or(true),
        fqdn: fqdn("mailbox.fqdn", raw.mailbox.fqdn.as_deref(), DEFAULT_MAILBOX_HOST_LABEL)?,
        autodiscover_fqdn: fqdn("mailbox.fqdn", None, AUTODISCOVER_HOST_LABEL)?,
        https_listen: listen(
            "mailbox.https_listen",
            raw.mailbox.https_listen.as_deref(),
            DEFAULT_MAILBOX_HTTPS_LISTEN,
        )?,
        store: store("mailbox.database_url", raw.mailbox.database_url.as_deref(), MAILBOX_DB_FILE)?,
        https_limits: https_limits("mailbox", mailbox_https)?,
        ews_limits,
        ews_push_minute_seconds: match raw.mailbox.ews_push_minute_seconds {
            None => DEFAULT_EWS_PUSH_MINUTE_SECONDS,
            Some(s @ 1..=60) => s,
            Some(_) => return Err(err("mailbox.ews_push_minute_seconds", "must be from 1 to 60 (default 60)".into())),
        },
        ews_max_concurrency: positive(
            "mailbox.ews_max_concurrency",
            raw.mailbox.ews_max_concurrency,
            DEFAULT_EWS_MAX_CONCURRENCY,
        )?,
        retention_sweep_seconds: match raw.mailbox.retention_sweep_seconds {
            None => DEFAULT_RETENTION_SWEEP_SECONDS,
            Some(s @ 1..=86_400) => s,
            Some(_) => {
                return Err(err("mailbox.retention_sweep_seconds", "must be from 1 to 86400 (default 3600)".into()));
            }
        },
    };
    let frontend = FrontendConfig {
        enabled: raw.frontend.enabled.unwrap_or(true),
        pool_fqdn: fqdn("frontend.pool_fqdn", raw.frontend.pool_fqdn.as_deref(), DEFAULT_POOL_HOST_LABEL)?,
        sip_fqdn: fqdn("frontend.pool_fqdn", None, SIP_HOST_LABEL)?,
        https_listen: listen(
            "frontend.https_listen",
            raw.frontend.https_listen.as_deref(),
            DEFAULT_FRONTEND_HTTPS_LISTEN,
        )?,
        sip_udp_listen: listen(
            "frontend.sip_udp_listen",
            raw.frontend.sip_udp_listen.as_deref(),
            DEFAULT_SIP_UDP_LISTEN,
        )?,
        sip_tcp_listen: listen(
            "frontend.sip_tcp_listen",
            raw.frontend.sip_tcp_listen.as_deref(),
            DEFAULT_SIP_TCP_LISTEN,
        )?,
        sip_tls_listen: listen(
            "frontend.sip_tls_listen",
            raw.frontend.sip_tls_listen.as_deref(),
            DEFAULT_SIP_TLS_LISTEN,
        )?,
        sip_requests_per_second_per_source: raw
            .frontend
            .sip_requests_per_second_per_source
            .unwrap_or(DEFAULT_SIP_REQUESTS_PER_SECOND_PER_SOURCE),
        sip_digest_algorithms: digest_algorithms(raw.frontend.sip_digest_algorithms)
            .map_err(|m| err("frontend.sip_digest_algorithms", m))?,
        sip_nat_detection: raw.frontend.sip_nat_detection.unwrap_or(DEFAULT_SIP_NAT_DETECTION),
        sip_max_stream_connections: positive(
            "frontend.sip_max_stream_connections",
            raw.frontend.sip_max_stream_connections,
            DEFAULT_SIP_MAX_STREAM_CONNECTIONS,
        )?,
        sip_max_stream_connections_per_source: positive(
            "frontend.sip_max_stream_connections_per_source",
            raw.frontend.sip_max_stream_connections_per_source,
            DEFAULT_SIP_MAX_STREAM_CONNECTIONS_PER_SOURCE,
        )?,
        sip_stream_idle_timeout_secs: positive(
            "frontend.sip_stream_idle_timeout_secs",
            raw.frontend.sip_stream_idle_timeout_secs,
            DEFAULT_SIP_STREAM_IDLE_TIMEOUT_SECS,
        )?,
        sip_max_subscriptions_per_user: positive(
            "frontend.sip_max_subscriptions_per_user",
            raw.frontend.sip_max_subscriptions_per_user,
            DEFAULT_SIP_MAX_SUBSCRIPTIONS_PER_USER,
        )?,
        sip_max_offline_messages_per_user: positive(
            "frontend.sip_max_offline_messages_per_user",
            raw.frontend.sip_max_offline_messages_per_user,
            DEFAULT_SIP_MAX_OFFLINE_MESSAGES_PER_USER,
        )?,
        sip_max_endpoints_per_user: positive(
            "frontend.sip_max_endpoints_per_user",
            raw.frontend.sip_max_endpoints_per_user,
            DEFAULT_SIP_MAX_ENDPOINTS_PER_USER,
        )?,
        sip_max_queue_delay_ms: match raw.frontend.sip_max_queue_delay_ms {
            None => DEFAULT_SIP_MAX_QUEUE_DELAY_MS,
            Some(ms @ 0..=10_000) => ms,
            Some(_) => {
                return Err(err(
                    "frontend.sip_max_queue_delay_ms",
                    format!("must be from 0 (off) to 10000 (default {DEFAULT_SIP_MAX_QUEUE_DELAY_MS})"),
                ));
            }
        },
        conversation_idle_timeout: positive(
            "frontend.conversation_idle_timeout",
            raw.frontend.conversation_idle_timeout,
            DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS,
        )?,
        media_port_min: raw.frontend.media_port_min.unwrap_or(DEFAULT_MEDIA_PORT_MIN),
        media_port_max: raw.frontend.media_port_max.unwrap_or(DEFAULT_MEDIA_PORT_MAX),
        voicemail_max_seconds: within(
            "frontend.voicemail_max_seconds",
            raw.frontend.voicemail_max_seconds,
            DEFAULT_VOICEMAIL_MAX_SECONDS,
            1..=3600,
        )?,
        voicemail_silence_seconds: within(
            "frontend.voicemail_silence_seconds",
            raw.frontend.voicemail_silence_seconds,
            DEFAULT_VOICEMAIL_SILENCE_SECONDS,
            1..=600,
        )?,
        voicemail_seconds_per_ring: within(
            "frontend.voicemail_seconds_per_ring",
            raw.frontend.voicemail_seconds_per_ring,
            DEFAULT_VOICEMAIL_SECONDS_PER_RING,
            1..=30,
        )?,
        store: store("frontend.database_url", raw.frontend.database_url.as_deref(), FRONTEND_DB_FILE)?,
        https_limits: https_limits("frontend", frontend_https)?,
    };
    if frontend.media_port_min < 1024 || frontend.media_port_min > frontend.media_port_max {
        return Err(err(
            "frontend.media_port_min",
            format!(
                "{}-{}: the media port range must start at 1024 or above and not end before it starts \
                 (default {DEFAULT_MEDIA_PORT_MIN}-{DEFAULT_MEDIA_PORT_MAX})",
                frontend.media_port_min, frontend.media_port_max
            ),
        ));
    }
    if !mailbox.enabled && !frontend.enabled {
        return Err(err("mailbox.enabled", "both roles are disabled; enable at least one".into()));
    }
    if mailbox.enabled && frontend.enabled && mailbox.https_listen == frontend.https_listen {
        return Err(err(
            "frontend.https_listen",
            "is the same address as mailbox.https_listen; each role needs its own".into(),
        ));
    }

    let positive_minutes = |key: &str, v: Option<u32>, default: u32| match v.unwrap_or(default) {
        0 => Err(err(key, "must be at least 1 (minutes)".into())),
        m => Ok(minutes(m)),
    };
    let lockout = LockoutConfig {
        threshold: raw.directory.lockout_threshold.unwrap_or(DEFAULT_LOCKOUT_THRESHOLD),
        observation_window: positive_minutes(
            "directory.lockout_observation_window_minutes",
            raw.directory.lockout_observation_window_minutes,
            DEFAULT_LOCKOUT_OBSERVATION_WINDOW_MINUTES,
        )?,
        duration: positive_minutes(
            "directory.lockout_duration_minutes",
            raw.directory.lockout_duration_minutes,
            DEFAULT_LOCKOUT_DURATION_MINUTES,
        )?,
        source_threshold: raw.directory.lockout_source_threshold.unwrap_or(DEFAULT_LOCKOUT_SOURCE_THRESHOLD),
    };

    let mut hosts = BTreeMap::new();
    for (name, ip) in raw.hosts {
        let key = format!("hosts.{name}");
        let host: DomainName = name.parse().map_err(|e| parse_err(&key, e))?;
        let ip: IpAddr = ip.parse().map_err(|_| err(&key, format!("`{ip}` is not an IP address")))?;
        hosts.insert(host, ip);
    }

    let directory = store("directory.database_url", raw.directory.database_url.as_deref(), DIRECTORY_DB_FILE)?;
    let certificates = certificates(raw.certificates).map_err(|(k, m)| err(k, m))?;
    Ok(Config {
        domain,
        data_dir,
        log: LogConfig { format: ov.log_format.or(raw.log.format).unwrap_or_default(), level },
        directory,
        mailbox,
        frontend,
        certificates,
        hosts,
        lockout,
    })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let joined = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir().map(|cwd| cwd.join(&joined)).unwrap_or(joined)
    };
    // Drop `.` components so printed paths stay readable; `..` is kept as given.
    joined.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", Path::new("/srv/tandem"), &Overrides::default())
    }

    #[test]
    fn example_config_parses() {
        let c = parse(EXAMPLE).expect("the example parses");
        assert_eq!(c.domain.as_str(), DEFAULT_DOMAIN);
        assert_eq!(c.mailbox.fqdn.as_str(), "mail.litwareinc.com");
        assert_eq!(c.frontend.pool_fqdn.as_str(), "pool.litwareinc.com");
        assert!(!c.hosts.is_empty());
        assert_eq!(c.certificates, CertificatesConfig::default(), "the example shows the defaults");
    }

    #[test]
    fn certificate_settings_have_named_defaults_and_checks() {
        let c = parse("").unwrap().certificates;
        assert_eq!(c.renew_before_days, DEFAULT_CERT_RENEW_BEFORE_DAYS);
        assert_eq!(c.warn_days, DEFAULT_CERT_WARN_DAYS);
        assert_eq!(c.overlap_seconds, DEFAULT_CERT_OVERLAP_SECONDS);
        let c = parse("[certificates]\nwarn_days = [7, 60, 30, 7]\nclock_offset_days = 1770\n").unwrap().certificates;
        assert_eq!(c.warn_days, vec![60, 30, 7]);
        assert_eq!(c.clock_offset_days, 1770);
        for text in [
            "[certificates]\nwarn_days = [0]",
            "[certificates]\noverlap_seconds = 0",
            "[certificates]\ncheck_interval_seconds = 0",
            "[certificates]\nsigning_validity_days = 30",
            "[certificates]\nrenew_befor_days = 3",
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains("certificates."), "{text}: {e}");
        }
    }

    #[test]
    fn empty_file_gives_named_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.domain.as_str(), DEFAULT_DOMAIN);
        assert_eq!(c.data_dir, PathBuf::from("/srv/tandem/tandem-data"));
        assert_eq!(c.mailbox.https_listen, DEFAULT_MAILBOX_HTTPS_LISTEN.parse().unwrap());
        assert_eq!(c.mailbox.autodiscover_fqdn.as_str(), "autodiscover.litwareinc.com");
        assert_eq!(c.directory, StoreLocation::Sqlite("/srv/tandem/tandem-data/directory.db".into()));
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.frontend.sip_nat_detection, DEFAULT_SIP_NAT_DETECTION);
        assert_eq!(c.frontend.sip_max_stream_connections, DEFAULT_SIP_MAX_STREAM_CONNECTIONS);
        assert_eq!(c.frontend.sip_max_stream_connections_per_source, DEFAULT_SIP_MAX_STREAM_CONNECTIONS_PER_SOURCE);
        assert_eq!(c.frontend.sip_stream_idle_timeout_secs, DEFAULT_SIP_STREAM_IDLE_TIMEOUT_SECS);
        assert_eq!(c.frontend.sip_max_subscriptions_per_user, DEFAULT_SIP_MAX_SUBSCRIPTIONS_PER_USER);
        assert_eq!(c.frontend.sip_max_offline_messages_per_user, DEFAULT_SIP_MAX_OFFLINE_MESSAGES_PER_USER);
    }

    /// The example states every SIP limit at its default, so the file documents them truly.
    #[test]
    fn example_states_the_sip_defaults() {
        let example = parse(EXAMPLE).unwrap();
        let defaults = parse("").unwrap();
        assert_eq!(example.frontend.sip_nat_detection, defaults.frontend.sip_nat_detection);
        for key in [
            "sip_nat_detection = \"auto\"",
            "sip_max_stream_connections = 2048",
            "sip_max_stream_connections_per_source = 64",
            "sip_stream_idle_timeout_secs = 300",
            "sip_max_subscriptions_per_user = 1000",
            "sip_max_offline_messages_per_user = 500",
            "sip_max_endpoints_per_user = 8",
            "sip_max_queue_delay_ms = 100",
            "conversation_idle_timeout = 600",
            "media_port_min = 40000",
            "media_port_max = 40999",
            "voicemail_max_seconds = 300",
            "voicemail_silence_seconds = 10",
            "voicemail_seconds_per_ring = 5",
            "ews_max_concurrency = 27",
        ] {
            assert!(EXAMPLE.contains(key), "the example lacks `{key}`");
        }
        let c = &example.frontend;
        let d = &defaults.frontend;
        assert_eq!(
            (c.sip_max_stream_connections, c.sip_max_stream_connections_per_source, c.sip_stream_idle_timeout_secs),
            (d.sip_max_stream_connections, d.sip_max_stream_connections_per_source, d.sip_stream_idle_timeout_secs)
        );
        assert_eq!(
            (c.sip_max_subscriptions_per_user, c.sip_max_offline_messages_per_user, c.sip_max_endpoints_per_user),
            (d.sip_max_subscriptions_per_user, d.sip_max_offline_messages_per_user, d.sip_max_endpoints_per_user)
        );
        assert_eq!(d.sip_max_endpoints_per_user, DEFAULT_SIP_MAX_ENDPOINTS_PER_USER);
        assert_eq!((c.sip_max_queue_delay_ms, d.sip_max_queue_delay_ms), (DEFAULT_SIP_MAX_QUEUE_DELAY_MS, 100));
        assert_eq!(parse("[frontend]\nsip_max_queue_delay_ms = 0\n").unwrap().frontend.sip_max_queue_delay_ms, 0);
        assert_eq!(c.conversation_idle_timeout, d.conversation_idle_timeout);
        assert_eq!(d.conversation_idle_timeout, DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS);
        let always = parse("[frontend]\nsip_nat_detection = \"always\"\n").unwrap();
        assert_eq!(always.frontend.sip_nat_detection, NatDetection::Always);
    }

    /// The HTTPS and EWS subscription limits: named defaults, stated in the example, settable per
    /// role, checked, and written back.
    #[test]
    fn https_and_subscription_limits_have_named_defaults() {
        let d = parse("").unwrap();
        assert_eq!(d.mailbox.https_limits, HttpsLimits::default());
        assert_eq!(d.frontend.https_limits, HttpsLimits::default());
        assert_eq!(d.mailbox.https_limits.max_connections, DEFAULT_HTTPS_MAX_CONNECTIONS);
        assert_eq!(d.mailbox.https_limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(d.mailbox.ews_limits, EwsLimits::default());
        assert_eq!(d.mailbox.ews_limits.max_subscriptions_per_account, DEFAULT_EWS_MAX_SUBSCRIPTIONS_PER_ACCOUNT);
        let example = parse(EXAMPLE).unwrap();
        assert_eq!(example.mailbox.https_limits, d.mailbox.https_limits);
        assert_eq!(example.frontend.https_limits, d.frontend.https_limits);
        assert_eq!(example.mailbox.ews_limits, d.mailbox.ews_limits);
        for key in [
            "https_max_connections = 4096",
            "https_max_connections_per_source = 256",
            "https_handshake_timeout_secs = 10",
            "https_header_read_timeout_secs = 30",
            "https_idle_timeout_secs = 120",
            "ews_max_subscriptions_per_account = 5000",
            "ews_max_subscriptions = 50000",
        ] {
            assert!(EXAMPLE.contains(key), "the example lacks `{key}`");
        }
        let c = parse(
            "[mailbox]\nhttps_max_connections = 100\nhttps_idle_timeout_secs = 5\news_max_subscriptions_per_account = 3\n\
             [frontend]\nhttps_max_connections_per_source = 7\nhttps_header_read_timeout_secs = 2\n",
        )
        .unwrap();
        assert_eq!(c.mailbox.https_limits.max_connections, 100);
        assert_eq!(c.mailbox.https_limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.mailbox.ews_limits.max_subscriptions_per_account, 3);
        assert_eq!(c.frontend.https_limits.max_connections_per_source, 7);
        assert_eq!(c.frontend.https_limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.frontend.https_limits.max_connections, DEFAULT_HTTPS_MAX_CONNECTIONS);
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
        for (text, key) in [
            ("[mailbox]\nhttps_max_connections = 0", "mailbox.https_max_connections"),
            ("[frontend]\nhttps_idle_timeout_secs = 0", "frontend.https_idle_timeout_secs"),
            ("[mailbox]\news_max_subscriptions_per_account = 0", "mailbox.ews_max_subscriptions_per_account"),
            ("[mailbox]\nhttps_idle_timeout = 3", "mailbox.https_idle_timeout"),
            ("[frontend]\news_max_subscriptions = 3", "frontend.ews_max_subscriptions"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_named_by_path() {
        let e = parse("[mailbox]\nhttps_lisen = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(e.contains("mailbox.https_lisen"), "{e}");
        let e = parse("[mailbx]\n").unwrap_err().to_string();
        assert!(e.contains("mailbx"), "{e}");
        let e = parse("[hosts]\n\"not a host\" = \"127.0.0.1\"\n").unwrap_err().to_string();
        assert!(e.contains("hosts.not a host"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("[deployment]\ndomain = \"nodots\"", "deployment.domain"),
            ("[mailbox]\nhttps_listen = \"nowhere\"", "mailbox.https_listen"),
            ("[frontend]\ndatabase_url = \"mysql://x\"", "frontend.database_url"),
            ("[log]\nformat = \"xml\"", "log.format"),
            ("[mailbox]\nenabled = false\n[frontend]\nenabled = false", "mailbox.enabled"),
            ("[frontend]\nhttps_listen = \"127.0.0.1:8443\"", "frontend.https_listen"),
            ("[frontend]\nsip_digest_algorithms = [\"SHA-1\"]", "frontend.sip_digest_algorithms"),
            ("[frontend]\nsip_digest_algorithms = []", "frontend.sip_digest_algorithms"),
            ("[frontend]\nsip_nat_detection = \"sometimes\"", "frontend.sip_nat_detection"),
            ("[frontend]\nsip_max_stream_connections = 0", "frontend.sip_max_stream_connections"),
            ("[frontend]\nsip_max_subscriptions_per_user = 0", "frontend.sip_max_subscriptions_per_user"),
            ("[frontend]\nsip_max_endpoints_per_user = 0", "frontend.sip_max_endpoints_per_user"),
            ("[frontend]\nsip_max_queue_delay_ms = 10001", "frontend.sip_max_queue_delay_ms"),
            ("[frontend]\nsip_max_queue_delay = 100", "frontend.sip_max_queue_delay"),
            ("[frontend]\nmedia_port_min = 50000\nmedia_port_max = 49000", "frontend.media_port_min"),
            ("[frontend]\nmedia_port_min = 80", "frontend.media_port_min"),
            ("[frontend]\nvoicemail_max_seconds = 0", "frontend.voicemail_max_seconds"),
            ("[frontend]\nvoicemail_seconds_per_ring = 31", "frontend.voicemail_seconds_per_ring"),
            ("[mailbox]\news_push_minute_seconds = 0", "mailbox.ews_push_minute_seconds"),
            ("[mailbox]\news_push_minute_seconds = 61", "mailbox.ews_push_minute_seconds"),
            ("[mailbox]\nretention_sweep_seconds = 0", "mailbox.retention_sweep_seconds"),
            ("[mailbox]\news_max_concurrency = 0", "mailbox.ews_max_concurrency"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert!(matches!(parse("[mailbox"), Err(ConfigError::Syntax { .. })));
    }

    #[test]
    fn written_config_round_trips() {
        let mut c = parse("[directory]\ndatabase_url = \"postgres://u@h/d\"\n").unwrap();
        c.certificates.clock_offset_days = 3;
        c.hosts.insert("mail.litwareinc.com".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let again = parse(&c.to_toml()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn lockout_policy_has_named_defaults_and_can_be_set() {
        let c = parse("").unwrap();
        assert_eq!(c.lockout, LockoutConfig::default());
        assert_eq!(c.lockout.threshold, DEFAULT_LOCKOUT_THRESHOLD);
        assert_eq!(c.lockout.duration, Duration::from_secs(15 * 60));
        let c = parse(
            "[directory]\nlockout_threshold = 3\nlockout_observation_window_minutes = 2\nlockout_duration_minutes = 30\nlockout_source_threshold = 0\n",
        )
        .unwrap();
        assert_eq!(
            c.lockout,
            LockoutConfig {
                threshold: 3,
                observation_window: Duration::from_secs(120),
                duration: Duration::from_secs(1800),
                source_threshold: 0
            }
        );
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
        let e = parse("[directory]\nlockout_duration_minutes = 0\n").unwrap_err().to_string();
        assert!(e.contains("directory.lockout_duration_minutes"), "{e}");
    }
}

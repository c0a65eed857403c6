//! Voicemail (the seed's "Exchange UM Voice Mail"), in the Front End as Exchange UM was beside
//! Skype for Business: a call nobody answers is recorded by the Front End's own user agent and
//! left in the callee's Inbox through EWS, as Exchange UM left it.
//!
//! The SIP side (`sip::answer`: which calls divert here, the dialog, the SDP answer) hands each
//! answered call to [`Service::take_message`]: the greeting (`greeting`: the callee's uploaded
//! one or the generated default) and the record tone, the recording until hang-up, the maximum
//! length or a long silence, then the message into the spool (`spool`: a store row before any
//! delivery attempt, removed only once the mailbox took it) and into the Inbox (`deposit`).

pub mod access;
pub mod deposit;
pub mod greeting;
pub mod mwi;
pub mod pin;
pub mod spool;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tandem_config::FrontendConfig;
use tandem_media::g711::Law;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exchange_connector::ExchangeConnector;
use crate::media::ports::PortPool;
use crate::media::stream::{Ended, RecordLimits, RtpStream};
use crate::media::{MediaIoError, wav};
use crate::store::{FrontendStore, UmMailboxRow};

/// Below this level (−dBov) a frame counts as silence.
const SILENCE_DBOV: u8 = 55;

/// The limits a deployment sets (`frontend.voicemail_*`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max: Duration,
    pub silence: Duration,
    pub seconds_per_ring: u32,
}

impl Settings {
    pub fn from_config(f: &FrontendConfig) -> Settings {
        Settings {
            max: Duration::from_secs(u64::from(f.voicemail_max_seconds)),
            silence: Duration::from_secs(u64::from(f.voicemail_silence_seconds)),
            seconds_per_ring: f.voicemail_seconds_per_ring,
        }
    }

    /// How long a UM-enabled user's endpoints ring before the call goes to voicemail.
    pub fn ring_time(&self, um: &UmMailboxRow) -> Duration {
        Duration::from_secs(u64::from(um.call_answering_rings.max(1)) * u64::from(self.seconds_per_ring))
    }
}

/// The voicemail user agent's media side, shared by every call it answers.
#[derive(Debug)]
pub struct Service {
    pub ports: Arc<PortPool>,
    pub store: FrontendStore,
    pub connector: Arc<ExchangeConnector>,
    pub settings: Settings,
    /// The address RTP is received on; unspecified: the one the route to the caller leaves from.
    pub media_ip: IpAddr,
    /// Wakes the spool's delivery task (a new recording, or a test).
    pub(crate) spool_wake: Notify,
    pub(crate) tasks: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

/// Who left a message for whom.
#[derive(Debug, Clone)]
pub struct CallParty {
    pub caller_uri: String,
    pub caller_name: Option<String>,
    pub callee: UmMailboxRow,
}

impl Service {
    /// The service over the Front End's store and connector, with the configured port range.
    pub fn new(
        config: &FrontendConfig,
        store: FrontendStore,
        connector: Arc<ExchangeConnector>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Service> {
        let media_ip = config.sip_udp_listen.ip();
        Arc::new(Service {
            ports: PortPool::new(media_ip, config.media_port_min, config.media_port_max),
            store,
            connector,
            settings: Settings::from_config(config),
            media_ip,
            spool_wake: Notify::new(),
            tasks: tasks.clone(),
            shutdown,
        })
    }

    /// The address to put in the SDP answer for a caller whose media is at `remote`.
    pub fn advertised_ip(&self, remote: IpAddr) -> IpAddr {
        if !self.media_ip.is_unspecified() {
            return self.media_ip;
        }
        // Connecting a UDP socket sends nothing; it only picks the route and its source.
        let probe = || -> std::io::Result<IpAddr> {
            let bind: SocketAddr = if remote.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
            let s = std::net::UdpSocket::bind(bind)?;
            s.connect(SocketAddr::new(remote, 9))?;
            Ok(s.local_addr()?.ip())
        };
        probe().unwrap_or(remote)
    }

    /// What the caller hears first: the callee's greeting (or the default), then the tone.
    pub fn greeting_for(um: &UmMailboxRow) -> Vec<i16> {
        let mut out = um
            .greeting
            .as_deref()
            .and_then(|g| match wav::from_wav(g) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(aor = %um.aor, error = %e, "the stored greeting cannot be read; the default is played");
                    None
                }
            })
            .unwrap_or_else(greeting::default_greeting);
        out.extend(greeting::record_tone());
        out
    }

    /// One answered call: greeting, tone, recording, then the message spooled and delivered.
    /// `stop` is the caller's BYE (or shutdown). Returns how the recording ended, so the
    /// dialog side hangs up when it ended on its own.
    pub async fn take_message(
        self: &Arc<Self>,
        mut stream: RtpStream,
        party: CallParty,
        stop: &CancellationToken,
    ) -> Result<Ended, MediaIoError> {
        let started_at = tandem_store::now_unix();
        let greeting = Self::greeting_for(&party.callee);
        if !stream.play(&greeting, stop).await? {
            tracing::info!(callee = %party.callee.aor, "the caller hung up during the greeting; no message");
            return Ok(Ended::Stopped);
        }
        stream.discard_pending();
        let limits = RecordLimits {
            max: self.settings.max,
            silence: self.settings.silence,
            silence_dbov: SILENCE_DBOV,
            stop_on_digit: false,
        };
        let recorded = stream.record(limits, stop).await;
        let stats = stream.stats();
        tracing::info!(
            callee = %party.callee.aor,
            caller = %party.caller_uri,
            samples = recorded.samples.len(),
            ended = ?recorded.ended,
            received = stats.received,
            wrong_source = stats.wrong_source,
            flood_dropped = stats.flood_dropped,
            "voicemail recorded"
        );
        if recorded.samples.is_empty() {
            return Ok(recorded.ended);
        }
        let vm = deposit::Voicemail {
            caller_uri: party.caller_uri,
            caller_name: party.caller_name,
            callee_smtp: party.callee.smtp.clone(),
            started_at,
            samples: recorded.samples,
        };
        spool::keep_and_deliver(self, vm).await;
        Ok(recorded.ended)
    }

    /// The codec of a negotiated payload type.
    pub fn law_of(encoding: &str) -> Law {
        if encoding.eq_ignore_ascii_case("PCMA") { Law::Alaw } else { Law::Ulaw }
    }
}

/// Starts voicemail in a running Front End: the SIP core's routing diverts to it from now on,
/// the spool's delivery task runs (delivering what a previous run left), and message-summary
/// subscriptions are answered from the subscribers' Inboxes (`mwi`).
pub fn spawn(
    core: &Arc<crate::sip::SipCore>,
    directory: tandem_directory::Directory,
    config: &FrontendConfig,
    store: tandem_store::Store,
    connector: Arc<ExchangeConnector>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Option<Arc<Service>> {
    let svc = Service::new(config, FrontendStore::new(store), connector.clone(), tasks, shutdown.clone());
    if core.voicemail.set(svc.clone()).is_err() {
        tracing::error!("voicemail started twice; the second one is not used");
        return None;
    }
    tracing::info!(
        ports = %format!("{}-{}", config.media_port_min, config.media_port_max),
        max_secs = config.voicemail_max_seconds,
        "voicemail answering"
    );
    spool::spawn(svc.clone());
    mwi::spawn(core.clone(), directory, connector, tasks, shutdown);
    Some(svc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_time_is_rings_times_the_ring() {
        let s = Settings { max: Duration::from_secs(300), silence: Duration::from_secs(10), seconds_per_ring: 5 };
        let mut um = UmMailboxRow {
            aor: "sip:bob@litwareinc.com".into(),
            smtp: "bob@litwareinc.com".into(),
            pin_hash: None,
            call_answering_rings: 4,
            greeting: None,
            updated_at: 0,
        };
        assert_eq!(s.ring_time(&um), Duration::from_secs(20));
        um.call_answering_rings = 0;
        assert_eq!(s.ring_time(&um), Duration::from_secs(5), "at least one ring");
        let g = Service::greeting_for(&um);
        assert_eq!(g.len(), greeting::default_greeting().len() + greeting::record_tone().len());
        um.greeting = Some(b"not a wav".to_vec());
        assert_eq!(Service::greeting_for(&um).len(), g.len(), "an unreadable greeting falls back to the default");
    }
}

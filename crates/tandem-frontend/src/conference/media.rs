//! The conference media plane: every live conference's mixer and RTP sockets on one dedicated
//! OS thread (the "mixing thread"), ticking every 20 ms. Mixing is CPU work on a fixed deadline,
//! so it stays off the async workers: a tick that waited behind SIP handlers would be late for
//! every leg at once, and a thousand legs' tick would hold a worker for milliseconds. One thread
//! is enough on the figures in docs/BENCHMARKS.md (a tick of 1,000 legs takes a fraction of its
//! 20 ms); its sockets are non-blocking and drained each tick, so it never waits on one leg.
//!
//! The SIP side (`sip::conference`) adds, holds, mutes and removes legs by message; the thread
//! reports digits back. RTP is symmetric as for voicemail: the first valid packet fixes where
//! the peer is, and packets from elsewhere are dropped.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_media::mixer::{LegConfig, LegId, Mixer, Received};
use tandem_media::rtp;

use crate::media::ports::PortLease;

/// One tick's length.
pub const TICK: Duration = Duration::from_millis(20);
/// Packets read from one leg per tick at most (a flood is left to the kernel to drop).
const MAX_READS_PER_TICK: usize = 8;

/// A leg, by the focus's own number.
pub type LegKey = u64;

/// What the SIP side asks of the mixing thread.
#[derive(Debug)]
pub enum Command {
    AddLeg {
        conference: String,
        leg: LegKey,
        socket: UdpSocket,
        lease: PortLease,
        /// Where the SDP said the leg's media is (until its first packet says otherwise).
        remote: SocketAddr,
        config: LegConfig,
        held: bool,
    },
    SetHeld {
        conference: String,
        leg: LegKey,
        held: bool,
    },
    SetMuted {
        conference: String,
        leg: LegKey,
        muted: bool,
    },
    RemoveLeg {
        conference: String,
        leg: LegKey,
    },
    Stop,
}

/// What the mixing thread tells the SIP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Digit { conference: String, leg: LegKey, digit: char },
}

/// The mixing thread's counters (read by metrics and the benchmark).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub ticks: AtomicU64,
    /// Ticks that started a whole frame or more after their deadline.
    pub late_ticks: AtomicU64,
    pub legs: AtomicU64,
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub wrong_source: AtomicU64,
    /// Busy time of the thread, in microseconds (mixing, reading, sending).
    pub busy_micros: AtomicU64,
    /// The longest tick, in microseconds.
    pub max_tick_micros: AtomicU64,
}

struct Leg {
    socket: UdpSocket,
    _lease: PortLease,
    remote: SocketAddr,
    latched: bool,
    id: LegId,
}

struct Conf {
    mixer: Mixer,
    legs: HashMap<LegKey, Leg>,
    by_id: HashMap<LegId, LegKey>,
}

/// The handle the focus holds: commands in, stats out. Dropping it stops the thread.
#[derive(Debug)]
pub struct Engine {
    commands: mpsc::Sender<Command>,
    pub stats: Arc<EngineStats>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }
}

impl Engine {
    /// Starts the mixing thread; events go to `events`.
    pub fn start(events: tokio::sync::mpsc::UnboundedSender<Event>) -> std::io::Result<Engine> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(EngineStats::default());
        let s = stats.clone();
        std::thread::Builder::new().name("tandem-mixer".into()).spawn(move || run(rx, events, s))?;
        Ok(Engine { commands: tx, stats })
    }

    /// Sends a command; false when the thread is gone.
    pub fn send(&self, c: Command) -> bool {
        self.commands.send(c).is_ok()
    }
}

fn run(commands: mpsc::Receiver<Command>, events: tokio::sync::mpsc::UnboundedSender<Event>, stats: Arc<EngineStats>) {
    let started = Instant::now();
    let mut conferences: HashMap<String, Conf> = HashMap::new();
    let mut out = Vec::new();
    let mut buf = vec![0u8; rtp::MAX_PACKET];
    let mut deadline = Instant::now();
    loop {
        let now = Instant::now();
        if now < deadline {
            std::thread::sleep(deadline - now);
        } else if now.duration_since(deadline) >= TICK {
            stats.late_ticks.fetch_add(1, Ordering::Relaxed);
            // Far behind (a suspended process): start again from now rather than burst.
            if now.duration_since(deadline) >= TICK * 5 {
                deadline = now;
            }
        }
        let busy = Instant::now();
        deadline += TICK;
        loop {
            match commands.try_recv() {
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Ok(c) => apply(&mut conferences, c, &stats),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let now_ms = started.elapsed().as_millis() as u64;
        let mut packets_in = 0u64;
        let mut packets_out = 0u64;
        for (name, conf) in &mut conferences {
            for (key, leg) in &mut conf.legs {
                for _ in 0..MAX_READS_PER_TICK {
                    let Ok((n, from)) = leg.socket.recv_from(&mut buf) else { break };
                    if leg.latched && from != leg.remote {
                        stats.wrong_source.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    packets_in += 1;
                    match conf.mixer.receive(leg.id, now_ms, &buf[..n]) {
                        Received::Audio | Received::Ignored => {}
                        Received::Digit(digit) => {
                            let _ = events.send(Event::Digit { conference: name.clone(), leg: *key, digit });
                        }
                        Received::Rejected | Received::Unknown => continue,
                    }
                    if !leg.latched {
                        leg.latched = true;
                        leg.remote = from;
                    }
                }
            }
            out.clear();
            conf.mixer.tick(now_ms, &mut out);
            for (id, packet) in &out {
                if let Some(leg) = conf.by_id.get(id).and_then(|k| conf.legs.get(k)) {
                    // A full socket buffer drops this frame, as the network would.
                    if leg.socket.send_to(packet, leg.remote).is_ok() {
                        packets_out += 1;
                    }
                }
            }
        }
        let spent = busy.elapsed().as_micros() as u64;
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        stats.packets_in.fetch_add(packets_in, Ordering::Relaxed);
        stats.packets_out.fetch_add(packets_out, Ordering::Relaxed);
        stats.busy_micros.fetch_add(spent, Ordering::Relaxed);
        stats.max_tick_micros.fetch_max(spent, Ordering::Relaxed);
    }
}

fn apply(conferences: &mut HashMap<String, Conf>, c: Command, stats: &EngineStats) {
    match c {
        Command::AddLeg { conference, leg, socket, lease, remote, config, held } => {
            if let Err(e) = socket.set_nonblocking(true) {
                tracing::warn!(error = %e, "a conference RTP socket cannot be made non-blocking; the leg is dropped");
                return;
            }
            let conf = conferences.entry(conference).or_insert_with(|| Conf {
                mixer: Mixer::new(),
                legs: HashMap::new(),
                by_id: HashMap::new(),
            });
            let id = conf.mixer.add_leg(config);
            conf.mixer.set_held(id, held);
            conf.by_id.insert(id, leg);
            conf.legs.insert(leg, Leg { socket, _lease: lease, remote, latched: false, id });
            stats.legs.fetch_add(1, Ordering::Relaxed);
        }
        Command::SetHeld { conference, leg, held } => {
            if let Some(conf) = conferences.get_mut(&conference)
                && let Some(l) = conf.legs.get(&leg)
            {
                conf.mixer.set_held(l.id, held);
            }
        }
        Command::SetMuted { conference, leg, muted } => {
            if let Some(conf) = conferences.get_mut(&conference)
                && let Some(l) = conf.legs.get(&leg)
            {
                conf.mixer.set_muted(l.id, muted);
            }
        }
        Command::RemoveLeg { conference, leg } => {
            if let Some(conf) = conferences.get_mut(&conference) {
                if let Some(l) = conf.legs.remove(&leg) {
                    conf.mixer.remove_leg(l.id);
                    conf.by_id.remove(&l.id);
                    stats.legs.fetch_sub(1, Ordering::Relaxed);
                }
                if conf.legs.is_empty() {
                    conferences.remove(&conference);
                }
            }
        }
        Command::Stop => {}
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use tandem_media::g711::Law;

    use super::*;
    use crate::media::ports::PortPool;
    use crate::media::{FRAME_SAMPLES, tone, tone_share};

    /// Three phones on loopback through the real thread: each hears the two others' tones.
    #[tokio::test]
    async fn three_phones_hear_each_other_through_the_thread() {
        let (etx, _erx) = tokio::sync::mpsc::unbounded_channel();
        let engine = Engine::start(etx).unwrap();
        let pool = PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 43000, 43100);
        let tones = [440.0, 1000.0, 1700.0];
        let mut phones = Vec::new();
        for (i, _) in tones.iter().enumerate() {
            let phone = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            phone.set_nonblocking(true).unwrap();
            let (socket, lease) = pool.bind().await.unwrap();
            let port = lease.port;
            let socket = socket.into_std().unwrap();
            assert!(engine.send(Command::AddLeg {
                conference: "C".into(),
                leg: i as u64,
                socket,
                lease,
                remote: phone.local_addr().unwrap(),
                config: LegConfig { law: Law::Ulaw, event_pt: None, ssrc: 10 + i as u32 },
                held: false,
            }));
            phones.push((phone, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port), Vec::<i16>::new()));
        }
        let handle = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 1500];
            let signals: Vec<Vec<i16>> = tones.iter().map(|hz| tone(*hz, 2000, 0.3)).collect();
            let mut next = Instant::now();
            for f in 0..100usize {
                for (i, (phone, to, _)) in phones.iter().enumerate() {
                    let frame = &signals[i][f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES];
                    let payload = Law::Ulaw.encode(frame);
                    let p = rtp::Packet {
                        marker: false,
                        payload_type: 0,
                        sequence: f as u16,
                        timestamp: (f * FRAME_SAMPLES) as u32,
                        ssrc: 100 + i as u32,
                        csrcs: vec![],
                        payload: &payload,
                    };
                    phone.send_to(&p.to_bytes(), to).unwrap();
                }
                next += TICK;
                for (phone, _, heard) in phones.iter_mut() {
                    while let Ok((n, _)) = phone.recv_from(&mut buf) {
                        heard.extend(Law::Ulaw.decode(rtp::Packet::parse(&buf[..n]).unwrap().payload));
                    }
                }
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            phones
        });
        let phones = handle.await.unwrap();
        for (i, (_, _, heard)) in phones.iter().enumerate() {
            assert!(heard.len() > 8000, "leg {i} heard {} samples", heard.len());
            let tail = &heard[4000..];
            for (j, hz) in tones.iter().enumerate() {
                // Per 100 ms: a frame lost on loopback is a phase jump, which a whole-signal
                // Goertzel would read as a weaker tone.
                let chunks: Vec<f64> = tail.chunks_exact(800).map(|c| tone_share(c, *hz)).collect();
                let s = chunks.iter().sum::<f64>() / chunks.len() as f64;
                if i == j {
                    assert!(s < 0.02, "leg {i} hears itself ({s})");
                } else {
                    assert!(s > 0.2, "leg {i} hears {hz} Hz at {s}");
                }
            }
        }
        assert_eq!(engine.stats.legs.load(Ordering::Relaxed), 3);
    }
}

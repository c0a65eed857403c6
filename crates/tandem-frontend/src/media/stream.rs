//! One RTP stream of a call the Front End answers: paced sending of G.711 frames, and receiving
//! through the jitter buffer. Symmetric RTP: the first valid packet fixes where the peer is
//! (its source address, which for a client behind NAT differs from its SDP), answers go there,
//! and packets from anywhere else are dropped and counted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tandem_media::dtmf::DigitReceiver;
use tandem_media::g711::Law;
use tandem_media::jitter::JitterBuffer;
use tandem_media::{cn, rtp};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::ports::PortLease;
use super::{FRAME, FRAME_SAMPLES};

/// Playout delay of received audio.
const JITTER_DELAY_MS: u64 = 60;
/// Packets read per second at most; more is a flood and dropped unread.
const MAX_PACKETS_PER_SECOND: u32 = 400;

/// What the stream counted of what it was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub received: u64,
    pub wrong_source: u64,
    pub malformed: u64,
    pub flood_dropped: u64,
}

#[derive(Debug)]
pub struct RtpStream {
    socket: UdpSocket,
    lease: PortLease,
    remote: SocketAddr,
    latched: bool,
    law: Law,
    event_pt: Option<u8>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    sent_any: bool,
    stats: StreamStats,
    window: (Instant, u32),
    /// Kept across recordings: an event's repeated packets after a digit ended one recording
    /// are not a new digit in the next.
    digits: DigitReceiver,
}

/// A packet the stream accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Accepted {
    Audio { sequence: u16, timestamp: u32, payload: Vec<u8> },
    Event { timestamp: u32, payload: Vec<u8> },
}

impl RtpStream {
    /// A stream on `socket` (leased from the port pool) to `remote` (the SDP's address) in
    /// `law`, with telephone events at `event_pt` when negotiated.
    pub fn new(
        socket: UdpSocket,
        lease: PortLease,
        remote: SocketAddr,
        law: Law,
        event_pt: Option<u8>,
        ssrc: u32,
    ) -> RtpStream {
        RtpStream {
            socket,
            lease,
            remote,
            latched: false,
            law,
            event_pt,
            ssrc,
            sequence: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            sent_any: false,
            stats: StreamStats::default(),
            window: (Instant::now(), 0),
            digits: DigitReceiver::default(),
        }
    }

    pub fn local_port(&self) -> u16 {
        self.lease.port
    }

    /// Where packets go now (the latched source once one came).
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Sends one frame (up to 160 samples; a short one is padded with silence).
    pub async fn send_frame(&mut self, samples: &[i16]) -> std::io::Result<()> {
        let mut frame = [0i16; FRAME_SAMPLES];
        let n = samples.len().min(FRAME_SAMPLES);
        frame[..n].copy_from_slice(&samples[..n]);
        let payload = self.law.encode(&frame);
        let packet = rtp::Packet {
            marker: !self.sent_any,
            payload_type: self.law.payload_type(),
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            csrcs: Vec::new(),
            payload: &payload,
        };
        self.socket.send_to(&packet.to_bytes(), self.remote).await?;
        self.sent_any = true;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        Ok(())
    }

    /// Plays `samples` in real time, a frame every 20 ms; false when `stop` came first.
    pub async fn play(&mut self, samples: &[i16], stop: &CancellationToken) -> std::io::Result<bool> {
        let mut tick = tokio::time::interval(FRAME);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for frame in samples.chunks(FRAME_SAMPLES) {
            tokio::select! {
                _ = stop.cancelled() => return Ok(false),
                _ = tick.tick() => self.send_frame(frame).await?,
            }
        }
        Ok(true)
    }

    /// Drops what arrived while the stream was only sending (a caller talking over the
    /// greeting), latching onto the peer as [`Self::record`] would; the count dropped.
    pub fn discard_pending(&mut self) -> usize {
        let mut buf = [0u8; rtp::MAX_PACKET];
        let mut n = 0;
        while let Ok((len, from)) = self.socket.try_recv_from(&mut buf) {
            if !self.latched && rtp::Packet::parse(&buf[..len]).is_ok() {
                self.latched = true;
                self.remote = from;
            }
            n += 1;
        }
        n
    }

    /// The next packet worth keeping: valid RTP from the peer in a negotiated payload type.
    async fn accept(&mut self, buf: &mut [u8]) -> std::io::Result<Accepted> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            let now = Instant::now();
            if now.duration_since(self.window.0) >= Duration::from_secs(1) {
                self.window = (now, 0);
            }
            self.window.1 += 1;
            if self.window.1 > MAX_PACKETS_PER_SECOND {
                self.stats.flood_dropped += 1;
                continue;
            }
            if self.latched && from != self.remote {
                self.stats.wrong_source += 1;
                continue;
            }
            let Ok(p) = rtp::Packet::parse(&buf[..n]) else {
                self.stats.malformed += 1;
                continue;
            };
            let accepted = if p.payload_type == self.law.payload_type() {
                Accepted::Audio { sequence: p.sequence, timestamp: p.timestamp, payload: p.payload.to_vec() }
            } else if Some(p.payload_type) == self.event_pt {
                Accepted::Event { timestamp: p.timestamp, payload: p.payload.to_vec() }
            } else if p.payload_type == cn::PAYLOAD_TYPE {
                continue;
            } else {
                self.stats.malformed += 1;
                continue;
            };
            if !self.latched {
                self.latched = true;
                self.remote = from;
            }
            self.stats.received += 1;
            return Ok(accepted);
        }
    }
}

/// When a recording ends on its own.
#[derive(Debug, Clone, Copy)]
pub struct RecordLimits {
    pub max: Duration,
    /// This long below `silence_dbov` ends it (after something was heard).
    pub silence: Duration,
    pub silence_dbov: u8,
    /// A digit ends it (and is returned).
    pub stop_on_digit: bool,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The caller hung up (or the call was torn down).
    Stopped,
    MaxLength,
    Silence,
    Digit(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub samples: Vec<i16>,
    pub digits: String,
    pub ended: Ended,
}

impl RtpStream {
    /// Records what the peer sends until `stop`, a limit, or (with `stop_on_digit`) a digit;
    /// packets lost in transit, and time in which nothing was sent, are filled with silence so
    /// the length is the call's.
    pub async fn record(&mut self, limits: RecordLimits, stop: &CancellationToken) -> Recorded {
        let started = Instant::now();
        let mut jitter = JitterBuffer::new(JITTER_DELAY_MS, tandem_media::g711::CLOCK_RATE);
        let mut out = Recorded { samples: Vec::new(), digits: String::new(), ended: Ended::Stopped };
        let max_samples = (limits.max.as_millis() as usize).saturating_mul(8);
        let mut quiet = Duration::ZERO;
        let mut heard = false;
        let mut tick = tokio::time::interval(FRAME);
        let mut buf = vec![0u8; rtp::MAX_PACKET];
        let ms = |at: Instant| at.duration_since(started).as_millis() as u64;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                got = self.accept(&mut buf) => match got {
                    Ok(Accepted::Audio { sequence, timestamp, payload }) => {
                        jitter.push(ms(Instant::now()), sequence, timestamp, &payload);
                    }
                    Ok(Accepted::Event { timestamp, payload }) => {
                        if let Some(d) = self.digits.push(timestamp, &payload) {
                            out.digits.push(d);
                            if limits.stop_on_digit {
                                out.ended = Ended::Digit(d);
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "rtp receive failed");
                        break;
                    }
                },
                _ = tick.tick() => {
                    let mut lost_before = jitter.stats().lost;
                    while let Some(frame) = jitter.pop(ms(Instant::now())) {
                        let lost = jitter.stats().lost - lost_before;
                        lost_before = jitter.stats().lost;
                        out.samples.extend(std::iter::repeat_n(0i16, lost as usize * FRAME_SAMPLES));
                        let decoded = self.law.decode(&frame.payload);
                        if cn::level_of(&decoded) > limits.silence_dbov {
                            quiet += FRAME;
                        } else {
                            quiet = Duration::ZERO;
                            heard = true;
                        }
                        out.samples.extend(decoded);
                    }
                    // Nothing sent (a caller silent with silence suppression, or before the
                    // first packet): the recording keeps time with the call, in silence.
                    if jitter.held() == 0 {
                        let due = (ms(Instant::now()).saturating_sub(JITTER_DELAY_MS) as usize).saturating_mul(8);
                        while out.samples.len() + FRAME_SAMPLES <= due {
                            out.samples.extend([0i16; FRAME_SAMPLES]);
                            quiet += FRAME;
                        }
                    }
                    if out.samples.len() >= max_samples || started.elapsed() >= limits.max {
                        out.samples.truncate(max_samples);
                        out.ended = Ended::MaxLength;
                        break;
                    }
                    if heard && quiet >= limits.silence {
                        out.ended = Ended::Silence;
                        break;
                    }
                }
            }
        }
        // What is still in the buffer was sent before the end.
        while let Some(frame) = jitter.pop(u64::MAX) {
            if out.samples.len() >= max_samples {
                break;
            }
            out.samples.extend(self.law.decode(&frame.payload));
        }
        out.samples.truncate(max_samples);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use tandem_media::dtmf::Event;

    use super::*;
    use crate::media::ports::PortPool;
    use crate::media::{tone, tone_share};

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    async fn stream_to(peer: &UdpSocket) -> (RtpStream, Arc<PortPool>) {
        let pool = PortPool::new(LOOPBACK, 42000, 42100);
        let (socket, lease) = pool.bind().await.unwrap();
        let remote = peer.local_addr().unwrap();
        (RtpStream::new(socket, lease, remote, Law::Ulaw, Some(101), 0x1234_5678), pool)
    }

    /// A phone's side: `frames` of `samples` paced at 20 ms, then a DTMF digit.
    async fn send_as_phone(phone: UdpSocket, to: SocketAddr, samples: Vec<i16>, digit: Option<char>) {
        let mut tick = tokio::time::interval(FRAME);
        let mut seq = 65500u16; // wraps during the call
        let mut ts = 1000u32;
        for frame in samples.chunks(FRAME_SAMPLES) {
            tick.tick().await;
            let payload = Law::Ulaw.encode(frame);
            let p = rtp::Packet {
                marker: false,
                payload_type: 0,
                sequence: seq,
                timestamp: ts,
                ssrc: 7,
                csrcs: vec![],
                payload: &payload,
            };
            phone.send_to(&p.to_bytes(), to).await.unwrap();
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
        }
        if let Some(d) = digit {
            for end in [false, true, true, true] {
                let e = Event { code: Event::code_of(d).unwrap(), end, volume: 10, duration: 800 }.to_bytes();
                let p = rtp::Packet {
                    marker: !end,
                    payload_type: 101,
                    sequence: seq,
                    timestamp: ts,
                    ssrc: 7,
                    csrcs: vec![],
                    payload: &e,
                };
                phone.send_to(&p.to_bytes(), to).await.unwrap();
                seq = seq.wrapping_add(1);
            }
        }
    }

    fn limits(max_ms: u64, stop_on_digit: bool) -> RecordLimits {
        RecordLimits {
            max: Duration::from_millis(max_ms),
            silence: Duration::from_secs(5),
            silence_dbov: 60,
            stop_on_digit,
        }
    }

    #[tokio::test]
    async fn a_tone_and_a_digit_are_recorded_and_strangers_ignored() {
        let phone = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let (mut stream, _pool) = stream_to(&phone).await;
        let to = SocketAddr::new(LOOPBACK, stream.local_port());
        let stranger = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let sender = tokio::spawn(send_as_phone(phone, to, tone(1000.0, 1000, 0.5), Some('5')));
        let noise = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for i in 0..20u16 {
                let p = rtp::Packet {
                    marker: false,
                    payload_type: 0,
                    sequence: i,
                    timestamp: 0,
                    ssrc: 99,
                    csrcs: vec![],
                    payload: &[0u8; 160],
                };
                stranger.send_to(&p.to_bytes(), to).await.unwrap();
            }
        });
        let got = stream.record(limits(10_000, true), &CancellationToken::new()).await;
        sender.await.unwrap();
        noise.await.unwrap();
        assert_eq!(got.ended, Ended::Digit('5'));
        assert_eq!(got.digits, "5");
        let seconds = got.samples.len() as f64 / 8000.0;
        assert!((0.9..=1.1).contains(&seconds), "{seconds} s recorded");
        assert!(tone_share(&got.samples, 1000.0) > 0.8, "the 1 kHz tone is what was recorded");
        assert_eq!(stream.stats().wrong_source, 20, "the stranger's packets after the latch");
    }

    #[tokio::test]
    async fn recording_stops_at_its_maximum_and_playback_is_heard() {
        let phone = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let (mut stream, _pool) = stream_to(&phone).await;
        let to = SocketAddr::new(LOOPBACK, stream.local_port());
        let phone_addr = phone.local_addr().unwrap();
        let sender = tokio::spawn(send_as_phone(phone, to, tone(440.0, 1500, 0.5), None));
        let got = stream.record(limits(300, false), &CancellationToken::new()).await;
        assert_eq!((got.ended, got.samples.len()), (Ended::MaxLength, 2400));
        sender.await.unwrap();
        assert_eq!(stream.remote(), phone_addr, "answers go where the packets came from");

        // Playback: a second phone hears the tone the stream plays.
        let listener = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let (mut player, _pool2) = stream_to(&listener).await;
        let played =
            tokio::spawn(async move { player.play(&tone(1000.0, 400, 0.5), &CancellationToken::new()).await.unwrap() });
        let mut heard = Vec::new();
        let mut buf = [0u8; 1500];
        while heard.len() < 3200 {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(2), listener.recv_from(&mut buf)).await.unwrap().unwrap();
            let p = rtp::Packet::parse(&buf[..n]).unwrap();
            heard.extend(Law::Ulaw.decode(p.payload));
        }
        assert!(played.await.unwrap());
        assert!(tone_share(&heard, 1000.0) > 0.8);
    }

    #[tokio::test]
    async fn the_port_range_is_bounded_and_ports_come_back() {
        let pool = PortPool::new(LOOPBACK, 42201, 42205);
        assert_eq!(pool.capacity(), 2);
        let a = pool.bind().await.unwrap();
        let b = pool.bind().await.unwrap();
        assert_eq!([a.1.port % 2, b.1.port % 2], [0, 0]);
        assert!(matches!(pool.bind().await, Err(crate::media::MediaIoError::NoPort { .. })));
        drop(a);
        assert!(pool.bind().await.is_ok());
    }
}

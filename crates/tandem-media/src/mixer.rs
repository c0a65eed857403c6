//! An audio conference mixer (the MCU's core) without I/O: each leg's RTP goes through its own
//! jitter buffer, and every 20 ms tick takes one frame from each leg, sums them, and gives each
//! leg the sum without its own voice (N−1 mixing), saturated to 16 bits and encoded in the leg's
//! law, as an RTP packet whose CSRCs name who was mixed in (RFC 3550 §7.1). Telephone events
//! (RFC 4733) come out as digits; muted legs are heard by nobody; held legs (the lobby) are
//! neither heard nor sent anything. The caller owns sockets and time: it feeds packets with
//! [`Mixer::receive`] and calls [`Mixer::tick`] every 20 ms with its clock.

use std::sync::OnceLock;

use crate::dtmf::DigitReceiver;
use crate::g711::{self, Law};
use crate::jitter::JitterBuffer;
use crate::{cn, rtp};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Playout delay of each leg's jitter buffer.
pub const JITTER_DELAY_MS: u64 = 60;
/// Frames a leg may have waiting before the oldest are dropped: a sender whose clock runs fast
/// must not build up delay without bound.
pub const MAX_QUEUED_FRAMES: usize = 8;
/// CSRCs an RTP header carries at most.
const MAX_CSRCS: usize = 15;
/// A frame quieter than this (−dBov) is not named as a contributor.
const SPEAKING_DBOV: u8 = 60;

/// A leg, by the handle [`Mixer::add_leg`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

/// How a leg was negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegConfig {
    pub law: Law,
    /// The telephone-event payload type, when negotiated.
    pub event_pt: Option<u8>,
    /// The SSRC of what the mixer sends this leg.
    pub ssrc: u32,
}

/// What one received packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Audio,
    /// The first packet of a telephone event: this digit.
    Digit(char),
    /// Comfort noise, a repeated event packet, or nothing worth reporting.
    Ignored,
    /// Not RTP, or a payload type that was not negotiated.
    Rejected,
    /// No such leg.
    Unknown,
}

/// What the mixer counted, over all legs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixerStats {
    pub ticks: u64,
    pub packets_out: u64,
    /// Frames dropped because a leg had too many waiting.
    pub overrun_dropped: u64,
    /// Samples that had to be clipped to 16 bits.
    pub clipped: u64,
}

#[derive(Debug)]
struct Leg {
    id: LegId,
    config: LegConfig,
    jitter: JitterBuffer,
    digits: DigitReceiver,
    muted: bool,
    held: bool,
    /// The SSRC the leg sends with (learnt from its packets), named in others' CSRCs.
    remote_ssrc: Option<u32>,
    sequence: u16,
    timestamp: u32,
    sent_any: bool,
    /// This tick's decoded frame, when the leg contributes one.
    frame: Option<[i16; FRAME_SAMPLES]>,
    speaking: bool,
}

/// One conference's mix.
#[derive(Debug, Default)]
pub struct Mixer {
    legs: Vec<Leg>,
    next_id: u32,
    stats: MixerStats,
    sum: Vec<i32>,
}

/// 16-bit linear to G.711, by table (64 KiB each, built once): the encoders' branches per
/// sample would otherwise dominate a tick.
fn encode_table(law: Law) -> &'static [u8] {
    static ULAW: OnceLock<Vec<u8>> = OnceLock::new();
    static ALAW: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, f): (_, fn(i16) -> u8) = match law {
        Law::Ulaw => (&ULAW, g711::ulaw_encode),
        Law::Alaw => (&ALAW, g711::alaw_encode),
    };
    cell.get_or_init(|| (0..=u16::MAX).map(|u| f(u as i16)).collect())
}

fn decode_table(law: Law) -> &'static [i16; 256] {
    static ULAW: OnceLock<[i16; 256]> = OnceLock::new();
    static ALAW: OnceLock<[i16; 256]> = OnceLock::new();
    let (cell, f): (_, fn(u8) -> i16) = match law {
        Law::Ulaw => (&ULAW, g711::ulaw_decode),
        Law::Alaw => (&ALAW, g711::alaw_decode),
    };
    cell.get_or_init(|| std::array::from_fn(|b| f(b as u8)))
}

impl Mixer {
    pub fn new() -> Mixer {
        Mixer::default()
    }

    /// Adds a leg (heard and hearing at once, unless [`Self::set_held`]).
    pub fn add_leg(&mut self, config: LegConfig) -> LegId {
        let id = LegId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.legs.push(Leg {
            id,
            config,
            jitter: JitterBuffer::new(JITTER_DELAY_MS, g711::CLOCK_RATE),
            digits: DigitReceiver::default(),
            muted: false,
            held: false,
            remote_ssrc: None,
            sequence: (config.ssrc >> 16) as u16,
            timestamp: config.ssrc.rotate_left(7),
            sent_any: false,
            frame: None,
            speaking: false,
        });
        id
    }

    /// Removes a leg; false when there was none.
    pub fn remove_leg(&mut self, id: LegId) -> bool {
        let before = self.legs.len();
        self.legs.retain(|l| l.id != id);
        self.legs.len() != before
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    fn leg_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.id == id)
    }

    /// A muted leg still hears everyone; nobody hears it.
    pub fn set_muted(&mut self, id: LegId, muted: bool) -> bool {
        self.leg_mut(id).map(|l| l.muted = muted).is_some()
    }

    /// A held leg (waiting in the lobby) is neither mixed in nor sent anything; what it sends
    /// meanwhile is dropped, so it is not played late once it is admitted.
    pub fn set_held(&mut self, id: LegId, held: bool) -> bool {
        self.leg_mut(id)
            .map(|l| {
                if held && !l.held {
                    l.jitter = JitterBuffer::new(JITTER_DELAY_MS, g711::CLOCK_RATE);
                }
                l.held = held;
            })
            .is_some()
    }

    pub fn stats(&self) -> MixerStats {
        self.stats
    }

    /// A packet a leg's socket received at `now_ms` (the same clock as [`Self::tick`]'s).
    pub fn receive(&mut self, id: LegId, now_ms: u64, bytes: &[u8]) -> Received {
        let Some(leg) = self.legs.iter_mut().find(|l| l.id == id) else { return Received::Unknown };
        let Ok(p) = rtp::Packet::parse(bytes) else { return Received::Rejected };
        if p.payload_type == leg.config.law.payload_type() {
            leg.remote_ssrc = Some(p.ssrc);
            if !leg.held {
                leg.jitter.push(now_ms, p.sequence, p.timestamp, p.payload);
            }
            Received::Audio
        } else if Some(p.payload_type) == leg.config.event_pt {
            match leg.digits.push(p.timestamp, p.payload) {
                Some(d) => Received::Digit(d),
                None => Received::Ignored,
            }
        } else if p.payload_type == cn::PAYLOAD_TYPE {
            Received::Ignored
        } else {
            Received::Rejected
        }
    }

    /// One 20 ms tick at `now_ms`: the packet each leg is to be sent now, appended to `out`.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<(LegId, Vec<u8>)>) {
        self.stats.ticks += 1;
        self.sum.clear();
        self.sum.resize(FRAME_SAMPLES, 0);
        for leg in &mut self.legs {
            leg.frame = None;
            leg.speaking = false;
            let mut frame = leg.jitter.pop(now_ms);
            // Drift: a sender ahead of our clock leaves frames waiting; drop the oldest.
            while leg.jitter.held() > MAX_QUEUED_FRAMES {
                self.stats.overrun_dropped += 1;
                frame = leg.jitter.pop(u64::MAX);
            }
            let Some(frame) = frame else { continue };
            if leg.held || leg.muted {
                continue;
            }
            let table = decode_table(leg.config.law);
            let mut pcm = [0i16; FRAME_SAMPLES];
            for (s, b) in pcm.iter_mut().zip(frame.payload.iter()) {
                *s = table[usize::from(*b)];
            }
            for (acc, s) in self.sum.iter_mut().zip(pcm.iter()) {
                *acc += i32::from(*s);
            }
            leg.speaking = cn::level_of(&pcm) < SPEAKING_DBOV;
            leg.frame = Some(pcm);
        }
        let speakers: Vec<(LegId, u32)> =
            self.legs.iter().filter(|l| l.speaking).filter_map(|l| Some((l.id, l.remote_ssrc?))).collect();
        let mut payload = [0u8; FRAME_SAMPLES];
        for leg in &mut self.legs {
            if leg.held {
                continue;
            }
            let table = encode_table(leg.config.law);
            let own = leg.frame.as_ref();
            for (i, b) in payload.iter_mut().enumerate() {
                let v = self.sum[i] - own.map_or(0, |f| i32::from(f[i]));
                let clamped = v.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
                if clamped != v {
                    self.stats.clipped += 1;
                }
                // In range after the clamp: the cast keeps the value, and `as u16` indexes the
                // table by its two's-complement bits as it was built.
                *b = table[usize::from(clamped as i16 as u16)];
            }
            let csrcs: Vec<u32> =
                speakers.iter().filter(|(id, _)| *id != leg.id).map(|(_, s)| *s).take(MAX_CSRCS).collect();
            let packet = rtp::Packet {
                marker: !leg.sent_any,
                payload_type: leg.config.law.payload_type(),
                sequence: leg.sequence,
                timestamp: leg.timestamp,
                ssrc: leg.config.ssrc,
                csrcs,
                payload: &payload,
            };
            out.push((leg.id, packet.to_bytes()));
            leg.sent_any = true;
            leg.sequence = leg.sequence.wrapping_add(1);
            leg.timestamp = leg.timestamp.wrapping_add(FRAME_SAMPLES as u32);
            self.stats.packets_out += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::Event;

    fn tone(hz: f64, n: usize, amplitude: f64, phase0: usize) -> Vec<i16> {
        (phase0..phase0 + n)
            .map(|i| (32767.0 * amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    /// Share of the signal's power at `hz` (Goertzel).
    fn share(samples: &[i16], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2, mut e) = (0.0f64, 0.0f64, 0.0f64);
        for x in samples {
            let x = f64::from(*x);
            e += x * x;
            let s0 = x + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        if e == 0.0 { 0.0 } else { 2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2) / (samples.len() as f64 * e) }
    }

    struct Phone {
        id: LegId,
        law: Law,
        seq: u16,
        ts: u32,
        ssrc: u32,
        hz: f64,
        heard: Vec<i16>,
    }

    impl Phone {
        fn packet(&mut self, amplitude: f64) -> Vec<u8> {
            let samples = tone(self.hz, FRAME_SAMPLES, amplitude, self.ts as usize);
            let payload = self.law.encode(&samples);
            let p = rtp::Packet {
                marker: false,
                payload_type: self.law.payload_type(),
                sequence: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                csrcs: vec![],
                payload: &payload,
            };
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(FRAME_SAMPLES as u32);
            p.to_bytes()
        }
    }

    fn conference(laws: &[Law], tones: &[f64]) -> (Mixer, Vec<Phone>) {
        let mut m = Mixer::new();
        let phones = laws
            .iter()
            .zip(tones)
            .enumerate()
            .map(|(i, (law, hz))| Phone {
                id: m.add_leg(LegConfig { law: *law, event_pt: Some(101), ssrc: 1000 + i as u32 }),
                law: *law,
                seq: 65530,
                ts: 0,
                ssrc: 77 + i as u32,
                hz: *hz,
                heard: Vec::new(),
            })
            .collect();
        (m, phones)
    }

    /// Runs `frames` ticks with every phone (but the silent ones) sending a frame each.
    fn run(m: &mut Mixer, phones: &mut [Phone], frames: u64, silent: &[usize], amplitude: f64) {
        let mut out = Vec::new();
        for t in 0..frames {
            let now = t * 20;
            for (i, p) in phones.iter_mut().enumerate() {
                if !silent.contains(&i) {
                    let bytes = p.packet(amplitude);
                    assert_eq!(m.receive(p.id, now, &bytes), Received::Audio);
                }
            }
            out.clear();
            m.tick(now, &mut out);
            for (id, bytes) in &out {
                let p = rtp::Packet::parse(bytes).unwrap();
                let phone = phones.iter_mut().find(|ph| ph.id == *id).unwrap();
                assert_eq!(p.payload.len(), FRAME_SAMPLES);
                phone.heard.extend(phone.law.decode(p.payload));
            }
        }
    }

    #[test]
    fn each_leg_hears_the_others_and_not_itself() {
        let (mut m, mut phones) = conference(&[Law::Ulaw, Law::Alaw, Law::Ulaw], &[440.0, 1000.0, 1700.0]);
        run(&mut m, &mut phones, 100, &[], 0.3);
        for (i, p) in phones.iter().enumerate() {
            let tail = &p.heard[8000..];
            for (j, other) in [440.0, 1000.0, 1700.0].iter().enumerate() {
                let s = share(tail, *other);
                if i == j {
                    assert!(s < 0.01, "leg {i} hears its own {other} Hz ({s})");
                } else {
                    assert!(s > 0.3, "leg {i} hears {other} Hz only at {s}");
                }
            }
        }
        assert_eq!(m.stats().packets_out, 300);
    }

    #[test]
    fn a_silent_leg_does_not_stop_the_others_and_hears_them() {
        let (mut m, mut phones) = conference(&[Law::Ulaw; 3], &[440.0, 1000.0, 1700.0]);
        run(&mut m, &mut phones, 60, &[2], 0.3);
        assert!(share(&phones[0].heard[4000..], 1000.0) > 0.9);
        assert!(share(&phones[1].heard[4000..], 440.0) > 0.9);
        let third = &phones[2].heard[4000..];
        assert!(share(third, 440.0) > 0.3 && share(third, 1000.0) > 0.3);
    }

    #[test]
    fn muted_and_held_legs_are_not_heard_and_held_ones_hear_nothing() {
        let (mut m, mut phones) = conference(&[Law::Ulaw; 3], &[440.0, 1000.0, 1700.0]);
        assert!(m.set_muted(phones[0].id, true));
        assert!(m.set_held(phones[2].id, true));
        run(&mut m, &mut phones, 60, &[], 0.3);
        assert!(share(&phones[1].heard[4000..], 440.0) < 0.01, "the muted leg is not heard");
        assert!(share(&phones[0].heard[4000..], 1000.0) > 0.9, "the muted leg still hears");
        assert!(share(&phones[1].heard[4000..], 1700.0) < 0.01, "the held leg is not heard");
        assert!(phones[2].heard.is_empty(), "the held leg is sent nothing");
        // Admitted: it hears and is heard.
        assert!(m.set_held(phones[2].id, false));
        phones.iter_mut().for_each(|p| p.heard.clear());
        run(&mut m, &mut phones, 60, &[], 0.3);
        assert!(share(&phones[2].heard[4000..], 1000.0) > 0.9);
        assert!(share(&phones[1].heard[4000..], 1700.0) > 0.9);
        assert!(m.remove_leg(phones[2].id));
        assert!(!m.remove_leg(phones[2].id));
        assert_eq!(m.receive(phones[2].id, 0, &[]), Received::Unknown);
    }

    #[test]
    fn loud_legs_saturate_instead_of_wrapping() {
        let (mut m, mut phones) = conference(&[Law::Ulaw; 4], &[1000.0; 4]);
        // Three in-phase full-scale tones for the fourth: three times the range.
        run(&mut m, &mut phones, 20, &[], 1.0);
        assert!(m.stats().clipped > 0);
        let peak = phones[3].heard[2000..].iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert!(peak > 30000, "clipped at full scale, not wrapped to small values ({peak})");
        assert!(share(&phones[3].heard[2000..], 1000.0) > 0.7, "still the tone, clipped");
    }

    #[test]
    fn digits_come_out_once_and_foreign_packets_are_rejected() {
        let (mut m, phones) = conference(&[Law::Ulaw; 2], &[440.0, 1000.0]);
        let event = |end: bool| {
            let e = Event { code: Event::code_of('7').unwrap(), end, volume: 10, duration: 400 }.to_bytes();
            rtp::Packet {
                marker: !end,
                payload_type: 101,
                sequence: 1,
                timestamp: 4242,
                ssrc: 5,
                csrcs: vec![],
                payload: &e,
            }
            .to_bytes()
        };
        assert_eq!(m.receive(phones[0].id, 0, &event(false)), Received::Digit('7'));
        assert_eq!(m.receive(phones[0].id, 0, &event(true)), Received::Ignored);
        let video = rtp::Packet {
            marker: false,
            payload_type: 96,
            sequence: 1,
            timestamp: 0,
            ssrc: 5,
            csrcs: vec![],
            payload: &[0; 10],
        }
        .to_bytes();
        assert_eq!(m.receive(phones[0].id, 0, &video), Received::Rejected);
        assert_eq!(m.receive(phones[0].id, 0, b"not rtp"), Received::Rejected);
    }

    #[test]
    fn a_fast_sender_does_not_build_up_delay_and_csrcs_name_the_speakers() {
        let (mut m, mut phones) = conference(&[Law::Ulaw; 2], &[440.0, 1000.0]);
        let mut out = Vec::new();
        for t in 0..100u64 {
            // Phone 0 sends two frames per tick (a clock running at twice the rate).
            for _ in 0..2 {
                let b = phones[0].packet(0.3);
                m.receive(phones[0].id, t * 20, &b);
            }
            let b = phones[1].packet(0.3);
            m.receive(phones[1].id, t * 20, &b);
            out.clear();
            m.tick(t * 20, &mut out);
        }
        assert!(m.stats().overrun_dropped > 0);
        let to_phone1 = out.iter().find(|(id, _)| *id == phones[1].id).unwrap();
        assert_eq!(rtp::Packet::parse(&to_phone1.1).unwrap().csrcs, vec![phones[0].ssrc]);
    }
}

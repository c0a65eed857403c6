//! A jitter buffer for one RTP stream: packets are held until their playout time (the first
//! packet's arrival plus a fixed delay), handed out in sequence order, duplicates and packets
//! that come after their turn dropped, the holding bounded; and the interarrival jitter that
//! RTCP reports (RFC 3550 §6.4.1, §A.8).

use std::collections::BTreeMap;

use crate::rtp::SequenceExtender;

/// Packets held at most; past it the oldest goes out at once (a sender far ahead of its clock,
/// or a flood).
pub const MAX_HELD: usize = 256;

/// What the buffer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub duplicates: u64,
    /// Arrived after a later packet had already been played out.
    pub late: u64,
    /// Never arrived by the time their successors played.
    pub lost: u64,
}

/// One held packet: its extended sequence number, RTP timestamp and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub sequence: u64,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

/// The buffer. Times are milliseconds on the caller's clock.
#[derive(Debug)]
pub struct JitterBuffer {
    delay_ms: u64,
    clock_rate: u32,
    seq: SequenceExtender,
    held: BTreeMap<u64, (u64, Frame)>,
    next: Option<u64>,
    stats: Stats,
    /// RFC 3550 §A.8: J in timestamp units, times 16.
    jitter16: u64,
    transit: Option<i64>,
}

impl JitterBuffer {
    pub fn new(delay_ms: u64, clock_rate: u32) -> JitterBuffer {
        JitterBuffer {
            delay_ms,
            clock_rate: clock_rate.max(1),
            seq: SequenceExtender::default(),
            held: BTreeMap::new(),
            next: None,
            stats: Stats::default(),
            jitter16: 0,
            transit: None,
        }
    }

    /// A packet arrived at `now_ms`.
    pub fn push(&mut self, now_ms: u64, sequence: u16, timestamp: u32, payload: &[u8]) {
        self.stats.received += 1;
        let ext = self.seq.extend(sequence);
        self.update_jitter(now_ms, timestamp);
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        let due = now_ms + self.delay_ms;
        // Past MAX_HELD, `pop` releases the oldest at once.
        self.held.insert(ext, (due, Frame { sequence: ext, timestamp, payload: payload.to_vec() }));
    }

    /// The next frame whose playout time has come, in order; gaps before it count as lost.
    pub fn pop(&mut self, now_ms: u64) -> Option<Frame> {
        let (&first, (due, _)) = self.held.iter().next()?;
        let overfull = self.held.len() > MAX_HELD;
        if *due > now_ms && !overfull {
            return None;
        }
        let (_, frame) = self.held.remove(&first)?;
        if let Some(n) = self.next {
            self.stats.lost += first.saturating_sub(n);
        }
        self.next = Some(first + 1);
        Some(frame)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Packets waiting.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The interarrival jitter, in timestamp units (what an RTCP report block carries).
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter16 >> 4).unwrap_or(u32::MAX)
    }

    fn update_jitter(&mut self, now_ms: u64, timestamp: u32) {
        let arrival = i64::try_from(now_ms.saturating_mul(u64::from(self.clock_rate)) / 1000).unwrap_or(i64::MAX);
        let transit = arrival.wrapping_sub(i64::from(timestamp));
        if let Some(prev) = self.transit {
            let d = transit.wrapping_sub(prev).unsigned_abs();
            // J += (|D| - J) / 16, kept times 16.
            self.jitter16 = self.jitter16 + d.min(u64::from(u32::MAX)) - (self.jitter16 >> 4);
        }
        self.transit = Some(transit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordered_packets_play_in_order_after_the_delay() {
        let mut b = JitterBuffer::new(60, 8000);
        b.push(0, 10, 1600, b"a");
        b.push(5, 12, 1920, b"c");
        b.push(8, 11, 1760, b"b");
        assert_eq!(b.pop(30), None, "not yet due");
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| b.pop(100)).map(|f| f.payload).collect();
        assert_eq!(order, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(b.stats(), Stats { received: 3, ..Stats::default() });
    }

    #[test]
    fn duplicates_late_and_lost_packets_are_counted_not_played() {
        let mut b = JitterBuffer::new(0, 8000);
        b.push(0, 65535, 0, b"x");
        b.push(0, 65535, 0, b"x");
        assert_eq!(b.pop(0).unwrap().payload, b"x");
        b.push(20, 1, 320, b"z"); // 0 is missing across the wrap
        assert_eq!(b.pop(20).unwrap().payload, b"z");
        b.push(25, 0, 160, b"y"); // too late now
        assert_eq!(b.pop(100), None);
        assert_eq!(b.stats(), Stats { received: 4, duplicates: 1, late: 1, lost: 1 });
    }

    #[test]
    fn a_flood_is_bounded() {
        let mut b = JitterBuffer::new(10_000, 8000);
        for i in 0..(MAX_HELD as u16 * 4) {
            b.push(0, i, u32::from(i) * 160, &[0; 160]);
            while b.held() > MAX_HELD {
                b.pop(0);
            }
        }
        assert!(b.held() <= MAX_HELD);
    }

    #[test]
    fn steady_packets_have_no_jitter_and_uneven_ones_some() {
        let mut b = JitterBuffer::new(0, 8000);
        for i in 0..50u16 {
            b.push(u64::from(i) * 20, i, u32::from(i) * 160, &[]);
        }
        assert_eq!(b.jitter(), 0);
        for i in 50..100u16 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            b.push(u64::from(i) * 20 + wobble, i, u32::from(i) * 160, &[]);
        }
        assert!((60..=80).contains(&b.jitter()), "{}", b.jitter());
    }
}

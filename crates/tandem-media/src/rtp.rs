//! RTP packets (RFC 3550 §5.1): the fixed header, CSRCs, the header extension (skipped, §5.3.1)
//! and padding, read without copying the payload; and the sequence arithmetic a receiver needs
//! (16-bit numbers that wrap, extended to 64 bits as §A.1 does).

use crate::MediaError;

/// Largest packet read or written: a UDP datagram on a 1500-byte path leaves less.
pub const MAX_PACKET: usize = 1500;
const FIXED: usize = 12;

/// An RTP packet's header fields and a view of its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrcs: Vec<u32>,
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Reads a packet. RTCP sharing the port (RFC 5761: payload types 72–76 with the marker) is
    /// not RTP and refused, so a caller can tell the two apart with [`is_rtcp`].
    pub fn parse(b: &'a [u8]) -> Result<Packet<'a>, MediaError> {
        if b.len() > MAX_PACKET {
            return Err(MediaError::TooLarge(MAX_PACKET));
        }
        if b.len() < FIXED {
            return Err(MediaError::Truncated(b.len()));
        }
        let version = b[0] >> 6;
        if version != 2 {
            return Err(MediaError::Version(version));
        }
        if is_rtcp(b) {
            return Err(MediaError::Invalid("an RTCP packet, not RTP"));
        }
        let padding = b[0] & 0x20 != 0;
        let extension = b[0] & 0x10 != 0;
        let cc = usize::from(b[0] & 0x0f);
        let mut at = FIXED + 4 * cc;
        if b.len() < at {
            return Err(MediaError::Truncated(b.len()));
        }
        let csrcs = b[FIXED..at].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
        if extension {
            let head = b.get(at..at + 4).ok_or(MediaError::Truncated(b.len()))?;
            let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
            at += 4 + 4 * words;
            if b.len() < at {
                return Err(MediaError::Truncated(b.len()));
            }
        }
        let mut end = b.len();
        if padding {
            let pad = usize::from(b[end - 1]);
            if pad == 0 || end - at < pad {
                return Err(MediaError::Invalid("the padding is longer than the payload"));
            }
            end -= pad;
        }
        Ok(Packet {
            marker: b[1] & 0x80 != 0,
            payload_type: b[1] & 0x7f,
            sequence: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            csrcs,
            payload: &b[at..end],
        })
    }

    /// The packet's bytes (no extension, no padding); at most 15 CSRCs are written.
    pub fn to_bytes(&self) -> Vec<u8> {
        let cc = self.csrcs.len().min(15);
        let mut out = Vec::with_capacity(FIXED + 4 * cc + self.payload.len());
        // cc ≤ 15, so the cast keeps it.
        out.push(0x80 | cc as u8);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs[..cc] {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(self.payload);
        out
    }
}

/// True when a packet on an RTP port is RTCP (RFC 5761 §4: second byte 192–223 — SR, RR, SDES,
/// BYE, APP and the feedback types).
pub fn is_rtcp(b: &[u8]) -> bool {
    b.len() >= 2 && (192..=223).contains(&b[1])
}

/// Extends 16-bit sequence numbers to a 64-bit count that never wraps (RFC 3550 §A.1): each
/// number is placed in the cycle nearest the highest seen.
#[derive(Debug, Clone, Default)]
pub struct SequenceExtender {
    highest: Option<u64>,
}

impl SequenceExtender {
    pub fn extend(&mut self, seq: u16) -> u64 {
        let Some(high) = self.highest else {
            // Starts a cycle up, so a number just before the first one stays positive.
            let first = (1u64 << 16) + u64::from(seq);
            self.highest = Some(first);
            return first;
        };
        let cycle = high & !0xffff;
        let candidates = [cycle.wrapping_sub(1 << 16), cycle, cycle + (1 << 16)].map(|c| c + u64::from(seq));
        let ext = candidates.into_iter().min_by_key(|c| c.abs_diff(high)).unwrap_or(high);
        if ext > high {
            self.highest = Some(ext);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_read_back_what_they_write() {
        let payload = [0xffu8; 160];
        let p = Packet {
            marker: true,
            payload_type: 0,
            sequence: 65535,
            timestamp: 0xdead_beef,
            ssrc: 42,
            csrcs: vec![7, 8],
            payload: &payload,
        };
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), 12 + 8 + 160);
        assert_eq!(Packet::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn extension_and_padding_are_skipped() {
        let mut b = vec![0xb0, 0x08, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one extension word
        b.extend_from_slice(&[0xd5; 4]); // payload
        b.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let p = Packet::parse(&b).unwrap();
        assert_eq!((p.payload_type, p.sequence, p.timestamp, p.payload), (8, 1, 160, &[0xd5u8; 4][..]));
    }

    #[test]
    fn bad_packets_are_refused() {
        assert_eq!(Packet::parse(&[0x80; 11]), Err(MediaError::Truncated(11)));
        assert_eq!(Packet::parse(&[0x40; 12]), Err(MediaError::Version(1)));
        let mut cc = vec![0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        cc.extend_from_slice(&[0; 8]);
        assert!(matches!(Packet::parse(&cc), Err(MediaError::Truncated(_))));
        let pad = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert!(matches!(Packet::parse(&pad), Err(MediaError::Invalid(_))));
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(is_rtcp(&rtcp) && Packet::parse(&rtcp).is_err());
        assert_eq!(Packet::parse(&[0x80; MAX_PACKET + 1]), Err(MediaError::TooLarge(MAX_PACKET)));
    }

    #[test]
    fn sequence_numbers_extend_across_the_wrap_and_reordering() {
        let mut x = SequenceExtender::default();
        let a = x.extend(65534);
        assert_eq!(x.extend(65535), a + 1);
        assert_eq!(x.extend(1), a + 3);
        assert_eq!(x.extend(0), a + 2, "late, from before the wrap");
        assert_eq!(x.extend(65533), a - 1, "older still");
        assert_eq!(x.extend(2), a + 4);
    }
}

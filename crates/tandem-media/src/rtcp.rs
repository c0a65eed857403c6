//! RTCP (RFC 3550 §6): sender and receiver reports with their report blocks, and BYE, read from
//! and written to compound packets; other types (SDES, APP, feedback) are passed over.

use crate::MediaError;

pub const SR: u8 = 200;
pub const RR: u8 = 201;
pub const SDES: u8 = 202;
pub const BYE: u8 = 203;
/// Packets read from one compound packet at most.
pub const MAX_PACKETS: usize = 16;

/// What a receiver says of one source (§6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative, 24 bits signed.
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp {
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_timestamp: u32,
        packets: u32,
        octets: u32,
        reports: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    Bye {
        sources: Vec<u32>,
    },
    /// A type this engine does not read.
    Other(u8),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn blocks(b: &[u8], count: usize) -> Result<Vec<ReportBlock>, MediaError> {
    if b.len() < 24 * count {
        return Err(MediaError::Truncated(b.len()));
    }
    Ok((0..count)
        .map(|i| {
            let x = &b[24 * i..24 * i + 24];
            let lost = i32::from_be_bytes([0, x[5], x[6], x[7]]);
            ReportBlock {
                ssrc: u32_at(x, 0),
                fraction_lost: x[4],
                cumulative_lost: if lost & 0x80_0000 != 0 { lost - 0x100_0000 } else { lost },
                highest_sequence: u32_at(x, 8),
                jitter: u32_at(x, 12),
                last_sr: u32_at(x, 16),
                delay_since_last_sr: u32_at(x, 20),
            }
        })
        .collect())
}

/// Reads a compound RTCP packet.
pub fn parse(mut b: &[u8]) -> Result<Vec<Rtcp>, MediaError> {
    if b.len() > crate::rtp::MAX_PACKET {
        return Err(MediaError::TooLarge(crate::rtp::MAX_PACKET));
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        if out.len() == MAX_PACKETS {
            return Err(MediaError::Invalid("too many packets in one compound packet"));
        }
        if b.len() < 4 {
            return Err(MediaError::Truncated(b.len()));
        }
        if b[0] >> 6 != 2 {
            return Err(MediaError::Version(b[0] >> 6));
        }
        let count = usize::from(b[0] & 0x1f);
        let len = 4 * (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1);
        let body = b.get(4..len).ok_or(MediaError::Truncated(b.len()))?;
        out.push(match b[1] {
            SR => {
                if body.len() < 24 {
                    return Err(MediaError::Truncated(body.len()));
                }
                Rtcp::SenderReport {
                    ssrc: u32_at(body, 0),
                    ntp: u64::from(u32_at(body, 4)) << 32 | u64::from(u32_at(body, 8)),
                    rtp_timestamp: u32_at(body, 12),
                    packets: u32_at(body, 16),
                    octets: u32_at(body, 20),
                    reports: blocks(&body[24..], count)?,
                }
            }
            RR => {
                if body.len() < 4 {
                    return Err(MediaError::Truncated(body.len()));
                }
                Rtcp::ReceiverReport { ssrc: u32_at(body, 0), reports: blocks(&body[4..], count)? }
            }
            BYE => {
                if body.len() < 4 * count {
                    return Err(MediaError::Truncated(body.len()));
                }
                Rtcp::Bye { sources: (0..count).map(|i| u32_at(body, 4 * i)).collect() }
            }
            other => Rtcp::Other(other),
        });
        b = &b[len..];
    }
    Ok(out)
}

fn header(out: &mut Vec<u8>, count: usize, kind: u8, words_after: usize) {
    // count ≤ 31 and the length fits 16 bits for the sizes written here.
    out.push(0x80 | (count.min(31) as u8));
    out.push(kind);
    out.extend_from_slice(&(words_after as u16).to_be_bytes());
}

fn write_blocks(out: &mut Vec<u8>, reports: &[ReportBlock]) {
    for r in reports.iter().take(31) {
        out.extend_from_slice(&r.ssrc.to_be_bytes());
        out.push(r.fraction_lost);
        out.extend_from_slice(&(r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff).to_be_bytes()[1..]);
        for v in [r.highest_sequence, r.jitter, r.last_sr, r.delay_since_last_sr] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

impl Rtcp {
    /// Appends the packet to a compound packet being built.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Rtcp::SenderReport { ssrc, ntp, rtp_timestamp, packets, octets, reports } => {
                let n = reports.len().min(31);
                header(out, n, SR, 6 + 6 * n);
                out.extend_from_slice(&ssrc.to_be_bytes());
                out.extend_from_slice(&ntp.to_be_bytes());
                for v in [*rtp_timestamp, *packets, *octets] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                write_blocks(out, reports);
            }
            Rtcp::ReceiverReport { ssrc, reports } => {
                let n = reports.len().min(31);
                header(out, n, RR, 1 + 6 * n);
                out.extend_from_slice(&ssrc.to_be_bytes());
                write_blocks(out, reports);
            }
            Rtcp::Bye { sources } => {
                let n = sources.len().min(31);
                header(out, n, BYE, n);
                for s in &sources[..n] {
                    out.extend_from_slice(&s.to_be_bytes());
                }
            }
            Rtcp::Other(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_packets_read_back_what_they_write() {
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_sequence: 70_000,
            jitter: 77,
            last_sr: 5,
            delay_since_last_sr: 6,
        };
        let packets = vec![
            Rtcp::SenderReport {
                ssrc: 1,
                ntp: 0x1234_5678_9abc_def0,
                rtp_timestamp: 160,
                packets: 50,
                octets: 8000,
                reports: vec![block],
            },
            Rtcp::ReceiverReport { ssrc: 1, reports: vec![block, block] },
            Rtcp::Bye { sources: vec![1, 2] },
        ];
        let mut bytes = Vec::new();
        for p in &packets {
            p.write(&mut bytes);
        }
        assert_eq!(parse(&bytes).unwrap(), packets);
    }

    #[test]
    fn bad_packets_are_refused() {
        assert!(matches!(parse(&[0x80, RR, 0]), Err(MediaError::Truncated(_))));
        assert!(matches!(parse(&[0x80, RR, 0, 9, 0, 0, 0, 0]), Err(MediaError::Truncated(_))));
        assert!(matches!(parse(&[0x81, RR, 0, 1, 0, 0, 0, 1]), Err(MediaError::Truncated(_))));
        assert!(matches!(parse(&[0x40, RR, 0, 0]), Err(MediaError::Version(1))));
        assert_eq!(parse(&[0x80, SDES, 0, 0]).unwrap(), vec![Rtcp::Other(SDES)]);
        let many: Vec<u8> = (0..17).flat_map(|_| [0x80, SDES, 0, 0]).collect();
        assert!(parse(&many).is_err());
    }
}

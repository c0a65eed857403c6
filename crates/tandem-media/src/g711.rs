//! G.711 (ITU-T G.711): 16-bit linear PCM to and from 8-bit µ-law (PCMU, RTP payload type 0)
//! and A-law (PCMA, payload type 8), 8,000 samples a second, as RFC 3551 §4.5.14 carries them.

/// RTP payload types (RFC 3551 table 4).
pub const PCMU: u8 = 0;
pub const PCMA: u8 = 8;
/// Samples per second, and so RTP timestamp units per second.
pub const CLOCK_RATE: u32 = 8000;

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// One linear sample to µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let sign: u8 = if s < 0 { 0x80 } else { 0 };
    // 0x84 ..= 0x7fff: the bias puts every value above the first segment's floor.
    let m = s.abs().min(CLIP) + BIAS;
    let top = (m >> 7) as u32;
    let exponent = if top == 0 { 0 } else { 31 - top.leading_zeros() };
    let mantissa = (m >> (exponent + 3)) & 0x0f;
    // exponent ≤ 7 and mantissa ≤ 15, so both fit their bits.
    !(sign | (exponent as u8) << 4 | mantissa as u8)
}

/// One µ-law byte to linear.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = ((mantissa << 3) + BIAS) << exponent;
    let value = magnitude - BIAS;
    // |value| ≤ 32124, which fits.
    (if u & 0x80 != 0 { -value } else { value }) as i16
}

/// One linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, magnitude) = if s >= 0 { (0x80u8, s) } else { (0x00u8, (-s - 1).max(0)) };
    let magnitude = magnitude.min(0x7fff) >> 3; // 13-bit
    let byte = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let exponent = (31 - (magnitude as u32).leading_zeros()) as i32 - 4; // 1..=7
        let mantissa = (magnitude >> exponent) & 0x0f;
        ((exponent << 4) as u8) | mantissa as u8
    };
    (byte | sign) ^ 0x55
}

/// One A-law byte to linear.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    // magnitude ≤ 32256, which fits.
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// A G.711 variant, by its payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            PCMU => Some(Law::Ulaw),
            PCMA => Some(Law::Alaw),
            _ => None,
        }
    }

    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => PCMU,
            Law::Alaw => PCMA,
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        let f = match self {
            Law::Ulaw => ulaw_encode,
            Law::Alaw => alaw_encode,
        };
        samples.iter().map(|s| f(*s)).collect()
    }

    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        let f = match self {
            Law::Ulaw => ulaw_decode,
            Law::Alaw => alaw_decode,
        };
        bytes.iter().map(|b| f(*b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_and_encodes_back_to_itself() {
        for b in 0..=255u8 {
            assert_eq!(ulaw_encode(ulaw_decode(b)), if b == 0x7f { 0xff } else { b }, "µ-law {b:#x}");
            assert_eq!(alaw_encode(alaw_decode(b)), b, "A-law {b:#x}");
        }
    }

    #[test]
    fn known_values() {
        // Silence, and the extremes, as G.711's tables give them.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
    }

    #[test]
    fn the_error_stays_within_the_step_size() {
        for s in (-32000i32..32000).step_by(7) {
            let s = s as i16;
            let err_u = (i32::from(ulaw_decode(ulaw_encode(s))) - i32::from(s)).abs();
            let err_a = (i32::from(alaw_decode(alaw_encode(s))) - i32::from(s)).abs();
            // The widest segment's step is 1024 (µ-law) and 1024 (A-law); half of it is the bound.
            assert!(err_u <= 1024 && err_a <= 1024, "{s}: {err_u} {err_a}");
            if i32::from(s).abs() < 256 {
                assert!(err_u <= 16 && err_a <= 16, "small signals keep their detail: {s}: {err_u} {err_a}");
            }
        }
    }
}

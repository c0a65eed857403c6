//! Comfort noise (RFC 3389): the payload says how loud the background is (its first byte, the
//! level in −dBov), so a receiver fills silence with noise of that level instead of dead air,
//! and a sender sends one such packet instead of a stream of silence.

use crate::MediaError;

/// The static payload type of CN at 8 kHz (RFC 3551 table 4).
pub const PAYLOAD_TYPE: u8 = 13;

/// Reads the noise level (0–127 −dBov); spectral coefficients after it are ignored.
pub fn parse_level(payload: &[u8]) -> Result<u8, MediaError> {
    let level = *payload.first().ok_or(MediaError::Truncated(0))?;
    if level > 127 {
        return Err(MediaError::Invalid("a comfort-noise level above 127 -dBov"));
    }
    Ok(level)
}

/// The level, in −dBov, of 16-bit samples (their RMS against full scale), 127 for silence.
pub fn level_of(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms < 1.0 {
        return 127;
    }
    let dbov = -20.0 * (rms / 32768.0).log10();
    // Clamped to the field's range first, so the cast keeps it.
    dbov.round().clamp(0.0, 127.0) as u8
}

/// Noise at `level` −dBov: `n` samples from a small deterministic generator (xorshift), so the
/// same call fills the same silence.
pub fn generate(level: u8, n: usize, seed: &mut u32) -> Vec<i16> {
    let amplitude = 32768.0 * 10f64.powf(-f64::from(level.min(127)) / 20.0) * 3f64.sqrt();
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            let unit = f64::from(*seed) / f64::from(u32::MAX) * 2.0 - 1.0;
            // |amplitude · unit| stays within i16 for levels that are not near 0 dBov; clamped anyway.
            (amplitude * unit).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_noise_has_the_level_asked_for() {
        let mut seed = 0x1234_5678;
        for level in [20u8, 40, 60] {
            let noise = generate(level, 8000, &mut seed);
            let got = i32::from(level_of(&noise));
            assert!((got - i32::from(level)).abs() <= 1, "{level}: {got}");
        }
        assert_eq!(level_of(&[0; 160]), 127);
        assert_eq!(parse_level(&[40, 1, 2]), Ok(40));
        assert!(parse_level(&[200]).is_err() && parse_level(&[]).is_err());
    }
}

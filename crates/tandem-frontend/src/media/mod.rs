//! Media on the wire for the Front End's own user agents (voicemail now, the conference focus
//! later): RTP over UDP from a bounded port range, symmetric (answers go to where packets come
//! from, so clients behind NAT are heard and reached), paced sending of 20 ms G.711 frames,
//! recording through the jitter buffer with telephone events read as digits, and WAV files.
//! The packets, codecs and buffer are `tandem-media`'s; this module adds sockets and time.

pub mod ports;
pub mod stream;
pub mod wav;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// One frame's duration.
pub const FRAME: std::time::Duration = std::time::Duration::from_millis(20);

/// Why media could not be set up or carried.
#[derive(Debug, thiserror::Error)]
pub enum MediaIoError {
    #[error("no free RTP port in {min}-{max}: every one is in use (raise the range in tandem.toml)")]
    NoPort { min: u16, max: u16 },
    #[error("RTP socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("WAV: {0}")]
    Wav(String),
}

/// A sine tone of `hz` for `ms` at `amplitude` (of full scale, 0–1), at 8 kHz.
pub fn tone(hz: f64, ms: u32, amplitude: f64) -> Vec<i16> {
    let n = (u64::from(ms) * 8) as usize;
    let a = 32767.0 * amplitude.clamp(0.0, 1.0);
    // |a · sin| ≤ 32767, so the cast keeps the value.
    (0..n).map(|i| (a * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16).collect()
}

/// The power of `hz` in `samples` (Goertzel), relative to the signal's power: near 1 when the
/// signal is that tone, near 0 when it has none of it.
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for x in samples {
        let x = f64::from(*x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if energy == 0.0 { 0.0 } else { (2.0 * power / (samples.len() as f64 * energy)).min(1.0) }
}

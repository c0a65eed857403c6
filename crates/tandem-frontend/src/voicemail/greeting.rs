//! What a caller hears before recording starts: the callee's uploaded greeting
//! (`set-um-mailbox-greeting`, checked here) or a generated default, then the record tone.
//! The default is synthesised (a rising two-note chime), so no recorded audio ships with Tandem;
//! it carries no words, since Tandem has no speech synthesis.

use std::time::Duration;

use crate::media::{self, MediaIoError, wav};

/// Longest greeting accepted (Exchange UM's MaxGreetingDuration default is five minutes).
pub const MAX_GREETING: Duration = Duration::from_secs(300);
/// Shortest greeting accepted: anything shorter is a mistake, not a greeting.
pub const MIN_GREETING: Duration = Duration::from_millis(200);
/// Quieter than this (−dBov) throughout is refused as silent.
const SILENT_DBOV: u8 = 60;

/// Why an uploaded greeting was refused.
#[derive(Debug, thiserror::Error)]
pub enum GreetingError {
    #[error("{0}")]
    Format(#[from] MediaIoError),
    #[error("the greeting is {0} ms long: it must be from {min} ms to {max} s", min = MIN_GREETING.as_millis(), max = MAX_GREETING.as_secs())]
    Length(u64),
    #[error("the greeting is silent (below -{SILENT_DBOV} dBov throughout): record it again louder")]
    Silent,
}

fn millis(samples: usize) -> u64 {
    samples as u64 / 8
}

/// Checks an uploaded WAV file (8 kHz, 16-bit, mono; bounded size, length and level) and
/// returns its samples.
pub fn check(bytes: &[u8]) -> Result<Vec<i16>, GreetingError> {
    let samples = wav::from_wav(bytes)?;
    let ms = millis(samples.len());
    if ms < MIN_GREETING.as_millis() as u64 || ms > MAX_GREETING.as_millis() as u64 {
        return Err(GreetingError::Length(ms));
    }
    if tandem_media::cn::level_of(&samples) > SILENT_DBOV {
        return Err(GreetingError::Silent);
    }
    Ok(samples)
}

/// The default greeting: two rising notes (E5, A5) with short fades, then a pause.
pub fn default_greeting() -> Vec<i16> {
    let mut out = Vec::new();
    for hz in [659.25, 880.0] {
        let mut note = media::tone(hz, 250, 0.3);
        fade(&mut note, 80);
        out.extend(note);
        out.extend(std::iter::repeat_n(0, 400));
    }
    out.extend(std::iter::repeat_n(0, 2400));
    out
}

/// The tone that says "speak now" (a 1 kHz-free 850 Hz beep, so it can never be mistaken for a
/// caller's test tone).
pub fn record_tone() -> Vec<i16> {
    let mut beep = media::tone(850.0, 300, 0.4);
    fade(&mut beep, 40);
    beep
}

/// Linear fade in and out over `n` samples, so notes do not click.
fn fade(samples: &mut [i16], n: usize) {
    let len = samples.len();
    let n = n.min(len / 2);
    for i in 0..n {
        let k = i as f64 / n as f64;
        // |sample · k| ≤ |sample|, so the casts keep the values.
        samples[i] = (f64::from(samples[i]) * k) as i16;
        samples[len - 1 - i] = (f64::from(samples[len - 1 - i]) * k) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_greeting_is_generated_and_within_the_bounds() {
        let g = default_greeting();
        let ms = millis(g.len());
        assert!((500..3000).contains(&ms), "{ms} ms");
        assert_eq!(check(&wav::to_wav(&g).unwrap()).unwrap(), g);
        assert!(media::tone_share(&record_tone(), 850.0) > 0.8);
        assert!(media::tone_share(&record_tone(), 1000.0) < 0.1, "the record tone is not the test tone");
    }

    #[test]
    fn uploaded_greetings_are_checked() {
        let ok = media::tone(440.0, 1000, 0.5);
        assert_eq!(check(&wav::to_wav(&ok).unwrap()).unwrap().len(), 8000);
        let short = media::tone(440.0, 50, 0.5);
        assert!(matches!(check(&wav::to_wav(&short).unwrap()), Err(GreetingError::Length(50))));
        let long = vec![1000i16; (MAX_GREETING.as_millis() as usize + 1000) * 8];
        assert!(matches!(check(&wav::to_wav(&long).unwrap()), Err(GreetingError::Length(_))));
        let silent = vec![0i16; 8000];
        assert!(matches!(check(&wav::to_wav(&silent).unwrap()), Err(GreetingError::Silent)));
        assert!(matches!(check(b"RIFF not really"), Err(GreetingError::Format(_))));
    }
}

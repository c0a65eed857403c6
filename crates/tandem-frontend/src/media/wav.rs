//! WAV files of calls: 8 kHz, 16-bit, mono PCM, as Exchange UM attached voicemail (`audio/wav`).
//! Written to and read from memory with `hound`; a greeting uploaded in another format is
//! refused with what it is and what is needed.

use std::io::Cursor;

use super::MediaIoError;

/// Longest WAV read (a greeting): ten minutes of 8 kHz 16-bit audio.
pub const MAX_WAV_BYTES: usize = 10 * 60 * 8000 * 2 + 1024;

fn spec() -> hound::WavSpec {
    hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int }
}

/// The samples as a WAV file.
pub fn to_wav(samples: &[i16]) -> Result<Vec<u8>, MediaIoError> {
    let mut out = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let wav = |e: hound::Error| MediaIoError::Wav(e.to_string());
    let mut w = hound::WavWriter::new(&mut out, spec()).map_err(wav)?;
    for s in samples {
        w.write_sample(*s).map_err(wav)?;
    }
    w.finalize().map_err(wav)?;
    Ok(out.into_inner())
}

/// Reads a WAV file of 8 kHz, 16-bit, mono PCM.
pub fn from_wav(bytes: &[u8]) -> Result<Vec<i16>, MediaIoError> {
    if bytes.len() > MAX_WAV_BYTES {
        return Err(MediaIoError::Wav(format!("larger than {MAX_WAV_BYTES} bytes (ten minutes)")));
    }
    let wav = |e: hound::Error| MediaIoError::Wav(e.to_string());
    let r = hound::WavReader::new(Cursor::new(bytes)).map_err(wav)?;
    let s = r.spec();
    if s.channels != 1
        || s.sample_rate != 8000
        || s.bits_per_sample != 16
        || s.sample_format != hound::SampleFormat::Int
    {
        return Err(MediaIoError::Wav(format!(
            "{} channel(s), {} Hz, {}-bit: record it as 8000 Hz, 16-bit, mono PCM (e.g. `sox in.wav -r 8000 -b 16 -c 1 out.wav`)",
            s.channels, s.sample_rate, s.bits_per_sample
        )));
    }
    r.into_samples::<i16>().collect::<Result<Vec<_>, _>>().map_err(wav)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_files_read_back_and_other_formats_are_refused() {
        let tone = crate::media::tone(1000.0, 100, 0.5);
        let bytes = to_wav(&tone).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(from_wav(&bytes).unwrap(), tone);
        let mut stereo = Cursor::new(Vec::new());
        let spec = hound::WavSpec { channels: 2, ..super::spec() };
        let mut w = hound::WavWriter::new(&mut stereo, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let e = from_wav(&stereo.into_inner()).unwrap_err().to_string();
        assert!(e.contains("8000 Hz, 16-bit, mono"), "{e}");
        assert!(from_wav(b"not a wav").is_err());
    }
}

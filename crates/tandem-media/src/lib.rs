//! The media engine's core, without I/O (as `tandem-sip-proto` is for SIP): RTP and RTCP packets
//! (RFC 3550) read and written, a jitter buffer that puts a stream back in order with its
//! interarrival jitter, G.711 µ-law and A-law (PCMU/PCMA), telephone events (RFC 4733) and comfort
//! noise (RFC 3389), and the conference mixer (N−1, per-leg jitter buffers). Voicemail and conferencing drive these with sockets and timers of their own;
//! everything here is bytes in, values out, bounded, and fuzzed (`fuzz/fuzz_targets/rtp.rs`).

pub mod cn;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod mixer;
pub mod rtcp;
pub mod rtp;

/// Why a packet cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the packet is shorter than its header says ({0} bytes)")]
    Truncated(usize),
    #[error("RTP version {0}: only version 2 exists")]
    Version(u8),
    #[error("the packet is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Invalid(&'static str),
}

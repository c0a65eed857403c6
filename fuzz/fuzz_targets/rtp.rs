//! The media readers: RTP, RTCP, telephone events and SDP must never panic, stay within their
//! limits, and read back what they write; a jitter buffer fed anything stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_media::{dtmf, jitter, rtcp, rtp};
use tandem_sip_proto::sdp;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = rtp::Packet::parse(data) {
        let again = p.to_bytes();
        let back = rtp::Packet::parse(&again).expect("a written packet reads back");
        assert_eq!((back.sequence, back.timestamp, back.payload), (p.sequence, p.timestamp, p.payload));
    }
    if let Ok(packets) = rtcp::parse(data) {
        assert!(packets.len() <= rtcp::MAX_PACKETS);
    }
    let _ = dtmf::Event::parse(data);
    let mut buffer = jitter::JitterBuffer::new(40, 8000);
    for (i, chunk) in data.chunks(8).enumerate() {
        if chunk.len() >= 6 {
            buffer.push(
                i as u64 * 20,
                u16::from_be_bytes([chunk[0], chunk[1]]),
                u32::from_be_bytes([chunk[2], chunk[3], chunk[4], chunk[5]]),
                &chunk[6..],
            );
            let _ = buffer.pop(i as u64 * 20);
        }
    }
    assert!(buffer.held() <= jitter::MAX_HELD + 1);
    if let Ok(offer) = sdp::Session::parse(data) {
        assert!(offer.media.len() <= sdp::MAX_MEDIA);
        let again = sdp::Session::parse(offer.render().as_bytes()).expect("a rendered session reads back");
        assert_eq!(again.media.len(), offer.media.len());
        if let Ok((answer, _)) = sdp::answer(&offer, "192.0.2.1", 30000, 1) {
            sdp::Session::parse(answer.render().as_bytes()).expect("an answer reads back");
        }
    }
});

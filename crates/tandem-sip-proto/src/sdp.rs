//! SDP (RFC 4566) as calls use it, and the offer/answer model (RFC 3264) for audio: a session's
//! connection address and its media descriptions with their formats (`rtpmap`, `fmtp`),
//! direction, `ptime` and `rtcp-mux`; the answer this server gives an offer, choosing the first
//! offered codec it also speaks and echoing telephone events when offered. Both ways: the same
//! types read an offer and write an answer (or an offer of our own). Bounded; no I/O.

use std::fmt::Write as _;

/// Largest body read.
pub const MAX_SDP: usize = 16 * 1024;
/// Media descriptions read at most, and formats per description.
pub const MAX_MEDIA: usize = 16;
pub const MAX_FORMATS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the SDP body is larger than {MAX_SDP} bytes")]
    TooLarge,
    #[error("the SDP body is not UTF-8")]
    Encoding,
    #[error("SDP line {0}: {1}")]
    Line(usize, &'static str),
    #[error("the SDP has {0}")]
    Missing(&'static str),
    /// No offered audio codec is one this server speaks: answer 488 Not Acceptable Here.
    #[error("no offered audio format is one this server speaks (PCMU, PCMA)")]
    NoCommonCodec,
}

/// Which way media flows (RFC 3264 §5.1), `sendrecv` when unsaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to an offer's (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

/// One payload format of a media description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub payload_type: u8,
    /// From `a=rtpmap` (or the static type's name): `PCMU`, `telephone-event`…
    pub encoding: String,
    pub clock_rate: u32,
    pub fmtp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`…
    pub kind: String,
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`…
    pub protocol: String,
    pub formats: Vec<Format>,
    /// The media-level `c=` address, when it has one.
    pub address: Option<String>,
    pub direction: Direction,
    pub ptime: Option<u32>,
    pub rtcp_mux: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `o=` username, session id and version, and the address.
    pub origin_user: String,
    pub session_id: u64,
    pub session_version: u64,
    pub origin_address: String,
    /// The session-level `c=` address.
    pub address: Option<String>,
    pub media: Vec<Media>,
}

fn static_format(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        8 => Some(("PCMA", 8000)),
        13 => Some(("CN", 8000)),
        _ => None,
    }
}

/// The connection address of a `c=IN IP4 <addr>` line.
fn connection(value: &str, n: usize) -> Result<String, SdpError> {
    let mut f = value.split_whitespace();
    match (f.next(), f.next(), f.next()) {
        (Some("IN"), Some("IP4" | "IP6"), Some(addr)) => match addr.split('/').next() {
            Some(a) if !a.is_empty() => Ok(a.to_owned()),
            _ => Err(SdpError::Line(n, "c= has an empty address")),
        },
        _ => Err(SdpError::Line(n, "c= needs `IN IP4|IP6 address`")),
    }
}

impl Session {
    pub fn parse(body: &[u8]) -> Result<Session, SdpError> {
        if body.len() > MAX_SDP {
            return Err(SdpError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Encoding)?;
        let mut origin = None;
        let mut address = None;
        let mut media: Vec<Media> = Vec::new();
        let mut session_direction = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { return Err(SdpError::Line(n, "not `x=value`")) };
            match key {
                "v" if value.trim() != "0" => return Err(SdpError::Line(n, "only v=0 exists")),
                "o" => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    let [user, id, version, "IN", _, addr] = f.as_slice() else {
                        return Err(SdpError::Line(n, "o= needs six fields"));
                    };
                    let id = id.parse().map_err(|_| SdpError::Line(n, "o= session id is not a number"))?;
                    let version = version.parse().map_err(|_| SdpError::Line(n, "o= version is not a number"))?;
                    origin = Some(((*user).to_owned(), id, version, (*addr).to_owned()));
                }
                "c" => {
                    let addr = connection(value, n)?;
                    match media.last_mut() {
                        Some(m) => m.address = Some(addr),
                        None => address = Some(addr),
                    }
                }
                "m" => {
                    if media.len() == MAX_MEDIA {
                        return Err(SdpError::Line(n, "too many media descriptions"));
                    }
                    let mut f = value.split_whitespace();
                    let (Some(kind), Some(port), Some(protocol)) = (f.next(), f.next(), f.next()) else {
                        return Err(SdpError::Line(n, "m= needs media, port, protocol and formats"));
                    };
                    let port = port.split('/').next().and_then(|p| p.parse().ok());
                    let port = port.ok_or(SdpError::Line(n, "m= port is not a number"))?;
                    let mut formats = Vec::new();
                    for pt in f {
                        if formats.len() == MAX_FORMATS {
                            return Err(SdpError::Line(n, "too many formats"));
                        }
                        // Non-RTP protocols name formats otherwise; they are kept out.
                        let Ok(pt) = pt.parse::<u8>() else { continue };
                        let (encoding, clock_rate) = static_format(pt).unwrap_or(("", 0));
                        formats.push(Format {
                            payload_type: pt,
                            encoding: encoding.to_owned(),
                            clock_rate,
                            fmtp: None,
                        });
                    }
                    media.push(Media {
                        kind: kind.to_owned(),
                        port,
                        protocol: protocol.to_owned(),
                        formats,
                        address: None,
                        direction: Direction::default(),
                        ptime: None,
                        rtcp_mux: false,
                    });
                }
                "a" => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    let dir = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    let Some(m) = media.last_mut() else {
                        if dir.is_some() {
                            session_direction = dir;
                        }
                        continue;
                    };
                    if let Some(d) = dir {
                        m.direction = d;
                        continue;
                    }
                    match name {
                        "rtpmap" => {
                            let (pt, rest) =
                                arg.split_once(' ').ok_or(SdpError::Line(n, "rtpmap needs `pt enc/rate`"))?;
                            let pt: u8 = pt.parse().map_err(|_| SdpError::Line(n, "rtpmap payload type"))?;
                            let mut enc = rest.trim().split('/');
                            let encoding = enc.next().unwrap_or("").to_owned();
                            let rate =
                                enc.next().and_then(|r| r.parse().ok()).ok_or(SdpError::Line(n, "rtpmap rate"))?;
                            if let Some(f) = m.formats.iter_mut().find(|f| f.payload_type == pt) {
                                f.encoding = encoding;
                                f.clock_rate = rate;
                            }
                        }
                        "fmtp" => {
                            let (pt, rest) = arg.split_once(' ').unwrap_or((arg, ""));
                            if let Some(f) =
                                pt.parse::<u8>().ok().and_then(|pt| m.formats.iter_mut().find(|f| f.payload_type == pt))
                            {
                                f.fmtp = Some(rest.trim().to_owned());
                            }
                        }
                        "ptime" => m.ptime = arg.trim().parse().ok(),
                        "rtcp-mux" => m.rtcp_mux = true,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let (origin_user, session_id, session_version, origin_address) =
            origin.ok_or(SdpError::Missing("no o= line"))?;
        if let Some(d) = session_direction {
            for m in media.iter_mut().filter(|m| m.direction == Direction::SendRecv) {
                m.direction = d;
            }
        }
        if media.iter().any(|m| m.address.is_none()) && address.is_none() {
            return Err(SdpError::Missing("a media description without a c= address"));
        }
        Ok(Session { origin_user, session_id, session_version, origin_address, address, media })
    }

    /// The body.
    pub fn render(&self) -> String {
        let ip = |a: &str| if a.contains(':') { "IP6" } else { "IP4" };
        let mut s = String::from("v=0\r\n");
        let _ = write!(
            s,
            "o={} {} {} IN {} {}\r\ns=-\r\n",
            self.origin_user,
            self.session_id,
            self.session_version,
            ip(&self.origin_address),
            self.origin_address
        );
        if let Some(a) = &self.address {
            let _ = write!(s, "c=IN {} {a}\r\n", ip(a));
        }
        s.push_str("t=0 0\r\n");
        for m in &self.media {
            let pts: Vec<String> = m.formats.iter().map(|f| f.payload_type.to_string()).collect();
            let _ = write!(s, "m={} {} {} {}\r\n", m.kind, m.port, m.protocol, pts.join(" "));
            if let Some(a) = &m.address {
                let _ = write!(s, "c=IN {} {a}\r\n", ip(a));
            }
            for f in &m.formats {
                if !f.encoding.is_empty() {
                    let _ = write!(s, "a=rtpmap:{} {}/{}\r\n", f.payload_type, f.encoding, f.clock_rate);
                }
                if let Some(p) = &f.fmtp {
                    let _ = write!(s, "a=fmtp:{} {p}\r\n", f.payload_type);
                }
            }
            if let Some(p) = m.ptime {
                let _ = write!(s, "a=ptime:{p}\r\n");
            }
            if m.rtcp_mux {
                s.push_str("a=rtcp-mux\r\n");
            }
            let _ = write!(s, "a={}\r\n", m.direction.as_str());
        }
        s
    }

    /// The address and port RTP for the first audio stream goes to.
    pub fn audio_target(&self) -> Option<(String, u16)> {
        let m = self.media.iter().find(|m| m.kind == "audio" && m.port != 0)?;
        Some((m.address.clone().or_else(|| self.address.clone())?, m.port))
    }
}

/// The codecs this server speaks, in its order of preference when it offers.
pub const AUDIO_CODECS: &[(&str, u32)] = &[("PCMU", 8000), ("PCMA", 8000)];

/// What an answer settled for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Format,
    /// The payload type of `telephone-event/8000`, when both sides have it.
    pub telephone_event: Option<u8>,
    pub direction: Direction,
    pub remote: (String, u16),
}

/// The answer to `offer` (RFC 3264 §6): the first audio description gets the first offered
/// codec this server speaks (the offerer's preference) and telephone events when offered, at
/// `local_address:local_port`; every other description is refused with port 0, as §6 says.
pub fn answer(
    offer: &Session,
    local_address: &str,
    local_port: u16,
    session_id: u64,
) -> Result<(Session, Negotiated), SdpError> {
    let mut negotiated = None;
    let mut media = Vec::with_capacity(offer.media.len());
    for m in &offer.media {
        let is_rtp_audio = m.kind == "audio" && m.port != 0 && m.protocol.starts_with("RTP/AVP");
        let codec = m
            .formats
            .iter()
            .find(|f| AUDIO_CODECS.iter().any(|(e, r)| f.encoding.eq_ignore_ascii_case(e) && f.clock_rate == *r));
        match (is_rtp_audio && negotiated.is_none(), codec) {
            (true, Some(codec)) => {
                let event = m
                    .formats
                    .iter()
                    .find(|f| f.encoding.eq_ignore_ascii_case("telephone-event") && f.clock_rate == 8000);
                let mut formats = vec![codec.clone()];
                formats.extend(event.cloned());
                let remote_addr =
                    m.address.clone().or_else(|| offer.address.clone()).ok_or(SdpError::Missing("no c= address"))?;
                negotiated = Some(Negotiated {
                    codec: codec.clone(),
                    telephone_event: event.map(|e| e.payload_type),
                    direction: m.direction,
                    remote: (remote_addr, m.port),
                });
                media.push(Media {
                    kind: m.kind.clone(),
                    port: local_port,
                    protocol: m.protocol.clone(),
                    formats,
                    address: None,
                    direction: m.direction.answer(),
                    ptime: Some(20),
                    rtcp_mux: m.rtcp_mux,
                });
            }
            _ => media.push(Media { port: 0, address: None, ptime: None, ..m.clone() }),
        }
    }
    let negotiated = negotiated.ok_or(SdpError::NoCommonCodec)?;
    let session = Session {
        origin_user: "tandem".into(),
        session_id,
        session_version: session_id,
        origin_address: local_address.to_owned(),
        address: Some(local_address.to_owned()),
        media,
    };
    Ok((session, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\nm=video 40002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n";

    #[test]
    fn an_offer_gets_the_first_common_codec_and_telephone_events() {
        let offer = Session::parse(BARESIP.as_bytes()).unwrap();
        assert_eq!(offer.audio_target(), Some(("192.0.2.10".into(), 40000)));
        let (ans, n) = answer(&offer, "198.51.100.1", 30000, 7).unwrap();
        assert_eq!((n.codec.payload_type, n.telephone_event, n.remote.1), (0, Some(101), 40000));
        let text = ans.render();
        assert!(text.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{text}");
        assert!(text.contains("a=fmtp:101 0-15\r\n") && text.contains("a=sendrecv\r\n"), "{text}");
        assert!(text.contains("m=video 0 RTP/AVP 97\r\n"), "the video stream is refused: {text}");
        assert_eq!(Session::parse(text.as_bytes()).unwrap(), ans, "the answer reads back");
    }

    #[test]
    fn directions_and_static_types_without_rtpmap() {
        let offer = "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 5000 RTP/AVP 8\r\n";
        let offer = Session::parse(offer.as_bytes()).unwrap();
        let (ans, n) = answer(&offer, "10.0.0.2", 6000, 1).unwrap();
        assert_eq!((n.codec.encoding.as_str(), n.direction), ("PCMA", Direction::SendOnly));
        assert_eq!(ans.media[0].direction, Direction::RecvOnly);
    }

    #[test]
    fn bad_offers_are_refused() {
        let no_codec = BARESIP.replace("m=audio 40000 RTP/AVP 96 0 8 101", "m=audio 40000 RTP/AVP 96");
        let offer = Session::parse(no_codec.as_bytes()).unwrap();
        assert_eq!(answer(&offer, "10.0.0.2", 6000, 1).unwrap_err(), SdpError::NoCommonCodec);
        for bad in [
            "v=1\r\n",
            "garbage\r\n",
            "v=0\r\no=- x 1 IN IP4 a\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 5000 RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\nc=IN XX a\r\n",
            "v=0\r\no=- 1 1 IN IP4 a\r\nc=IN IP4 a\r\nm=audio port RTP/AVP 0\r\n",
        ] {
            assert!(Session::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(Session::parse(&vec![b'a'; MAX_SDP + 1]), Err(SdpError::TooLarge));
        // Found by the fuzz target: an address that is only a TTL suffix.
        assert!(Session::parse(b"v=0\r\no=- 1 2 IN IP4 a\r\nc=IN IP4 /AV8\r\nm=audio 1 RTP/AVP 0\r\n").is_err());
        let many =
            format!("v=0\r\no=- 1 1 IN IP4 a\r\nc=IN IP4 a\r\n{}", "m=audio 1 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
        assert!(Session::parse(many.as_bytes()).is_err());
    }
}

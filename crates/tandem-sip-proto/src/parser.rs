//! Bytes to messages, for datagrams and for streams, within fixed limits.
//!
//! A request that is wrong but readable enough to answer comes back as a [`Rejected`] carrying the
//! response RFC 3261 asks for (400, 416, 505, 513): the transport sends it and moves on. Anything
//! less readable is dropped by the caller (on UDP) or closes the connection (on a stream).

use std::borrow::Cow;

use crate::headers::Headers;
use crate::message::{CSeq, HeaderView, Message, Method, Request, Response, is_token_byte};
use crate::uri::Uri;

/// Why bytes are not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed start line `{0}`")]
    StartLine(String),
    #[error("unsupported SIP version `{0}`")]
    Version(String),
    #[error("malformed {0} header `{1}`")]
    Header(&'static str, String),
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed URI `{0}`")]
    Uri(String),
    #[error("unsupported URI scheme in `{0}`")]
    UriScheme(String),
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    #[error("Content-Length does not match the body")]
    ContentLength,
    #[error("CSeq method `{0}` differs from the request method")]
    CSeqMethod(String),
    #[error("header bytes are not UTF-8")]
    Encoding,
    #[error("no end of headers")]
    Truncated,
}

impl ParseError {
    /// The status a request with this fault is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Version(_) => 505,
            ParseError::UriScheme(_) => 416,
            ParseError::TooLarge(_) => 513,
            _ => 400,
        }
    }
}

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message accepted (headers plus body).
    pub max_message: usize,
    pub max_header_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 64 KiB covers large presence documents and SDP; a UDP datagram cannot be larger anyway.
        Limits { max_message: 65_535, max_header_lines: 128 }
    }
}

/// A message that cannot be processed, with the response to send when one can be formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub error: ParseError,
    pub reply: Option<Response>,
}

impl From<ParseError> for Rejected {
    fn from(error: ParseError) -> Self {
        Rejected { error, reply: None }
    }
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    Message(Box<Message>),
    /// A CRLF CRLF keep-alive ping (RFC 5626 §3.5.1), answered with CRLF.
    Ping,
}

/// Parses one datagram. Leading CRLFs (keep-alives) are skipped; an all-CRLF datagram is
/// `Ok(None)`.
pub fn parse_datagram(data: &[u8], limits: &Limits) -> Result<Option<Message>, Rejected> {
    let start = data.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(data.len());
    let data = &data[start..];
    if data.is_empty() {
        return Ok(None);
    }
    if data.len() > limits.max_message {
        return Err(too_large(data, limits));
    }
    let (head_end, body_start, blank_line) = match find_header_end(data) {
        Some((head_end, body_start)) => (head_end, body_start, true),
        // The empty line is mandatory (RFC 3261 §7), but a datagram's end is unambiguous: a
        // header block running to the end of it is still readable enough to answer with a 400
        // (RFC 4475 §3.1.2.15 ends that way).
        None if data.ends_with(b"\n") => (data.len(), data.len(), false),
        None => return Err(ParseError::Truncated.into()),
    };
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| ParseError::Encoding)?;
    let body = &data[body_start..];
    let result = build(head, body, false, limits);
    match result {
        Ok(Message::Request(request)) if !blank_line => Err(reject_request(ParseError::Truncated, &request.headers)),
        Ok(Message::Response(_)) if !blank_line => Err(ParseError::Truncated.into()),
        other => other.map(Some),
    }
}

/// A 513 for an oversized request whose header block fits within the limit (RFC 3261 §21.5.14);
/// only that much of the datagram is looked at.
fn too_large(data: &[u8], limits: &Limits) -> Rejected {
    let error = ParseError::TooLarge(limits.max_message);
    let window = &data[..limits.max_message.min(data.len())];
    let Some(head) = find_header_end(window).and_then(|(end, _)| std::str::from_utf8(&window[..end]).ok()) else {
        return error.into();
    };
    let lines = logical_lines(head);
    let is_request = lines.first().and_then(|l| l.split(' ').next()).is_some_and(|m| Method::parse(m).is_ok());
    if !is_request || lines.len() - 1 > limits.max_header_lines {
        return error.into();
    }
    reject_request(error, &collect_headers(&lines[1..]).0)
}

fn find_header_end(data: &[u8]) -> Option<(usize, usize)> {
    let crlf = data.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Splits the header block into unfolded logical lines.
/// Lines are borrowed from the message; only a folded line is copied.
fn logical_lines(head: &str) -> Vec<Cow<'_, str>> {
    let mut lines: Vec<Cow<'_, str>> = Vec::with_capacity(16);
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if (line.starts_with(' ') || line.starts_with('\t')) && !lines.is_empty() {
            if let Some(last) = lines.last_mut() {
                let last = last.to_mut();
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            lines.push(Cow::Borrowed(line));
        }
    }
    lines
}

/// The header lines as name and value, with the first malformed line.
fn collect_headers(lines: &[Cow<'_, str>]) -> (Headers, Option<ParseError>) {
    let mut headers = Headers::new();
    let mut header_error = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() && name.trim().bytes().all(is_token_byte) => {
                headers.push(name.trim(), value.trim());
            }
            _ => {
                header_error.get_or_insert(ParseError::Header("header line", line.to_string()));
            }
        }
    }
    (headers, header_error)
}

/// `body` is everything after the header block; on a stream the caller has already cut it to
/// Content-Length.
fn build(head: &str, body: &[u8], stream: bool, limits: &Limits) -> Result<Message, Rejected> {
    let lines = logical_lines(head);
    let start_line = lines.first().ok_or(ParseError::Truncated)?;
    if lines.len() - 1 > limits.max_header_lines {
        return Err(ParseError::TooManyHeaders(limits.max_header_lines).into());
    }
    let (headers, mut header_error) = collect_headers(&lines[1..]);

    // Content-Length: one value, numeric, not more than the bytes present.
    let lengths: Vec<&str> = headers.get_all("Content-Length").collect();
    let body = match lengths.as_slice() {
        [] if stream => &body[..0],
        [] => body,
        [one] => match one.trim().parse::<usize>() {
            Ok(n) if n <= body.len() => &body[..n],
            _ => {
                header_error.get_or_insert(ParseError::ContentLength);
                body
            }
        },
        _ => {
            header_error.get_or_insert(ParseError::ContentLength);
            body
        }
    };

    if let Some(rest) = start_line.strip_prefix("SIP/") {
        // Response: SIP/2.0 SP code SP reason
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if version != "2.0" {
            return Err(ParseError::Version(format!("SIP/{version}")).into());
        }
        let status = parts
            .next()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..700).contains(c))
            .ok_or_else(|| ParseError::StartLine(start_line.to_string()))?;
        let reason = parts.next().unwrap_or("").to_owned();
        if let Some(e) = header_error {
            return Err(e.into());
        }
        let response = Response { status, reason, headers, body: body.to_vec() };
        // A response that cannot be matched to a transaction is dropped (RFC 4475 §3.1.2.5).
        validate_response(&response)?;
        return Ok(Message::Response(response));
    }

    // Request: Method SP Request-URI SP SIP-Version, exactly single spaces. Once the first word
    // is a method, the request is answered: a malformed Request-Line (RFC 4475 §3.1.2.8-10) is
    // a 400 like any other syntax fault.
    let parts: Vec<&str> = start_line.split(' ').collect();
    let method = Method::parse(parts.first().copied().unwrap_or("")).map_err(Rejected::from)?;
    let [_, uri, version] = parts.as_slice() else {
        return Err(reject_request(ParseError::StartLine(start_line.to_string()), &headers));
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(reject_request(ParseError::Version((*version).to_owned()), &headers));
    }
    let uri = match Uri::parse(uri) {
        // Headers are not allowed in a Request-URI (RFC 3261 §19.1.1); accepting them would risk
        // forwarding them (RFC 4475 §3.1.2.11).
        Ok(u) if u.headers.is_some() => return Err(reject_request(ParseError::Uri((*uri).to_owned()), &headers)),
        Ok(u) => u,
        Err(_) => {
            // 416 is for a well-formed URI of another scheme (RFC 4475 §3.3.2, §3.3.3); a
            // "scheme" that is not scheme syntax (`<sip:…>`, §3.1.2.7) is a malformed URI.
            let scheme = uri.split_once(':').map(|(s, _)| s);
            let scheme_syntax = scheme.is_some_and(|s| {
                s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            });
            let known = scheme.is_some_and(|s| ["sip", "sips", "tel"].iter().any(|k| s.eq_ignore_ascii_case(k)));
            let e = if scheme_syntax && !known {
                ParseError::UriScheme((*uri).to_owned())
            } else {
                ParseError::Uri((*uri).to_owned())
            };
            return Err(reject_request(e, &headers));
        }
    };
    if let Some(e) = header_error {
        return Err(reject_request(e, &headers));
    }
    let request = Request { method, uri, headers, body: body.to_vec() };
    if let Err(e) = validate_request(&request) {
        return Err(reject_request(e, &request.headers));
    }
    Ok(Message::Request(request))
}

/// A URI that always parses, for building error responses.
fn unreachable_uri() -> Uri {
    Uri {
        scheme: crate::uri::Scheme::Sip,
        user: None,
        password: None,
        host: crate::uri::Host::Name("invalid.invalid".into()),
        port: None,
        params: Default::default(),
        headers: None,
    }
}

/// The error with the response it gets when the request can be answered.
fn reject_request(error: ParseError, headers: &Headers) -> Rejected {
    let reply = answerable(headers).then(|| {
        let probe = Request {
            method: Method::Options,
            uri: Uri::parse("sip:invalid.invalid").unwrap_or_else(|_| unreachable_uri()),
            headers: headers.clone(),
            body: Vec::new(),
        };
        let mut r = probe.response(error.status());
        r.headers.push("Warning", format!("399 tandem \"{}\"", error.to_string().replace('"', "'")));
        r
    });
    Rejected { error, reply }
}

/// A response can be routed back along a well-formed top Via, whatever its version (a 505 goes
/// to `SIP/7.0/UDP`, RFC 4475 §3.1.2.16), and matched by its CSeq. From, To and Call-ID are copied
/// when present; a request missing them is still answered (RFC 4475 §3.3.1).
fn answerable(h: &Headers) -> bool {
    h.has("CSeq") && h.first_value("Via").is_some_and(|v| crate::via::well_formed(v).is_some())
}

/// The header checks RFC 3261 §8.2 and §16.3 make before a request is processed.
fn validate_request(r: &Request) -> Result<(), ParseError> {
    r.top_via()?;
    // The top Via was checked strictly just now; the others only for form.
    for v in r.headers.values("Via").into_iter().skip(1) {
        // Lower Vias may name transports this server does not speak (RFC 4475 §3.1.1.10).
        if crate::via::well_formed(v) != Some("2.0") {
            return Err(ParseError::Header("Via", v.into()));
        }
    }
    single_valued(&r.headers)?;
    r.from()?;
    r.to()?;
    if r.call_id().is_none_or(str::is_empty) {
        return Err(ParseError::Missing("Call-ID"));
    }
    let CSeq { method, .. } = r.cseq()?;
    if method != r.method && !(r.method == Method::Ack || r.method == Method::Cancel) {
        return Err(ParseError::CSeqMethod(method.to_string()));
    }
    if (r.method == Method::Ack || r.method == Method::Cancel) && method != r.method && method != Method::Invite {
        return Err(ParseError::CSeqMethod(method.to_string()));
    }
    if let Some(mf) = r.headers.get("Max-Forwards")
        && mf.trim().parse::<u8>().is_err()
    {
        return Err(ParseError::Header("Max-Forwards", mf.into()));
    }
    if let Some(e) = r.headers.get("Expires")
        && e.trim().parse::<u32>().is_err()
    {
        return Err(ParseError::Header("Expires", e.into()));
    }
    Ok(())
}

/// Headers that may appear once only (RFC 3261 §7.3.1; RFC 4475 §3.3.8 repeats them all).
fn single_valued(h: &Headers) -> Result<(), ParseError> {
    for name in ["To", "From", "Call-ID", "CSeq", "Max-Forwards"] {
        if h.get_all(name).nth(1).is_some() {
            return Err(ParseError::Header(name, h.get_all(name).collect::<Vec<_>>().join(" / ")));
        }
    }
    Ok(())
}

/// What a transaction layer needs of a response to match it: a top Via, a numeric CSeq, From,
/// To and Call-ID, each once. Responses with values out of range are dropped (RFC 4475 §3.1.2.5).
fn validate_response(r: &Response) -> Result<(), ParseError> {
    r.top_via()?;
    single_valued(&r.headers)?;
    r.cseq()?;
    r.from()?;
    r.to()?;
    if r.call_id().is_none_or(str::is_empty) {
        return Err(ParseError::Missing("Call-ID"));
    }
    Ok(())
}

/// Frames messages out of a byte stream (TCP, TLS), where Content-Length is mandatory.
#[derive(Debug, Default)]
pub struct StreamParser {
    buf: Vec<u8>,
    limits: Limits,
}

impl StreamParser {
    pub fn new(limits: Limits) -> StreamParser {
        StreamParser { buf: Vec::new(), limits }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete item, `Ok(None)` when more bytes are needed. An `Err` means the stream
    /// is unusable when its `reply` is `None`; otherwise the bad message was consumed and the
    /// reply should be sent.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, Rejected> {
        // Keep-alives: a double CRLF ping, or stray CRLFs between messages.
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(StreamItem::Ping));
        }
        let skip = self.buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(self.buf.len());
        if skip > 0 && skip < self.buf.len() {
            self.buf.drain(..skip);
        } else if skip == self.buf.len() && skip >= 4 {
            self.buf.clear();
            return Ok(Some(StreamItem::Ping));
        }
        let Some((head_end, body_start)) = find_header_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message {
                return Err(ParseError::TooLarge(self.limits.max_message).into());
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| ParseError::Encoding)?.to_owned();
        let length = logical_lines(&head)
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| {
                let n = n.trim();
                n.eq_ignore_ascii_case("Content-Length") || n.eq_ignore_ascii_case("l")
            })
            .map(|(_, v)| v.trim().parse::<usize>());
        let length = match length {
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(ParseError::ContentLength.into()),
            None => 0,
        };
        // Checked: a Content-Length near usize::MAX must not wrap around to a small frame.
        let Some(end) = body_start.checked_add(length).filter(|end| *end <= self.limits.max_message) else {
            return Err(ParseError::TooLarge(self.limits.max_message).into());
        };
        if self.buf.len() < end {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..end).collect();
        let result = build(&head, &frame[body_start..], true, &self.limits);
        result.map(|m| Some(StreamItem::Message(Box::new(m))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:litwareinc.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-1;rport\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:alice@litwareinc.com>;tag=a1\r\n\
        To: <sip:alice@litwareinc.com>\r\n\
        Call-ID: reg-1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:alice@10.0.0.2:5070>;expires=600\r\n\
        Content-Length: 0\r\n\r\n";

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn request_round_trip() {
        let Some(Message::Request(r)) = parse_datagram(REGISTER.as_bytes(), &limits()).unwrap() else { panic!() };
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.cseq().unwrap().seq, 1);
        assert_eq!(r.from().unwrap().tag(), Some("a1"));
        let again = parse_datagram(&r.to_bytes(), &limits()).unwrap().unwrap();
        assert_eq!(again, Message::Request(r));
    }

    #[test]
    fn keepalive_and_stream_framing() {
        assert_eq!(parse_datagram(b"\r\n\r\n", &limits()).unwrap(), None);
        let mut s = StreamParser::new(limits());
        s.push(b"\r\n\r\n");
        assert_eq!(s.next_item().unwrap(), Some(StreamItem::Ping));
        let msg = "MESSAGE sip:bob@x.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKm\r\nFrom: <sip:a@x.com>;tag=1\r\nTo: <sip:bob@x.com>\r\nCall-ID: c\r\nCSeq: 2 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        let bytes = msg.as_bytes();
        s.push(&bytes[..40]);
        assert_eq!(s.next_item().unwrap(), None);
        s.push(&bytes[40..]);
        s.push(bytes);
        for _ in 0..2 {
            let Some(StreamItem::Message(m)) = s.next_item().unwrap() else { panic!() };
            let Message::Request(r) = *m else { panic!() };
            assert_eq!(r.body, b"hello");
        }
        assert_eq!(s.next_item().unwrap(), None);
        // A Content-Length that would overflow the frame end is too large, not a wrap-around.
        let mut s = StreamParser::new(limits());
        s.push(format!("{}\r\n\r\n", msg.replace("Content-Length: 5", &format!("l: {}", usize::MAX))).as_bytes());
        assert_eq!(s.next_item().unwrap_err().error.status(), 513);
    }

    #[test]
    fn faults_get_their_status() {
        let bad_version = REGISTER.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
        let e = parse_datagram(bad_version.as_bytes(), &limits()).unwrap_err();
        assert_eq!(e.reply.unwrap().status, 505);
        let bad_scheme = REGISTER.replace("REGISTER sip:litwareinc.com", "REGISTER http://litwareinc.com");
        assert_eq!(parse_datagram(bad_scheme.as_bytes(), &limits()).unwrap_err().reply.unwrap().status, 416);
        let bad_cseq = REGISTER.replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE");
        assert_eq!(parse_datagram(bad_cseq.as_bytes(), &limits()).unwrap_err().reply.unwrap().status, 400);
        let bad_len = REGISTER.replace("Content-Length: 0", "Content-Length: 99");
        assert_eq!(parse_datagram(bad_len.as_bytes(), &limits()).unwrap_err().reply.unwrap().status, 400);
        let no_via = REGISTER.replace("Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-1;rport\r\n", "");
        let e = parse_datagram(no_via.as_bytes(), &limits()).unwrap_err();
        assert!(e.reply.is_none(), "no Via: cannot be answered");
        let huge = format!("{REGISTER}{}", "x".repeat(70_000));
        assert_eq!(parse_datagram(huge.as_bytes(), &limits()).unwrap_err().reply.unwrap().status, 513);
        let huge_head = format!("{}{}", REGISTER.replace("\r\n\r\n", "\r\n"), "X: y\r\n".repeat(20_000));
        let e = parse_datagram(huge_head.as_bytes(), &limits()).unwrap_err();
        assert_eq!((e.error.status(), e.reply), (513, None));
        assert!(parse_datagram(b"\xff\xfe garbage\r\n\r\n", &limits()).is_err());
    }

    #[test]
    fn folded_and_compact_headers() {
        let m = "OPTIONS sip:x.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKo\r\nf: <sip:a@x.com>;tag=1\r\nt: <sip:x.com>\r\ni: o1\r\nCSeq: 3\r\n  OPTIONS\r\nl: 0\r\n\r\n";
        let Some(Message::Request(r)) = parse_datagram(m.as_bytes(), &limits()).unwrap() else { panic!() };
        assert_eq!(r.cseq().unwrap().method, Method::Options);
        assert_eq!(r.call_id(), Some("o1"));
    }
}

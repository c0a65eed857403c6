//! Requests and responses, their start lines and serialisation.

use std::fmt;

use crate::headers::Headers;
use crate::name_addr::NameAddr;
use crate::parser::ParseError;
use crate::uri::Uri;
use crate::via::Via;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Message,
    Subscribe,
    Notify,
    Publish,
    Prack,
    Update,
    Info,
    Refer,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, ParseError> {
        Ok(match s {
            "REGISTER" => Method::Register,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "MESSAGE" => Method::Message,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            other if !other.is_empty() && other.bytes().all(is_token_byte) => Method::Other(other.to_owned()),
            other => return Err(ParseError::StartLine(other.into())),
        })
    }

    /// The name of a method this crate knows; `None` for an extension method. Metric labels
    /// use it, so an unknown method neither allocates a label nor adds a series per name.
    pub fn known_name(&self) -> Option<&'static str> {
        match self {
            Method::Other(_) => None,
            Method::Register => Some("REGISTER"),
            Method::Invite => Some("INVITE"),
            Method::Ack => Some("ACK"),
            Method::Bye => Some("BYE"),
            Method::Cancel => Some("CANCEL"),
            Method::Options => Some("OPTIONS"),
            Method::Message => Some("MESSAGE"),
            Method::Subscribe => Some("SUBSCRIBE"),
            Method::Notify => Some("NOTIFY"),
            Method::Publish => Some("PUBLISH"),
            Method::Prack => Some("PRACK"),
            Method::Update => Some("UPDATE"),
            Method::Info => Some("INFO"),
            Method::Refer => Some("REFER"),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Message => "MESSAGE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `CSeq: 42 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let bad = || ParseError::Header("CSeq", s.into());
        let mut parts = s.split_ascii_whitespace();
        let seq = parts.next().ok_or_else(bad)?.parse::<u32>().map_err(|_| bad())?;
        let method = Method::parse(parts.next().ok_or_else(bad)?).map_err(|_| bad())?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// Typed reads shared by requests and responses.
pub trait HeaderView {
    fn hdrs(&self) -> &Headers;

    fn call_id(&self) -> Option<&str> {
        self.hdrs().get("Call-ID").map(str::trim)
    }
    fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.hdrs().get("CSeq").ok_or(ParseError::Missing("CSeq"))?)
    }
    fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.hdrs().get("From").ok_or(ParseError::Missing("From"))?)
    }
    fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.hdrs().get("To").ok_or(ParseError::Missing("To"))?)
    }
    fn top_via(&self) -> Result<Via, ParseError> {
        Via::parse(self.hdrs().first_value("Via").ok_or(ParseError::Missing("Via"))?)
    }
    fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.hdrs().values("Via").into_iter().map(Via::parse).collect()
    }
    /// `Expires` as seconds, when present and numeric.
    fn expires(&self) -> Option<u32> {
        self.hdrs().get("Expires").and_then(|e| e.trim().parse().ok())
    }
    fn content_type(&self) -> Option<&str> {
        self.hdrs().get("Content-Type").map(str::trim)
    }
}

impl HeaderView for Request {
    fn hdrs(&self) -> &Headers {
        &self.headers
    }
}

impl HeaderView for Response {
    fn hdrs(&self) -> &Headers {
        &self.headers
    }
}

/// Content-Length is written from the body, where the first one was (so a message parsed and
/// written again keeps its header order), or last when there was none.
fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    let mut length_written = false;
    for (name, value) in headers.iter() {
        if name.is("Content-Length") {
            if !length_written {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                length_written = true;
            }
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !length_written {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Request {
        Request { method, uri, headers: Headers::new(), body: Vec::new() }
    }

    /// The wire form; Content-Length is always written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    /// A response to this request with the headers RFC 3261 §8.2.6 copies: Via, From, To,
    /// Call-ID, CSeq (a To tag is the caller's business).
    pub fn response(&self, status: u16) -> Response {
        let mut headers = Headers::new();
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for line in self.headers.get_all(name) {
                headers.push(name, line);
            }
        }
        Response { status, reason: reason_phrase(status).to_owned(), headers, body: Vec::new() }
    }

    /// The branch of the top Via, which names the transaction.
    pub fn branch(&self) -> Option<String> {
        self.top_via().ok().and_then(|v| v.branch().map(str::to_owned))
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push(name, value);
        self
    }

    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Response {
        self.headers.set("Content-Type", content_type);
        self.body = body;
        self
    }

    /// Adds a tag to To when it has none (a UAS or proxy answering for itself).
    pub fn with_to_tag(mut self, tag: &str) -> Response {
        if let Some(to) = self.headers.get("To").map(str::to_owned)
            && let Ok(mut na) = NameAddr::parse(&to)
            && na.tag().is_none()
        {
            na.params.set("tag", Some(tag));
            self.headers.set("To", na.to_string());
        }
        self
    }
}

/// The reason phrases of RFC 3261 §21 and the extensions this server uses.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => match status / 100 {
            1 => "Progress",
            2 => "Success",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

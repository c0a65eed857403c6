//! Message waiting (RFC 3842): the `application/simple-message-summary` body a NOTIFY of the
//! `message-summary` event carries, both ways and without I/O:
//!
//! ```text
//! Messages-Waiting: yes
//! Message-Account: sip:bob@litwareinc.com
//! Voice-Message: 2/8 (0/2)
//! ```
//!
//! The reader is bounded (body size, line count) and accepts what RFC 3842 §5.2 allows: header
//! names in any case, optional whitespace around the colon, slash and parentheses, the summary
//! lines in any order, and the optional message headers after a blank line (ignored).

use std::fmt::Write as _;

/// The event package name (the Event header's value).
pub const EVENT: &str = "message-summary";
/// The body's content type.
pub const CONTENT_TYPE: &str = "application/simple-message-summary";
/// Largest body [`parse`] reads.
pub const MAX_BODY: usize = 16 * 1024;
/// Most lines [`parse`] reads before the optional message headers.
pub const MAX_LINES: usize = 32;

/// A message context class (RFC 3458 §4), the name of a summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageClass {
    Voice,
    Fax,
    Pager,
    Multimedia,
    Text,
    None,
}

impl MessageClass {
    pub const ALL: [MessageClass; 6] = [
        MessageClass::Voice,
        MessageClass::Fax,
        MessageClass::Pager,
        MessageClass::Multimedia,
        MessageClass::Text,
        MessageClass::None,
    ];

    /// The header name of its summary line.
    pub fn header(self) -> &'static str {
        match self {
            MessageClass::Voice => "Voice-Message",
            MessageClass::Fax => "Fax-Message",
            MessageClass::Pager => "Pager-Message",
            MessageClass::Multimedia => "Multimedia-Message",
            MessageClass::Text => "Text-Message",
            MessageClass::None => "None",
        }
    }

    fn of(name: &str) -> Option<MessageClass> {
        MessageClass::ALL.into_iter().find(|c| c.header().eq_ignore_ascii_case(name))
    }
}

/// New and old messages of one class, and how many of each are urgent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub new: u32,
    pub old: u32,
    /// `(new urgent, old urgent)`, when given.
    pub urgent: Option<(u32, u32)>,
}

/// A message summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub messages_waiting: bool,
    /// The account the summary is for (`Message-Account`), when given.
    pub account: Option<String>,
    /// One entry per class, in the order given (a class given twice keeps its last line).
    pub lines: Vec<(MessageClass, Counts)>,
}

/// Why a body is not a message summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    #[error("body larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("not UTF-8")]
    Encoding,
    #[error("no Messages-Waiting line first")]
    NoStatus,
    #[error("Messages-Waiting is neither yes nor no: {0:?}")]
    BadStatus(String),
    #[error("line {0} is not `name: value`")]
    BadLine(usize),
    #[error("the {0} line's counts are not `new/old (urgent-new/urgent-old)`")]
    BadCounts(&'static str),
}

impl Summary {
    /// A summary of voice messages only, as a voicemail system sends it.
    pub fn voice(account: Option<&str>, new: u32, old: u32) -> Summary {
        Summary {
            messages_waiting: new > 0,
            account: account.map(str::to_owned),
            lines: vec![(MessageClass::Voice, Counts { new, old, urgent: None })],
        }
    }

    /// The counts of `class`, when the summary has a line for it.
    pub fn counts(&self, class: MessageClass) -> Option<Counts> {
        self.lines.iter().find(|(c, _)| *c == class).map(|(_, n)| *n)
    }

    /// The body (lines end in CRLF).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "Messages-Waiting: {}\r\n", if self.messages_waiting { "yes" } else { "no" });
        if let Some(a) = &self.account {
            // A line break in the account would start a header of its own.
            let a: String = a.chars().filter(|c| !c.is_control()).collect();
            let _ = write!(out, "Message-Account: {a}\r\n");
        }
        for (class, n) in &self.lines {
            let _ = write!(out, "{}: {}/{}", class.header(), n.new, n.old);
            if let Some((un, uo)) = n.urgent {
                let _ = write!(out, " ({un}/{uo})");
            }
            out.push_str("\r\n");
        }
        out
    }
}

/// Reads a message summary body.
pub fn parse(body: &[u8]) -> Result<Summary, SummaryError> {
    if body.len() > MAX_BODY {
        return Err(SummaryError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| SummaryError::Encoding)?;
    let mut summary = Summary::default();
    let mut seen_status = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            if seen_status {
                // The optional message headers follow; they are not part of the summary.
                break;
            }
            continue;
        }
        if i >= MAX_LINES {
            return Err(SummaryError::TooManyLines);
        }
        let (name, value) = line.split_once(':').ok_or(SummaryError::BadLine(i + 1))?;
        let (name, value) = (name.trim(), value.trim());
        if !seen_status {
            if !name.eq_ignore_ascii_case("Messages-Waiting") {
                return Err(SummaryError::NoStatus);
            }
            summary.messages_waiting = match value.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return Err(SummaryError::BadStatus(value.chars().take(32).collect())),
            };
            seen_status = true;
        } else if name.eq_ignore_ascii_case("Message-Account") {
            summary.account = Some(value.to_owned());
        } else if let Some(class) = MessageClass::of(name) {
            let counts = parse_counts(value).ok_or(SummaryError::BadCounts(class.header()))?;
            summary.lines.retain(|(c, _)| *c != class);
            summary.lines.push((class, counts));
        }
        // Other lines (extensions) are ignored, as RFC 3842 asks of a reader.
    }
    if !seen_status {
        return Err(SummaryError::NoStatus);
    }
    Ok(summary)
}

/// `new/old` with an optional `(new/old)` of urgent ones.
fn parse_counts(value: &str) -> Option<Counts> {
    let pair = |s: &str| -> Option<(u32, u32)> {
        let (a, b) = s.split_once('/')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    let (main, urgent) = match value.split_once('(') {
        Some((main, rest)) => {
            let inner = rest.trim_end().strip_suffix(')')?;
            (main, Some(pair(inner)?))
        }
        None => (value, None),
    };
    let (new, old) = pair(main)?;
    Some(Counts { new, old, urgent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3842_example_reads() {
        let body = "Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n\
                    Voice-Message: 2/8 (0/2)\r\n";
        let s = parse(body.as_bytes()).unwrap();
        assert!(s.messages_waiting);
        assert_eq!(s.account.as_deref(), Some("sip:alice@vmail.example.com"));
        assert_eq!(s.counts(MessageClass::Voice), Some(Counts { new: 2, old: 8, urgent: Some((0, 2)) }));
        assert_eq!(parse(s.render().as_bytes()).unwrap(), s);
    }

    #[test]
    fn lenient_forms_and_message_headers_are_read() {
        let body = "messages-waiting:NO\nvoice-message : 0 / 3\nFax-Message: 1/0(1/0)\nX-Other: 5\n\n\
                    To: <sip:bob@example.com>\nSubject: hello\n";
        let s = parse(body.as_bytes()).unwrap();
        assert!(!s.messages_waiting);
        assert_eq!(s.counts(MessageClass::Voice), Some(Counts { new: 0, old: 3, urgent: None }));
        assert_eq!(s.counts(MessageClass::Fax).and_then(|c| c.urgent), Some((1, 0)));
        assert_eq!(s.lines.len(), 2);
    }

    #[test]
    fn voice_summaries_render_as_phones_expect() {
        let s = Summary::voice(Some("sip:bob@litwareinc.com"), 1, 2);
        assert_eq!(
            s.render(),
            "Messages-Waiting: yes\r\nMessage-Account: sip:bob@litwareinc.com\r\nVoice-Message: 1/2\r\n"
        );
        assert!(!Summary::voice(None, 0, 4).render().contains("yes"));
        let injected = Summary::voice(Some("sip:a\r\nMessages-Waiting: no"), 1, 0);
        assert_eq!(parse(injected.render().as_bytes()).unwrap().lines.len(), 1);
        assert!(parse(injected.render().as_bytes()).unwrap().messages_waiting);
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert_eq!(parse(b""), Err(SummaryError::NoStatus));
        assert_eq!(parse(b"Voice-Message: 1/0\r\n"), Err(SummaryError::NoStatus));
        assert!(matches!(parse(b"Messages-Waiting: maybe\r\n"), Err(SummaryError::BadStatus(_))));
        assert_eq!(parse(b"Messages-Waiting: yes\r\nbroken\r\n"), Err(SummaryError::BadLine(2)));
        assert!(matches!(parse(b"Messages-Waiting: yes\r\nVoice-Message: 1\r\n"), Err(SummaryError::BadCounts(_))));
        assert!(matches!(
            parse(b"Messages-Waiting: yes\r\nVoice-Message: 1/99999999999\r\n"),
            Err(SummaryError::BadCounts(_))
        ));
        assert!(matches!(
            parse(b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3/4\r\n"),
            Err(SummaryError::BadCounts(_))
        ));
        assert_eq!(parse(&[0xff, 0xfe]), Err(SummaryError::Encoding));
        assert_eq!(parse(&vec![b'a'; MAX_BODY + 1]), Err(SummaryError::TooLarge));
        let many = format!("Messages-Waiting: yes\r\n{}", "X-A: 1\r\n".repeat(MAX_LINES));
        assert_eq!(parse(many.as_bytes()), Err(SummaryError::TooManyLines));
    }
}

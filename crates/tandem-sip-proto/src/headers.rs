//! Header storage: names compared case-insensitively with compact forms expanded, values kept as
//! received (after unfolding), multi-valued headers split on commas outside quotes and brackets.

use std::borrow::Cow;
use std::fmt;

/// A header name in its canonical spelling (`Call-ID`, `Via`, …) or as received when unknown.
/// Known names borrow their canonical spelling, so neither storing nor looking one up allocates
/// (header lookups run dozens of times per request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderName(Cow<'static, str>);

/// Canonical names of the headers this server reads, with their compact forms (RFC 3261 §7.3.3,
/// RFC 3265, RFC 3515, RFC 4028).
const KNOWN: &[(&str, Option<&str>)] = &[
    ("Accept", None),
    ("Allow", None),
    ("Allow-Events", Some("u")),
    ("Authorization", None),
    ("Call-ID", Some("i")),
    ("Contact", Some("m")),
    ("Content-Encoding", Some("e")),
    ("Content-Length", Some("l")),
    ("Content-Type", Some("c")),
    ("CSeq", None),
    ("Event", Some("o")),
    ("Expires", None),
    ("From", Some("f")),
    ("Max-Forwards", None),
    ("Min-Expires", None),
    ("Proxy-Authenticate", None),
    ("Proxy-Authorization", None),
    ("Proxy-Require", None),
    ("Record-Route", None),
    ("Refer-To", Some("r")),
    ("Require", None),
    ("Route", None),
    ("Server", None),
    ("Session-Expires", Some("x")),
    ("SIP-ETag", None),
    ("SIP-If-Match", None),
    ("Subject", Some("s")),
    ("Subscription-State", None),
    ("Supported", Some("k")),
    ("To", Some("t")),
    ("Unsupported", None),
    ("User-Agent", None),
    ("Via", Some("v")),
    ("Warning", None),
    ("WWW-Authenticate", None),
];

/// [`KNOWN`] indexed for lookup: canonical names by length, and compact forms by letter.
struct Index {
    by_len: Vec<Vec<&'static str>>,
    compact: [Option<&'static str>; 26],
}

static INDEX: std::sync::LazyLock<Index> = std::sync::LazyLock::new(|| {
    let longest = KNOWN.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut index = Index { by_len: vec![Vec::new(); longest + 1], compact: [None; 26] };
    for (canon, compact) in KNOWN {
        index.by_len[canon.len()].push(*canon);
        if let Some(letter) = compact.and_then(|c| c.bytes().next()) {
            index.compact[usize::from(letter.to_ascii_lowercase() - b'a')] = Some(*canon);
        }
    }
    index
});

/// The canonical spelling of a known header name or compact form.
fn canonical(raw: &str) -> Option<&'static str> {
    // This runs for every header stored and every header looked up: one indexed step to the
    // few names of the same length, then a first-byte check before any text is compared.
    let index = &*INDEX;
    if raw.len() == 1 {
        let letter = raw.as_bytes()[0].to_ascii_lowercase();
        return letter.is_ascii_lowercase().then(|| index.compact[usize::from(letter - b'a')]).flatten();
    }
    let first = raw.as_bytes().first()?.to_ascii_lowercase();
    index
        .by_len
        .get(raw.len())?
        .iter()
        // Most names arrive (and are always looked up) in their canonical spelling: an exact
        // comparison first, the case-blind one only when that fails.
        .find(|canon| {
            canon.as_bytes()[0].to_ascii_lowercase() == first && (raw == **canon || raw.eq_ignore_ascii_case(canon))
        })
        .copied()
}

/// A name being looked up, resolved once per lookup.
#[derive(Clone, Copy)]
enum Wanted<'a> {
    Known(&'static str),
    Other(&'a str),
}

impl<'a> Wanted<'a> {
    fn new(name: &'a str) -> Wanted<'a> {
        canonical(name).map_or(Wanted::Other(name), Wanted::Known)
    }

    /// Unknown names match whatever their case: a stored unknown name is never a known one.
    fn matches(self, n: &HeaderName) -> bool {
        match self {
            Wanted::Known(c) => n.0 == c,
            Wanted::Other(o) => n.0.eq_ignore_ascii_case(o),
        }
    }
}

impl HeaderName {
    pub fn new(raw: &str) -> HeaderName {
        match canonical(raw) {
            Some(c) => HeaderName(Cow::Borrowed(c)),
            None => HeaderName(Cow::Owned(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The headers of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(HeaderName, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.entries.iter().map(|(n, v)| (n, v.as_str()))
    }

    /// The first value of a header (the whole line, commas included).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = Wanted::new(name);
        self.entries.iter().find(|(n, _)| name.matches(n)).map(|(_, v)| v.as_str())
    }

    /// Every line of a header, in order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        // The iterator outlives `name`: an unknown name (rare) is copied, a known one is static.
        let known = canonical(name);
        let other = known.is_none().then(|| name.to_owned());
        self.entries
            .iter()
            .filter(move |(n, _)| match (known, &other) {
                (Some(c), _) => n.0 == c,
                (None, Some(o)) => n.0.eq_ignore_ascii_case(o),
                (None, None) => false,
            })
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated value of a header across all its lines (Via, Contact, Route…).
    pub fn values<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.get_all(name).flat_map(split_comma_list).collect()
    }

    /// The first comma-separated value of a header (the top Via, the first Route), found
    /// without splitting the rest.
    pub fn first_value(&self, name: &str) -> Option<&str> {
        self.get_all(name).find_map(|line| CommaParts(Some(line)).next())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a line.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.entries.push((HeaderName::new(name), value.into()));
    }

    /// Inserts a line before every other line of the same header (a new top Via, Record-Route).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        let at = self.entries.iter().position(|(n, _)| Wanted::new(name).matches(n)).unwrap_or(0);
        self.entries.insert(at, (HeaderName::new(name), value.into()));
    }

    /// Replaces all lines of a header with one.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let wanted = Wanted::new(name);
        let value = value.into();
        match self.entries.iter().position(|(n, _)| wanted.matches(n)) {
            Some(i) => {
                self.entries[i].1 = value;
                let mut seen = 0;
                self.entries.retain(|(n, _)| {
                    if wanted.matches(n) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.entries.push((HeaderName::new(name), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        let name = Wanted::new(name);
        self.entries.retain(|(n, _)| !name.matches(n));
    }

    /// Removes the first comma-separated value of a header (the top Via, the first Route),
    /// dropping the line when it held only that value. Returns the value removed.
    pub fn pop_first_value(&mut self, name: &str) -> Option<String> {
        let name = Wanted::new(name);
        let i = self.entries.iter().position(|(n, _)| name.matches(n))?;
        let parts = split_comma_list(&self.entries[i].1);
        let first = parts.first()?.to_string();
        if parts.len() <= 1 {
            self.entries.remove(i);
        } else {
            self.entries[i].1 = parts[1..].join(", ");
        }
        Some(first)
    }
}

/// Splits a header value on commas that are outside quoted strings and angle brackets.
pub fn split_comma_list(value: &str) -> Vec<&str> {
    CommaParts(Some(value)).collect()
}

/// The non-empty comma-separated parts of a value, trimmed, found one at a time (the top Via
/// or Route needs only the first).
struct CommaParts<'a>(Option<&'a str>);

impl<'a> Iterator for CommaParts<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let value = self.0?;
            let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
            let mut cut = None;
            // Bytes, not chars: the delimiters are ASCII and never part of a UTF-8 sequence.
            for (i, b) in value.bytes().enumerate() {
                if escaped {
                    escaped = false;
                    continue;
                }
                match b {
                    b'\\' if in_quotes => escaped = true,
                    b'"' => in_quotes = !in_quotes,
                    b'<' if !in_quotes => in_angle = true,
                    b'>' if !in_quotes => in_angle = false,
                    b',' if !in_quotes && !in_angle => {
                        cut = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let part = match cut {
                Some(i) => {
                    self.0 = Some(&value[i + 1..]);
                    value[..i].trim()
                }
                None => {
                    self.0 = None;
                    value.trim()
                }
            };
            if !part.is_empty() {
                return Some(part);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_and_case() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a;branch=z9hG4bK1");
        h.push("VIA", "SIP/2.0/UDP b;branch=z9hG4bK2, SIP/2.0/TCP c;branch=z9hG4bK3");
        h.push("i", "abc");
        assert_eq!(h.get("call-id"), Some("abc"));
        assert_eq!(h.values("Via").len(), 3);
        h.push_front("Via", "SIP/2.0/UDP me;branch=z9hG4bK0");
        assert!(h.get("Via").unwrap().contains("me"));
        assert_eq!(h.pop_first_value("Via").unwrap(), "SIP/2.0/UDP me;branch=z9hG4bK0");
        assert_eq!(h.pop_first_value("Via").unwrap(), "SIP/2.0/UDP a;branch=z9hG4bK1");
        assert_eq!(h.pop_first_value("Via").unwrap(), "SIP/2.0/UDP b;branch=z9hG4bK2");
        assert_eq!(h.values("Via"), vec!["SIP/2.0/TCP c;branch=z9hG4bK3"]);
        // Unknown headers are found whatever the case of the lookup.
        h.push("X-Trace", "1");
        assert_eq!(h.get("x-trace"), Some("1"));
        assert_eq!(h.iter().last().map(|(n, _)| n.as_str()), Some("X-Trace"), "kept as received");
        h.remove("X-TRACE");
        assert!(!h.has("x-trace"));
    }

    #[test]
    fn comma_lists_respect_quotes_and_brackets() {
        let v = split_comma_list(r#""Doe, John" <sip:j@x;a=1,2>;q=0.5, <sip:k@y>"#);
        assert_eq!(v, vec![r#""Doe, John" <sip:j@x;a=1,2>;q=0.5"#, "<sip:k@y>"]);
    }
}

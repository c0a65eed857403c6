//! `name-addr` / `addr-spec` with header parameters: From, To, Contact, Route, Record-Route.

use std::fmt;

use crate::message::is_token_byte;
use crate::parser::ParseError;
use crate::uri::Uri;

/// `;name=value` parameters in order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `a=1;b;c="x"` (without the leading `;`).
    pub fn parse(s: &str) -> Params {
        let mut out = Vec::new();
        for part in SplitParams(Some(s)) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((n, v)) => out.push((n.trim().to_owned(), Some(v.trim().to_owned()))),
                None => out.push((part.to_owned(), None)),
            }
        }
        Params(out)
    }

    /// The value, with surrounding quotes removed. A flag parameter yields `Some("")`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().map(|v| v.trim_matches('"')).unwrap_or(""))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    pub fn set(&mut self, name: &str, value: Option<&str>) {
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value.map(str::to_owned),
            None => self.0.push((name.to_owned(), value.map(str::to_owned))),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// Splits on `;` outside quotes, without collecting (this runs for every URI, Via, From and To
/// of every message).
struct SplitParams<'a>(Option<&'a str>);

impl<'a> Iterator for SplitParams<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.0?;
        let (mut in_q, mut esc) = (false, false);
        // Bytes, not chars: the delimiters are ASCII and never part of a UTF-8 sequence.
        for (i, b) in s.bytes().enumerate() {
            if esc {
                esc = false;
                continue;
            }
            match b {
                b'\\' if in_q => esc = true,
                b'"' => in_q = !in_q,
                b';' if !in_q => {
                    self.0 = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        self.0 = None;
        Some(s)
    }
}

/// A display name, URI and header parameters: `"Alice" <sip:alice@x>;tag=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display_name: None, uri, params: Params::default() }
    }

    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        let bad = || ParseError::Header("name-addr", s.into());
        let s = s.trim();
        let (display_name, rest) = if let Some(q) = s.strip_prefix('"') {
            // Quoted display name with backslash escapes.
            let mut name = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            name.push(e);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => name.push(c),
                }
            }
            let end = end.ok_or_else(bad)?;
            (Some(name), q[end + 1..].trim_start())
        } else if let Some(lt) = s.find('<') {
            let name = s[..lt].trim();
            // display-name = *(token LWS) / quoted-string: an unquoted name with separators
            // (`From: Bell, Alexander <sip:…>`, RFC 4475 §3.1.2.15) is malformed. Bytes above
            // ASCII are let through: clients do send unquoted UTF-8 names, and they are harmless.
            if !name.bytes().all(|b| is_token_byte(b) || b == b' ' || b == b'\t' || b >= 0x80) {
                return Err(bad());
            }
            (if name.is_empty() { None } else { Some(name.to_owned()) }, &s[lt..])
        } else {
            (None, s)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner.find('>').ok_or_else(bad)?;
            // No whitespace inside the brackets: `< sip:a@b >` is malformed (RFC 4475 §3.1.2.14).
            let addr = &inner[..gt];
            if addr.trim() != addr {
                return Err(bad());
            }
            let uri = Uri::parse(addr)?;
            let after = inner[gt + 1..].trim();
            let params = match after.strip_prefix(';') {
                Some(p) => Params::parse(p),
                None if after.is_empty() => Params::default(),
                None => return Err(bad()),
            };
            Ok(NameAddr { display_name, uri, params })
        } else {
            if display_name.is_some() {
                return Err(bad());
            }
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
            let (uri, params) = rest.split_once(';').map_or((rest, ""), |(u, p)| (u, p));
            Ok(NameAddr { display_name: None, uri: Uri::parse(uri)?, params: Params::parse(params) })
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let n = NameAddr::parse(r#""Alice \"A\"" <sip:alice@x.com;transport=tcp>;tag=abc;expires=60"#).unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"Alice "A""#));
        assert_eq!(n.uri.transport(), Some("tcp"));
        assert_eq!(n.tag(), Some("abc"));
        assert_eq!(n.params.get("expires"), Some("60"));
        let n = NameAddr::parse("sip:bob@y.com;tag=1").unwrap();
        assert_eq!(n.tag(), Some("1"));
        assert!(n.uri.params.get("tag").is_none());
        let n = NameAddr::parse("Bob <sip:bob@y.com>").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("Bob"));
        assert!(NameAddr::parse("<sip:bob@y.com").is_err());
        assert!(NameAddr::parse("\"unterminated <sip:a@b>").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>").is_err());
        assert!(NameAddr::parse("\"Watson\" < sip:t@b >").is_err());
        assert_eq!(NameAddr::parse("caller<sip:c@b>").unwrap().display_name.as_deref(), Some("caller"));
    }
}

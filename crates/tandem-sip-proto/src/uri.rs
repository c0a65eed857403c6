//! SIP and SIPS URIs (RFC 3261 §19.1), parsed leniently where real clients stray and strictly
//! where routing depends on it (scheme, host, port).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::name_addr::Params;
use crate::parser::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, ParseError> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().map(|ip| Host::Ip(IpAddr::V6(ip))).map_err(|_| ParseError::Uri(s.into()));
        }
        if let Ok(ip) = s.parse::<std::net::Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !s.starts_with('.')
            && !s.starts_with('-');
        if ok { Ok(Host::Name(s.to_ascii_lowercase())) } else { Err(ParseError::Uri(s.into())) }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A SIP URI: `sip:user@host:port;params?headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// The user part, unescaped, or `None` (`sip:example.com`).
    pub user: Option<String>,
    /// Kept only to reproduce the URI; passwords in URIs are deprecated and never used.
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// `?` headers, kept verbatim.
    pub headers: Option<String>,
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let bad = || ParseError::Uri(s.into());
        let s = s.trim();
        let colon = s.find(':').ok_or_else(bad)?;
        let scheme = match &s[..colon] {
            x if x.eq_ignore_ascii_case("sip") => Scheme::Sip,
            x if x.eq_ignore_ascii_case("sips") => Scheme::Sips,
            x if x.eq_ignore_ascii_case("tel") => Scheme::Tel,
            _ => return Err(bad()),
        };
        let rest = &s[colon + 1..];
        if rest.is_empty() || rest.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"') {
            return Err(bad());
        }
        if scheme == Scheme::Tel {
            // tel:+1-201-555-0123;phone-context=… — the number is the "user", no host.
            let (number, params) = rest.split_once(';').map_or((rest, ""), |(n, p)| (n, p));
            return Ok(Uri {
                scheme,
                user: Some(number.to_owned()),
                password: None,
                host: Host::Name(String::new()),
                port: None,
                params: Params::parse(params),
                headers: None,
            });
        }
        // The userinfo ends at the first '@': no other part of a SIP URI may hold a raw '@', while
        // the user part may hold ';', '?', '/' and ',' (RFC 3261 §25.1 user-unreserved; RFC 4475
        // §3.1.1.2 `sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:…@example.com`), so the
        // '@' must be found before splitting off the `?` headers.
        let (userinfo, after) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match after.split_once('?') {
            Some((m, h)) => (m, Some(h.to_owned())),
            None => (after, None),
        };
        let (hostport, params) = hostpart.split_once(';').map_or((hostpart, ""), |(h, p)| (h, p));
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        let host = Host::parse(host).map_err(|_| bad())?;
        let (user, password) = match userinfo {
            None => (None, None),
            Some("") => return Err(bad()),
            Some(ui) => {
                let (u, p) = ui.split_once(':').map_or((ui, None), |(u, p)| (u, Some(p.to_owned())));
                (Some(percent_decode(u).ok_or_else(bad)?), p)
            }
        };
        Ok(Uri { scheme, user, password, host, port, params: Params::parse(params), headers })
    }

    /// `user@host` in lower case, the key the location service uses (address of record).
    pub fn aor(&self) -> String {
        match &self.user {
            Some(u) => format!("{}:{}@{}", self.scheme_for_aor(), u.to_ascii_lowercase(), self.host),
            None => format!("{}:{}", self.scheme_for_aor(), self.host),
        }
    }

    fn scheme_for_aor(&self) -> &'static str {
        // sip: and sips: name the same address of record.
        match self.scheme {
            Scheme::Tel => "tel",
            _ => "sip",
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    pub fn transport(&self) -> Option<&str> {
        self.params.get("transport")
    }
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        let rest = &s[end + 1..];
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.split_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// Decodes `%XX` escapes (RFC 3986 §2.1) into UTF-8 text: `None` for a truncated or non-hex
/// escape or bytes that are not UTF-8. Shared by SIP URIs and XCAP URIs.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn escape_user(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    for b in u.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b);
        if unreserved {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if self.scheme == Scheme::Tel {
            write!(f, "{}", self.user.as_deref().unwrap_or(""))?;
            return write!(f, "{}", self.params);
        }
        if let Some(u) = &self.user {
            f.write_str(&escape_user(u))?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%20b%40c").as_deref(), Some("a b@c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        for bad in ["%", "%4", "%zz", "%FF", "x%C3", "%é9"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_common_forms() {
        let u = Uri::parse("sip:alice@litwareinc.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, Host::Name("litwareinc.com".into()));
        let u = Uri::parse("sips:bob@[2001:db8::1]:5061;transport=tls;lr?subject=hi").unwrap();
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tls"));
        assert!(u.params.has("lr"));
        assert_eq!(u.to_string(), "sips:bob@[2001:db8::1]:5061;transport=tls;lr?subject=hi");
        let u = Uri::parse("sip:127.0.0.1:5060").unwrap();
        assert_eq!(u.user, None);
        assert_eq!(u.host, Host::Ip("127.0.0.1".parse().unwrap()));
        let u = Uri::parse("sip:%61lice@x.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(Uri::parse("SIP:Alice@X.com").unwrap().aor(), "sip:alice@x.com");
        let u = Uri::parse("sip:a?b;c:pw@x.com;p?h=v").unwrap();
        assert_eq!((u.user.as_deref(), u.password.as_deref()), (Some("a?b;c"), Some("pw")));
        assert_eq!((u.param("p"), u.headers.as_deref()), (Some(""), Some("h=v")));
    }

    #[test]
    fn refuses_garbage() {
        for bad in
            ["", "alice", "http://x", "sip:", "sip:@x.com", "sip:a@", "sip:a@x.com:99999", "sip:a b@x", "sip:a@[::1"]
        {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}

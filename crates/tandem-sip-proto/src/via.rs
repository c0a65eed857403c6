//! The Via header (RFC 3261 §20.42, rport from RFC 3581).

use std::fmt;

use crate::message::is_token_byte;
use crate::name_addr::Params;
use crate::parser::ParseError;
use crate::uri::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    pub fn parse(s: &str) -> Option<Transport> {
        Some(match s.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Datagram transports need retransmissions and size limits; streams do not.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: Transport,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

/// RFC 3261's branch prefix that marks a globally unique branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The pieces of a Via value before the transport is interpreted.
struct ViaParts<'a> {
    version: &'a str,
    transport: &'a str,
    host: Host,
    port: Option<u16>,
    params: Params,
}

/// `sent-protocol LWS sent-by *( SEMI via-params )`, where the sent-protocol's slashes may carry
/// whitespace on either side (`SLASH = SWS "/" SWS`, RFC 3261 §25.1; RFC 4475 §3.1.1.1 folds a
/// Via as `SIP  /   2.0 /UDP`). Any version and any transport token are accepted here.
fn parse_parts(s: &str) -> Result<ViaParts<'_>, ParseError> {
    let bad = || ParseError::Header("Via", s.into());
    let token = |t: &str| !t.is_empty() && t.bytes().all(is_token_byte);
    let s = s.trim();
    let (name, rest) = s.split_once('/').ok_or_else(bad)?;
    if !name.trim_end().eq_ignore_ascii_case("SIP") {
        return Err(bad());
    }
    let (version, rest) = rest.split_once('/').ok_or_else(bad)?;
    let version = version.trim();
    let rest = rest.trim_start();
    let ws = rest.find(|c: char| c.is_ascii_whitespace()).ok_or_else(bad)?;
    let transport = &rest[..ws];
    if !token(version) || !token(transport) {
        return Err(bad());
    }
    let sent_by_and_params = rest[ws..].trim_start();
    let (sent_by, params) = sent_by_and_params.split_once(';').map_or((sent_by_and_params, ""), |(a, b)| (a, b));
    let sent_by = sent_by.trim();
    let (host, port) = if sent_by.starts_with('[') {
        let end = sent_by.find(']').ok_or_else(bad)?;
        let port = match sent_by[end + 1..].strip_prefix(':') {
            Some(p) => Some(p.trim().parse().map_err(|_| bad())?),
            None => None,
        };
        (&sent_by[..=end], port)
    } else {
        match sent_by.split_once(':') {
            Some((h, p)) => (h.trim(), Some(p.trim().parse().map_err(|_| bad())?)),
            None => (sent_by, None),
        }
    };
    let host = Host::parse(host).map_err(|_| bad())?;
    Ok(ViaParts { version, transport, host, port, params: Params::parse(params) })
}

/// Whether a Via value is well formed, whatever its transport (`SCTP`, `UNKNOWN`… RFC 4475
/// §3.1.1.10) or version; returns the version. Vias below the top one are only checked this way:
/// they are the business of the elements that added them.
pub(crate) fn well_formed(s: &str) -> Option<&str> {
    parse_parts(s).ok().map(|p| p.version)
}

impl Via {
    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let bad = || ParseError::Header("Via", s.into());
        let p = parse_parts(s)?;
        if p.version != "2.0" {
            return Err(bad());
        }
        let transport = Transport::parse(p.transport).ok_or_else(bad)?;
        Ok(Via { transport, host: p.host, port: p.port, params: p.params })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }

    /// The port a response goes to when no `rport`/`received` says otherwise.
    pub fn default_port(&self) -> u16 {
        self.port.unwrap_or(match self.transport {
            Transport::Tls | Transport::Wss => 5061,
            _ => 5060,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport.as_str(), self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK776;rport").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert!(v.params.has("rport"));
        // SLASH = SWS "/" SWS (RFC 3261 §25.1): whitespace around the slashes is allowed.
        let v = Via::parse("SIP / 2.0 / TCP x.com").unwrap();
        assert_eq!(v.transport, Transport::Tcp);
        assert!(Via::parse("SIP/2.0 x.com").is_err());
        assert!(Via::parse("SIP/2.0/SCTP x.com").is_err());
        assert_eq!(well_formed("SIP/2.0/SCTP x.com;branch=z9hG4bK1"), Some("2.0"));
        assert_eq!(well_formed("SIP/7.0/UDP x.com"), Some("7.0"));
        let v = Via::parse("sip/2.0/tls [2001:db8::9]:5061;branch=z9hG4bKa").unwrap();
        assert_eq!(v.transport, Transport::Tls);
        assert_eq!(v.to_string(), "SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKa");
    }
}

//! HTTP Digest for SIP: challenges, credentials and the response computation
//! (RFC 3261 §22, RFC 2617, RFC 8760 for SHA-256).

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::parser::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    pub fn parse(s: &str) -> Option<DigestAlgorithm> {
        match s.trim_matches('"') {
            a if a.eq_ignore_ascii_case("MD5") => Some(DigestAlgorithm::Md5),
            a if a.eq_ignore_ascii_case("SHA-256") => Some(DigestAlgorithm::Sha256),
            _ => None,
        }
    }

    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    pub fn hex(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 => hex::encode(Md5::digest(data)),
            DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

/// A `Digest` challenge for WWW-Authenticate (401) or Proxy-Authenticate (407).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: DigestAlgorithm,
    pub stale: bool,
}

impl Challenge {
    pub fn to_header(&self) -> String {
        let mut s = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
            self.realm,
            self.nonce,
            self.algorithm.token()
        );
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{o}\""));
        }
        if self.stale {
            s.push_str(", stale=TRUE");
        }
        s
    }
}

/// Digest credentials from Authorization or Proxy-Authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: DigestAlgorithm,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, ParseError> {
        let bad = || ParseError::Header("Authorization", value.into());
        let v = value.trim();
        let rest = v.get(..7).filter(|p| p.eq_ignore_ascii_case("Digest ")).map(|_| &v[7..]).ok_or_else(bad)?;
        let mut fields = std::collections::HashMap::new();
        for part in crate::headers::split_comma_list(rest) {
            let (k, val) = part.split_once('=').ok_or_else(bad)?;
            let val = val.trim();
            let val = val.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(val);
            fields.insert(k.trim().to_ascii_lowercase(), val.to_owned());
        }
        let mut take = |k: &str| fields.remove(k);
        let algorithm = match take("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(a) => DigestAlgorithm::parse(&a).ok_or_else(bad)?,
        };
        Ok(Credentials {
            username: take("username").ok_or_else(bad)?,
            realm: take("realm").ok_or_else(bad)?,
            nonce: take("nonce").ok_or_else(bad)?,
            uri: take("uri").ok_or_else(bad)?,
            response: take("response").ok_or_else(bad)?.to_ascii_lowercase(),
            algorithm,
            cnonce: take("cnonce"),
            qop: take("qop"),
            nc: take("nc"),
            opaque: take("opaque"),
        })
    }

    /// The header value a client sends (used by tests and by the Front End's own client side).
    pub fn to_header(&self) -> String {
        let mut s = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            self.username,
            self.realm,
            self.nonce,
            self.uri,
            self.response,
            self.algorithm.token()
        );
        if let (Some(q), Some(nc), Some(c)) = (&self.qop, &self.nc, &self.cnonce) {
            s.push_str(&format!(", qop={q}, nc={nc}, cnonce=\"{c}\""));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{o}\""));
        }
        s
    }
}

/// The expected `response` for credentials, from the stored HA1 (RFC 2617 §3.2.2.1).
pub fn digest_response(ha1: &str, method: &str, creds: &Credentials) -> String {
    let alg = creds.algorithm;
    let ha2 = alg.hex(format!("{method}:{}", creds.uri).as_bytes());
    match (&creds.qop, &creds.nc, &creds.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => {
            alg.hex(format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", creds.nonce).as_bytes())
        }
        _ => alg.hex(format!("{ha1}:{}:{ha2}", creds.nonce).as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5 (HTTP, but the computation is the same).
        let c = Credentials::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let ha1 = DigestAlgorithm::Md5.hex(b"Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(digest_response(&ha1, "GET", &c), c.response);
        let again = Credentials::parse(&c.to_header()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn refuses_non_digest() {
        assert!(Credentials::parse("Basic YWxhZGRpbjpvcGVuc2VzYW1l").is_err());
        assert!(Credentials::parse("Digest username=\"a\"").is_err());
        assert!(
            Credentials::parse(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=SHA-1"
            )
            .is_err()
        );
    }
}

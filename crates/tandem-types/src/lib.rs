//! Identifiers and value types shared by every Tandem crate.
//!
//! These are parsed, never validated after the fact: a `SipUri`, `SmtpAddress`, `DomainName` or
//! `UserName` that exists is well-formed, so the directory, the roles and the CLI never re-check.
//! No I/O lives here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value could not be parsed; the message is shown to administrators as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "domain name `{0}` is not valid: use letters, digits and hyphens in dot-separated labels, e.g. litwareinc.com"
    )]
    Domain(String),
    #[error(
        "user name `{0}` is not valid: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    UserName(String),
    #[error("SMTP address `{0}` is not valid: expected local@domain, e.g. alice@litwareinc.com")]
    Smtp(String),
    #[error("SIP URI `{0}` is not valid: expected sip:user@domain, e.g. sip:alice@litwareinc.com")]
    Sip(String),
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A DNS domain name such as `litwareinc.com`, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `label.domain`, e.g. `autodiscover.litwareinc.com`. The label must itself be valid.
    pub fn prefixed(&self, label: &str) -> Result<DomainName, ParseError> {
        format!("{label}.{}", self.0).parse()
    }
}

impl FromStr for DomainName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        let ok = lower.len() <= 253 && lower.contains('.') && lower.split('.').all(valid_label);
        if ok { Ok(DomainName(lower)) } else { Err(ParseError::Domain(s.to_owned())) }
    }
}

impl TryFrom<String> for DomainName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// The account name of a directory user (`alice`), the key administrators type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_local_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
}

impl FromStr for UserName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok { Ok(UserName(s.to_owned())) } else { Err(ParseError::UserName(s.to_owned())) }
    }
}

impl TryFrom<String> for UserName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<UserName> for String {
    fn from(u: UserName) -> String {
        u.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A primary SMTP address, `local@domain`. The domain is lower-cased; the local part is kept as
/// given but compared case-insensitively, as Exchange does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SmtpAddress {
    local: String,
    domain: DomainName,
}

impl SmtpAddress {
    pub fn new(local: &str, domain: &DomainName) -> Result<Self, ParseError> {
        format!("{local}@{domain}").parse()
    }
    pub fn local_part(&self) -> &str {
        &self.local
    }
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }
    /// The form used as a lookup key: the whole address in lower case.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_ascii_lowercase(), self.domain)
    }
}

impl PartialEq for SmtpAddress {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for SmtpAddress {}

impl FromStr for SmtpAddress {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Smtp(s.to_owned());
        let s2 = s.strip_prefix("smtp:").or_else(|| s.strip_prefix("SMTP:")).unwrap_or(s);
        let (local, domain) = s2.rsplit_once('@').ok_or_else(bad)?;
        if !valid_local_part(local) {
            return Err(bad());
        }
        let domain = domain.parse().map_err(|_| bad())?;
        Ok(SmtpAddress { local: local.to_owned(), domain })
    }
}

impl TryFrom<String> for SmtpAddress {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SmtpAddress> for String {
    fn from(a: SmtpAddress) -> String {
        a.to_string()
    }
}

impl fmt::Display for SmtpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}@{}", self.local, self.domain))
    }
}

/// A user's SIP address of record, `sip:user@domain` (the msRTCSIP-PrimaryUserAddress of
/// Skype for Business). Compared case-insensitively.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipUri {
    user: String,
    domain: DomainName,
}

impl SipUri {
    pub fn new(user: &str, domain: &DomainName) -> Result<Self, ParseError> {
        format!("sip:{user}@{domain}").parse()
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }
    /// The lookup key: the whole URI in lower case.
    pub fn key(&self) -> String {
        format!("sip:{}@{}", self.user.to_ascii_lowercase(), self.domain)
    }
}

impl PartialEq for SipUri {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for SipUri {}

impl FromStr for SipUri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Sip(s.to_owned());
        let rest = s.get(..4).filter(|p| p.eq_ignore_ascii_case("sip:")).map(|_| &s[4..]).ok_or_else(bad)?;
        let (user, domain) = rest.rsplit_once('@').ok_or_else(bad)?;
        if !valid_local_part(user) {
            return Err(bad());
        }
        let domain = domain.parse().map_err(|_| bad())?;
        Ok(SipUri { user: user.to_owned(), domain })
    }
}

impl TryFrom<String> for SipUri {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<SipUri> for String {
    fn from(u: SipUri) -> String {
        u.to_string()
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("sip:{}@{}", self.user, self.domain))
    }
}

/// The two server roles of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Our Exchange Server: Autodiscover, EWS, mailboxes.
    Mailbox,
    /// Our Skype for Business Server Front End: SIP, presence, IM, meetings.
    Frontend,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Mailbox, Role::Frontend];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Mailbox => "mailbox",
            Role::Frontend => "frontend",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        let d: DomainName = "LitwareInc.com.".parse().unwrap();
        assert_eq!(d.as_str(), "litwareinc.com");
        assert_eq!(d.prefixed("autodiscover").unwrap().as_str(), "autodiscover.litwareinc.com");
        for bad in ["", "localhost", "-a.com", "a..com", "a b.com", "a_b.com"] {
            assert!(bad.parse::<DomainName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        let a: SmtpAddress = "Alice@LITWAREINC.com".parse().unwrap();
        assert_eq!(a.to_string(), "Alice@litwareinc.com");
        assert_eq!(a, "alice@litwareinc.com".parse().unwrap());
        let s: SipUri = "SIP:alice@litwareinc.com".parse().unwrap();
        assert_eq!(s.key(), "sip:alice@litwareinc.com");
        for bad in ["alice", "sip:alice", "sip:@x.com", "alice@x.com", "sip:a b@x.com"] {
            assert!(bad.parse::<SipUri>().is_err(), "{bad}");
        }
        for bad in ["alice", "@x.com", "a..b@x.com", "a@b"] {
            assert!(bad.parse::<SmtpAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn user_names() {
        assert!("alice".parse::<UserName>().is_ok());
        assert!("a.b-c_1".parse::<UserName>().is_ok());
        for bad in ["", "Alice", ".a", "a b", &"x".repeat(65)] {
            assert!(bad.parse::<UserName>().is_err(), "{bad}");
        }
    }
}

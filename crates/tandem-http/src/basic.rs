//! HTTP Basic credentials (RFC 7617), read the same way by every listener that takes a password
//! (the Mailbox's EWS and Autodiscover, the Front End's XCAP).

use axum::http::{HeaderMap, header};
use base64::Engine as _;

/// The login and password of an `Authorization: Basic …` header, if it has a readable one.
pub fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basic_only() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic YWxpY2U6cDpx".parse().unwrap());
        assert_eq!(credentials(&h), Some(("alice".into(), "p:q".into())));
        h.insert(header::AUTHORIZATION, "Bearer YWxpY2U6cDpx".parse().unwrap());
        assert_eq!(credentials(&h), None);
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(credentials(&h), None);
    }
}

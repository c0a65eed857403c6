//! Identifier parsing: never a panic, and whatever parses prints to a string that parses back to
//! an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_types::{DomainName, SipUri, SmtpAddress, UserName};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(v) = s.parse::<SipUri>() {
        assert_eq!(v.to_string().parse::<SipUri>().ok(), Some(v));
    }
    if let Ok(v) = s.parse::<SmtpAddress>() {
        assert_eq!(v.to_string().parse::<SmtpAddress>().ok(), Some(v));
    }
    if let Ok(v) = s.parse::<DomainName>() {
        assert_eq!(v.to_string().parse::<DomainName>().ok(), Some(v));
    }
    if let Ok(v) = s.parse::<UserName>() {
        assert_eq!(v.to_string().parse::<UserName>().ok(), Some(v));
    }
});

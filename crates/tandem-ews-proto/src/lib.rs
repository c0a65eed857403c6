//! Exchange Web Services and Autodiscover on the wire, both ways, one module per operation: the
//! Mailbox's side parses requests from safe XML (`tandem-xml`) and renders responses; a client's
//! side builds requests from the same types (`to_xml`, [`build`]) and reads the answers
//! ([`reply`] and each operation's `parse_response`). No I/O: the Mailbox role
//! (`tandem-mailbox`) owns storage and HTTP for one side, `tandem-ews-client` for the other.

pub mod aqs;
pub mod autodiscover;
pub mod build;
pub mod common;
pub mod ids;
pub mod item_schema;
pub mod ops;
pub mod pox;
pub mod render;
pub mod reply;
pub mod timezone;
pub mod types;
pub mod version;
pub mod working_hours;

pub use common::{ResponseCode, ResponseMessages};

/// Namespaces used on the wire.
pub mod ns {
    pub const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
    pub const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
    pub const ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
    pub const AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
    pub const ADDRESSING: &str = "http://www.w3.org/2005/08/addressing";
    pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    pub const POX_REQUEST: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
    pub const POX_RESPONSE: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
    pub const POX_OUTLOOK_RESPONSE: &str =
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
}

/// A request that cannot be understood: the edge turns it into ErrorSchemaValidation (or the
/// given code) in a SOAP fault or response message.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{code:?}: {message}")]
pub struct ProtoError {
    pub code: ResponseCode,
    pub message: String,
}

impl ProtoError {
    pub fn schema(message: impl Into<String>) -> ProtoError {
        ProtoError { code: ResponseCode::ErrorSchemaValidation, message: message.into() }
    }
    pub fn new(code: ResponseCode, message: impl Into<String>) -> ProtoError {
        ProtoError { code, message: message.into() }
    }
}

/// The date-time form EWS writes: `2026-11-28T20:36:00Z`.
pub fn format_datetime(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

/// Parses an xs:dateTime (with zone, `Z`, or none meaning UTC) to Unix seconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let base = s.split('.').next().unwrap_or(s);
    time::PrimitiveDateTime::parse(base, &fmt).ok().map(|p| p.assume_utc().unix_timestamp())
}

/// xs:boolean: `true`, `false`, `1`, `0`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_datetime("2026-11-28T20:36:00Z"), Some(1_795_898_160));
        assert_eq!(parse_datetime("2026-11-28T21:36:00+01:00"), Some(1_795_898_160));
        assert_eq!(parse_datetime("2026-11-28T20:36:00.123"), Some(1_795_898_160));
        assert_eq!(format_datetime(1_795_898_160), "2026-11-28T20:36:00Z");
        assert_eq!(parse_datetime("yesterday"), None);
    }
}

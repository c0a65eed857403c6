//! RequestServerVersion negotiation and the ServerVersionInfo header.

use tandem_xml::Node;

use crate::{ProtoError, ResponseCode, ns};

/// Schema versions a client may request, oldest first (`ExchangeVersionType`).
pub const KNOWN_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2009",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
];

/// What Autodiscover's EwsSupportedSchemas lists (exchangelib picks the newest).
pub const SUPPORTED_SCHEMAS: &str = "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016";

/// The build we report: Exchange 2016 CU (15.1.2507.6), the schema version it answers with.
pub const MAJOR: u32 = 15;
pub const MINOR: u32 = 1;
pub const MAJOR_BUILD: u32 = 2507;
pub const MINOR_BUILD: u32 = 6;
pub const SERVER_VERSION: &str = "V2017_07_11";

/// Whether `version` is older than `than` (both known versions; an unknown one is not older).
pub fn older_than(version: &str, than: &str) -> bool {
    let at = |v: &str| KNOWN_VERSIONS.iter().position(|k| *k == v);
    matches!((at(version), at(than)), (Some(a), Some(b)) if a < b)
}

/// The version a request asked for; `Exchange2007` when the header is absent (as Exchange does).
pub fn requested(header: Option<Node<'_, '_>>) -> Result<&'static str, ProtoError> {
    let Some(rsv) = header.and_then(|h| tandem_xml::child(h, ns::TYPES, "RequestServerVersion")) else {
        return Ok("Exchange2007");
    };
    let v = rsv.attribute("Version").unwrap_or("");
    KNOWN_VERSIONS.iter().copied().find(|k| *k == v).ok_or_else(|| {
        ProtoError::new(
            ResponseCode::ErrorInvalidServerVersion,
            format!("The specified server version `{v}` is invalid."),
        )
    })
}

/// `<h:ServerVersionInfo …/>` in the types namespace, as Exchange 2016 sends it.
pub fn server_version_info() -> String {
    format!(
        "<h:ServerVersionInfo xmlns:h=\"{}\" MajorVersion=\"{MAJOR}\" MinorVersion=\"{MINOR}\" MajorBuildNumber=\"{MAJOR_BUILD}\" MinorBuildNumber=\"{MINOR_BUILD}\" Version=\"{SERVER_VERSION}\"/>",
        ns::TYPES
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates() {
        let xml = format!(
            r#"<s:Header xmlns:s="x" xmlns:t="{}"><t:RequestServerVersion Version="Exchange2016"/></s:Header>"#,
            ns::TYPES
        );
        let doc = tandem_xml::parse(xml.as_bytes(), Default::default()).unwrap();
        assert_eq!(requested(Some(doc.root_element())).unwrap(), "Exchange2016");
        assert_eq!(requested(None).unwrap(), "Exchange2007");
        let bad = xml.replace("Exchange2016", "Exchange2099");
        let doc = tandem_xml::parse(bad.as_bytes(), Default::default()).unwrap();
        assert_eq!(requested(Some(doc.root_element())).unwrap_err().code, ResponseCode::ErrorInvalidServerVersion);
    }
}

//! The auth metadata document (`…/metadata/json/1`): ours, built from our certificates, and a
//! partner's, parsed with case-insensitive member names (Exchange writes `keyvalue`, TokenHelper
//! reads `keyValue`) and with every key checked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CertError, VerifyingKey};

/// Largest metadata document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The document as Exchange publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataDocument {
    pub id: String,
    pub version: String,
    pub name: String,
    pub realm: String,
    #[serde(rename = "serviceName")]
    pub service_name: String,
    pub issuer: String,
    #[serde(rename = "allowedAudiences")]
    pub allowed_audiences: Vec<String>,
    pub keys: Vec<MetadataKey>,
    pub endpoints: Vec<MetadataEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataKey {
    pub usage: String,
    pub keyinfo: KeyInfo,
    pub keyvalue: KeyValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub x5t: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(rename = "type")]
    pub kind: String,
    /// Standard base64 of the DER certificate.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataEndpoint {
    pub location: String,
    pub protocol: String,
    pub usage: String,
}

/// A stable document id derived from the service name and realm.
fn document_id(service_name: &str, realm: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("{service_name}@{realm}").as_bytes());
    let h: String = d.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("_{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// True for a `Host` header value that may go into the document's endpoint location: a host
/// name or IP literal with an optional port, nothing else.
pub fn is_plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Builds our document: `issuer` and the audience are `service_name@realm`; every key
/// (current, next, previous) is listed so partners can pick by `x5t` through a rollover.
pub fn build(name: &str, service_name: &str, realm: &str, keys: &[&VerifyingKey], location: &str) -> MetadataDocument {
    let realm = if realm.is_empty() { "*" } else { realm };
    MetadataDocument {
        id: document_id(service_name, realm),
        version: "1.0".into(),
        name: name.into(),
        realm: realm.into(),
        service_name: service_name.into(),
        issuer: format!("{service_name}@{realm}"),
        allowed_audiences: vec![format!("{service_name}@{realm}")],
        keys: keys
            .iter()
            .map(|k| MetadataKey {
                usage: "signing".into(),
                keyinfo: KeyInfo { x5t: k.x5t.clone() },
                keyvalue: KeyValue { kind: "x509Certificate".into(), value: crate::b64_std(k.der()) },
            })
            .collect(),
        endpoints: vec![MetadataEndpoint {
            location: location.into(),
            protocol: "OAuth2".into(),
            usage: "metadata".into(),
        }],
    }
}

/// Why a partner's document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("not JSON: {0}")]
    Json(String),
    #[error("the document is not a JSON object")]
    NotObject,
    #[error("`{0}` is missing or not a string")]
    Missing(&'static str),
    #[error("`issuer` {issuer} does not name the service {service_name}")]
    IssuerMismatch { issuer: String, service_name: String },
    #[error("keys[{index}]: {reason}")]
    BadKey { index: usize, reason: String },
    #[error("keys[{index}]: keyinfo.x5t {stated} does not match the certificate ({actual})")]
    X5tMismatch { index: usize, stated: String, actual: String },
    #[error("the document lists no signing key")]
    NoKeys,
}

/// What we keep of a partner's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerMetadata {
    pub service_name: String,
    /// `*` when the document names none.
    pub realm: String,
    pub issuer: String,
    pub keys: Vec<VerifyingKey>,
}

fn lowercase_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), lowercase_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

fn str_field<'a>(v: &'a Value, name: &'static str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// Parses and checks a partner's document: a service name, and at least one signing key whose
/// certificate is RSA ≥ 2048 and whose stated `x5t` (when given) matches the certificate.
pub fn parse(bytes: &[u8]) -> Result<PartnerMetadata, MetadataError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(MetadataError::TooLarge);
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| MetadataError::Json(e.to_string()))?;
    let doc = lowercase_keys(doc);
    if !doc.is_object() {
        return Err(MetadataError::NotObject);
    }
    let service_name = str_field(&doc, "servicename").ok_or(MetadataError::Missing("serviceName"))?.to_owned();
    if service_name.is_empty() {
        return Err(MetadataError::Missing("serviceName"));
    }
    let realm = match str_field(&doc, "realm") {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => "*".to_owned(),
    };
    let issuer = match str_field(&doc, "issuer") {
        Some(i) => {
            if i.split_once('@').map(|(s, _)| s) != Some(service_name.as_str()) {
                return Err(MetadataError::IssuerMismatch { issuer: i.to_owned(), service_name });
            }
            i.to_owned()
        }
        None => format!("{service_name}@{realm}"),
    };
    let mut keys = Vec::new();
    for (index, key) in doc.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() {
        if str_field(key, "usage").is_some_and(|u| !u.eq_ignore_ascii_case("signing")) {
            continue;
        }
        let bad = |reason: String| MetadataError::BadKey { index, reason };
        let value = key
            .get("keyvalue")
            .and_then(|kv| str_field(kv, "value"))
            .ok_or_else(|| bad("keyvalue.value is missing".into()))?;
        let der = crate::b64_std_decode(value).ok_or_else(|| bad("keyvalue.value is not base64".into()))?;
        let vk = VerifyingKey::from_der(&der).map_err(|e: CertError| bad(e.to_string()))?;
        if let Some(stated) = key.get("keyinfo").and_then(|ki| str_field(ki, "x5t"))
            && stated.trim_end_matches('=') != vk.x5t
        {
            return Err(MetadataError::X5tMismatch { index, stated: stated.to_owned(), actual: vk.x5t });
        }
        keys.push(vk);
    }
    if keys.is_empty() {
        return Err(MetadataError::NoKeys);
    }
    Ok(PartnerMetadata { service_name, realm, issuer, keys })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn builds_and_parses_our_own_document() {
        let a = testkit::signing(0);
        let b = testkit::signing(1);
        let doc = build(
            "Tandem Front End",
            crate::LYNC_APP_ID,
            "litwareinc.com",
            &[a.certificate(), b.certificate()],
            "https://pool.litwareinc.com/metadata/json/1",
        );
        assert_eq!(doc.issuer, "00000004-0000-0ff1-ce00-000000000000@litwareinc.com");
        let json = serde_json::to_string(&doc).unwrap();
        assert!(
            json.contains("\"serviceName\"") && json.contains("\"keyvalue\"") && json.contains("\"x509Certificate\"")
        );
        let parsed = parse(json.as_bytes()).unwrap();
        assert_eq!(parsed.service_name, crate::LYNC_APP_ID);
        assert_eq!(parsed.realm, "litwareinc.com");
        assert_eq!(parsed.keys.len(), 2);
        assert_eq!(parsed.keys[1].x5t, b.certificate().x5t);
    }

    #[test]
    fn member_names_are_case_insensitive_and_realm_defaults_to_star() {
        let a = testkit::signing(0);
        let v = a.certificate();
        let json = serde_json::json!({
            "ServiceName": crate::EXCHANGE_APP_ID,
            "Keys": [{"Usage": "signing", "KeyInfo": {"X5T": v.x5t}, "keyValue": {"Type": "x509Certificate", "Value": crate::b64_std(v.der())}}]
        });
        let parsed = parse(json.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.realm, "*");
        assert_eq!(parsed.issuer, format!("{}@*", crate::EXCHANGE_APP_ID));
    }

    #[test]
    fn plain_hosts() {
        assert!(is_plain_host("pool.litwareinc.com:4443"));
        assert!(is_plain_host("[::1]:443"));
        assert!(!is_plain_host("evil.com/\"x"));
        assert!(!is_plain_host(""));
    }

    #[test]
    fn refuses_bad_documents() {
        let v = testkit::signing(0).certificate().clone();
        let key = |x5t: &str, value: &str| serde_json::json!({"usage":"signing","keyinfo":{"x5t":x5t},"keyvalue":{"type":"x509Certificate","value":value}});
        type Check = fn(&MetadataError) -> bool;
        let cases: Vec<(Value, Check)> = vec![
            (serde_json::json!([]), |e| matches!(e, MetadataError::NotObject)),
            (serde_json::json!({"keys": []}), |e| matches!(e, MetadataError::Missing("serviceName"))),
            (serde_json::json!({"serviceName": "x", "keys": []}), |e| matches!(e, MetadataError::NoKeys)),
            (serde_json::json!({"serviceName": "x", "issuer": "y@r", "keys": []}), |e| {
                matches!(e, MetadataError::IssuerMismatch { .. })
            }),
            (serde_json::json!({"serviceName": "x", "keys": [key(&v.x5t, "!!!")]}), |e| {
                matches!(e, MetadataError::BadKey { .. })
            }),
            (serde_json::json!({"serviceName": "x", "keys": [key(&v.x5t, "AAAA")]}), |e| {
                matches!(e, MetadataError::BadKey { .. })
            }),
            (serde_json::json!({"serviceName": "x", "keys": [key("abc", &crate::b64_std(v.der()))]}), |e| {
                matches!(e, MetadataError::X5tMismatch { .. })
            }),
        ];
        for (doc, check) in cases {
            let e = parse(doc.to_string().as_bytes()).unwrap_err();
            assert!(check(&e), "{doc}: {e}");
        }
        assert!(matches!(parse(b"{"), Err(MetadataError::Json(_))));
        assert!(matches!(parse(&vec![b' '; MAX_DOCUMENT_BYTES + 1]), Err(MetadataError::TooLarge)));
    }
}

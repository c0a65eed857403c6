//! Resource lists in SIP event notifications (RFC 4662): the RLMI document
//! (`application/rlmi+xml`) that names a list's resources and the state of each one's virtual
//! subscription, and the `multipart/related` body (RFC 2387) that carries it first and then one
//! part per resource (a PIDF document for presence). Both ways, without I/O; the readers are
//! bounded (body size, part count, resource count) and never expand entities or read a DTD.

use std::fmt::Write as _;

use crate::scan::{escape, tags, unescape};

/// Largest multipart body accepted by [`parse_multipart`].
pub const MAX_BODY: usize = 1024 * 1024;
/// Most parts accepted by [`parse_multipart`] (an RLMI document plus one part per resource).
pub const MAX_PARTS: usize = 1001;
/// Most resources accepted by [`parse`].
pub const MAX_RESOURCES: usize = 1000;
/// Largest RLMI document accepted by [`parse`].
pub const MAX_RLMI: usize = 512 * 1024;

/// The content type of an RLMI document.
pub const RLMI_TYPE: &str = "application/rlmi+xml";

/// Why a body is not a usable resource list notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RlmiError {
    #[error("not UTF-8")]
    Encoding,
    #[error("document type declarations and entities are refused")]
    Dtd,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} parts or resources")]
    TooMany(usize),
    #[error("no <list> element")]
    NotRlmi,
    #[error("<list> needs {0}")]
    MissingAttribute(&'static str),
    #[error("the Content-Type is not multipart/related with a boundary")]
    NotMultipart,
    #[error("the multipart body is malformed: {0}")]
    Malformed(&'static str),
}

/// The state of one resource's virtual subscription (RFC 4662 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Active,
    Pending,
    Terminated,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Active => "active",
            InstanceState::Pending => "pending",
            InstanceState::Terminated => "terminated",
        }
    }

    fn parse(s: &str) -> Option<InstanceState> {
        match s {
            "active" => Some(InstanceState::Active),
            "pending" => Some(InstanceState::Pending),
            "terminated" => Some(InstanceState::Terminated),
            _ => None,
        }
    }
}

/// One instance of a resource: its state and, when it carries state, the part (`cid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    /// Content-ID of the part carrying the resource's state (without angle brackets).
    pub cid: Option<String>,
    /// Why a terminated instance ended (`rejected`, `deactivated`…).
    pub reason: Option<String>,
}

/// One resource of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub uri: String,
    pub name: Option<String>,
    pub instances: Vec<Instance>,
}

/// An RLMI document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceList {
    /// The list's URI (`sip:alice-contacts@litwareinc.com`).
    pub uri: String,
    /// Increases by one with each notification of the subscription.
    pub version: u32,
    /// Full state (every resource) or partial (those that changed).
    pub full_state: bool,
    pub name: Option<String>,
    pub resources: Vec<Resource>,
}

impl ResourceList {
    /// The document, as RFC 4662 §5 writes it.
    pub fn render(&self) -> Vec<u8> {
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"{}\" version=\"{}\" fullState=\"{}\">\n",
            escape(&self.uri),
            self.version,
            self.full_state
        );
        if let Some(n) = &self.name {
            let _ = writeln!(s, "<name>{}</name>", escape(n));
        }
        for r in &self.resources {
            let _ = write!(s, "<resource uri=\"{}\">", escape(&r.uri));
            if let Some(n) = &r.name {
                let _ = write!(s, "<name>{}</name>", escape(n));
            }
            for i in &r.instances {
                let _ = write!(s, "<instance id=\"{}\" state=\"{}\"", escape(&i.id), i.state.as_str());
                if let Some(r) = &i.reason {
                    let _ = write!(s, " reason=\"{}\"", escape(r));
                }
                if let Some(c) = &i.cid {
                    let _ = write!(s, " cid=\"{}\"", escape(c));
                }
                s.push_str("/>");
            }
            s.push_str("</resource>\n");
        }
        s.push_str("</list>\n");
        s.into_bytes()
    }
}

/// Reads an RLMI document.
pub fn parse(body: &[u8]) -> Result<ResourceList, RlmiError> {
    if body.len() > MAX_RLMI {
        return Err(RlmiError::TooLarge(MAX_RLMI));
    }
    let text = std::str::from_utf8(body).map_err(|_| RlmiError::Encoding)?;
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(RlmiError::Dtd);
    }
    let tags = tags(text);
    let list = tags.iter().find(|t| t.name == "list" && !t.closing).ok_or(RlmiError::NotRlmi)?;
    let mut out = ResourceList {
        uri: list.attr("uri").ok_or(RlmiError::MissingAttribute("uri"))?,
        version: list
            .attr("version")
            .and_then(|v| v.trim().parse().ok())
            .ok_or(RlmiError::MissingAttribute("version"))?,
        full_state: match list.attr("fullState").as_deref().map(str::trim) {
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            _ => return Err(RlmiError::MissingAttribute("fullState")),
        },
        name: None,
        resources: Vec::new(),
    };
    let mut in_resource = false;
    for t in &tags {
        match (t.name.as_str(), t.closing) {
            ("resource", false) => {
                if out.resources.len() >= MAX_RESOURCES {
                    return Err(RlmiError::TooMany(MAX_RESOURCES));
                }
                let uri = t.attr("uri").unwrap_or_default();
                out.resources.push(Resource { uri, name: None, instances: Vec::new() });
                in_resource = !t.empty;
            }
            ("resource", true) => in_resource = false,
            ("name", false) => {
                let n = Some(unescape(t.text.trim()));
                match out.resources.last_mut() {
                    Some(r) if in_resource => r.name = n,
                    _ if out.name.is_none() => out.name = n,
                    _ => {}
                }
            }
            ("instance", false) if in_resource => {
                let Some(r) = out.resources.last_mut() else { continue };
                if r.instances.len() >= 16 {
                    return Err(RlmiError::TooMany(16));
                }
                r.instances.push(Instance {
                    id: t.attr("id").unwrap_or_default(),
                    state: t
                        .attr("state")
                        .and_then(|s| InstanceState::parse(s.trim()))
                        .unwrap_or(InstanceState::Active),
                    cid: t.attr("cid"),
                    reason: t.attr("reason"),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One body part of a `multipart/related` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Content-ID without angle brackets.
    pub content_id: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A `multipart/related` body whose root is its first part (the RLMI document): the
/// Content-Type header value and the body.
pub fn multipart_related(boundary: &str, parts: &[Part]) -> (String, Vec<u8>) {
    let start = parts.first().map(|p| p.content_id.as_str()).unwrap_or_default();
    let content_type = format!("multipart/related;type=\"{RLMI_TYPE}\";start=\"<{start}>\";boundary=\"{boundary}\"");
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{}>\r\nContent-Type: {}\r\n\r\n",
                p.content_id, p.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&p.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (content_type, body)
}

/// The boundary parameter of a `multipart/related` Content-Type value.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/related") {
        return None;
    }
    params
        .find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
        })
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Reads the parts of a `multipart/related` body, in order.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, RlmiError> {
    if body.len() > MAX_BODY {
        return Err(RlmiError::TooLarge(MAX_BODY));
    }
    let b = boundary(content_type).ok_or(RlmiError::NotMultipart)?;
    let delimiter = format!("--{b}");
    let d = delimiter.as_bytes();
    let mut at = find(body, d, 0).ok_or(RlmiError::Malformed("no first boundary"))?;
    let mut parts = Vec::new();
    loop {
        let after = at + d.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        if parts.len() >= MAX_PARTS {
            return Err(RlmiError::TooMany(MAX_PARTS));
        }
        let start = after + if body[after..].starts_with(b"\r\n") { 2 } else { 0 };
        let next = find(body, d, start).ok_or(RlmiError::Malformed("no closing boundary"))?;
        let mut end = next;
        if end >= start + 2 && &body[end - 2..end] == b"\r\n" {
            end -= 2;
        }
        let part = &body[start..end.max(start)];
        let head_end = find(part, b"\r\n\r\n", 0).ok_or(RlmiError::Malformed("a part has no header end"))?;
        let head = std::str::from_utf8(&part[..head_end]).map_err(|_| RlmiError::Encoding)?;
        let mut content_id = String::new();
        let mut content_type = String::new();
        for line in head.split("\r\n") {
            let Some((n, v)) = line.split_once(':') else { continue };
            if n.trim().eq_ignore_ascii_case("content-id") {
                content_id = v.trim().trim_start_matches('<').trim_end_matches('>').to_owned();
            } else if n.trim().eq_ignore_ascii_case("content-type") {
                content_type = v.trim().to_owned();
            }
        }
        parts.push(Part { content_id, content_type, body: part[head_end + 4..].to_vec() });
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> ResourceList {
        ResourceList {
            uri: "sip:alice-contacts@litwareinc.com".into(),
            version: 3,
            full_state: true,
            name: Some("Alice's contacts".into()),
            resources: vec![
                Resource {
                    uri: "sip:bob@litwareinc.com".into(),
                    name: Some("Bob & Brown".into()),
                    instances: vec![Instance {
                        id: "b1".into(),
                        state: InstanceState::Active,
                        cid: Some("b1@tandem".into()),
                        reason: None,
                    }],
                },
                Resource {
                    uri: "sip:carol@litwareinc.com".into(),
                    name: None,
                    instances: vec![Instance {
                        id: "c1".into(),
                        state: InstanceState::Terminated,
                        cid: None,
                        reason: Some("rejected".into()),
                    }],
                },
            ],
        }
    }

    #[test]
    fn rlmi_round_trips() {
        let l = list();
        let doc = l.render();
        assert!(std::str::from_utf8(&doc).unwrap().contains("fullState=\"true\""));
        assert_eq!(parse(&doc).unwrap(), l);
    }

    #[test]
    fn multipart_round_trips_and_is_bounded() {
        let parts = vec![
            Part { content_id: "rlmi@tandem".into(), content_type: RLMI_TYPE.into(), body: list().render() },
            Part {
                content_id: "b1@tandem".into(),
                content_type: "application/pidf+xml".into(),
                body: b"<presence/>\r\n--not-the-boundary".to_vec(),
            },
        ];
        let (ct, body) = multipart_related("tandem-b0", &parts);
        assert!(ct.starts_with("multipart/related;type=\"application/rlmi+xml\";start=\"<rlmi@tandem>\""));
        assert_eq!(parse_multipart(&ct, &body).unwrap(), parts);
        assert_eq!(parse_multipart("application/pidf+xml", &body), Err(RlmiError::NotMultipart));
        assert!(matches!(parse_multipart(&ct, b"--tandem-b0\r\nno header end"), Err(RlmiError::Malformed(_))));
        assert!(matches!(parse_multipart(&ct, b"garbage"), Err(RlmiError::Malformed(_))));
        let many: Vec<Part> = (0..=MAX_PARTS)
            .map(|i| Part { content_id: format!("p{i}"), content_type: "text/plain".into(), body: vec![] })
            .collect();
        let (ct, body) = multipart_related("x", &many);
        assert_eq!(parse_multipart(&ct, &body), Err(RlmiError::TooMany(MAX_PARTS)));
    }

    #[test]
    fn bad_rlmi_is_refused() {
        assert_eq!(parse(b"<presence/>"), Err(RlmiError::NotRlmi));
        assert_eq!(parse(b"<!DOCTYPE x><list/>"), Err(RlmiError::Dtd));
        assert_eq!(parse(b"<list version=\"1\" fullState=\"true\"/>"), Err(RlmiError::MissingAttribute("uri")));
        assert_eq!(parse(&[0xff, 0xfe]), Err(RlmiError::Encoding));
        let huge = format!(
            "<list uri=\"x\" version=\"1\" fullState=\"true\">{}</list>",
            "<resource uri=\"a\"/>".repeat(MAX_RESOURCES + 1)
        );
        assert_eq!(parse(huge.as_bytes()), Err(RlmiError::TooMany(MAX_RESOURCES)));
    }
}

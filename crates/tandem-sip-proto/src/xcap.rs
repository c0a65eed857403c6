//! XCAP (RFC 4825) for the resource-lists application (RFC 4826): the request URI (document and
//! node selectors), the `resource-lists` document and its `entry` element, the ETag of a
//! document, and the `xcap-error` answers. Both ways: what the Front End parses, a client (or a
//! test) builds with the same types. No I/O; every input bounded.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use tandem_xml::{Node, child, children_named, escape};

use crate::uri::percent_decode;

/// The application usage this server serves.
pub const AUID: &str = "resource-lists";
pub const NS: &str = "urn:ietf:params:xml:ns:resource-lists";
pub const ERROR_NS: &str = "urn:ietf:params:xml:ns:xcap-error";
pub const DOCUMENT_TYPE: &str = "application/resource-lists+xml";
pub const ELEMENT_TYPE: &str = "application/xcap-el+xml";
pub const ERROR_TYPE: &str = "application/xcap-error+xml";
/// The one document of a user (RFC 4826 §3.5: `index`).
pub const DOCUMENT_NAME: &str = "index";
/// Largest request body read.
pub const MAX_BODY: usize = 256 * 1024;
/// Longest request path (percent-decoded).
pub const MAX_PATH: usize = 2048;
/// Most lists and most entries in one document (the contact store's limits: 64 user groups plus
/// the default ones, 1,000 contacts).
pub const MAX_LISTS: usize = 128;
pub const MAX_ENTRIES: usize = 1000;

/// Why a request cannot be served as asked, each with its RFC 4825 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XcapError {
    /// The path names no resource of this server (404).
    #[error("no such document or element: {0}")]
    NotFound(String),
    /// The body is not well-formed XML (409 `not-well-formed`).
    #[error("the body is not well-formed XML: {0}")]
    NotWellFormed(String),
    /// Well-formed, but not what the resource-lists schema allows there (409 `schema-validation-error`).
    #[error("the body is not a valid {0}")]
    Schema(String),
    /// A rule of the application usage is broken (409 `constraint-failure`).
    #[error("{0}")]
    Constraint(String),
    /// The body is larger than [`MAX_BODY`] (413).
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
}

impl XcapError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            XcapError::NotFound(_) => 404,
            XcapError::TooLarge => 413,
            _ => 409,
        }
    }

    /// The `application/xcap-error+xml` body (RFC 4825 §11), for the 409 answers.
    pub fn render(&self) -> String {
        let (element, phrase) = match self {
            XcapError::NotWellFormed(_) => ("not-well-formed", None),
            XcapError::Schema(_) => ("schema-validation-error", None),
            _ => ("constraint-failure", Some(self.to_string())),
        };
        let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"{ERROR_NS}\">");
        match phrase {
            Some(p) => {
                let _ = write!(s, "<{element} phrase=\"{}\"/>", escape(&p));
            }
            None => {
                let _ = write!(s, "<{element}/>");
            }
        }
        s.push_str("</xcap-error>\n");
        s
    }
}

/// What the node selector names inside the user's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Document,
    /// `~~/resource-lists/list[@name="…"]`
    List {
        name: String,
    },
    /// `~~/resource-lists/list[@name="…"]/entry[@uri="…"]`
    Entry {
        list: String,
        uri: String,
    },
}

/// A request URI below the XCAP root: whose document and which part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The XCAP User Identifier: the user's SIP URI.
    pub xui: String,
    pub selector: Selector,
}

impl Target {
    /// Reads `resource-lists/users/<xui>/index[/~~/<node selector>]` (percent-encoded, as a
    /// client sends it, without the XCAP root).
    pub fn parse(path: &str) -> Result<Target, XcapError> {
        let not_found = || XcapError::NotFound(path.chars().take(200).collect());
        if path.len() > MAX_PATH * 3 {
            return Err(not_found());
        }
        let decoded = percent_decode(path).ok_or_else(not_found)?;
        if decoded.len() > MAX_PATH {
            return Err(not_found());
        }
        let (document, node) = match decoded.split_once("/~~/") {
            Some((d, n)) => (d, Some(n)),
            None => (decoded.as_str(), None),
        };
        let rest = document.trim_start_matches('/').strip_prefix(AUID).and_then(|r| r.strip_prefix("/users/"));
        let Some((xui, name)) = rest.and_then(|r| r.rsplit_once('/')) else { return Err(not_found()) };
        if name != DOCUMENT_NAME || xui.is_empty() || xui.contains('/') {
            return Err(not_found());
        }
        let selector = match node {
            None => Selector::Document,
            Some(node) => parse_selector(node).ok_or_else(not_found)?,
        };
        Ok(Target { xui: xui.to_owned(), selector })
    }

    /// The path a client sends for this target (below the XCAP root), percent-encoded.
    pub fn to_path(&self) -> String {
        let mut p = format!("{AUID}/users/{}/{DOCUMENT_NAME}", encode(&self.xui));
        match &self.selector {
            Selector::Document => {}
            Selector::List { name } => {
                let _ = write!(p, "/~~/resource-lists/list%5B@name=%22{}%22%5D", encode(name));
            }
            Selector::Entry { list, uri } => {
                let _ = write!(
                    p,
                    "/~~/resource-lists/list%5B@name=%22{}%22%5D/entry%5B@uri=%22{}%22%5D",
                    encode(list),
                    encode(uri)
                );
            }
        }
        p
    }
}

/// `resource-lists/list[@name="x"]` or `…/entry[@uri="y"]`; the steps may carry a namespace
/// prefix, the values single or double quotes.
fn parse_selector(node: &str) -> Option<Selector> {
    let mut steps = node.split('/');
    let local = |s: &str| s.rsplit(':').next().unwrap_or(s).to_owned();
    if local(steps.next()?) != "resource-lists" {
        return None;
    }
    let list = predicate(steps.next()?, "list", "name")?;
    let out = match steps.next() {
        None => Selector::List { name: list },
        Some(step) => Selector::Entry { list, uri: predicate(step, "entry", "uri")? },
    };
    steps.next().is_none().then_some(out)
}

/// `name[@attr="value"]` → value.
fn predicate(step: &str, name: &str, attr: &str) -> Option<String> {
    let (head, rest) = step.split_once('[')?;
    if head.rsplit(':').next()? != name {
        return None;
    }
    let inner = rest.strip_suffix(']')?.strip_prefix('@')?.strip_prefix(attr)?.trim_start().strip_prefix('=')?;
    let inner = inner.trim();
    let q = inner.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = inner.strip_prefix(q)?.strip_suffix(q)?;
    (!value.contains(q)).then(|| value.to_owned())
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@+".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A `resource-lists` document: the user's contact groups, each with its contacts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub lists: Vec<List>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub name: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uri: String,
    pub display_name: Option<String>,
}

fn limits() -> tandem_xml::Limits {
    tandem_xml::Limits { max_bytes: MAX_BODY, ..tandem_xml::Limits::default() }
}

fn parse_xml(body: &[u8]) -> Result<tandem_xml::Document<'_>, XcapError> {
    if body.len() > MAX_BODY {
        return Err(XcapError::TooLarge);
    }
    tandem_xml::parse(body, limits()).map_err(|e| XcapError::NotWellFormed(e.to_string()))
}

fn read_entry(node: Node<'_, '_>) -> Result<Entry, XcapError> {
    let uri = node.attribute("uri").map(str::trim).filter(|u| !u.is_empty());
    let uri = uri.ok_or_else(|| XcapError::Schema("entry: it needs a uri attribute".into()))?;
    let display_name =
        child(node, NS, "display-name").map(tandem_xml::text).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    Ok(Entry { uri: uri.to_owned(), display_name })
}

impl Document {
    /// Reads a whole document (`application/resource-lists+xml`).
    pub fn parse(body: &[u8]) -> Result<Document, XcapError> {
        let doc = parse_xml(body)?;
        let root = doc.root_element();
        if !tandem_xml::is(root, NS, "resource-lists") {
            return Err(XcapError::Schema("resource-lists document: the root must be resource-lists".into()));
        }
        let mut lists: Vec<List> = Vec::new();
        let mut count = 0usize;
        for l in children_named(root, NS, "list") {
            let name = l.attribute("name").map(str::trim).filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| XcapError::Schema("list: it needs a name attribute".into()))?;
            if lists.iter().any(|x| x.name == name) {
                return Err(XcapError::Constraint(format!("two lists are named `{name}`")));
            }
            if lists.len() == MAX_LISTS {
                return Err(XcapError::Constraint(format!("more than {MAX_LISTS} lists")));
            }
            let mut entries: Vec<Entry> = Vec::new();
            for e in children_named(l, NS, "entry") {
                let entry = read_entry(e)?;
                if entries.iter().any(|x| x.uri.eq_ignore_ascii_case(&entry.uri)) {
                    return Err(XcapError::Constraint(format!("`{}` is twice in list `{name}`", entry.uri)));
                }
                count += 1;
                if count > MAX_ENTRIES {
                    return Err(XcapError::Constraint(format!("more than {MAX_ENTRIES} entries")));
                }
                entries.push(entry);
            }
            lists.push(List { name: name.to_owned(), entries });
        }
        Ok(Document { lists })
    }

    /// The document as served.
    pub fn render(&self) -> String {
        let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"{NS}\">\n");
        for l in &self.lists {
            let _ = writeln!(s, "  <list name=\"{}\">", escape(&l.name));
            for e in &l.entries {
                let _ = writeln!(s, "    {}", e.render_element());
            }
            s.push_str("  </list>\n");
        }
        s.push_str("</resource-lists>\n");
        s
    }

    /// The entity tag of the document as [`Document::render`] writes it (quoted).
    pub fn etag(&self) -> String {
        let digest = Sha256::digest(self.render().as_bytes());
        format!("\"{}\"", hex::encode(&digest[..12]))
    }

    pub fn list(&self, name: &str) -> Option<&List> {
        self.lists.iter().find(|l| l.name == name)
    }
}

impl List {
    pub fn entry(&self, uri: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.uri.eq_ignore_ascii_case(uri))
    }

    /// The `<list>` element alone (`application/xcap-el+xml`).
    pub fn render_element(&self) -> String {
        let mut s = format!("<list xmlns=\"{NS}\" name=\"{}\">", escape(&self.name));
        for e in &self.entries {
            s.push_str(&e.render_element());
        }
        s.push_str("</list>");
        s
    }
}

impl Entry {
    /// Reads an `<entry>` element sent alone (`application/xcap-el+xml`); without a namespace
    /// declaration it is read in the resource-lists namespace, as RFC 4825 §8.2.3 lets a client
    /// send it.
    pub fn parse_element(body: &[u8]) -> Result<Entry, XcapError> {
        if body.len() > MAX_BODY {
            return Err(XcapError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| XcapError::NotWellFormed("not UTF-8".into()))?;
        let with_ns;
        let body = if text.contains("xmlns") {
            body
        } else {
            with_ns = text.trim_start().replacen("<entry", &format!("<entry xmlns=\"{NS}\""), 1);
            with_ns.as_bytes()
        };
        let doc = parse_xml(body)?;
        let root = doc.root_element();
        if !tandem_xml::is(root, NS, "entry") {
            return Err(XcapError::Schema("entry element: the body must be one entry".into()));
        }
        read_entry(root)
    }

    /// The `<entry>` element.
    pub fn render_element(&self) -> String {
        match &self.display_name {
            Some(d) => format!(
                "<entry xmlns=\"{NS}\" uri=\"{}\"><display-name>{}</display-name></entry>",
                escape(&self.uri),
                escape(d)
            ),
            None => format!("<entry xmlns=\"{NS}\" uri=\"{}\"/>", escape(&self.uri)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_back_what_they_write() {
        for selector in [
            Selector::Document,
            Selector::List { name: "Friends & Family".into() },
            Selector::Entry { list: "Other Contacts".into(), uri: "sip:bob@litwareinc.com".into() },
        ] {
            let t = Target { xui: "sip:alice@litwareinc.com".into(), selector };
            assert_eq!(Target::parse(&t.to_path()).unwrap(), t);
        }
        let raw = r#"resource-lists/users/sip:alice@x.com/index/~~/rl:resource-lists/rl:list[@name='Work']/rl:entry[@uri="sip:b@x.com"]"#;
        assert_eq!(
            Target::parse(raw).unwrap().selector,
            Selector::Entry { list: "Work".into(), uri: "sip:b@x.com".into() }
        );
        for bad in [
            "resource-lists/users/sip:a@x.com/other",
            "pres-rules/users/sip:a@x.com/index",
            "resource-lists/users//index",
            "resource-lists/users/sip:a@x.com/index/~~/resource-lists/list",
            "resource-lists/users/sip:a@x.com/index/~~/resource-lists/list[@name=\"a\"]/entry[@uri=\"b\"]/x",
            "resource-lists/users/sip:a@x.com/index/~~/resource-lists/list[@name=\"a\"b\"]",
            "resource-lists/users/sip:a@x.com/index%zz",
        ] {
            assert!(matches!(Target::parse(bad), Err(XcapError::NotFound(_))), "{bad}");
        }
    }

    #[test]
    fn documents_and_entries_round_trip() {
        let doc = Document {
            lists: vec![
                List {
                    name: "Other Contacts".into(),
                    entries: vec![Entry { uri: "sip:bob@x.com".into(), display_name: Some("Bob <B>".into()) }],
                },
                List { name: "Favorites".into(), entries: vec![] },
            ],
        };
        let again = Document::parse(doc.render().as_bytes()).unwrap();
        assert_eq!(again, doc);
        assert_eq!(again.etag(), doc.etag());
        let e = Entry::parse_element(br#"<entry uri="sip:carol@x.com"><display-name>Carol</display-name></entry>"#)
            .unwrap();
        assert_eq!(e, Entry { uri: "sip:carol@x.com".into(), display_name: Some("Carol".into()) });
        assert_eq!(Entry::parse_element(e.render_element().as_bytes()).unwrap(), e);
    }

    #[test]
    fn bad_bodies_get_their_xcap_error() {
        assert!(matches!(Document::parse(b"<resource-lists"), Err(XcapError::NotWellFormed(_))));
        assert!(matches!(Document::parse(b"<other/>"), Err(XcapError::Schema(_))));
        let dup = format!(r#"<resource-lists xmlns="{NS}"><list name="a"/><list name="a"/></resource-lists>"#);
        assert!(matches!(Document::parse(dup.as_bytes()), Err(XcapError::Constraint(_))));
        assert!(matches!(Entry::parse_element(b"<entry/>"), Err(XcapError::Schema(_))));
        assert!(matches!(Entry::parse_element(&vec![b' '; MAX_BODY + 1]), Err(XcapError::TooLarge)));
        let many: String = (0..=MAX_ENTRIES).map(|i| format!("<entry uri=\"sip:u{i}@x.com\"/>")).collect();
        let big = format!(r#"<resource-lists xmlns="{NS}"><list name="a">{many}</list></resource-lists>"#);
        assert!(matches!(Document::parse(big.as_bytes()), Err(XcapError::Constraint(_))));
        let bomb = r#"<!DOCTYPE x [<!ENTITY a "a">]><resource-lists/>"#;
        assert!(matches!(Document::parse(bomb.as_bytes()), Err(XcapError::NotWellFormed(_))));
        let rendered = XcapError::Constraint("a \"quoted\" phrase".into()).render();
        assert!(rendered.contains("constraint-failure phrase=\"a &quot;quoted&quot; phrase\""), "{rendered}");
    }
}

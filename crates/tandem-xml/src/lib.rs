//! Safe XML reading and writing for the SOAP protocols (EWS, Autodiscover).
//!
//! Reading goes through roxmltree with a DTD refused outright (so no entity is ever declared,
//! let alone expanded, and nothing external is read), a byte limit checked before parsing, a
//! linear pre-scan ([`prescan`]) that bounds nesting depth, attributes per element, namespace
//! declarations in scope, attribute and text length before roxmltree sees the document (its
//! attribute and namespace checks are quadratic in those counts, and deep trees overflow
//! recursive consumers), and a node limit enforced while parsing. Writing is string building
//! with [`escape`]; [`Writer`] keeps element nesting honest and [`serialize`] iterates, so no
//! document can exhaust the stack. The [`soap`] module finds the SOAP 1.1 header and body and
//! renders faults.

use std::borrow::Cow;
use std::fmt::Write as _;

pub use roxmltree::{Document, Node};

mod prescan;
pub mod soap;

pub use prescan::prescan;

/// Largest document accepted by default: EWS requests carrying MIME content of large messages
/// are the biggest legitimate input.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;
/// Most nodes accepted by default.
pub const DEFAULT_MAX_NODES: u32 = 200_000;
/// Deepest element nesting accepted by default (the root element is depth 1). EWS requests
/// nest about ten deep; restrictions, the deepest part, are limited to 64 levels on their own.
pub const DEFAULT_MAX_DEPTH: u32 = 128;
/// Most attributes (namespace declarations included) on one element by default. SOAP envelopes
/// declare a handful of namespaces; this keeps roxmltree's per-element duplicate check cheap.
pub const DEFAULT_MAX_ATTRIBUTES: u32 = 64;
/// Most namespace declarations in scope at any element by default (those of the element and
/// its ancestors). EWS requests declare three to six.
pub const DEFAULT_MAX_NAMESPACES: u32 = 32;
/// Longest attribute value accepted by default, in bytes as written (item ids and change keys
/// are a few hundred bytes).
pub const DEFAULT_MAX_ATTRIBUTE_BYTES: usize = 64 * 1024;
/// Longest run of character data (text and CDATA between two tags) accepted by default, in bytes
/// as written: base64 MIME content and attachments are one text node as large as the request.
pub const DEFAULT_MAX_TEXT_BYTES: usize = DEFAULT_MAX_BYTES;

/// Limits applied to every document read. Callers lower (or raise) single fields with
/// `Limits { max_depth: 16, ..Limits::default() }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Most nodes (elements, attributes' owners, text) accepted.
    pub max_nodes: u32,
    /// Deepest element nesting accepted; the root element is depth 1.
    pub max_depth: u32,
    /// Most attributes, namespace declarations included, on one element.
    pub max_attributes: u32,
    /// Most namespace declarations in scope at any element (its own and its ancestors').
    pub max_namespaces: u32,
    /// Longest attribute value, in bytes as written.
    pub max_attribute_bytes: usize,
    /// Longest run of character data between two tags, in bytes as written.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_nodes: DEFAULT_MAX_NODES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_attributes: DEFAULT_MAX_ATTRIBUTES,
            max_namespaces: DEFAULT_MAX_NAMESPACES,
            max_attribute_bytes: DEFAULT_MAX_ATTRIBUTE_BYTES,
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the document is {size} bytes, more than the {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("the document is not UTF-8")]
    NotUtf8,
    #[error("a DTD is not allowed")]
    Dtd,
    #[error("the document has more than {0} nodes")]
    TooManyNodes(u32),
    #[error("elements are nested more than {0} deep")]
    TooDeep(u32),
    #[error("an element has more than {0} attributes")]
    TooManyAttributes(u32),
    #[error("more than {0} namespace declarations are in scope")]
    TooManyNamespaces(u32),
    #[error("an attribute value is longer than {0} bytes")]
    AttributeTooLong(usize),
    #[error("a text node is longer than {0} bytes")]
    TextTooLong(usize),
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// Parses `bytes` as one XML document under `limits`.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Document<'_>, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    prescan(text.as_bytes(), &limits)?;
    let options = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: limits.max_nodes, ..Default::default() };
    Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => XmlError::Dtd,
        roxmltree::Error::NodesLimitReached => XmlError::TooManyNodes(limits.max_nodes),
        other => XmlError::Malformed(other.to_string()),
    })
}

/// Escapes text for element content and attribute values alike.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'', '\r']) && !s.chars().any(is_forbidden_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if is_forbidden_char(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters XML 1.0 cannot carry at all; they are dropped on output.
fn is_forbidden_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Child elements of `node` (text and comments skipped).
pub fn children<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(|n| n.is_element())
}

/// The first child element with namespace `ns` and local name `name`.
pub fn child<'a, 'input>(node: Node<'a, 'input>, ns: &str, name: &str) -> Option<Node<'a, 'input>> {
    children(node).find(|n| n.tag_name().name() == name && n.tag_name().namespace() == Some(ns))
}

/// Every child element with namespace `ns` and local name `name`.
pub fn children_named<'a, 'input>(
    node: Node<'a, 'input>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    children(node).filter(move |n| n.tag_name().name() == name && n.tag_name().namespace() == Some(ns))
}

/// The concatenated text of an element (its text children only), trimmed.
pub fn text(node: Node<'_, '_>) -> String {
    let mut s = String::new();
    for t in node.children().filter(|n| n.is_text()) {
        s.push_str(t.text().unwrap_or(""));
    }
    s.trim().to_owned()
}

/// True when `node` is the element `{ns}name`.
pub fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// Serialises `node` and its subtree, naming elements in `ns` with `prefix` and dropping
/// elements of other namespaces' prefixes to their own `xmlns` declaration. Attributes without a
/// namespace are kept; namespaced attributes (xsi:type…) are written with an inline declaration.
/// It walks the tree with an explicit stack, so a deep document costs heap, never call stack.
pub fn serialize(node: Node<'_, '_>, ns: &str, prefix: &str, out: &mut String) {
    enum Step<'a, 'input> {
        Open(Node<'a, 'input>),
        Close(String),
    }
    let wanted = |c: &Node<'_, '_>| c.is_element() || c.is_text();
    let mut stack = vec![Step::Open(node)];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Close(name) => {
                let _ = write!(out, "</{name}>");
                continue;
            }
            Step::Open(node) => node,
        };
        if node.is_text() {
            out.push_str(&escape(node.text().unwrap_or("")));
            continue;
        }
        if !node.is_element() {
            continue;
        }
        let tag = node.tag_name();
        let (name, decl) = match tag.namespace() {
            Some(n) if n == ns => (format!("{prefix}:{}", tag.name()), None),
            Some(other) => (tag.name().to_owned(), Some(other.to_owned())),
            None => (tag.name().to_owned(), None),
        };
        out.push('<');
        out.push_str(&name);
        if let Some(d) = decl {
            let _ = write!(out, " xmlns=\"{}\"", escape(&d));
        }
        for a in node.attributes() {
            match a.namespace() {
                None => {
                    let _ = write!(out, " {}=\"{}\"", a.name(), escape(a.value()));
                }
                Some(ans) => {
                    let _ = write!(out, " xmlns:a0=\"{}\" a0:{}=\"{}\"", escape(ans), a.name(), escape(a.value()));
                }
            }
        }
        if !node.children().any(|c| wanted(&c)) {
            out.push_str("/>");
            continue;
        }
        out.push('>');
        stack.push(Step::Close(name));
        stack.extend(node.children().rev().filter(wanted).map(Step::Open));
    }
}

/// A small XML writer: elements opened are closed in order, text and attributes are escaped.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
    open: Vec<String>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { out: String::with_capacity(4096), open: Vec::new() }
    }

    /// Opens `<name attrs…>`.
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs, false);
        self.open.push(name.to_owned());
        self
    }

    /// Writes `<name attrs…/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs, true);
        self
    }

    /// Writes `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        let _ = write!(self.out, "<{name}>{}</{name}>", escape(text));
        self
    }

    /// Writes `<name attrs…>text</name>`.
    pub fn leaf_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.start_tag(name, attrs, false);
        let _ = write!(self.out, "{}</{name}>", escape(text));
        self
    }

    /// Escaped text inside the current element.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// Already well-formed XML, written as is.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            let _ = write!(self.out, "</{name}>");
        }
        self
    }

    /// Closes every open element and returns the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)], empty: bool) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"{}\"", escape(v));
        }
        self.out.push_str(if empty { "/>" } else { ">" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dtd_and_entities() {
        let bomb =
            br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(parse(bomb, Limits::default()).unwrap_err(), XmlError::Dtd);
        let external = br#"<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>"#;
        assert_eq!(parse(external, Limits::default()).unwrap_err(), XmlError::Dtd);
        assert!(matches!(parse(b"<a>&unknown;</a>", Limits::default()), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn enforces_limits() {
        let doc = b"<a><b/><b/><b/><b/></a>";
        assert_eq!(
            parse(doc, Limits { max_bytes: 10, max_nodes: 100, ..Limits::default() }).unwrap_err(),
            XmlError::TooLarge { size: doc.len(), limit: 10 }
        );
        assert_eq!(
            parse(doc, Limits { max_bytes: 100, max_nodes: 3, ..Limits::default() }).unwrap_err(),
            XmlError::TooManyNodes(3)
        );
        assert_eq!(parse(b"\xff\xfe", Limits::default()).unwrap_err(), XmlError::NotUtf8);
        // roxmltree reads `p:xmlns` as a declaration too: it counts against the limit (a fuzz
        // finding: two of them passed a limit of none).
        let sneaky = br#"<a p:xmlns="urn:t" q:xmlns="urn:u" k="v"/>"#;
        assert_eq!(
            parse(sneaky, Limits { max_namespaces: 1, ..Limits::default() }).unwrap_err(),
            XmlError::TooManyNamespaces(1)
        );
    }

    #[test]
    fn escapes_and_writes() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
        let mut w = Writer::new();
        w.start("x", &[("k", "<v>")]).leaf("y", "1 & 2").empty("z", &[]);
        assert_eq!(w.finish(), "<x k=\"&lt;v&gt;\"><y>1 &amp; 2</y><z/></x>");
    }

    #[test]
    fn serializes_subtrees_with_a_prefix() {
        let doc = parse(br#"<t:A xmlns:t="urn:t" x="1"><t:B>a&amp;b</t:B><C xmlns="urn:o"/></t:A>"#, Limits::default())
            .unwrap();
        let mut out = String::new();
        serialize(doc.root_element(), "urn:t", "t", &mut out);
        assert_eq!(out, r#"<t:A x="1"><t:B>a&amp;b</t:B><C xmlns="urn:o"/></t:A>"#);
    }
}

//! The structural limits: the two payloads that took the server down, each limit at and just
//! past its bound, and a property test comparing the pre-scan's verdict with the truth measured
//! on the parsed tree for thousands of generated documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tandem_xml::{Limits, Node, XmlError, parse, serialize};

/// No limit but the one under test.
fn open() -> Limits {
    Limits {
        max_bytes: usize::MAX,
        max_nodes: u32::MAX,
        max_depth: u32::MAX,
        max_attributes: u32::MAX,
        max_namespaces: u32::MAX,
        max_attribute_bytes: usize::MAX,
        max_text_bytes: usize::MAX,
    }
}

fn nested(depth: usize) -> String {
    format!("{}x{}", "<a>".repeat(depth), "</a>".repeat(depth))
}

fn wide(attributes: usize) -> String {
    let mut s = String::from("<a");
    for i in 0..attributes {
        s.push_str(&format!(" a{i}=\"\""));
    }
    s.push_str("/>");
    s
}

#[test]
fn ten_thousand_nested_elements_are_refused() {
    let doc = nested(10_000);
    assert_eq!(parse(doc.as_bytes(), Limits::default()).unwrap_err(), XmlError::TooDeep(tandem_xml::DEFAULT_MAX_DEPTH));
}

#[test]
fn a_million_attributes_are_refused_at_once() {
    let doc = wide(1_000_000);
    assert!(doc.len() > 10_000_000);
    let started = Instant::now();
    assert_eq!(
        parse(doc.as_bytes(), Limits::default()).unwrap_err(),
        XmlError::TooManyAttributes(tandem_xml::DEFAULT_MAX_ATTRIBUTES)
    );
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn many_namespaces_in_scope_are_refused_at_once() {
    // Each leaf that declares a namespace makes roxmltree copy and cross-check every one in
    // scope: 100 levels of 60 declarations over 100,000 leaves once took minutes for 1.7 MB.
    let mut doc = String::new();
    for d in 0..100 {
        doc.push_str("<a");
        for i in 0..60 {
            doc.push_str(&format!(" xmlns:n{d}x{i}=\"u\""));
        }
        doc.push('>');
    }
    doc.push_str(&"<b xmlns:q=\"v\"/>".repeat(100_000));
    doc.push_str(&"</a>".repeat(100));
    let started = Instant::now();
    assert_eq!(
        parse(doc.as_bytes(), Limits::default()).unwrap_err(),
        XmlError::TooManyNamespaces(tandem_xml::DEFAULT_MAX_NAMESPACES)
    );
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[test]
fn namespaces_in_scope_count_ancestors_and_end_with_their_element() {
    let l = Limits { max_namespaces: 2, ..open() };
    assert!(parse(br#"<a xmlns="urn:a"><b xmlns:b="urn:b"/><c xmlns:c="urn:c"><d/></c></a>"#, l).is_ok());
    assert_eq!(
        parse(br#"<a xmlns="urn:a"><b xmlns:b="urn:b"><c xmlns:c="urn:c"/></b></a>"#, l).unwrap_err(),
        XmlError::TooManyNamespaces(2)
    );
    assert_eq!(
        parse(br#"<a xmlns="urn:a" xmlns:b="urn:b" xmlns:c="urn:c"/>"#, l).unwrap_err(),
        XmlError::TooManyNamespaces(2)
    );
    // Ordinary attributes do not count.
    assert!(parse(br#"<a xmlns="urn:a" xmlnsx="1" x="2"><b xmlns:b="urn:b" y="3"/></a>"#, l).is_ok());
}

#[test]
fn serialize_iterates_on_deep_trees() {
    // Deeper than any recursive walk survives on a 2 MiB test thread stack.
    let depth = 200_000;
    let doc = nested(depth);
    let tree = parse(doc.as_bytes(), open()).unwrap();
    let mut out = String::new();
    serialize(tree.root_element(), "", "t", &mut out);
    assert_eq!(out, doc);
}

#[test]
fn each_limit_holds_at_its_bound_and_refuses_past_it() {
    for n in [1u32, 2, 7, 64, 300] {
        let at = nested(n as usize);
        let past = nested(n as usize + 1);
        let l = Limits { max_depth: n, ..open() };
        assert!(parse(at.as_bytes(), l).is_ok(), "depth {n}");
        assert_eq!(parse(past.as_bytes(), l).unwrap_err(), XmlError::TooDeep(n));

        let l = Limits { max_attributes: n, ..open() };
        assert!(parse(wide(n as usize).as_bytes(), l).is_ok(), "attributes {n}");
        assert_eq!(parse(wide(n as usize + 1).as_bytes(), l).unwrap_err(), XmlError::TooManyAttributes(n));

        let len = n as usize;
        let l = Limits { max_attribute_bytes: len, ..open() };
        let attr = |k: usize| format!("<a v='{}'/>", "x".repeat(k));
        assert!(parse(attr(len).as_bytes(), l).is_ok(), "attribute length {n}");
        assert_eq!(parse(attr(len + 1).as_bytes(), l).unwrap_err(), XmlError::AttributeTooLong(len));

        let l = Limits { max_text_bytes: len, ..open() };
        let text = |k: usize| format!("<a>{}</a>", "y".repeat(k));
        assert!(parse(text(len).as_bytes(), l).is_ok(), "text length {n}");
        assert_eq!(parse(text(len + 1).as_bytes(), l).unwrap_err(), XmlError::TextTooLong(len));
    }
}

#[test]
fn cdata_counts_as_text_and_markup_in_values_or_comments_does_not_confuse() {
    let l = Limits { max_text_bytes: 10, ..open() };
    // Text and CDATA merge into one text node of 12 bytes.
    assert_eq!(parse(b"<a>123456<![CDATA[789012]]></a>", l).unwrap_err(), XmlError::TextTooLong(10));
    // A comment splits text: two nodes of 6 bytes.
    assert!(parse(b"<a>123456<!--c-->789012</a>", l).is_ok());
    // '>' inside attribute values, comments, PIs and CDATA is not a tag end.
    let l = Limits { max_depth: 2, max_attributes: 2, ..open() };
    let tricky = br#"<?xml version="1.0"?><!-- <x><x><x> --><a k='>' j=">"><?p <x><x>?><b><![CDATA[<x><x>]]></b></a>"#;
    let tree = parse(tricky, l).unwrap();
    assert_eq!(tree.root_element().attribute("k"), Some(">"));
    assert!(parse(br#"<a><b/><b></b></a>"#, l).is_ok());
    assert_eq!(parse(br#"<a><b><c/></b></a>"#, l).unwrap_err(), XmlError::TooDeep(2));
    // Namespace declarations are attributes in the source.
    assert_eq!(parse(br#"<a xmlns="urn:a" xmlns:b="urn:b" c="1"/>"#, l).unwrap_err(), XmlError::TooManyAttributes(2));
}

/// xorshift64*: a fixed seed makes every run test the same documents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// A random well-formed document: nested elements with attributes (either quote, white space
/// around `=`), text with references, CDATA, comments and processing instructions.
fn document(rng: &mut Rng) -> String {
    let mut out = String::new();
    if rng.below(2) == 0 {
        out.push_str("<?xml version=\"1.0\"?>");
    }
    element(rng, &mut out, 0);
    out
}

fn element(rng: &mut Rng, out: &mut String, depth: usize) {
    out.push_str("<e");
    for i in 0..rng.below(6) {
        let q = if rng.below(2) == 0 { '"' } else { '\'' };
        let ws = [" ", "\n ", "\t"][rng.below(3)];
        let eq = ["=", " = ", "\n="][rng.below(3)];
        out.push_str(&format!("{ws}a{i}{eq}{q}{}{q}", "v>".repeat(rng.below(5))));
    }
    if depth > 8 || rng.below(4) == 0 {
        out.push_str(if rng.below(2) == 0 { "/>" } else { " />" });
        return;
    }
    out.push('>');
    for _ in 0..rng.below(4) {
        match rng.below(6) {
            0 => out.push_str(&"t&amp;".repeat(rng.below(4))),
            1 => out.push_str(&format!("<![CDATA[{}]]>", "<c>".repeat(rng.below(4)))),
            2 => out.push_str("<!-- <e> -->"),
            3 => out.push_str("<?pi <e>?>"),
            _ => element(rng, out, depth + 1),
        }
    }
    out.push_str("</e>");
}

/// Depth, most attributes, longest attribute value and longest text run, measured on the tree
/// (raw lengths: every reference the generator writes is 5 bytes for 1).
fn measure(doc: &str) -> (u32, u32, usize, usize) {
    let tree = parse(doc.as_bytes(), open()).unwrap();
    let mut worst = (0u32, 0u32, 0usize, 0usize);
    let mut stack: Vec<(Node<'_, '_>, u32)> = vec![(tree.root_element(), 1)];
    while let Some((n, d)) = stack.pop() {
        if n.is_text() {
            let raw = n.text().unwrap_or("").replace('&', "&amp;");
            worst.3 = worst.3.max(raw.len());
            continue;
        }
        if !n.is_element() {
            continue;
        }
        worst.0 = worst.0.max(d);
        worst.1 = worst.1.max(n.attributes().len() as u32);
        worst.2 = worst.2.max(n.attributes().map(|a| a.value().len()).max().unwrap_or(0));
        stack.extend(n.children().map(|c| (c, d + 1)));
    }
    worst
}

#[test]
fn prescan_verdicts_match_the_tree() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for round in 0..4000 {
        let doc = document(&mut rng);
        let (depth, attrs, attr_len, text_len) = measure(&doc);
        let limits = Limits {
            max_depth: 1 + rng.below(10) as u32,
            max_attributes: rng.below(6) as u32,
            max_attribute_bytes: rng.below(10),
            max_text_bytes: rng.below(30),
            ..open()
        };
        let within = depth <= limits.max_depth
            && attrs <= limits.max_attributes
            && attr_len <= limits.max_attribute_bytes
            && text_len <= limits.max_text_bytes;
        match parse(doc.as_bytes(), limits) {
            Ok(_) => assert!(
                within,
                "round {round}: accepted past a limit {limits:?} {:?}: {doc}",
                (depth, attrs, attr_len, text_len)
            ),
            Err(e) => {
                assert!(!within, "round {round}: refused within limits ({e}): {doc}");
                let right = match e {
                    XmlError::TooDeep(_) => depth > limits.max_depth,
                    XmlError::TooManyAttributes(_) => attrs > limits.max_attributes,
                    XmlError::AttributeTooLong(_) => attr_len > limits.max_attribute_bytes,
                    XmlError::TextTooLong(_) => text_len > limits.max_text_bytes,
                    _ => false,
                };
                assert!(right, "round {round}: {e} names a limit the document keeps: {doc}");
            }
        }
    }
}

//! tandem-xml's structural limits: for any bytes and small limits taken from the first bytes, a
//! document that parses keeps every limit (depth, attributes per element, namespaces in scope,
//! attribute and text length, measured on the tree), and serialising it neither panics nor recurses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_xml::{Limits, Node};

fuzz_target!(|data: &[u8]| {
    let [d, a, ns, al, tl, rest @ ..] = data else { return };
    let limits = Limits {
        max_depth: u32::from(*d % 16) + 1,
        max_attributes: u32::from(*a % 8),
        max_namespaces: u32::from(*ns % 8),
        max_attribute_bytes: usize::from(*al % 32),
        max_text_bytes: usize::from(*tl),
        ..Limits::default()
    };
    let Ok(doc) = tandem_xml::parse(rest, limits) else { return };
    let mut stack: Vec<(Node<'_, '_>, u32)> = vec![(doc.root_element(), 1)];
    while let Some((n, depth)) = stack.pop() {
        if n.is_text() {
            // Decoded text is never longer than the source it came from.
            assert!(n.text().unwrap_or("").len() <= limits.max_text_bytes);
        }
        if !n.is_element() {
            continue;
        }
        assert!(depth <= limits.max_depth);
        assert!(n.attributes().len() <= limits.max_attributes as usize);
        // In scope: the declarations counted, plus the `xml` prefix every document has.
        assert!(n.namespaces().len() <= limits.max_namespaces as usize + 1);
        assert!(n.attributes().all(|at| at.value().len() <= limits.max_attribute_bytes));
        stack.extend(n.children().map(|c| (c, depth + 1)));
    }
    let mut out = String::new();
    tandem_xml::serialize(doc.root_element(), "urn:t", "t", &mut out);
});

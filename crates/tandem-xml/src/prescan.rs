//! A linear pre-scan of a document's markup that enforces the structural limits (depth,
//! attributes per element, attribute length, text length) before roxmltree builds the tree.
//!
//! roxmltree checks each attribute against every earlier one of its element, so an element with
//! a million attributes costs minutes; and a tree ten thousand deep overflows any recursive walk
//! of it; and roxmltree copies every namespace in scope, checking each against the others, into
//! each element that declares one, which makes many declarations in scope cost the square of their
//! number per element. The scan visits each byte a bounded number of times and allocates only a
//! stack as deep as the depth limit. It only has
//! to be exact for well-formed input: at anything it does not understand (an unterminated
//! comment, a DTD, a broken tag) it stops and leaves the verdict to roxmltree, which refuses the
//! document at that same point before reaching anything the scan has not checked.

use crate::{Limits, XmlError};

/// Checks `input` (the document text, BOM removed) against the structural `limits`.
pub fn prescan(input: &[u8], limits: &Limits) -> Result<(), XmlError> {
    let mut i = 0;
    let mut depth: u32 = 0;
    // Namespace declarations of each open element, and their sum: those in scope.
    let mut declared: Vec<u32> = Vec::new();
    let mut in_scope: u32 = 0;
    // Character data since the last tag, comment or processing instruction: roxmltree merges
    // text and CDATA sections into one text node, but a comment or PI splits them.
    let mut text: usize = 0;
    let text_check = |text: usize| {
        if text > limits.max_text_bytes { Err(XmlError::TextTooLong(limits.max_text_bytes)) } else { Ok(()) }
    };
    while i < input.len() {
        let rest = &input[i..];
        if rest[0] != b'<' {
            let end = find_byte(input, i, b'<').unwrap_or(input.len());
            text += end - i;
            text_check(text)?;
            i = end;
        } else if rest.starts_with(b"<!--") {
            let Some(end) = find(input, i + 4, b"-->") else { return Ok(()) };
            text = 0;
            i = end + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            let Some(end) = find(input, i + 9, b"]]>") else { return Ok(()) };
            text += end - (i + 9);
            text_check(text)?;
            i = end + 3;
        } else if rest.starts_with(b"<?") {
            let Some(end) = find(input, i + 2, b"?>") else { return Ok(()) };
            text = 0;
            i = end + 2;
        } else if rest.starts_with(b"<!") {
            // A DTD (refused by roxmltree when it gets there) or not XML at all.
            return Ok(());
        } else if rest.starts_with(b"</") {
            let Some(end) = find_byte(input, i + 2, b'>') else { return Ok(()) };
            depth = depth.saturating_sub(1);
            in_scope -= declared.pop().unwrap_or(0);
            text = 0;
            i = end + 1;
        } else {
            text = 0;
            let Some(tag) = start_tag(input, i + 1, limits)? else { return Ok(()) };
            // An empty element is as deep as one with content; only the latter stays open.
            if depth >= limits.max_depth {
                return Err(XmlError::TooDeep(limits.max_depth));
            }
            if in_scope.saturating_add(tag.namespaces) > limits.max_namespaces {
                return Err(XmlError::TooManyNamespaces(limits.max_namespaces));
            }
            if !tag.empty {
                depth += 1;
                declared.push(tag.namespaces);
                in_scope += tag.namespaces;
            }
            let end = tag.end;
            i = end;
        }
    }
    Ok(())
}

/// A scanned start tag.
struct StartTag {
    /// The index after it.
    end: usize,
    /// `/>`: no content, no end tag.
    empty: bool,
    /// Its `xmlns` and `xmlns:…` attributes.
    namespaces: u32,
}

/// Scans a start tag whose name begins at `j`; `None` when it is not well-formed.
fn start_tag(input: &[u8], j: usize, limits: &Limits) -> Result<Option<StartTag>, XmlError> {
    let Some(mut at) = skip_name(input, j) else { return Ok(None) };
    let mut count: u32 = 0;
    let mut namespaces: u32 = 0;
    loop {
        let k = skip_ws(input, at);
        match input.get(k) {
            None => return Ok(None),
            Some(b'>') => return Ok(Some(StartTag { end: k + 1, empty: false, namespaces })),
            Some(b'/') => {
                let closed = input.get(k + 1) == Some(&b'>');
                return Ok(closed.then_some(StartTag { end: k + 2, empty: true, namespaces }));
            }
            Some(_) if k == at => return Ok(None), // attributes are separated by white space
            Some(_) => {
                let Some(name_end) = skip_name(input, k) else { return Ok(None) };
                let name = &input[k..name_end];
                // roxmltree also reads `p:xmlns="…"` (any prefix, local name `xmlns`) as a
                // declaration, so those count too: the limit must hold for what it builds.
                if name == b"xmlns" || name.starts_with(b"xmlns:") || name.ends_with(b":xmlns") {
                    namespaces += 1;
                }
                let eq = skip_ws(input, name_end);
                if input.get(eq) != Some(&b'=') {
                    return Ok(None);
                }
                let open = skip_ws(input, eq + 1);
                let quote = match input.get(open) {
                    Some(&q @ (b'"' | b'\'')) => q,
                    _ => return Ok(None),
                };
                let Some(close) = find_byte(input, open + 1, quote) else { return Ok(None) };
                count += 1;
                if count > limits.max_attributes {
                    return Err(XmlError::TooManyAttributes(limits.max_attributes));
                }
                if close - (open + 1) > limits.max_attribute_bytes {
                    return Err(XmlError::AttributeTooLong(limits.max_attribute_bytes));
                }
                at = close + 1;
            }
        }
    }
}

/// The end of a (qualified) name starting at `j`; `None` when there is none.
fn skip_name(input: &[u8], j: usize) -> Option<usize> {
    let len = input
        .get(j..)?
        .iter()
        .position(|&b| is_ws(b) || matches!(b, b'/' | b'>' | b'=' | b'<' | b'"' | b'\''))
        .unwrap_or(input.len() - j);
    (len > 0).then_some(j + len)
}

fn skip_ws(input: &[u8], j: usize) -> usize {
    input.get(j..).and_then(|r| r.iter().position(|&b| !is_ws(b))).map_or(input.len(), |n| j + n)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn find_byte(input: &[u8], from: usize, b: u8) -> Option<usize> {
    input.get(from..)?.iter().position(|&c| c == b).map(|n| from + n)
}

fn find(input: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    input.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|n| from + n)
}

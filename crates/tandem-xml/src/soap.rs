//! SOAP 1.1 envelopes: finding the header and body of a request, rendering responses and faults.

use roxmltree::{Document, Node};

use crate::{Writer, child, children, escape};

/// The SOAP 1.1 envelope namespace.
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope namespace (refused: EWS and Autodiscover speak SOAP 1.1).
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

/// Why a document is not a usable SOAP 1.1 request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the root element is not a SOAP 1.1 Envelope")]
    NotEnvelope,
    #[error("SOAP 1.2 is not supported; use SOAP 1.1")]
    Soap12,
    #[error("the envelope has no Body")]
    NoBody,
    #[error("the Body is empty")]
    EmptyBody,
}

/// The parts of a request envelope.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a, 'input> {
    pub header: Option<Node<'a, 'input>>,
    /// The first element inside Body: the operation.
    pub operation: Node<'a, 'input>,
}

impl<'a, 'input> Envelope<'a, 'input> {
    pub fn of(doc: &'a Document<'input>) -> Result<Envelope<'a, 'input>, EnvelopeError> {
        let root = doc.root_element();
        if root.tag_name().name() == "Envelope" && root.tag_name().namespace() == Some(SOAP12) {
            return Err(EnvelopeError::Soap12);
        }
        if !crate::is(root, SOAP11, "Envelope") {
            return Err(EnvelopeError::NotEnvelope);
        }
        let header = child(root, SOAP11, "Header");
        let body = child(root, SOAP11, "Body").ok_or(EnvelopeError::NoBody)?;
        let operation = children(body).next().ok_or(EnvelopeError::EmptyBody)?;
        Ok(Envelope { header, operation })
    }

    /// A header element by namespace and name.
    pub fn header_element(&self, ns: &str, name: &str) -> Option<Node<'a, 'input>> {
        self.header.and_then(|h| child(h, ns, name))
    }
}

/// Wraps a header (may be empty) and body in a SOAP 1.1 envelope. `namespaces` are declared on
/// the Envelope as `xmlns:prefix="uri"`.
pub fn envelope(namespaces: &[(&str, &str)], header: &str, body: &str) -> String {
    let mut out = String::with_capacity(header.len() + body.len() + 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"");
    out.push_str(SOAP11);
    out.push('"');
    for (p, uri) in namespaces {
        out.push_str(&format!(" xmlns:{p}=\"{}\"", escape(uri)));
    }
    out.push('>');
    if !header.is_empty() {
        out.push_str("<s:Header>");
        out.push_str(header);
        out.push_str("</s:Header>");
    }
    out.push_str("<s:Body>");
    out.push_str(body);
    out.push_str("</s:Body></s:Envelope>");
    out
}

/// Who is at fault, as SOAP 1.1 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    Client,
    Server,
}

/// A SOAP 1.1 fault. `detail` is already-rendered XML for the `detail` element.
pub fn fault(code: FaultCode, reason: &str, header: &str, detail: &str, namespaces: &[(&str, &str)]) -> String {
    let mut w = Writer::new();
    w.start("s:Fault", &[]);
    w.leaf(
        "faultcode",
        match code {
            FaultCode::Client => "s:Client",
            FaultCode::Server => "s:Server",
        },
    );
    w.leaf_with("faultstring", &[("xml:lang", "en-US")], reason);
    if !detail.is_empty() {
        w.start("detail", &[]).raw(detail).end();
    }
    envelope(namespaces, header, &w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, parse};

    #[test]
    fn finds_header_and_operation() {
        let xml = format!(
            r#"<s:Envelope xmlns:s="{SOAP11}"><s:Header><v xmlns="urn:x"/></s:Header><s:Body> <op xmlns="urn:x"/></s:Body></s:Envelope>"#
        );
        let doc = parse(xml.as_bytes(), Limits::default()).unwrap();
        let env = Envelope::of(&doc).unwrap();
        assert_eq!(env.operation.tag_name().name(), "op");
        assert!(env.header_element("urn:x", "v").is_some());
    }

    #[test]
    fn refuses_non_envelopes() {
        let doc = parse(b"<a/>", Limits::default()).unwrap();
        assert_eq!(Envelope::of(&doc).unwrap_err(), EnvelopeError::NotEnvelope);
        let xml = format!(r#"<e:Envelope xmlns:e="{SOAP12}"><e:Body/></e:Envelope>"#);
        let doc = parse(xml.as_bytes(), Limits::default()).unwrap();
        assert_eq!(Envelope::of(&doc).unwrap_err(), EnvelopeError::Soap12);
        let xml = format!(r#"<e:Envelope xmlns:e="{SOAP11}"><e:Body/></e:Envelope>"#);
        let doc = parse(xml.as_bytes(), Limits::default()).unwrap();
        assert_eq!(Envelope::of(&doc).unwrap_err(), EnvelopeError::EmptyBody);
    }

    #[test]
    fn renders_faults() {
        let f = fault(FaultCode::Client, "bad <x>", "", "<e:ResponseCode>X</e:ResponseCode>", &[("e", "urn:e")]);
        assert!(f.contains("<faultcode>s:Client</faultcode>"));
        assert!(f.contains("bad &lt;x&gt;"));
        parse(f.as_bytes(), Limits::default()).unwrap();
    }
}

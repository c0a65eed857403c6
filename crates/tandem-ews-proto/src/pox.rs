//! POX Autodiscover (`/autodiscover/autodiscover.xml`) with the Outlook response schema.

use tandem_xml::{Document, Writer, child, text};

use crate::ns;

/// A POX request: the address (or legacy DN) and the schema the client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub email: Option<String>,
    pub legacy_dn: Option<String>,
    pub acceptable_schema: String,
}

/// Why a POX request is refused (Exchange's error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoxError {
    /// 600 Invalid Request.
    #[error("Invalid Request")]
    InvalidRequest,
    /// 601 Provider is not available (an unsupported response schema).
    #[error("Provider is not available")]
    ProviderUnavailable,
}

impl PoxError {
    pub fn code(&self) -> u16 {
        match self {
            PoxError::InvalidRequest => 600,
            PoxError::ProviderUnavailable => 601,
        }
    }
}

impl Request {
    pub fn parse(doc: &Document<'_>) -> Result<Request, PoxError> {
        let root = doc.root_element();
        if !tandem_xml::is(root, ns::POX_REQUEST, "Autodiscover") {
            return Err(PoxError::InvalidRequest);
        }
        let req = child(root, ns::POX_REQUEST, "Request").ok_or(PoxError::InvalidRequest)?;
        let email = child(req, ns::POX_REQUEST, "EMailAddress").map(text).filter(|s| !s.is_empty());
        let legacy_dn = child(req, ns::POX_REQUEST, "LegacyDN").map(text).filter(|s| !s.is_empty());
        let acceptable_schema =
            child(req, ns::POX_REQUEST, "AcceptableResponseSchema").map(text).ok_or(PoxError::InvalidRequest)?;
        if email.is_none() && legacy_dn.is_none() {
            return Err(PoxError::InvalidRequest);
        }
        if acceptable_schema != ns::POX_OUTLOOK_RESPONSE {
            return Err(PoxError::ProviderUnavailable);
        }
        Ok(Request { email, legacy_dn, acceptable_schema })
    }
}

/// One Protocol entry (EXCH, EXPR or WEB) with its child elements, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub kind: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

/// What the Outlook response carries for a found user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub display_name: String,
    pub legacy_dn: String,
    pub smtp_address: String,
    pub deployment_id: String,
    pub protocols: Vec<Protocol>,
    /// `(internal, external)` OWA URLs for the WEB protocol.
    pub owa_internal: Option<String>,
    pub owa_external: Option<String>,
}

pub fn render_settings(s: &Settings) -> String {
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start("Autodiscover", &[("xmlns", ns::POX_RESPONSE)]).start("Response", &[("xmlns", ns::POX_OUTLOOK_RESPONSE)]);
    w.start("User", &[])
        .leaf("DisplayName", &s.display_name)
        .leaf("LegacyDN", &s.legacy_dn)
        .leaf("AutoDiscoverSMTPAddress", &s.smtp_address)
        .leaf("DeploymentId", &s.deployment_id)
        .end();
    w.start("Account", &[]).leaf("AccountType", "email").leaf("Action", "settings").leaf("MicrosoftOnline", "False");
    for p in &s.protocols {
        w.start("Protocol", &[]).leaf("Type", p.kind);
        for (k, v) in &p.fields {
            w.leaf(k, v);
        }
        w.end();
    }
    if s.owa_internal.is_some() || s.owa_external.is_some() {
        w.start("Protocol", &[]).leaf("Type", "WEB");
        for (kind, url) in [("Internal", &s.owa_internal), ("External", &s.owa_external)] {
            if let Some(url) = url {
                w.start(kind, &[]).leaf_with("OWAUrl", &[("AuthenticationMethod", "Basic, Fba")], url).end();
            }
        }
        w.end();
    }
    w.finish()
}

/// `Action` `redirectAddr`: the mailbox is found under another address, and the client starts
/// Autodiscover again with it (a mail user, or a mailbox moved to another organisation).
pub fn render_redirect_address(address: &str) -> String {
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start("Autodiscover", &[("xmlns", ns::POX_RESPONSE)]).start("Response", &[("xmlns", ns::POX_OUTLOOK_RESPONSE)]);
    w.start("Account", &[])
        .leaf("AccountType", "email")
        .leaf("Action", "redirectAddr")
        .leaf("RedirectAddr", address)
        .end();
    w.finish()
}

/// The error form: `Response/Error` with Time, Id, ErrorCode, Message and DebugData.
pub fn render_error(code: u16, message: &str, time: &str, id: &str) -> String {
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start("Autodiscover", &[("xmlns", ns::POX_RESPONSE)]).start("Response", &[]);
    w.start("Error", &[("Time", time), ("Id", id)])
        .leaf("ErrorCode", &code.to_string())
        .leaf("Message", message)
        .leaf("DebugData", "")
        .end();
    w.finish()
}

/// The error returned for an address with no mailbox (500).
pub const NO_MAILBOX: (u16, &str) = (500, "The e-mail address cannot be found.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let ok = format!(
            r#"<Autodiscover xmlns="{}"><Request><EMailAddress>alice@x.com</EMailAddress><AcceptableResponseSchema>{}</AcceptableResponseSchema></Request></Autodiscover>"#,
            ns::POX_REQUEST,
            ns::POX_OUTLOOK_RESPONSE
        );
        let doc = tandem_xml::parse(ok.as_bytes(), Default::default()).unwrap();
        assert_eq!(Request::parse(&doc).unwrap().email.as_deref(), Some("alice@x.com"));
        let mobile = ok.replace("outlook/responseschema/2006a", "mobilesync/responseschema/2006");
        let doc = tandem_xml::parse(mobile.as_bytes(), Default::default()).unwrap();
        assert_eq!(Request::parse(&doc).unwrap_err(), PoxError::ProviderUnavailable);
        let doc = tandem_xml::parse(b"<Autodiscover/>", Default::default()).unwrap();
        assert_eq!(Request::parse(&doc).unwrap_err().code(), 600);
        let rendered = render_error(600, "Invalid Request", "20:00:00.0000000", "1");
        tandem_xml::parse(rendered.as_bytes(), Default::default()).unwrap();
    }

    #[test]
    fn a_redirect_names_the_new_address_under_account() {
        let xml = render_redirect_address("carol@fabrikam.com");
        let doc = tandem_xml::parse(xml.as_bytes(), Default::default()).unwrap();
        let response = tandem_xml::child(doc.root_element(), ns::POX_OUTLOOK_RESPONSE, "Response").unwrap();
        let account = tandem_xml::child(response, ns::POX_OUTLOOK_RESPONSE, "Account").unwrap();
        let field = |n: &str| tandem_xml::child(account, ns::POX_OUTLOOK_RESPONSE, n).map(tandem_xml::text);
        assert_eq!(field("Action").as_deref(), Some("redirectAddr"));
        assert_eq!(field("RedirectAddr").as_deref(), Some("carol@fabrikam.com"));
    }
}

//! Reading EWS answers, the client's half of [`crate::render`]: the envelope, a SOAP fault (as
//! [`crate::render::fault`] writes it), and the response messages of an operation with their
//! class, code and text. Each operation module reads its own content from these.

use tandem_xml::soap::{Envelope, EnvelopeError, SOAP11};
use tandem_xml::{Document, Node, XmlError, child, children, is, text};

use crate::ns;

/// Why an answer cannot be used as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("unreadable answer: {0}")]
    Xml(#[from] XmlError),
    #[error("unreadable answer: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A SOAP fault; `code` is the EWS response code of its detail when it names one.
    #[error("SOAP fault {code}: {message}")]
    Fault { code: String, message: String },
    /// The answer is well-formed but not the operation's response.
    #[error("{operation}: {what}")]
    Unexpected { operation: String, what: String },
}

impl ReplyError {
    pub(crate) fn unexpected(operation: &str, what: impl Into<String>) -> ReplyError {
        ReplyError::Unexpected { operation: operation.to_owned(), what: what.into() }
    }
}

/// A response message that did not succeed: its ResponseCode and MessageText.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {text}")]
pub struct MessageError {
    pub code: String,
    pub text: String,
}

/// ResponseClass of a response message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    Warning,
    Error,
}

/// One response message of an answer.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a, 'i> {
    pub class: Class,
    pub node: Node<'a, 'i>,
}

impl<'a, 'i> Message<'a, 'i> {
    /// Reads an element carrying `ResponseClass` (`m:…ResponseMessage`, `m:ResponseMessage`).
    pub fn of(node: Node<'a, 'i>) -> Message<'a, 'i> {
        let class = match node.attribute("ResponseClass") {
            Some("Success") => Class::Success,
            Some("Warning") => Class::Warning,
            _ => Class::Error,
        };
        Message { class, node }
    }

    pub fn code(&self) -> String {
        child(self.node, ns::MESSAGES, "ResponseCode").map(text).unwrap_or_default()
    }

    /// The message's node when it succeeded (a warning carries results too), its error otherwise.
    pub fn result(&self) -> Result<Node<'a, 'i>, MessageError> {
        match self.class {
            Class::Success | Class::Warning => Ok(self.node),
            Class::Error => Err(MessageError {
                code: self.code(),
                text: child(self.node, ns::MESSAGES, "MessageText").map(text).unwrap_or_default(),
            }),
        }
    }
}

/// Parses an answer's text under the default limits (the caller bounds the bytes it reads).
pub fn parse(text: &str) -> Result<Document<'_>, ReplyError> {
    Ok(tandem_xml::parse(text.as_bytes(), tandem_xml::Limits::default())?)
}

/// The body's first element, or the SOAP fault it carries as an error.
pub fn body<'a, 'i>(doc: &'a Document<'i>) -> Result<Node<'a, 'i>, ReplyError> {
    let env = Envelope::of(doc)?;
    let op = env.operation;
    if is(op, SOAP11, "Fault") {
        let message = children(op).find(|c| c.tag_name().name() == "faultstring").map(text).unwrap_or_default();
        let detail = children(op).find(|c| c.tag_name().name() == "detail");
        let code = detail
            .and_then(|d| child(d, ns::ERRORS, "ResponseCode"))
            .map(text)
            .or_else(|| children(op).find(|c| c.tag_name().name() == "faultcode").map(text))
            .map(|c| c.rsplit(':').next().unwrap_or(&c).to_owned())
            .unwrap_or_default();
        return Err(ReplyError::Fault { code, message });
    }
    Ok(op)
}

/// The `{messages}{operation}Response` element of an answer.
pub fn response<'a, 'i>(doc: &'a Document<'i>, operation: &str) -> Result<Node<'a, 'i>, ReplyError> {
    let op = body(doc)?;
    let want = crate::ops::response_name(operation);
    if !is(op, ns::MESSAGES, &want) {
        return Err(ReplyError::unexpected(operation, format!("the answer is {}, not {want}", op.tag_name().name())));
    }
    Ok(op)
}

/// The response messages of `{operation}Response/ResponseMessages`, in order.
pub fn messages<'a, 'i>(doc: &'a Document<'i>, operation: &str) -> Result<Vec<Message<'a, 'i>>, ReplyError> {
    let op = response(doc, operation)?;
    let list = child(op, ns::MESSAGES, "ResponseMessages")
        .ok_or_else(|| ReplyError::unexpected(operation, "the answer has no ResponseMessages"))?;
    Ok(children(list).map(Message::of).collect())
}

/// `Id` and `ChangeKey` of an id element (`t:ItemId`, `t:FolderId`…).
pub fn id_of(node: Node<'_, '_>) -> (String, String) {
    (node.attribute("Id").unwrap_or_default().to_owned(), node.attribute("ChangeKey").unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResponseCode, ResponseMessages, render};

    #[test]
    fn reads_messages_and_faults() {
        let mut out = ResponseMessages::new("DeleteItem");
        out.success("").error(ResponseCode::ErrorItemNotFound, "gone", "");
        let text = render::envelope(&out.finish());
        let doc = parse(&text).unwrap();
        let msgs = messages(&doc, "DeleteItem").unwrap();
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].result().is_ok());
        assert_eq!(
            msgs[1].result().unwrap_err(),
            MessageError { code: "ErrorItemNotFound".into(), text: "gone".into() }
        );
        assert!(matches!(messages(&doc, "GetItem"), Err(ReplyError::Unexpected { .. })));

        let text = render::fault(ResponseCode::ErrorInvalidServerVersion, "bad version");
        let doc = parse(&text).unwrap();
        let ReplyError::Fault { code, message } = messages(&doc, "GetItem").unwrap_err() else { panic!() };
        assert_eq!((code.as_str(), message.as_str()), ("ErrorInvalidServerVersion", "bad version"));
    }
}

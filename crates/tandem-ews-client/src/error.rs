//! What can go wrong on the way to an answer, by the hop an administrator would check: the
//! token, the network, HTTP, the SOAP envelope, or the EWS response code.

use tandem_ews_proto::reply::{MessageError, ReplyError};

/// Why the token provider could not give a token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum EwsClientError {
    /// The URL names no host, so no token audience.
    #[error("`{url}` has no host")]
    NoHost { url: String },
    /// The token provider failed; its message is shown as is.
    #[error("{source}")]
    Token {
        audience: String,
        #[source]
        source: TokenError,
    },
    /// The request did not complete (DNS, connection, TLS, timeout); `cause` is the innermost.
    #[error("cannot reach {url}: {cause}")]
    Transport {
        url: String,
        cause: String,
        #[source]
        source: reqwest::Error,
    },
    /// HTTP 401: the server refused the credentials; `diagnostics` is its `x-ms-diagnostics`.
    #[error("{url} refused the token: {}", diagnostics.as_deref().unwrap_or("no x-ms-diagnostics"))]
    Unauthorized { url: String, diagnostics: Option<String> },
    /// Another status than 200 (and not a SOAP fault).
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    /// The answer is unreadable, a SOAP fault, or not the operation's response.
    #[error("{operation}: {source}")]
    Reply {
        operation: &'static str,
        #[source]
        source: ReplyError,
    },
    /// A response message with a ResponseCode other than NoError.
    #[error("{operation}: {code} {message}")]
    Ews { operation: &'static str, code: String, message: String },
    /// Autodiscover answered, but with no EWS URL for the user (`code` is its ErrorCode).
    #[error("no EWS URL for {smtp} (ErrorCode {code})")]
    NoEwsUrl { smtp: String, code: String },
    /// Autodiscover redirected the lookup somewhere the allowed-domains rule does not cover (or
    /// not to `https://`).
    #[error("Autodiscover at {from} redirected {smtp} to {target} ({url}), which is not followed: {reason}")]
    RedirectRefused { from: String, smtp: String, target: String, url: String, reason: String },
    /// The redirects went round in a circle or past [`crate::MAX_REDIRECTS`].
    #[error("Autodiscover for {smtp} redirected {hops} times{}", if *looped { " in a loop" } else { "" })]
    TooManyRedirects { smtp: String, hops: usize, looped: bool },
}

impl EwsClientError {
    /// True when the request failed because the host name did not resolve.
    pub fn is_dns(&self) -> bool {
        matches!(self, EwsClientError::Transport { cause, .. } if tandem_http::client::looks_like_dns(cause))
    }

    /// The EWS response code of a SOAP fault or failing response message.
    pub fn response_code(&self) -> Option<&str> {
        match self {
            EwsClientError::Ews { code, .. } => Some(code),
            EwsClientError::Reply { source: ReplyError::Fault { code, .. }, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn reply(operation: &'static str) -> impl Fn(ReplyError) -> EwsClientError {
        move |source| EwsClientError::Reply { operation, source }
    }

    pub(crate) fn message(operation: &'static str) -> impl Fn(MessageError) -> EwsClientError {
        move |e| EwsClientError::Ews { operation, code: e.code, message: e.text }
    }
}

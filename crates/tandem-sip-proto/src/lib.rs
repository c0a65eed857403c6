//! SIP messages without I/O: bytes in, values out, and back (RFC 3261).
//!
//! The Front End's transports hand datagrams or stream bytes to [`parse_datagram`] and
//! [`StreamParser`]; the registrar, proxy and presence code read typed views of the headers
//! ([`Via`], [`NameAddr`], [`CSeq`], [`Credentials`]…) that are parsed on demand, so a proxy that
//! only forwards a header never pays for parsing it, and an unknown header is kept byte for byte.
//! Limits on size and header count are part of parsing: oversized input is an error, not an
//! allocation. Digest computations (RFC 2617, RFC 8760) and PIDF documents live here too.

mod auth;
pub mod conference_info;
mod headers;
mod message;
pub mod message_summary;
mod name_addr;
mod parser;
pub mod pidf;
pub mod rlmi;
mod scan;
pub mod sdp;
mod uri;
mod via;
pub mod xcap;

pub use auth::{Challenge, Credentials, DigestAlgorithm, digest_response};
pub use headers::{HeaderName, Headers, split_comma_list};
pub use message::{CSeq, HeaderView, Message, Method, Request, Response, reason_phrase};
pub use name_addr::{NameAddr, Params};
pub use parser::{Limits, ParseError, Rejected, StreamItem, StreamParser, parse_datagram};
pub use uri::{Host, Scheme, Uri};
pub use via::{MAGIC_COOKIE, Transport, Via};

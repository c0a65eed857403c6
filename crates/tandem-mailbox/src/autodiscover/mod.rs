//! Autodiscover: SOAP (`autodiscover.svc`, one handler per operation) and POX (`autodiscover.xml`).

use axum::extract::Request as HttpRequest;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tandem_directory::User;
use tandem_ews_proto::autodiscover::{self as proto, Request};
use tandem_xml::soap::Envelope;

use crate::{Call, Shared, xml_response};

mod get_domain_settings;
mod get_user_settings;
pub mod pox;

/// Headers Exchange's Autodiscover virtual directory puts on every answer, the 401 to an
/// unauthenticated probe included: the EWS Managed API (and its ports) GET
/// `…/autodiscover/autodiscover.xml` without credentials and use SOAP Autodiscover only when
/// `X-SOAP-Enabled` is present; `X-OAuth-Enabled` says Bearer tokens are taken (the S2S tokens
/// of `auth_config`). `X-WSSecurity-Enabled` is left out on purpose: the Managed API counts any
/// value, even `False`, as "enabled" and would then send WS-Security credentials to
/// `autodiscover.svc/wssecurity`, which this server does not serve.
const ENDPOINT_HEADERS: &[(&str, &str)] = &[("x-soap-enabled", "True"), ("x-oauth-enabled", "True")];

/// Middleware: adds [`ENDPOINT_HEADERS`] to every response on an Autodiscover path.
pub(crate) async fn advertise_endpoints(req: HttpRequest, next: Next) -> Response {
    let autodiscover = matches!(
        crate::service_of(req.uri().path()),
        Some(crate::Service::AutodiscoverSoap | crate::Service::AutodiscoverPox)
    );
    let mut resp = next.run(req).await;
    if autodiscover {
        for (name, value) in ENDPOINT_HEADERS {
            resp.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
    }
    resp
}

/// The SOAP endpoint: parse, dispatch to the operation's handler, render.
pub(crate) async fn soap(s: &Shared, call: Call) -> Response {
    let body = call.body.clone();
    let request = match crate::offload::run(body.len(), move || parse_soap(&body)).await {
        Some(Ok(r)) => r,
        Some(Err(refused)) => return *refused,
        None => {
            return xml_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                proto::fault("The server could not read the request."),
            );
        }
    };
    let result = match request {
        Request::GetUserSettings(r) => get_user_settings::handle(s, &call.user, r).await,
        Request::GetDomainSettings(r) => get_domain_settings::handle(s, r).await,
        Request::Other(op) => {
            return xml_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                proto::fault(&format!("The Autodiscover operation {op} is not supported by this server.")),
            );
        }
    };
    match result {
        Ok(body) => xml_response(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(error = %e, "autodiscover failed");
            xml_response(StatusCode::INTERNAL_SERVER_ERROR, proto::fault("The server could not complete the request."))
        }
    }
}

/// Parses a SOAP request body, or the 400 fault refusing it (malformed XML, XML past
/// tandem-xml's limits, no envelope, an unknown request shape).
fn parse_soap(body: &[u8]) -> Result<Request, Box<Response>> {
    let refuse = |reason: &str| Box::new(xml_response(StatusCode::BAD_REQUEST, proto::fault(reason)));
    let doc = tandem_xml::parse(body, tandem_xml::Limits::default()).map_err(|e| refuse(&e.to_string()))?;
    let env = Envelope::of(&doc).map_err(|e| refuse(&e.to_string()))?;
    proto::parse(&env).map_err(|e| refuse(&e.message))
}

/// What the handlers can fail with (storage only: bad input is answered in the protocol).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AutodiscoverError {
    #[error(transparent)]
    Data(#[from] crate::DataError),
    #[error("directory: {0}")]
    Directory(#[from] tandem_directory::DirectoryError),
}

/// The Exchange organisation name used in legacy DNs.
pub(crate) const ORGANIZATION: &str = "Tandem";
const ADMIN_GROUP: &str = "Exchange Administrative Group (FYDIBOHF23SPDLT)";

/// `/o=Tandem/ou=…/cn=Recipients/cn=<name>`: the user's legacy Exchange DN.
pub(crate) fn user_dn(user: &User) -> String {
    format!("/o={ORGANIZATION}/ou={ADMIN_GROUP}/cn=Recipients/cn={}", user.name)
}

pub(crate) fn server_dn(server_name: &str) -> String {
    format!("/o={ORGANIZATION}/ou={ADMIN_GROUP}/cn=Configuration/cn=Servers/cn={server_name}")
}

pub(crate) fn mdb_dn(server_name: &str) -> String {
    format!("{}/cn=Microsoft Private MDB", server_dn(server_name))
}

/// A stable deployment id (GUID form) derived from the server FQDN.
pub(crate) fn deployment_id(fqdn: &str) -> String {
    let h = Sha256::digest(fqdn.as_bytes());
    let x = hex::encode(&h[..16]);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// `15.01.2507.006`, the CAS version string.
pub(crate) fn cas_version() -> String {
    use tandem_ews_proto::version as v;
    format!("{}.{:02}.{:04}.{:03}", v::MAJOR, v::MINOR, v::MAJOR_BUILD, v::MINOR_BUILD)
}

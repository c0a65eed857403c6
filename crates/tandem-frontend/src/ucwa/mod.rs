//! The UC web API: what UCWA was to Skype for Business web and mobile clients, as JSON over the
//! Front End's HTTPS listener at [`BASE`] (contract U; the document is [`openapi`]).
//!
//! It is another front door to the SIP core, not a second server: presence is read from and
//! published into `sip::presence` (a web session's publication is aggregated with the user's
//! phones; its watch list is pushed changes from the same place NOTIFYs start), IMs go through
//! `sip::im` (a MESSAGE from the user; IMs to the user reach their open event streams, the
//! session counting as an endpoint), contacts are the list XCAP serves, and click-to-call is
//! third-party call control by the SIP core (`sip::third_party_call`).
//!
//! Every request carries `Authorization: Bearer` with an S2S user token the Mailbox minted for
//! the signed-in user ([`auth`]); cross-origin callers are allowed by the
//! CrossDomainAuthorizationList ([`cors`]). Bounded: request bodies ([`MAX_BODY`]), presentities
//! per query and per session, event streams per user, and sessions end when idle
//! ([`SESSION_IDLE`]).

pub mod auth;
mod calls;
mod contacts;
pub mod cors;
mod events;
mod me;
mod messages;
pub mod openapi;
mod presence;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tandem_directory::{Directory, User};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exchange_connector::ExchangeConnector;
use crate::sip::SipCore;
use crate::store::FrontendStore;

pub use self::auth::{TokenUser, UserTokens};
pub use self::presence::query_values;

/// Where the API lives on the Front End's HTTPS listener.
pub const BASE: &str = "/ucwa/v1";
/// The largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// The longest IM text accepted (characters).
pub const MAX_TEXT: usize = 4000;
/// Presentities one query or one subscription request may name.
pub const MAX_URIS_PER_REQUEST: usize = 100;
/// Presentities one session may watch.
pub const MAX_WATCHED_PER_SESSION: usize = 500;
/// Event streams one user may hold open at once (tabs, devices).
pub const MAX_STREAMS_PER_USER: usize = 4;
/// A session without an open stream and unused this long ends (its watch list with it).
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// How long a presence set through the API lasts without the session being used.
pub const PUBLICATION_TTL: Duration = Duration::from_secs(60 * 60);
/// The comment line that keeps an idle event stream open through proxies.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// What every handler needs.
#[derive(Debug)]
pub struct UcwaState {
    pub(crate) core: Arc<SipCore>,
    pub(crate) directory: Directory,
    pub(crate) connector: Arc<ExchangeConnector>,
    pub(crate) fe: FrontendStore,
    pub(crate) tokens: Arc<dyn UserTokens>,
    pub(crate) cors: cors::Origins,
    pub(crate) calls: calls::Calls,
    pub(crate) chosen: me::Chosen,
    pub(crate) tasks: TaskTracker,
}

/// The API's routes, with CORS and the body limit; `tokens` checks the bearer tokens.
pub fn routes(
    core: Arc<SipCore>,
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    fe: FrontendStore,
    tokens: Arc<dyn UserTokens>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Router {
    let cors = cors::Origins::new(fe.clone(), connector.clone());
    let state = Arc::new(UcwaState {
        core,
        directory,
        connector,
        fe,
        tokens,
        cors,
        calls: calls::Calls::default(),
        chosen: me::Chosen::default(),
        tasks: tasks.clone(),
    });
    spawn_janitor(state.clone(), tasks, shutdown);
    Router::new()
        .route(&format!("{BASE}/openapi.json"), get(openapi::serve))
        .route(&format!("{BASE}/me"), get(me::get_me))
        .route(&format!("{BASE}/me/presence"), put(me::put_presence))
        .route(&format!("{BASE}/presence"), get(presence::get_presence))
        .route(&format!("{BASE}/subscriptions"), post(presence::post_subscriptions))
        .route(&format!("{BASE}/events"), get(events::get_events))
        .route(&format!("{BASE}/messages"), post(messages::post_message))
        .route(&format!("{BASE}/contacts"), get(contacts::get_contacts))
        .route(&format!("{BASE}/calls"), post(calls::post_call))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::layer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Ends idle sessions (and the presence they set), once a minute.
fn spawn_janitor(state: Arc<UcwaState>, tasks: &TaskTracker, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            for user in state.core.presence.web.expire_idle(SESSION_IDLE) {
                state.chosen.set(&user, None);
                if crate::sip::presence::web_publication(&state.core, &user).is_some() {
                    crate::sip::presence::publish_web(&state.core, &user, None, PUBLICATION_TTL);
                }
            }
            let (sessions, streams, _) = state.core.presence.web.counts();
            metrics::gauge!("tandem_ucwa_sessions").set(sessions as f64);
            metrics::gauge!("tandem_ucwa_event_streams").set(streams as f64);
        }
    });
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such resource in the UC web API").into_response()
}

/// An error answer: the status and `{"code", "message"}` (UCWA's error body has the same two).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceFailure", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
        }
        r
    }
}

/// A JSON body read with the API's errors (a body that is not the schema's is a 400 naming the
/// field, never a 422 or a 500).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ctype.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body must be application/json",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| ApiError::bad_request(format!("invalid body at {}: {}", e.path(), e.inner())))
}

/// The caller: the directory user a valid token names, who must be a SIP user here.
pub(crate) async fn caller(s: &UcwaState, headers: &axum::http::HeaderMap) -> Result<User, Response> {
    caller_until(s, headers).await.map(|(u, _)| u)
}

/// [`caller`], with when the token ends (Unix seconds).
pub(crate) async fn caller_until(s: &UcwaState, headers: &axum::http::HeaderMap) -> Result<(User, i64), Response> {
    let who = s.tokens.check(headers).await?;
    let key = who.sip.clone().unwrap_or_else(|| who.smtp.clone());
    let forbidden = || {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden", "the token's user has no Skype for Business account here")
            .into_response()
    };
    let user = match s.directory.find_cached(&key).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(forbidden()),
        Err(e) => return Err(ApiError::unavailable(format!("the directory cannot be read: {e}")).into_response()),
    };
    // The token's SMTP address and SIP address must both be this user's: a token naming Alice's
    // SIP URI with Bob's mailbox is not Alice's.
    let smtp_matches = user.smtp_address.to_string().eq_ignore_ascii_case(&who.smtp);
    if !user.can_use_sip() || !smtp_matches {
        return Err(forbidden());
    }
    s.core.presence.web.touch(&user.sip_uri.key());
    Ok((user, who.expires_at))
}

/// A presentity named by SIP URI or SMTP address, as the SIP address of record it is: a
/// directory user's SIP URI, or the SIP URI as given (lower-cased, `sip:` added).
pub(crate) async fn resolve_uri(s: &UcwaState, given: &str) -> Result<String, ApiError> {
    let given = given.trim();
    if given.is_empty() || given.len() > 256 || given.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::bad_request(format!("`{given}` is not a SIP URI or an SMTP address")));
    }
    let bare = given.strip_prefix("sip:").or_else(|| given.strip_prefix("SIP:")).unwrap_or(given);
    if !bare.contains('@') {
        return Err(ApiError::bad_request(format!("`{given}` is not a SIP URI or an SMTP address")));
    }
    match s.directory.find_cached(bare).await {
        Ok(Some(u)) => Ok(u.sip_uri.key()),
        Ok(None) => match s.directory.find_cached(&format!("sip:{bare}")).await {
            Ok(Some(u)) => Ok(u.sip_uri.key()),
            _ => Ok(format!("sip:{}", bare.to_ascii_lowercase())),
        },
        Err(e) => Err(ApiError::unavailable(format!("the directory cannot be read: {e}"))),
    }
}

//! The meeting API the Mailbox calls to provision online meetings (`/meetings/v1/conferences`):
//! POST creates the conference of a meeting, PUT updates it, DELETE removes it and ends it if it
//! is live. The caller is the Mailbox with a server-to-server token acting as the organizer,
//! checked against the Front End's `microsoft.exchange` partner application (the reverse
//! direction of the trust, `tandem_trust::bearer::AuthState::frontend`): no or a bad token → 401
//! with the Bearer challenge, a token acting as anyone but the organizer → 403. Conferences are
//! kept through the store's conference functions (`conference::create`/`update`).
//!
//! A POST for a meeting UID the organizer already has a conference for updates that one and
//! answers it, so a Mailbox that retries a call whose answer it missed gets one conference.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tandem_directory::{Directory, User};
use tandem_trust::bearer::{AuthState, validate_bearer};

use crate::conference::{self, ConferenceError, ConferenceRequest};
use crate::store::{ConferenceRow, FrontendStore};

/// The collection's path.
pub const PATH: &str = "/meetings/v1/conferences";
/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most attendees one meeting names (Skype for Business caps a meeting at 250 people; the
/// invitation list may hold distribution lists' members too).
pub const MAX_ATTENDEES: usize = 1000;

#[derive(Debug)]
struct ApiState {
    auth: Arc<AuthState>,
    store: FrontendStore,
    directory: Directory,
    web_base: String,
    sip: Arc<crate::sip::SipCore>,
}

/// The meeting API's routes. `web_base` is the Front End's HTTPS base URL (the join URLs' root).
pub fn routes(
    auth: Arc<AuthState>,
    store: FrontendStore,
    directory: Directory,
    web_base: &str,
    sip: Arc<crate::sip::SipCore>,
) -> Router {
    let state = Arc::new(ApiState { auth, store, directory, web_base: web_base.to_owned(), sip });
    Router::new()
        .route(PATH, post(create))
        .route(&format!("{PATH}/{{id}}"), axum::routing::put(update).delete(remove))
        .with_state(state)
}

/// Contract M's request body: SMTP addresses, RFC 3339 times.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeetingBody {
    organizer: String,
    #[serde(default)]
    subject: String,
    start: String,
    end: String,
    #[serde(default)]
    attendees: Vec<String>,
    #[serde(default)]
    uid: Option<String>,
}

/// The answer: the conference as the Mailbox writes it into the meeting.
#[derive(Debug, Serialize)]
struct ConferenceAnswer {
    id: String,
    focus_uri: String,
    join_url: String,
    conference_id: String,
    organizer: String,
}

impl From<ConferenceRow> for ConferenceAnswer {
    fn from(r: ConferenceRow) -> Self {
        ConferenceAnswer {
            id: r.id,
            focus_uri: r.focus_uri,
            join_url: r.join_url,
            conference_id: r.conference_number,
            organizer: r.organizer,
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// The user the token acts as, or the 401/403 to send.
async fn caller(s: &ApiState, headers: &HeaderMap) -> Result<User, Response> {
    let v = match validate_bearer(&s.auth, headers).await {
        Ok(Some(v)) => v,
        Ok(None) => return Err(s.auth.challenge().await.into_response()),
        Err(refusal) => return Err(refusal.into_response()),
    };
    let smtp = v.user.as_deref().ok_or_else(|| error(StatusCode::FORBIDDEN, "the token acts as no user"))?;
    match s.directory.find(smtp).await {
        Ok(Some(u)) if u.enabled => Ok(u),
        Ok(_) => Err(error(StatusCode::FORBIDDEN, "the token's user is not a user of this organisation")),
        Err(e) => {
            tracing::error!(error = %e, "meeting API: the directory is not available");
            Err(error(StatusCode::SERVICE_UNAVAILABLE, "the directory is not available; try again"))
        }
    }
}

fn same_user(a: &str, b: &str) -> bool {
    a.trim_start_matches("sip:").eq_ignore_ascii_case(b.trim_start_matches("sip:"))
}

/// The body checked and turned into a conference request for `caller`, who must be its organizer.
async fn request_of(s: &ApiState, caller: &User, body: &Bytes) -> Result<ConferenceRequest, Response> {
    if body.len() > MAX_BODY_BYTES {
        return Err(error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {MAX_BODY_BYTES} bytes")));
    }
    let m: MeetingBody = serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("the body is not a meeting: {e}")))?;
    let organizer = match s.directory.find(&m.organizer).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(error(StatusCode::FORBIDDEN, "the organizer is not the token's user")),
        Err(e) => {
            tracing::error!(error = %e, "meeting API: the directory is not available");
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the directory is not available; try again"));
        }
    };
    if organizer.name != caller.name {
        return Err(error(StatusCode::FORBIDDEN, "the organizer is not the token's user"));
    }
    if !organizer.can_use_sip() {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "the organizer {} is not enabled for Skype for Business; run `tandem user enable IDENTITY --sip` first",
                organizer.smtp_address
            ),
        ));
    }
    let start = tandem_ews_proto::parse_datetime(&m.start)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "start is not an RFC 3339 time"))?;
    let end = tandem_ews_proto::parse_datetime(&m.end)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "end is not an RFC 3339 time"))?;
    if end < start {
        return Err(error(StatusCode::BAD_REQUEST, "the meeting ends before it starts"));
    }
    if m.attendees.len() > MAX_ATTENDEES {
        return Err(error(StatusCode::BAD_REQUEST, format!("more than {MAX_ATTENDEES} attendees")));
    }
    // Attendees known to the directory are invited by their SIP URI; others as given.
    let mut attendees = Vec::with_capacity(m.attendees.len());
    for a in &m.attendees {
        match s.directory.find(a).await {
            Ok(Some(u)) if u.can_use_sip() => attendees.push(u.sip_uri.to_string()),
            _ => attendees.push(a.clone()),
        }
    }
    Ok(ConferenceRequest {
        organizer: organizer.sip_uri.to_string(),
        subject: m.subject,
        starts_at: Some(start),
        ends_at: Some(end),
        attendees,
        mailbox_uid: m.uid.filter(|u| !u.is_empty()),
        access_level: None,
    })
}

fn failed(e: ConferenceError) -> Response {
    match e {
        ConferenceError::Invalid(why) => error(StatusCode::BAD_REQUEST, why),
        other => {
            tracing::error!(error = %other, "meeting API: the conference could not be kept");
            error(StatusCode::SERVICE_UNAVAILABLE, "the conference could not be kept; try again")
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "meeting API: the Front End store failed");
    error(StatusCode::SERVICE_UNAVAILABLE, "the Front End store is not available; try again")
}

/// `POST /meetings/v1/conferences` → 201 with the new conference (200 with the existing one
/// when the organizer already has one for the meeting's UID, brought up to date).
async fn create(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let req = match request_of(&s, &caller, &body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(uid) = &req.mailbox_uid {
        match s.store.conference_by_mailbox_uid(&req.organizer, uid).await {
            Ok(Some(existing)) => {
                return match conference::update(&s.store, &existing.id, &req).await {
                    Ok(Some(row)) => (StatusCode::OK, axum::Json(ConferenceAnswer::from(row))).into_response(),
                    Ok(None) => error(StatusCode::CONFLICT, "the conference changed meanwhile; try again"),
                    Err(e) => failed(e),
                };
            }
            Ok(None) => {}
            Err(e) => return unavailable(e),
        }
    }
    match conference::create(&s.store, &s.web_base, &req).await {
        Ok(row) => {
            tracing::info!(id = %row.id, organizer = %row.organizer, "meeting API: conference created");
            (StatusCode::CREATED, axum::Json(ConferenceAnswer::from(row))).into_response()
        }
        Err(e) => failed(e),
    }
}

/// The conference `id` if `caller` organises it; else the 404/403 to send.
async fn own_conference(s: &ApiState, caller: &User, id: &str) -> Result<ConferenceRow, Response> {
    match s.store.conference(id).await {
        Ok(Some(row)) if same_user(&row.organizer, &caller.sip_uri.to_string()) => Ok(row),
        Ok(Some(_)) => Err(error(StatusCode::FORBIDDEN, "the conference belongs to another organizer")),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, "no such conference")),
        Err(e) => Err(unavailable(e)),
    }
}

/// `PUT /meetings/v1/conferences/{id}` → 200 with the conference as updated.
async fn update(State(s): State<Arc<ApiState>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = own_conference(&s, &caller, &id).await {
        return r;
    }
    let req = match request_of(&s, &caller, &body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match conference::update(&s.store, &id, &req).await {
        Ok(Some(row)) => (StatusCode::OK, axum::Json(ConferenceAnswer::from(row))).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such conference"),
        Err(e) => failed(e),
    }
}

/// `DELETE /meetings/v1/conferences/{id}` → 204; a live conference is ended (everyone in it
/// gets a BYE).
async fn remove(State(s): State<Arc<ApiState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let caller = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = own_conference(&s, &caller, &id).await {
        return r;
    }
    match s.store.delete_conference(&id).await {
        Ok(_) => {
            let ended = s.sip.end_conference(&id);
            tracing::info!(id = %id, participants = ended, "meeting API: conference removed");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => unavailable(e),
    }
}

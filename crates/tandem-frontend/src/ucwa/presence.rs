//! `GET /presence?uri=…` (others' presence by SIP URI or SMTP address) and `POST /subscriptions`
//! (adds presentities to the session's watch: their changes are pushed to the event stream).
//!
//! What a web watcher sees is what a SIP watcher's NOTIFY says (`calendar_presence::shown`:
//! the endpoints' publications with the calendar), and a user who blocks the caller is shown
//! offline, as SIP watchers are told.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tandem_sip_proto::pidf::Availability;

use super::{ApiError, MAX_URIS_PER_REQUEST, MAX_WATCHED_PER_SESSION, UcwaState, caller, json_body, resolve_uri};

/// One presentity as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceView {
    pub uri: String,
    pub availability: &'static str,
    pub activity: &'static str,
    pub note: Option<String>,
}

/// The API's availability and activity for what watchers are shown.
pub fn names(availability: Availability, calendar_activity: Option<&str>) -> (&'static str, &'static str) {
    match (availability, calendar_activity) {
        (Availability::Offline, _) => ("Offline", "Offline"),
        (Availability::Available, _) => ("Online", "Available"),
        (Availability::Away, Some("vacation")) => ("Away", "Out of office"),
        (Availability::Away, _) => ("Away", "Away"),
        (Availability::Busy, Some("meeting")) => ("Busy", "In a meeting"),
        (Availability::Busy, _) => ("Busy", "Busy"),
        (Availability::OnThePhone, _) => ("Busy", "On the phone"),
    }
}

/// `aor` as `watcher` sees it.
pub(crate) async fn view(s: &UcwaState, watcher: &str, aor: &str) -> PresenceView {
    let blocked = watcher != aor
        && (s.core.presence.list_blocks(aor, watcher) || crate::sip::presence::is_blocked(&s.core, aor, watcher).await);
    if blocked {
        return PresenceView { uri: aor.to_owned(), availability: "Offline", activity: "Offline", note: None };
    }
    let shown = crate::calendar_presence::shown(&s.core, aor);
    let (mut availability, mut activity) = names(shown.summary.availability, shown.activity);
    // What the web session chose, when it is what is shown (the SIP side has no
    // do-not-disturb or be-right-back of its own: they publish busy and away).
    if shown.activity.is_none()
        && let Some(chosen) = s.chosen.get(aor)
        && super::me::base_of(chosen) == shown.summary.availability
    {
        availability = chosen;
        activity = super::me::activity_of(chosen);
    }
    PresenceView { uri: aor.to_owned(), availability, activity, note: shown.summary.note }
}

/// Every `name=value` of a query string, percent-decoded (`+` is a space); at most `max`.
pub fn query_values(query: &str, name: &str, max: usize) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k)? != name {
            continue;
        }
        if out.len() == max {
            return Err(ApiError::bad_request(format!("at most {max} `{name}` values per request")));
        }
        out.push(percent_decode(v)?);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    return Err(ApiError::bad_request("a malformed percent-escape in the query"));
                };
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("the query is not UTF-8"))
}

pub(super) async fn get_presence(State(s): State<Arc<UcwaState>>, uri: Uri, headers: HeaderMap) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let wanted = match query_values(uri.query().unwrap_or(""), "uri", MAX_URIS_PER_REQUEST) {
        Ok(w) if !w.is_empty() => w,
        Ok(_) => return ApiError::bad_request("name at least one presentity: ?uri=sip:…").into_response(),
        Err(e) => return e.into_response(),
    };
    let me = user.sip_uri.key();
    let mut out = Vec::with_capacity(wanted.len());
    for w in &wanted {
        match resolve_uri(&s, w).await {
            Ok(aor) => out.push(view(&s, &me, &aor).await),
            Err(e) => return e.into_response(),
        }
    }
    axum::Json(out).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionRequest {
    uris: Vec<String>,
}

pub(super) async fn post_subscriptions(State(s): State<Arc<UcwaState>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let req: SubscriptionRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if req.uris.is_empty() || req.uris.len() > MAX_URIS_PER_REQUEST {
        return ApiError::bad_request(format!("name 1 to {MAX_URIS_PER_REQUEST} presentities")).into_response();
    }
    let mut aors = Vec::with_capacity(req.uris.len());
    for u in &req.uris {
        match resolve_uri(&s, u).await {
            Ok(a) => aors.push(a),
            Err(e) => return e.into_response(),
        }
    }
    let me = user.sip_uri.key();
    match s.core.presence.web.watch(&me, &aors, MAX_WATCHED_PER_SESSION) {
        Ok(new) => {
            metrics::counter!("tandem_ucwa_subscriptions_total").increment(new.len() as u64);
            // The current state of each newly watched presentity follows on the stream, as a
            // SIP subscription's first NOTIFY does.
            for a in &new {
                s.core.presence.web.deliver(&me, &crate::sip::web::WebEvent::Presence { uri: a.clone() });
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManySubscriptions", e.to_string()).into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_values_are_decoded_and_bounded() {
        let q = "uri=sip%3Abob%40x&other=1&uri=carol%40x&uri=a+b";
        assert_eq!(query_values(q, "uri", 5).unwrap(), vec!["sip:bob@x", "carol@x", "a b"]);
        assert!(query_values(q, "uri", 2).is_err());
        assert!(query_values("uri=%zz", "uri", 5).is_err());
        assert!(query_values("uri=%ff", "uri", 5).is_err());
    }

    #[test]
    fn calendar_and_calls_read_as_the_client_shows_them() {
        assert_eq!(names(Availability::Busy, Some("meeting")), ("Busy", "In a meeting"));
        assert_eq!(names(Availability::OnThePhone, None), ("Busy", "On the phone"));
        assert_eq!(names(Availability::Available, None), ("Online", "Available"));
        assert_eq!(names(Availability::Away, Some("vacation")), ("Away", "Out of office"));
    }
}

//! `GET /me` (the signed-in user and their presence) and `PUT /me/presence` (set it: the web
//! session publishes, as a SIP endpoint does, and watchers on SIP and on the web are told).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tandem_sip_proto::pidf::{Availability, PresenceSummary};

use super::{ApiError, PUBLICATION_TTL, UcwaState, caller, json_body};

/// The longest note accepted (characters; Skype for Business clients allow 500).
pub const MAX_NOTE: usize = 500;

/// The availabilities a user may choose.
pub const CHOICES: [&str; 6] = ["Online", "Busy", "DoNotDisturb", "BeRightBack", "Away", "Offline"];

/// The SIP availability a choice publishes.
pub fn base_of(choice: &str) -> Availability {
    match choice {
        "Online" => Availability::Available,
        "Busy" | "DoNotDisturb" => Availability::Busy,
        "BeRightBack" | "Away" => Availability::Away,
        _ => Availability::Offline,
    }
}

/// The activity shown for a choice.
pub fn activity_of(choice: &str) -> &'static str {
    match choice {
        "Online" => "Available",
        "Busy" => "Busy",
        "DoNotDisturb" => "Do not disturb",
        "BeRightBack" => "Be right back",
        "Away" => "Away",
        _ => "Offline",
    }
}

/// Each user's last choice through the API, so do-not-disturb and be-right-back read back as
/// chosen (SIP carries them as busy and away).
#[derive(Debug, Default)]
pub(crate) struct Chosen(Mutex<HashMap<String, &'static str>>);

impl Chosen {
    pub(crate) fn get(&self, aor: &str) -> Option<&'static str> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(aor).copied()
    }
    pub(crate) fn set(&self, aor: &str, choice: Option<&'static str>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match choice {
            Some(c) => m.insert(aor.to_owned(), c),
            None => m.remove(aor),
        };
    }
}

#[derive(Debug, Serialize)]
struct Me {
    uri: String,
    display_name: String,
    availability: &'static str,
    activity: &'static str,
    note: Option<String>,
}

pub(super) async fn get_me(State(s): State<Arc<UcwaState>>, headers: HeaderMap) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let aor = user.sip_uri.key();
    let v = super::presence::view(&s, &aor, &aor).await;
    axum::Json(Me {
        uri: aor,
        display_name: user.display_name.clone(),
        availability: v.availability,
        activity: v.activity,
        note: v.note,
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceRequest {
    availability: String,
    #[serde(default)]
    note: Option<String>,
}

pub(super) async fn put_presence(State(s): State<Arc<UcwaState>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let req: PresenceRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(choice) = CHOICES.iter().copied().find(|c| *c == req.availability) else {
        return ApiError::bad_request(format!("availability must be one of {}", CHOICES.join(", "))).into_response();
    };
    let note = req.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE || n.chars().any(|c| c.is_control() && c != '\n')) {
        return ApiError::bad_request(format!("the note is at most {MAX_NOTE} characters without control characters"))
            .into_response();
    }
    let aor = user.sip_uri.key();
    s.chosen.set(&aor, Some(choice));
    let summary = PresenceSummary { availability: base_of(choice), note };
    crate::sip::presence::publish_web(&s.core, &aor, Some(summary), PUBLICATION_TTL);
    StatusCode::NO_CONTENT.into_response()
}

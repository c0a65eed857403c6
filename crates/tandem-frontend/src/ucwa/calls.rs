//! `POST /calls`: click-to-call. The Front End rings the user's own registered SIP phone and,
//! when it answers, connects it to the target by third-party call control
//! (`sip::third_party_call`); the call's states reach the event stream as `call` events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, UcwaState, caller, json_body, resolve_uri};
use crate::sip::web::WebEvent;

/// Calls one user may be setting up at once.
pub const MAX_PENDING_CALLS_PER_USER: usize = 2;

/// Calls being set up, per user.
#[derive(Debug, Default)]
pub(crate) struct Calls(Mutex<HashMap<String, usize>>);

impl Calls {
    fn begin(&self, user: &str) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(user.to_owned()).or_default();
        if *n >= MAX_PENDING_CALLS_PER_USER {
            return false;
        }
        *n += 1;
        true
    }
    fn end(&self, user: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(user);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    to: String,
}

#[derive(Debug, Serialize)]
struct Accepted {
    id: String,
}

pub(super) async fn post_call(State(s): State<Arc<UcwaState>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let req: CallRequest = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let target = match resolve_uri(&s, &req.to).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let me = user.sip_uri.key();
    if target == me {
        return ApiError::bad_request("a call to yourself connects nothing").into_response();
    }
    if !s.core.location.is_registered(&me) {
        return ApiError::new(
            StatusCode::CONFLICT,
            "NoPhone",
            "click-to-call rings your own SIP phone first: sign one in (register) and try again",
        )
        .into_response();
    }
    let target_name = match s.directory.find_cached(&target).await {
        Ok(Some(u)) if u.can_use_sip() => u.display_name,
        Ok(_) => {
            return ApiError::new(StatusCode::NOT_FOUND, "UnknownRecipient", format!("no SIP user {target} here"))
                .into_response();
        }
        Err(e) => return ApiError::unavailable(format!("the directory cannot be read: {e}")).into_response(),
    };
    if !s.calls.begin(&me) {
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyCalls", "wait for your other calls to connect")
            .into_response();
    }
    let id = crate::sip::random_token();
    let state = s.clone();
    let (call_id, caller_name) = (id.clone(), user.display_name.clone());
    s.tasks.spawn(async move {
        let (tell, who) = (state.clone(), me.clone());
        let on_state: crate::sip::third_party_call::OnState = Arc::new(move |id: &str, st: &str| {
            tell.core.presence.web.deliver(&who, &WebEvent::Call { id: id.to_owned(), state: st.to_owned() });
        });
        let _ = state.core.click_to_call(&call_id, (&caller_name, &me), (&target_name, &target), on_state).await;
        state.calls.end(&me);
    });
    (StatusCode::ACCEPTED, axum::Json(Accepted { id })).into_response()
}

//! `GET /contacts`: the user's contact list as the SIP list subscription and XCAP see it — the
//! Unified Contact Store in the mailbox (GetImItemList through the Exchange connector), or the
//! Front End store for a user whose list lives there.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, UcwaState, caller};
use crate::store::{FeGroup, ListLocation};
use crate::ucs;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ContactView {
    pub uri: String,
    pub name: String,
    pub group: String,
}

/// One row per (group, contact), in the list's order.
pub fn flatten(groups: &[FeGroup]) -> Vec<ContactView> {
    groups
        .iter()
        .flat_map(|g| {
            g.contacts.iter().map(move |c| ContactView {
                uri: c.uri.clone(),
                name: c.display_name.clone().unwrap_or_default(),
                group: g.name.clone(),
            })
        })
        .collect()
}

pub(super) async fn get_contacts(State(s): State<Arc<UcwaState>>, headers: HeaderMap) -> Response {
    let user = match caller(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let aor = user.sip_uri.key();
    let unavailable = |e: crate::store::DataError| ApiError::unavailable(e.to_string()).into_response();
    let policies = match s.fe.user_services_policies().await {
        Ok(p) => p,
        Err(e) => return unavailable(e),
    };
    let state = match s.fe.contact_list_state(&aor).await {
        Ok(Some(st)) => st,
        Ok(None) => {
            match s.fe.pin_contact_list_location(&aor, ucs::location(None, ucs::ucs_allowed(&policies, &aor))).await {
                Ok(st) => st,
                Err(e) => return unavailable(e),
            }
        }
        Err(e) => return unavailable(e),
    };
    let groups = if state.location == ListLocation::FrontEnd {
        match s.fe.fe_contact_list(&aor).await {
            Ok(g) => g,
            Err(e) => return unavailable(e),
        }
    } else {
        if !user.can_use_mailbox() {
            return axum::Json(Vec::<ContactView>::new()).into_response();
        }
        let mailbox = match s.connector.mailbox(&user.smtp_address.to_string()).await {
            Ok(m) => m,
            Err(e) => return ApiError::unavailable(e.to_string()).into_response(),
        };
        match s.connector.client().get_im_item_list(&mailbox).await {
            Ok(list) => ucs::groups_of(&list),
            Err(e) => {
                return ApiError::unavailable(format!("the contact list cannot be read from the mailbox: {e}"))
                    .into_response();
            }
        }
    };
    axum::Json(flatten(&groups)).into_response()
}

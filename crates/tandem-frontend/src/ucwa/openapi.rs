//! The API's OpenAPI document, `openapi.json` beside this file, embedded and served as it is at
//! `GET /ucwa/v1/openapi.json` (no token needed: it says nothing about any user). The interop
//! suite checks the running server against it (tests/interop/test_ucwa.py).

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    /// Every route the API serves is in the document, and the document is JSON.
    #[test]
    fn the_document_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/me",
            "/me/presence",
            "/presence",
            "/subscriptions",
            "/events",
            "/messages",
            "/contacts",
            "/calls",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
    }
}

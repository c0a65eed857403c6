//! GetUserPhoto, in both of Exchange's forms: SOAP (`m:GetUserPhoto` → HasChanged, PictureData)
//! and REST (`GET …/Exchange.asmx/s/GetUserPhoto?email=…&size=…` → image/jpeg). Any signed-in
//! caller may read any mailbox user's photo; the owner is served their preview while one waits
//! for Set-UserPhoto -Save. A size above the picture's own gets the largest kept (never upscaled).
//! Both forms answer an ETag and honour `If-None-Match` (SOAP: HasChanged false and no picture;
//! REST: 304). An address outside the directory and a user without a photo get the same answer
//! (REST 404, SOAP ErrorItemNotFound), so photos cannot be used to list who exists.

use axum::body::Body;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_directory::User;
use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::get_user_photo::{PhotoSize, PhotoType, Request, render, render_error};

use super::{Ctx, EwsError};
use crate::Shared;
use crate::data::photos::{self, PhotoKind, StoredPhoto};

/// Longest query string accepted on the REST form.
const MAX_QUERY: usize = 2048;
/// The size the REST form serves when none is named (as UCWA documents for its photo resource).
const DEFAULT_SIZE: PhotoSize = PhotoSize::HR48x48;

/// The photo to serve `caller` for `email` at `size`, if there is one.
async fn lookup(s: &Shared, caller: &User, email: &str, size: PhotoSize) -> Result<Option<StoredPhoto>, EwsError> {
    let Some(owner) = s.directory.find(email).await? else { return Ok(None) };
    if !owner.can_use_mailbox() || !owner.smtp_address.to_string().eq_ignore_ascii_case(email.trim()) {
        return Ok(None);
    }
    let mailbox = owner.name.as_str();
    if owner.name == caller.name
        && let Some(p) = photos::photo(&s.store, mailbox, PhotoKind::Preview, size.pixels(), true).await?
    {
        return Ok(Some(p));
    }
    Ok(photos::photo(&s.store, mailbox, PhotoKind::Current, size.pixels(), true).await?)
}

/// The ETag header value of a stored photo.
fn etag_header(p: &StoredPhoto) -> String {
    format!("\"{}\"", p.etag)
}

/// Whether an `If-None-Match` value names the photo's tag (or is `*`).
fn matches(if_none_match: Option<&str>, p: &StoredPhoto) -> bool {
    let Some(v) = if_none_match else { return false };
    v.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t.trim_matches('"') == p.etag
    })
}

/// The SOAP form: the response element and the ETag to send with it.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    req: Request,
    if_none_match: Option<&str>,
) -> Result<(String, Option<String>), EwsError> {
    let not_found = || render_error(ResponseCode::ErrorItemNotFound, "The user photo was not found.");
    if req.kind == PhotoType::ProfileHeaderPhoto {
        return Ok((not_found(), None));
    }
    let Some(p) = lookup(ctx.s, ctx.user, &req.email, req.size).await? else { return Ok((not_found(), None)) };
    let tag = etag_header(&p);
    if matches(if_none_match, &p) {
        return Ok((render(None), Some(tag)));
    }
    Ok((render(Some(&p.content)), Some(tag)))
}

/// The REST form, for a signed-in `caller`.
pub(crate) async fn rest(
    s: &Shared,
    caller: &User,
    uri: &axum::http::Uri,
    if_none_match: Option<&str>,
    head: bool,
) -> Response {
    let started = std::time::Instant::now();
    let resp = rest_answer(s, caller, uri, if_none_match, head).await;
    metrics::histogram!("tandem_ews_operation_seconds", "operation" => "GetUserPhotoRest")
        .record(started.elapsed().as_secs_f64());
    resp
}

async fn rest_answer(
    s: &Shared,
    caller: &User,
    uri: &axum::http::Uri,
    if_none_match: Option<&str>,
    head: bool,
) -> Response {
    let bad = |why: &str| {
        (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{why}\n"))
            .into_response()
    };
    if uri.query().is_some_and(|q| q.len() > MAX_QUERY) {
        return bad("the query is too long");
    }
    let Ok(Query(params)) = Query::<Vec<(String, String)>>::try_from_uri(uri) else {
        return bad("the query is not form-encoded");
    };
    let param = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let Some(email) = param("email").filter(|e| !e.trim().is_empty()) else {
        return bad("GetUserPhoto needs email=<address>");
    };
    let size = match param("size") {
        None => DEFAULT_SIZE,
        Some(code) => match PhotoSize::parse(code) {
            Some(size) => size,
            None => {
                return bad(
                    "size must be one of HR48x48, HR64x64, HR96x96, HR120x120, HR240x240, HR360x360, HR432x432, HR504x504, HR648x648",
                );
            }
        },
    };
    let photo = match lookup(s, caller, email, size).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "GetUserPhoto failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the photo store is not available\n").into_response();
        }
    };
    let Some(p) = photo else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no photo\n")
            .into_response();
    };
    let tag = etag_header(&p);
    let builder = Response::builder()
        .header(header::ETAG, tag)
        .header(header::CACHE_CONTROL, "private")
        .header(header::VARY, "Authorization");
    let built = if matches(if_none_match, &p) {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        let len = p.content.len();
        let body = if head { Body::empty() } else { Body::from(p.content) };
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "image/jpeg")
            .header(header::CONTENT_LENGTH, len)
            .body(body)
    };
    built.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let p = StoredPhoto { pixels: 96, etag: "abc".into(), changed_at: 0, content: vec![] };
        assert!(matches(Some("\"abc\""), &p));
        assert!(matches(Some("W/\"abc\""), &p));
        assert!(matches(Some("\"x\", \"abc\""), &p));
        assert!(matches(Some("*"), &p));
        assert!(!matches(Some("\"abd\""), &p));
        assert!(!matches(None, &p));
    }
}

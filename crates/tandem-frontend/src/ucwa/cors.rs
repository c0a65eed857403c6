//! Cross-origin calls (CORS) for the browser client on the Mailbox: the origins in the web
//! service configuration's CrossDomainAuthorizationList (`tandem cs
//! set-web-service-configuration --cross-domain-authorization-list`), or, until one is set, the
//! Mailbox's HTTPS origin (that of ExchangeAutodiscoverUrl). Read again every [`RELOAD_AFTER`],
//! so a change applies without restart. A request from an origin not in the list is refused
//! (403, no CORS headers) before any handler runs, preflight or not; the API uses no cookies, so
//! credentials are never allowed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, UcwaState};
use crate::exchange_connector::ExchangeConnector;
use crate::store::FrontendStore;

/// How long the running role uses the list before reading it again.
pub const RELOAD_AFTER: Duration = Duration::from_secs(2);
/// How long a browser may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: &str = "600";
const ALLOW_METHODS: &str = "GET, POST, PUT, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type";

/// The allowed origins, cached.
#[derive(Debug)]
pub struct Origins {
    fe: FrontendStore,
    connector: Arc<ExchangeConnector>,
    cached: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

/// `scheme://host[:port]` of a URL, lower-cased, the default port dropped (the form browsers
/// send in `Origin`). `None` for anything that is not an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

impl Origins {
    pub fn new(fe: FrontendStore, connector: Arc<ExchangeConnector>) -> Origins {
        Origins { fe, connector, cached: Mutex::new(None) }
    }

    /// The origins allowed now.
    pub async fn allowed(&self) -> Arc<Vec<String>> {
        if let Some((at, list)) = self.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && at.elapsed() < RELOAD_AFTER
        {
            return list.clone();
        }
        let configured = match self.fe.web_service_configuration().await {
            Ok(c) => c.cross_domain_authorization_list,
            Err(e) => {
                tracing::warn!(error = %e, "the web service configuration cannot be read; cross-origin calls refused");
                Some(Vec::new())
            }
        };
        let list = match configured {
            Some(l) => l.iter().filter_map(|o| origin_of(o)).collect(),
            None => match self.connector.autodiscover_url().await {
                Ok(u) => origin_of(&u).into_iter().collect(),
                Err(_) => Vec::new(),
            },
        };
        let list = Arc::new(list);
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), list.clone()));
        list
    }
}

/// The CORS layer of the API's routes.
pub async fn layer(State(s): State<Arc<UcwaState>>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = s.cors.allowed().await;
    let ok = origin.to_str().ok().and_then(origin_of).is_some_and(|o| allowed.contains(&o));
    if !ok {
        metrics::counter!("tandem_ucwa_cors_refused_total").increment(1);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "OriginNotAllowed",
            "this origin is not in the CrossDomainAuthorizationList (tandem cs set-web-service-configuration)",
        )
        .into_response();
    }
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    } else {
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate, Retry-After"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_compared_as_browsers_send_them() {
        assert_eq!(
            origin_of("https://Mail.Litwareinc.com:443/autodiscover/x").as_deref(),
            Some("https://mail.litwareinc.com")
        );
        assert_eq!(origin_of("https://mail:8443").as_deref(), Some("https://mail:8443"));
        assert_eq!(origin_of("http://a:80/").as_deref(), Some("http://a"));
        assert_eq!(origin_of("ftp://a"), None);
        assert_eq!(origin_of("https://user@evil"), None);
        assert_eq!(origin_of("null"), None);
    }
}

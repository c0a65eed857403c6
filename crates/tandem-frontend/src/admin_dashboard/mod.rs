//! The administrator's dashboard at `/admin/` on the Front End: the seed's setup steps live (what
//! `tandem integration status` reports), certificates with expiry and their next/previous slots,
//! partner applications, registrations and presence subscriptions by count, recent warnings and
//! errors, and charts of the `/metrics` figures over the last hour, drawn by the page itself.
//!
//! Administrators only: a directory user in the CsAdministrator role (`tandem cs
//! add-admin-role-member`) signs in with their own password through a form (the directory's
//! lockout applies; every refusal reads the same, so the page tells nobody which accounts exist
//! or who is an administrator); the session is a `__Host-` cookie ([`session`]), and the role is
//! checked again on every request, so a removal applies at once. Pages and assets are built
//! into the binary; the Content-Security-Policy allows scripts and styles from this origin only
//! (no inline script), and frames from nowhere.
//!
//! What only the whole deployment knows (setup steps, the Mailbox's certificates, partners in
//! both roles) comes from a [`DeploymentReport`] the binary attaches: the same code `tandem
//! integration status` runs.

pub mod recent_errors;
pub mod samples;
pub mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tandem_directory::{Directory, SignIn};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sip::SipCore;
use crate::store::FrontendStore;

/// Where the dashboard lives.
pub const ROOT: &str = "/admin";
/// The Content-Security-Policy of every dashboard answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// How long a deployment report is reused (step 7 writes and removes an item in a mailbox).
pub const REPORT_TTL: Duration = Duration::from_secs(30);
/// The largest sign-in form accepted.
const MAX_FORM: usize = 4096;

const INDEX_HTML: &str = include_str!("assets/index.html");
const SIGN_IN_HTML: &str = include_str!("assets/sign-in.html");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

/// A boxed report future (the trait is used as `dyn`).
pub type ReportFuture = Pin<Box<dyn Future<Output = serde_json::Value> + Send>>;

/// What the whole deployment reports: `{"steps": [{step, name, status, reason}],
/// "certificates": [{use, slot, thumbprint, subject, not_after, effective_date}],
/// "partners": [{role, name, application_identifier, enabled, trust_level, metadata_url}]}`.
pub trait DeploymentReport: Send + Sync + 'static {
    fn report(&self) -> ReportFuture;
}

/// The dashboard's state; [`Dashboard::attach_report`] gives it the deployment's report.
pub struct Dashboard {
    core: Arc<SipCore>,
    directory: Directory,
    fe: FrontendStore,
    sessions: session::Sessions,
    history: samples::History,
    report: OnceLock<Arc<dyn DeploymentReport>>,
    cached: tokio::sync::Mutex<Option<(Instant, serde_json::Value)>>,
    admins: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").field("sessions", &self.sessions.count()).finish()
    }
}

impl Dashboard {
    pub fn new(core: Arc<SipCore>, directory: Directory, fe: FrontendStore) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            core,
            directory,
            fe,
            sessions: Default::default(),
            history: Default::default(),
            report: OnceLock::new(),
            cached: tokio::sync::Mutex::new(None),
            admins: Mutex::new(None),
        })
    }

    /// Gives the dashboard the deployment's report (once; later calls are ignored).
    pub fn attach_report(&self, report: Arc<dyn DeploymentReport>) {
        let _ = self.report.set(report);
    }

    /// Samples `/metrics` every [`samples::INTERVAL`].
    pub fn spawn_sampler(self: &Arc<Self>, tasks: &TaskTracker, shutdown: CancellationToken) {
        let me = self.clone();
        tasks.spawn(async move {
            let handle = tandem_http::metrics_handle();
            let mut tick = tokio::time::interval(samples::INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => me.history.take(&handle.render()),
                }
            }
        });
    }

    /// The CsAdministrator role's members (read again every two seconds).
    async fn is_admin(&self, aor: &str) -> bool {
        let cached = self.admins.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let list = match cached {
            Some((at, l)) if at.elapsed() < Duration::from_secs(2) => l,
            _ => {
                let l = match self.fe.administrators().await {
                    Ok(l) => Arc::new(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "the CsAdministrator role cannot be read; nobody is let in");
                        return false;
                    }
                };
                *self.admins.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), l.clone()));
                l
            }
        };
        list.iter().any(|m| m == aor)
    }

    async fn deployment_report(&self) -> serde_json::Value {
        let mut cached = self.cached.lock().await;
        if let Some((at, v)) = cached.as_ref()
            && at.elapsed() < REPORT_TTL
        {
            return v.clone();
        }
        let v = match self.report.get() {
            Some(r) => r.report().await,
            None => serde_json::json!({"steps": [], "certificates": [], "partners": [],
                "note": "the deployment report is not attached (a Front End started without the binary's setup checks)"}),
        };
        *cached = Some((Instant::now(), v.clone()));
        v
    }
}

/// The dashboard's routes.
pub fn routes(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route(ROOT, get(|| async { Redirect::to("/admin/") }))
        .route(&format!("{ROOT}/"), get(index))
        .route(&format!("{ROOT}/sign-in"), get(sign_in_page).post(sign_in))
        .route(&format!("{ROOT}/sign-out"), post(sign_out))
        .route(&format!("{ROOT}/assets/dashboard.js"), get(|| async { asset("text/javascript", DASHBOARD_JS) }))
        .route(&format!("{ROOT}/assets/dashboard.css"), get(|| async { asset("text/css", DASHBOARD_CSS) }))
        .route(&format!("{ROOT}/api/overview"), get(overview))
        .route(&format!("{ROOT}/api/metrics"), get(metrics_samples))
        .route(&format!("{ROOT}/{{*rest}}"), get(|| async { StatusCode::NOT_FOUND }))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(dashboard)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    r
}

fn asset(ctype: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The signed-in administrator of a request, if any.
async fn administrator(d: &Dashboard, headers: &HeaderMap) -> Option<(String, session::Session)> {
    let token = session::token_of(headers)?;
    let s = d.sessions.get(&token)?;
    if !d.is_admin(&s.user).await {
        d.sessions.remove(&token);
        return None;
    }
    Some((token, s))
}

async fn index(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    match administrator(&d, &headers).await {
        Some(_) => html(INDEX_HTML.to_owned()),
        None => Redirect::to("/admin/sign-in").into_response(),
    }
}

async fn sign_in_page() -> Response {
    html(SIGN_IN_HTML.replace("{{message}}", ""))
}

/// A refused sign-in: the same words whatever the reason.
fn refused() -> Response {
    let page = SIGN_IN_HTML.replace(
        "{{message}}",
        "<p class=\"error\" role=\"alert\">Sign-in refused: the account, the password or its administrator role is not right, or the account is locked for now.</p>",
    );
    (StatusCode::UNAUTHORIZED, html(page)).into_response()
}

/// Whether a form post comes from this origin (a missing Origin is a client that sends none).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    crate::ucwa::cors::origin_of(origin) == crate::ucwa::cors::origin_of(&format!("https://{host}"))
}

async fn sign_in(
    State(d): State<Arc<Dashboard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site sign-in refused\n").into_response();
    }
    let form = std::str::from_utf8(&body).unwrap_or("");
    let field =
        |name: &str| crate::ucwa::query_values(form, name, 1).ok().and_then(|mut v| v.pop()).unwrap_or_default();
    let (login, password) = (field("login"), field("password"));
    if login.is_empty() || password.is_empty() || login.len() > 256 || password.len() > 1024 {
        return refused();
    }
    let user = match d.directory.sign_in(login.trim(), &password, Some(peer.ip())).await {
        Ok(SignIn::Accepted(u)) => u,
        Ok(SignIn::Refused) => {
            metrics::counter!("tandem_admin_sign_ins_total", "result" => "refused").increment(1);
            return refused();
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard sign-in: the directory cannot be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "the directory cannot be read now\n").into_response();
        }
    };
    let aor = user.sip_uri.key();
    if !d.is_admin(&aor).await {
        metrics::counter!("tandem_admin_sign_ins_total", "result" => "not_admin").increment(1);
        tracing::info!(user = %aor, "dashboard sign-in refused: not in the CsAdministrator role");
        return refused();
    }
    let Some((token, _)) = d.sessions.create(&aor) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no session can be made now\n").into_response();
    };
    metrics::counter!("tandem_admin_sign_ins_total", "result" => "accepted").increment(1);
    let mut r = Redirect::to("/admin/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&token)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn sign_out(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some((token, s)) = administrator(&d, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if csrf != s.csrf {
        return (StatusCode::FORBIDDEN, "the CSRF token is missing or wrong\n").into_response();
    }
    d.sessions.remove(&token);
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn overview(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some((_, s)) = administrator(&d, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let report = d.deployment_report().await;
    let (web_sessions, web_streams, web_watched) = d.core.presence.web.counts();
    let body = serde_json::json!({
        "user": s.user,
        "csrf": s.csrf,
        "steps": report.get("steps").cloned().unwrap_or_default(),
        "certificates": report.get("certificates").cloned().unwrap_or_default(),
        "partners": report.get("partners").cloned().unwrap_or_default(),
        "note": report.get("note").cloned(),
        "counts": {
            "registrations": d.core.location.count(),
            "presence_subscriptions": d.core.presence.subscription_count(),
            "web_sessions": web_sessions,
            "web_event_streams": web_streams,
            "web_watched_presentities": web_watched,
            "click_to_call_calls": d.core.tpcc.count(),
            "dashboard_sessions": d.sessions.count(),
        },
        "errors": recent_errors::recent(),
    });
    axum::Json(body).into_response()
}

async fn metrics_samples(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if administrator(&d, &headers).await.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({
        "interval_seconds": samples::INTERVAL.as_secs(),
        "samples": d.history.samples(),
    }))
    .into_response()
}

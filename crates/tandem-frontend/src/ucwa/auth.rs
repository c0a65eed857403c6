//! Who calls the API: the bearer token's user.
//!
//! Tokens are S2S user tokens the Mailbox mints for its signed-in user (contract T), checked by
//! the Front End's one S2S validator (`tandem_trust`); [`UserTokens`] is the seam between the
//! API and that validator, so the handlers do not depend on how it is built. A request without a
//! token, or with an expired, forged or otherwise refused one, gets the validator's 401 (with
//! `WWW-Authenticate: Bearer`); a token without a user (app-only) gets 403.

use std::future::Future;
use std::pin::Pin;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The user a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// The `smtp` claim (the mailbox acted as).
    pub smtp: String,
    /// The `sip` claim, when the token has one.
    pub sip: Option<String>,
    /// When the token ends (Unix seconds).
    pub expires_at: i64,
}

/// A boxed future (the trait is used as `dyn`).
pub type Check<'a> = Pin<Box<dyn Future<Output = Result<TokenUser, Response>> + Send + 'a>>;

/// Checks a request's bearer token; `Err` is the ready answer (401 or 403).
pub trait UserTokens: Send + Sync + std::fmt::Debug + 'static {
    fn check<'a>(&'a self, headers: &'a HeaderMap) -> Check<'a>;
}

/// Counts a validation for the dashboard and `/metrics`.
pub fn count(outcome: &'static str) {
    metrics::counter!("tandem_ucwa_token_validations_total", "result" => outcome).increment(1);
}

/// The 403 for a valid token that names no user (an app-only token).
pub fn app_only() -> Response {
    count("refused");
    super::ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "an app-only token acts for no user; the UC web API needs a user token",
    )
    .into_response()
}

/// The Front End's S2S validator (`tandem_trust::bearer`, checking against the
/// `microsoft.exchange` partner) as the API's token check.
impl UserTokens for tandem_trust::bearer::AuthState {
    fn check<'a>(&'a self, headers: &'a HeaderMap) -> Check<'a> {
        Box::pin(async move {
            match tandem_trust::bearer::validate_bearer(self, headers).await {
                Ok(Some(v)) => match v.user.as_deref() {
                    Some(smtp) => {
                        count("accepted");
                        Ok(TokenUser { smtp: smtp.to_owned(), sip: v.sip.clone(), expires_at: v.expires_at })
                    }
                    None => Err(app_only()),
                },
                Ok(None) => {
                    count("missing");
                    Err(self.challenge().await.into_response())
                }
                Err(refusal) => {
                    count("refused");
                    Err(refusal.into_response())
                }
            }
        })
    }
}

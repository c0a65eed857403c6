//! MS-XOAUTH tokens: the signed actor token, the unsigned outer token that names the user, and
//! validation with every rule of §3.2.5.6.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{CertError, MAX_CLOCK_SKEW_SECS, SigningKey, VerifyingKey, b64url, b64url_decode};

/// Largest token accepted.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// `nii` for users from the directory.
pub const NII_ACTIVE_DIRECTORY: &str = "urn:office:idp:activedirectory";

/// How far a partner application is trusted (`-ApplicationTrustLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TrustLevel {
    /// Acts as itself and as any user of the realm (the documented default).
    #[default]
    Full,
    /// Acts only as itself.
    Application,
    /// Acts only as a user, never as itself.
    User,
}

impl FromStr for TrustLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(TrustLevel::Full),
            "application" => Ok(TrustLevel::Application),
            "user" => Ok(TrustLevel::User),
            _ => Err(format!("{s}: use Full, Application or User")),
        }
    }
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrustLevel::Full => "Full",
            TrustLevel::Application => "Application",
            TrustLevel::User => "User",
        })
    }
}

/// The three-part audience `client_id/host@realm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub client_id: String,
    pub host: String,
    pub realm: String,
}

impl Audience {
    pub fn new(client_id: &str, host: &str, realm: &str) -> Audience {
        Audience { client_id: client_id.into(), host: host.into(), realm: realm.into() }
    }

    /// Splits `client_id/host@realm`; `None` unless all three parts are present.
    pub fn parse(s: &str) -> Option<Audience> {
        let (client_id, rest) = s.split_once('/')?;
        let (host, realm) = rest.rsplit_once('@')?;
        if client_id.is_empty() || host.is_empty() || realm.is_empty() {
            return None;
        }
        Some(Audience::new(client_id, host, realm))
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.client_id, self.host, self.realm)
    }
}

/// The user an outer token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// Primary SMTP address; also the `nameid` (UPN form).
    pub smtp: String,
    pub sip: Option<String>,
}

fn encode_part(v: &Value) -> String {
    b64url(v.to_string().as_bytes())
}

/// Mints an actor token: RS256, `x5t` of the signing certificate, every claim a string.
pub fn mint_actor(
    key: &SigningKey,
    app_id: &str,
    realm: &str,
    audience: &Audience,
    trusted_for_delegation: bool,
    now: i64,
    lifetime: i64,
) -> Result<String, CertError> {
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": key.certificate().x5t});
    let claims = json!({
        "aud": audience.to_string(),
        "iss": format!("{app_id}@{realm}"),
        "nameid": format!("{app_id}@{realm}"),
        "nbf": now.to_string(),
        "exp": (now + lifetime).to_string(),
        "trustedfordelegation": if trusted_for_delegation { "true" } else { "false" },
    });
    let signing_input = format!("{}.{}", encode_part(&header), encode_part(&claims));
    let sig = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

/// Wraps an actor token in an unsigned outer token naming `user`; `iss` is the actor's `nameid`.
pub fn mint_outer(
    actor: &str,
    actor_nameid: &str,
    audience: &Audience,
    user: &UserIdentity,
    now: i64,
    lifetime: i64,
) -> String {
    let header = json!({"typ": "JWT", "alg": "none"});
    let mut claims = json!({
        "aud": audience.to_string(),
        "iss": actor_nameid,
        "nameid": user.smtp,
        "nii": NII_ACTIVE_DIRECTORY,
        "smtp": user.smtp,
        "upn": user.smtp,
        "nbf": now.to_string(),
        "exp": (now + lifetime).to_string(),
        "actortoken": actor,
    });
    if let (Some(sip), Some(obj)) = (&user.sip, claims.as_object_mut()) {
        obj.insert("sip".into(), Value::String(sip.clone()));
    }
    format!("{}.{}.", encode_part(&header), encode_part(&claims))
}

/// Mints the token a server sends to act as `user`: an outer token around a fresh actor token.
pub fn mint_user_token(
    key: &SigningKey,
    app_id: &str,
    realm: &str,
    audience: &Audience,
    user: &UserIdentity,
    now: i64,
    lifetime: i64,
) -> Result<String, CertError> {
    let actor = mint_actor(key, app_id, realm, audience, true, now, lifetime)?;
    Ok(mint_outer(&actor, &format!("{app_id}@{realm}"), audience, user, now, lifetime))
}

/// A partner application the validator trusts, with the keys from its metadata.
#[derive(Debug, Clone)]
pub struct TrustedPartner {
    pub name: String,
    pub application_id: String,
    /// The partner's realm; `None` or `*` accepts any.
    pub realm: Option<String>,
    pub enabled: bool,
    pub trust_level: TrustLevel,
    pub keys: Vec<VerifyingKey>,
}

/// What this server is, for the audience and user checks.
#[derive(Debug, Clone)]
pub struct ValidationPolicy {
    /// Our application id: the audience's client_id (case-sensitive).
    pub client_id: String,
    /// Host names this server answers for (compared case-insensitively).
    pub hostnames: Vec<String>,
    /// Realms accepted in the audience (case-sensitive); `*` accepts any.
    pub realms: Vec<String>,
    /// Domains whose users a partner may act as (accepted domains; case-insensitive).
    pub user_domains: Vec<String>,
    pub max_skew: i64,
}

impl ValidationPolicy {
    pub fn new(client_id: &str, hostnames: Vec<String>, realms: Vec<String>, user_domains: Vec<String>) -> Self {
        ValidationPolicy { client_id: client_id.into(), hostnames, realms, user_domains, max_skew: MAX_CLOCK_SKEW_SECS }
    }

    /// `trusted_issuers` of the 401 challenge: `app@realm` of every enabled partner.
    pub fn trusted_issuers(partners: &[TrustedPartner]) -> String {
        partners
            .iter()
            .filter(|p| p.enabled)
            .map(|p| format!("{}@{}", p.application_id, p.realm.as_deref().unwrap_or("*")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// RBAC roles a validated token grants (Exchange's management roles for partner applications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Right {
    /// Act on behalf of end users in their mailboxes.
    UserApplication,
    /// Archive items in user mailboxes.
    ArchiveApplication,
}

/// An accepted token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validated {
    /// The partner application's name.
    pub partner: String,
    pub application_id: String,
    /// The source realm.
    pub realm: String,
    /// The user acted as (SMTP address); `None` for an app-only token.
    pub user: Option<String>,
    pub sip: Option<String>,
    pub rights: Vec<Right>,
    /// Earliest `exp` of the tokens involved (Unix seconds).
    pub expires_at: i64,
    /// Claims for diagnostics: `actor` and, for user tokens, `outer` (without the actor token).
    pub claims: Value,
}

/// Why a token was refused. `diagnostic()` is the `x-ms-diagnostics` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token lacks the claim `{0}`")]
    MissingClaim(&'static str),
    #[error("the claim `{0}` is not a time in seconds")]
    BadTime(&'static str),
    #[error("the actor token is not signed (alg {0}); it must be RS256")]
    UnsignedActor(String),
    #[error("the algorithm {0} is not accepted; use RS256")]
    UnsupportedAlgorithm(String),
    #[error("the actor token has no x5t header")]
    MissingX5t,
    #[error("no trusted partner application publishes a key with x5t {0}")]
    UnknownKey(String),
    #[error("the actor token's signature does not verify with the key {0}")]
    BadSignature(String),
    #[error("the issuer {0} is not a trusted partner application")]
    UntrustedIssuer(String),
    #[error("the partner application {0} is disabled")]
    PartnerDisabled(String),
    #[error("the realm {found} is not accepted here (expected {expected})")]
    WrongRealm { found: String, expected: String },
    #[error("the audience {audience} is wrong: {reason}")]
    WrongAudience { audience: String, reason: String },
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("the token is not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("the outer token's issuer {outer_iss} is not the actor's nameid {nameid}")]
    IssuerMismatch { outer_iss: String, nameid: String },
    #[error("the actor token is not trusted for delegation, so it cannot act as a user")]
    NotTrustedForDelegation,
    #[error("the partner application {partner} has trust level {level}: {what}")]
    TrustLevel { partner: String, level: TrustLevel, what: &'static str },
    #[error("the outer token names no user (smtp, upn or nameid)")]
    NoUser,
    #[error("the user {0} is outside the accepted domains")]
    UserOutsideRealm(String),
}

impl TokenError {
    /// `error_category` of the diagnostic.
    pub fn category(&self) -> &'static str {
        use TokenError::*;
        match self {
            Malformed(_) | MissingClaim(_) | BadTime(_) => "invalid_token",
            UnsignedActor(_) | UnsupportedAlgorithm(_) | MissingX5t | UnknownKey(_) | BadSignature(_) => {
                "invalid_signature"
            }
            UntrustedIssuer(_) | PartnerDisabled(_) | IssuerMismatch { .. } => "invalid_issuer",
            WrongRealm { .. } | UserOutsideRealm(_) => "invalid_tenant",
            WrongAudience { .. } => "invalid_resource",
            Expired { .. } | NotYetValid { .. } => "invalid_lifetime",
            NotTrustedForDelegation | TrustLevel { .. } | NoUser => "invalid_user",
        }
    }

    /// Numeric code (Exchange uses the 2000000 range for S2S failures).
    pub fn code(&self) -> u32 {
        match self.category() {
            "invalid_token" => 2_000_001,
            "invalid_signature" => 2_000_002,
            "invalid_issuer" => 2_000_003,
            "invalid_tenant" => 2_000_004,
            "invalid_resource" => 2_000_005,
            "invalid_lifetime" => 2_000_006,
            _ => 2_000_007,
        }
    }

    /// The `x-ms-diagnostics` header value.
    pub fn diagnostic(&self) -> String {
        let reason = self.to_string().replace(['"', '\r', '\n'], "'");
        format!("{};reason=\"{reason}\";error_category=\"{}\"", self.code(), self.category())
    }
}

/// The `WWW-Authenticate` challenge for a refused or missing token.
pub fn www_authenticate(client_id: &str, trusted_issuers: &str) -> String {
    format!(
        "Bearer client_id=\"{client_id}\", trusted_issuers=\"{trusted_issuers}\", token_types=\"{}\"",
        crate::TOKEN_TYPES
    )
}

struct Jwt<'a> {
    header: Value,
    claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

fn decode_json(part: &str, what: &str) -> Result<Value, TokenError> {
    let bytes = b64url_decode(part).ok_or_else(|| TokenError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(format!("the {what} is not JSON")))
}

fn split(token: &str) -> Result<Jwt<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed(format!("longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("a JWT has three dot-separated parts".into()));
    };
    let header = decode_json(h, "header")?;
    let claims = match decode_json(c, "payload")? {
        Value::Object(m) => m,
        _ => return Err(TokenError::Malformed("the payload is not a JSON object".into())),
    };
    Ok(Jwt { header, claims, signing_input: &token[..h.len() + 1 + c.len()], signature: s })
}

fn alg(jwt: &Jwt<'_>) -> Result<String, TokenError> {
    jwt.header.get("alg").and_then(Value::as_str).map(str::to_owned).ok_or(TokenError::MissingClaim("alg"))
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, TokenError> {
    claims.get(name).and_then(Value::as_str).ok_or(TokenError::MissingClaim(name))
}

/// `nbf`/`exp` as strings or numbers, Unix seconds or Windows FILETIME (100 ns since 1601).
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<i64, TokenError> {
    let raw: i128 = match claims.get(name) {
        None => return Err(TokenError::MissingClaim(name)),
        Some(Value::String(s)) => s.trim().parse::<i128>().map_err(|_| TokenError::BadTime(name))?,
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i128::from(i),
            (None, Some(f)) if f.is_finite() && f.abs() < 1e20 => f.floor() as i128,
            _ => return Err(TokenError::BadTime(name)),
        },
        Some(_) => return Err(TokenError::BadTime(name)),
    };
    let secs = if raw > 100_000_000_000_000 { raw / 10_000_000 - 11_644_473_600 } else { raw };
    i64::try_from(secs).map_err(|_| TokenError::BadTime(name))
}

fn check_lifetime(claims: &Map<String, Value>, now: i64, skew: i64) -> Result<i64, TokenError> {
    let nbf = time_claim(claims, "nbf")?;
    let exp = time_claim(claims, "exp")?;
    if exp.saturating_add(skew) <= now {
        return Err(TokenError::Expired { exp, now });
    }
    if nbf.saturating_sub(skew) > now {
        return Err(TokenError::NotYetValid { nbf, now });
    }
    Ok(exp)
}

/// The audience rules: three parts; client_id ours (case-sensitive); host ours
/// (case-insensitive); realm the source realm (case-sensitive) and one we accept.
fn check_audience(
    claims: &Map<String, Value>,
    policy: &ValidationPolicy,
    source_realm: &str,
) -> Result<(), TokenError> {
    let candidates: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::MissingClaim("aud")),
    };
    let mut first_error = None;
    for raw in candidates {
        let result = (|| {
            let aud = Audience::parse(raw).ok_or_else(|| TokenError::WrongAudience {
                audience: raw.into(),
                reason: "it must have three parts, client_id/host@realm".into(),
            })?;
            if aud.client_id != policy.client_id {
                return Err(TokenError::WrongAudience {
                    audience: raw.into(),
                    reason: format!("the client id must be {} (case-sensitive)", policy.client_id),
                });
            }
            if !policy.hostnames.iter().any(|h| h.eq_ignore_ascii_case(&aud.host)) {
                return Err(TokenError::WrongAudience {
                    audience: raw.into(),
                    reason: format!("the host {} is not this server ({})", aud.host, policy.hostnames.join(", ")),
                });
            }
            if aud.realm != source_realm {
                return Err(TokenError::WrongRealm { found: aud.realm, expected: source_realm.into() });
            }
            if !policy.realms.iter().any(|r| r == "*" || *r == aud.realm) {
                return Err(TokenError::WrongRealm { found: aud.realm, expected: policy.realms.join(", ") });
            }
            Ok(())
        })();
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(TokenError::MissingClaim("aud")))
}

struct Actor<'p> {
    partner: &'p TrustedPartner,
    realm: String,
    nameid: String,
    exp: i64,
    claims: Map<String, Value>,
}

fn validate_actor<'p>(
    token: &str,
    policy: &ValidationPolicy,
    partners: &'p [TrustedPartner],
    now: i64,
) -> Result<Actor<'p>, TokenError> {
    let jwt = split(token)?;
    let alg = alg(&jwt)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::UnsignedActor(alg));
    }
    if alg != "RS256" {
        return Err(TokenError::UnsupportedAlgorithm(alg));
    }
    let x5t = jwt.header.get("x5t").and_then(Value::as_str).ok_or(TokenError::MissingX5t)?;
    let x5t = x5t.trim_end_matches('=');
    let holders: Vec<(&TrustedPartner, &VerifyingKey)> =
        partners.iter().filter_map(|p| p.keys.iter().find(|k| k.x5t == x5t).map(|k| (p, k))).collect();
    let Some((_, key)) = holders.first() else {
        return Err(TokenError::UnknownKey(x5t.into()));
    };
    let sig = b64url_decode(jwt.signature).ok_or_else(|| TokenError::BadSignature(key.thumbprint.clone()))?;
    if !key.verify(jwt.signing_input.as_bytes(), &sig) {
        return Err(TokenError::BadSignature(key.thumbprint.clone()));
    }
    let iss = string_claim(&jwt.claims, "iss")?;
    let (app, realm) = iss.rsplit_once('@').ok_or_else(|| TokenError::UntrustedIssuer(iss.into()))?;
    let partner = holders
        .iter()
        .map(|(p, _)| *p)
        .find(|p| p.application_id == app)
        .ok_or_else(|| TokenError::UntrustedIssuer(iss.into()))?;
    if let Some(r) = partner.realm.as_deref().filter(|r| *r != "*")
        && r != realm
    {
        return Err(TokenError::WrongRealm { found: realm.into(), expected: r.into() });
    }
    if !partner.enabled {
        return Err(TokenError::PartnerDisabled(partner.name.clone()));
    }
    let nameid = string_claim(&jwt.claims, "nameid")?.to_owned();
    check_audience(&jwt.claims, policy, realm)?;
    let exp = check_lifetime(&jwt.claims, now, policy.max_skew)?;
    Ok(Actor { partner, realm: realm.into(), nameid, exp, claims: jwt.claims })
}

fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Bool(b)) => *b,
        _ => false,
    }
}

/// Validates an S2S token (an outer token with an actor inside, or an actor token alone for an
/// app-only call) against the trusted partners, at time `now` (Unix seconds).
pub fn validate(
    token: &str,
    policy: &ValidationPolicy,
    partners: &[TrustedPartner],
    now: i64,
) -> Result<Validated, TokenError> {
    let outer = split(token)?;
    let alg = alg(&outer)?;
    if !alg.eq_ignore_ascii_case("none") {
        // An actor token alone: the partner acts as itself.
        let actor = validate_actor(token, policy, partners, now)?;
        if actor.partner.trust_level == TrustLevel::User {
            return Err(TokenError::TrustLevel {
                partner: actor.partner.name.clone(),
                level: TrustLevel::User,
                what: "it cannot act as itself",
            });
        }
        return Ok(Validated {
            partner: actor.partner.name.clone(),
            application_id: actor.partner.application_id.clone(),
            realm: actor.realm,
            user: None,
            sip: None,
            rights: vec![],
            expires_at: actor.exp,
            claims: json!({ "actor": actor.claims }),
        });
    }
    if !outer.signature.is_empty() {
        return Err(TokenError::Malformed("an unsigned outer token has an empty signature part".into()));
    }
    let Some(actor_token) = outer.claims.get("actortoken").and_then(Value::as_str) else {
        // An unsigned token with no actor inside claims everything and proves nothing.
        return Err(TokenError::UnsignedActor(alg));
    };
    let actor = validate_actor(actor_token, policy, partners, now)?;
    let outer_iss = string_claim(&outer.claims, "iss")?;
    if outer_iss != actor.nameid {
        return Err(TokenError::IssuerMismatch { outer_iss: outer_iss.into(), nameid: actor.nameid });
    }
    check_audience(&outer.claims, policy, &actor.realm)?;
    let outer_exp = check_lifetime(&outer.claims, now, policy.max_skew)?;
    if !is_true(actor.claims.get("trustedfordelegation")) {
        return Err(TokenError::NotTrustedForDelegation);
    }
    if actor.partner.trust_level == TrustLevel::Application {
        return Err(TokenError::TrustLevel {
            partner: actor.partner.name.clone(),
            level: TrustLevel::Application,
            what: "it may act only as itself, not as a user",
        });
    }
    let user = ["smtp", "upn", "nameid"]
        .iter()
        .filter_map(|c| outer.claims.get(*c).and_then(Value::as_str))
        .find(|v| v.contains('@'))
        .ok_or(TokenError::NoUser)?
        .to_owned();
    let domain = user.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if domain.is_empty() || !policy.user_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return Err(TokenError::UserOutsideRealm(user));
    }
    let mut shown = outer.claims.clone();
    shown.remove("actortoken");
    Ok(Validated {
        partner: actor.partner.name.clone(),
        application_id: actor.partner.application_id.clone(),
        realm: actor.realm,
        sip: outer.claims.get("sip").and_then(Value::as_str).map(str::to_owned),
        user: Some(user),
        rights: vec![Right::UserApplication, Right::ArchiveApplication],
        expires_at: actor.exp.min(outer_exp),
        claims: json!({ "actor": actor.claims, "outer": shown }),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{EXCHANGE_APP_ID, LYNC_APP_ID, testkit};

    const NOW: i64 = 1_800_000_000;
    const REALM: &str = "litwareinc.com";
    const HOST: &str = "mail.litwareinc.com";

    fn policy() -> ValidationPolicy {
        ValidationPolicy::new(
            EXCHANGE_APP_ID,
            vec![HOST.into(), "autodiscover.litwareinc.com".into()],
            vec![REALM.into()],
            vec![REALM.into()],
        )
    }

    fn partner() -> TrustedPartner {
        TrustedPartner {
            name: "Lync".into(),
            application_id: LYNC_APP_ID.into(),
            realm: Some(REALM.into()),
            enabled: true,
            trust_level: TrustLevel::Full,
            keys: vec![testkit::signing(0).certificate().clone(), testkit::signing(2).certificate().clone()],
        }
    }

    fn aud() -> Audience {
        Audience::new(EXCHANGE_APP_ID, HOST, REALM)
    }

    fn alice() -> UserIdentity {
        UserIdentity { smtp: "alice@litwareinc.com".into(), sip: Some("sip:alice@litwareinc.com".into()) }
    }

    fn good() -> String {
        mint_user_token(&testkit::signing(0), LYNC_APP_ID, REALM, &aud(), &alice(), NOW, 3600).unwrap()
    }

    /// Signs arbitrary actor claims/header with key `slot`.
    fn actor_with(slot: usize, header: Value, claims: Value) -> String {
        let input = format!("{}.{}", encode_part(&header), encode_part(&claims));
        let sig = testkit::signing(slot).sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(&sig))
    }

    fn actor_claims() -> Value {
        json!({"aud": aud().to_string(), "iss": format!("{LYNC_APP_ID}@{REALM}"), "nameid": format!("{LYNC_APP_ID}@{REALM}"),
               "nbf": NOW.to_string(), "exp": (NOW + 3600).to_string(), "trustedfordelegation": "true"})
    }

    fn header(slot: usize) -> Value {
        json!({"typ": "JWT", "alg": "RS256", "x5t": testkit::signing(slot).certificate().x5t})
    }

    fn outer_with(actor: &str, claims: Value) -> String {
        let mut c = claims;
        c["actortoken"] = Value::String(actor.into());
        format!("{}.{}.", encode_part(&json!({"typ": "JWT", "alg": "none"})), encode_part(&c))
    }

    fn outer_claims() -> Value {
        json!({"aud": aud().to_string(), "iss": format!("{LYNC_APP_ID}@{REALM}"), "nameid": "alice@litwareinc.com",
               "smtp": "alice@litwareinc.com", "nbf": NOW.to_string(), "exp": (NOW + 3600).to_string()})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    fn check(token: &str) -> Result<Validated, TokenError> {
        validate(token, &policy(), &[partner()], NOW)
    }

    #[test]
    fn valid_variants_are_accepted() {
        let v = check(&good()).unwrap();
        assert_eq!(v.user.as_deref(), Some("alice@litwareinc.com"));
        assert_eq!(v.sip.as_deref(), Some("sip:alice@litwareinc.com"));
        assert_eq!(v.rights, vec![Right::UserApplication, Right::ArchiveApplication]);
        assert_eq!(v.partner, "Lync");
        assert_eq!(v.expires_at, NOW + 3600);

        let actor = |claims: Value| actor_with(0, header(0), claims);
        // Host in another case; numbers instead of strings; FILETIME; second key; skew inside bounds;
        // audience as an array; upn instead of smtp; app-only actor token.
        let ft = |unix: i64| ((unix + 11_644_473_600) * 10_000_000).to_string();
        let variants = [
            outer_with(
                &actor(with(actor_claims(), "aud", json!(format!("{EXCHANGE_APP_ID}/MAIL.LitwareInc.com@{REALM}")))),
                outer_claims(),
            ),
            outer_with(
                &actor(with(with(actor_claims(), "nbf", json!(NOW)), "exp", json!(NOW + 60))),
                with(outer_claims(), "exp", json!(NOW + 60)),
            ),
            outer_with(
                &actor(with(with(actor_claims(), "nbf", json!(ft(NOW))), "exp", json!(ft(NOW + 600)))),
                outer_claims(),
            ),
            outer_with(&actor_with(2, header(2), actor_claims()), outer_claims()),
            outer_with(&actor(with(actor_claims(), "nbf", json!((NOW + 200).to_string()))), outer_claims()),
            outer_with(&actor(with(actor_claims(), "exp", json!((NOW - 200).to_string()))), outer_claims()),
            outer_with(&actor(with(actor_claims(), "aud", json!(["x", aud().to_string()]))), outer_claims()),
            outer_with(
                &actor(actor_claims()),
                with(with(outer_claims(), "smtp", Value::Null), "upn", json!("bob@LITWAREINC.COM")),
            ),
        ];
        for (i, t) in variants.iter().enumerate() {
            assert!(check(t).is_ok(), "variant {i}: {:?}", check(t));
        }
        let app_only = check(&actor(actor_claims())).unwrap();
        assert_eq!(app_only.user, None);
        assert!(app_only.rights.is_empty());
    }

    #[test]
    fn negative_matrix() {
        let actor = |claims: Value| actor_with(0, header(0), claims);
        let good_actor = actor(actor_claims());
        let aud_with = |a: String| with(actor_claims(), "aud", json!(a));
        let mut tampered = good_actor.clone();
        tampered.replace_range(tampered.len() - 6.., "AAAAAA");
        let unsigned_actor = format!(
            "{}.{}.",
            encode_part(&json!({"alg": "none", "x5t": testkit::signing(0).certificate().x5t})),
            encode_part(&actor_claims())
        );
        let hs256 =
            format!("{}.{}.AAAA", encode_part(&json!({"alg": "HS256", "x5t": "x"})), encode_part(&actor_claims()));
        let mut disabled = partner();
        disabled.enabled = false;
        let mut app_level = partner();
        app_level.trust_level = TrustLevel::Application;
        let mut user_level = partner();
        user_level.trust_level = TrustLevel::User;
        let mut other_app = partner();
        other_app.application_id = EXCHANGE_APP_ID.into();

        type Case = (&'static str, String, Vec<TrustedPartner>, &'static str);
        let p = || vec![partner()];
        let cases: Vec<Case> = vec![
            ("bad signature", outer_with(&tampered, outer_claims()), p(), "invalid_signature"),
            (
                "signed by another key with a trusted x5t",
                outer_with(&actor_with(1, header(0), actor_claims()), outer_claims()),
                p(),
                "invalid_signature",
            ),
            ("alg none actor", outer_with(&unsigned_actor, outer_claims()), p(), "invalid_signature"),
            (
                "outer with no actor",
                format!("{}.{}.", encode_part(&json!({"alg": "none"})), encode_part(&outer_claims())),
                p(),
                "invalid_signature",
            ),
            ("HS256 actor", outer_with(&hs256, outer_claims()), p(), "invalid_signature"),
            (
                "unknown x5t",
                outer_with(&actor_with(1, header(1), actor_claims()), outer_claims()),
                p(),
                "invalid_signature",
            ),
            (
                "no x5t",
                outer_with(&actor_with(0, json!({"alg": "RS256"}), actor_claims()), outer_claims()),
                p(),
                "invalid_signature",
            ),
            (
                "expired",
                outer_with(&actor(with(actor_claims(), "exp", json!((NOW - 301).to_string()))), outer_claims()),
                p(),
                "invalid_lifetime",
            ),
            (
                "outer expired",
                outer_with(&good_actor, with(outer_claims(), "exp", json!(NOW - 400))),
                p(),
                "invalid_lifetime",
            ),
            (
                "not yet valid",
                outer_with(&actor(with(actor_claims(), "nbf", json!((NOW + 301).to_string()))), outer_claims()),
                p(),
                "invalid_lifetime",
            ),
            (
                "nbf not a number",
                outer_with(&actor(with(actor_claims(), "nbf", json!("soon"))), outer_claims()),
                p(),
                "invalid_token",
            ),
            (
                "no exp",
                outer_with(&actor(with(actor_claims(), "exp", Value::Null)), outer_claims()),
                p(),
                "invalid_token",
            ),
            (
                "wrong audience host",
                outer_with(&actor(aud_with(format!("{EXCHANGE_APP_ID}/evil.example.com@{REALM}"))), outer_claims()),
                p(),
                "invalid_resource",
            ),
            (
                "wrong audience client id",
                outer_with(&actor(aud_with(format!("{LYNC_APP_ID}/{HOST}@{REALM}"))), outer_claims()),
                p(),
                "invalid_resource",
            ),
            (
                "client id in upper case",
                outer_with(
                    &actor(aud_with(format!("{}/{HOST}@{REALM}", EXCHANGE_APP_ID.to_uppercase()))),
                    outer_claims(),
                ),
                p(),
                "invalid_resource",
            ),
            (
                "two-part audience",
                outer_with(&actor(aud_with(format!("{EXCHANGE_APP_ID}@{REALM}"))), outer_claims()),
                p(),
                "invalid_resource",
            ),
            (
                "wrong audience realm",
                outer_with(&actor(aud_with(format!("{EXCHANGE_APP_ID}/{HOST}@fabrikam.com"))), outer_claims()),
                p(),
                "invalid_tenant",
            ),
            (
                "audience realm in upper case",
                outer_with(&actor(aud_with(format!("{EXCHANGE_APP_ID}/{HOST}@LITWAREINC.COM"))), outer_claims()),
                p(),
                "invalid_tenant",
            ),
            (
                "outer audience wrong",
                outer_with(&good_actor, with(outer_claims(), "aud", json!(format!("{EXCHANGE_APP_ID}/other@{REALM}")))),
                p(),
                "invalid_resource",
            ),
            (
                "untrusted issuer",
                outer_with(
                    &actor(with(actor_claims(), "iss", json!(format!("{}@{REALM}", crate::SHAREPOINT_APP_ID)))),
                    outer_claims(),
                ),
                p(),
                "invalid_issuer",
            ),
            ("issuer of another partner", outer_with(&good_actor, outer_claims()), vec![other_app], "invalid_issuer"),
            (
                "issuer realm not the partner's",
                outer_with(
                    &actor(with(
                        with(actor_claims(), "iss", json!(format!("{LYNC_APP_ID}@fabrikam.com"))),
                        "aud",
                        json!(format!("{EXCHANGE_APP_ID}/{HOST}@fabrikam.com")),
                    )),
                    outer_claims(),
                ),
                p(),
                "invalid_tenant",
            ),
            (
                "outer iss is not the actor nameid",
                outer_with(
                    &good_actor,
                    with(outer_claims(), "iss", json!(format!("{}@{REALM}", LYNC_APP_ID.to_uppercase()))),
                ),
                p(),
                "invalid_issuer",
            ),
            ("disabled partner", good(), vec![disabled], "invalid_issuer"),
            (
                "user outside the realm",
                outer_with(&good_actor, with(outer_claims(), "smtp", json!("mallory@fabrikam.com"))),
                p(),
                "invalid_tenant",
            ),
            (
                "no user",
                outer_with(&good_actor, with(with(outer_claims(), "smtp", Value::Null), "nameid", json!("alice"))),
                p(),
                "invalid_user",
            ),
            (
                "not trusted for delegation",
                outer_with(&actor(with(actor_claims(), "trustedfordelegation", json!("false"))), outer_claims()),
                p(),
                "invalid_user",
            ),
            ("Application trust level acting as a user", good(), vec![app_level], "invalid_user"),
            ("User trust level acting as itself", good_actor.clone(), vec![user_level], "invalid_user"),
            ("garbage", "a.b".into(), p(), "invalid_token"),
            ("outer with a signature", format!("{}x", outer_with(&good_actor, outer_claims())), p(), "invalid_token"),
        ];
        for (name, token, partners, category) in cases {
            let err = validate(&token, &policy(), &partners, NOW).expect_err(name);
            assert_eq!(err.category(), category, "{name}: {err}");
            let d = err.diagnostic();
            assert!(
                d.starts_with(&err.code().to_string()) && d.contains(&format!("error_category=\"{category}\"")),
                "{d}"
            );
        }
    }

    #[test]
    fn challenge_and_audience_parsing() {
        let c = www_authenticate(EXCHANGE_APP_ID, &ValidationPolicy::trusted_issuers(&[partner()]));
        assert_eq!(
            c,
            format!(
                "Bearer client_id=\"{EXCHANGE_APP_ID}\", trusted_issuers=\"{LYNC_APP_ID}@{REALM}\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\""
            )
        );
        assert_eq!(Audience::parse("a/b@c").unwrap().to_string(), "a/b@c");
        assert!(Audience::parse("a@c").is_none());
        assert_eq!("user".parse::<TrustLevel>().unwrap(), TrustLevel::User);
    }
}

//! Conferences: provisioning the records (`tandem cs new-conference`, the meeting API the
//! Mailbox calls) in Skype for Business's forms, and the running focus (`focus`) that admits
//! participants, mixes their audio and relays their IM.
//!
//! A conference is named three ways, as Skype for Business names it: the focus URI
//! `sip:alice@domain;gruu;opaque=app:conf:focus:id:ABCD1234` that SIP clients dial, the web
//! join URL `https://<pool>/meet/alice/ABCD1234` written into invitations, and a numeric
//! conference ID for dial-in.

use crate::store::{AccessLevel, ConferenceRow, DataError, FrontendStore};

pub mod media;

/// The opaque parameter's prefix in a focus URI.
pub const FOCUS_OPAQUE_PREFIX: &str = "app:conf:focus:id:";
/// Letters and digits of a conference id.
pub const ID_LEN: usize = 8;
/// Digits of the numeric conference ID.
pub const NUMBER_LEN: usize = 7;
/// Attendees one conference may invite (Skype for Business caps a meeting at 250 people).
pub const MAX_ATTENDEES: usize = 250;
/// Longest subject kept.
pub const MAX_SUBJECT: usize = 255;
/// Draws before giving up when ids collide (each draw collides with odds below 1e-6).
const DRAWS: usize = 8;

/// Starts the focus in a running Front End: from now on requests to focus URIs are answered,
/// media ports come from the range voicemail uses (one pool, so the two never collide).
pub fn spawn(
    core: &std::sync::Arc<crate::sip::SipCore>,
    config: &tandem_config::FrontendConfig,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: tokio_util::sync::CancellationToken,
) -> Option<std::sync::Arc<crate::sip::conference::Focus>> {
    let media_ip = config.sip_udp_listen.ip();
    let ports = match core.voicemail.get() {
        Some(vm) => vm.ports.clone(),
        None => crate::media::ports::PortPool::new(media_ip, config.media_port_min, config.media_port_max),
    };
    match crate::sip::conference::attach(core, ports, media_ip, tasks, shutdown) {
        Ok(f) => {
            tracing::info!("conference focus answering");
            Some(f)
        }
        Err(e) => {
            tracing::error!(error = %e, "the conference focus cannot start; conferences are not answered");
            None
        }
    }
}

/// What a new or changed conference is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceRequest {
    /// The organizer's address of record (`sip:alice@domain`).
    pub organizer: String,
    pub subject: String,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    /// Invited attendees' SIP URIs.
    pub attendees: Vec<String>,
    pub mailbox_uid: Option<String>,
    /// None: the meeting configuration's default.
    pub access_level: Option<AccessLevel>,
}

/// Why a conference could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ConferenceError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("the system random-number generator failed")]
    Random,
    #[error("no free conference id after {DRAWS} draws")]
    Exhausted,
}

/// The user part of an address of record (`alice` of `sip:alice@domain`).
fn user_of(aor: &str) -> Option<&str> {
    let rest = aor.strip_prefix("sip:")?;
    let (user, host) = rest.split_once('@')?;
    (!user.is_empty() && !host.is_empty()).then_some(user)
}

/// The focus URI of a conference of `organizer` (an address of record).
pub fn focus_uri(organizer: &str, id: &str) -> String {
    format!("{organizer};gruu;opaque={FOCUS_OPAQUE_PREFIX}{id}")
}

/// The conference id a Request-URI names, when it is a focus URI of ours (any case of the id).
pub fn focus_id(uri: &tandem_sip_proto::Uri) -> Option<String> {
    let opaque = uri.param("opaque")?;
    let id = opaque.strip_prefix(FOCUS_OPAQUE_PREFIX)?;
    (id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| id.to_ascii_uppercase())
}

/// The web join URL under the Front End's HTTPS base (`https://pool.domain[:port]`).
pub fn join_url(web_base: &str, organizer: &str, id: &str) -> String {
    format!("{}/meet/{}/{id}", web_base.trim_end_matches('/'), user_of(organizer).unwrap_or_default())
}

fn draw(len: usize, alphabet: &[u8]) -> Result<String, ConferenceError> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ConferenceError::Random)?;
    // 256 is not a multiple of 36 or 10; the small bias does not matter for ids that are
    // checked for uniqueness and are not secrets.
    Ok(bytes.iter().map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()])).collect())
}

fn check(req: &ConferenceRequest) -> Result<Vec<String>, ConferenceError> {
    if user_of(&req.organizer).is_none() {
        return Err(ConferenceError::Invalid(format!("organizer {:?} is not a SIP address of record", req.organizer)));
    }
    if req.subject.chars().count() > MAX_SUBJECT {
        return Err(ConferenceError::Invalid(format!("the subject is longer than {MAX_SUBJECT} characters")));
    }
    if let (Some(s), Some(e)) = (req.starts_at, req.ends_at)
        && e < s
    {
        return Err(ConferenceError::Invalid("the meeting ends before it starts".into()));
    }
    if req.attendees.len() > MAX_ATTENDEES {
        return Err(ConferenceError::Invalid(format!("more than {MAX_ATTENDEES} attendees")));
    }
    let mut out = Vec::with_capacity(req.attendees.len());
    for a in &req.attendees {
        let a = a.trim().to_ascii_lowercase();
        let a = if a.starts_with("sip:") { a } else { format!("sip:{a}") };
        if user_of(&a).is_none() {
            return Err(ConferenceError::Invalid(format!("attendee {a:?} is not a SIP URI")));
        }
        out.push(a);
    }
    Ok(out)
}

/// Creates a conference: a fresh id and number, the URIs in Skype for Business's forms, the
/// lobby from the request or the meeting configuration.
pub async fn create(
    store: &FrontendStore,
    web_base: &str,
    req: &ConferenceRequest,
) -> Result<ConferenceRow, ConferenceError> {
    const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let attendees = check(req)?;
    let access_level = match req.access_level {
        Some(a) => a,
        None => store.meeting_configuration().await?.default_access_level(),
    };
    let now = tandem_store::now_unix();
    for _ in 0..DRAWS {
        let id = draw(ID_LEN, ID_ALPHABET)?;
        // The first digit is never 0, so the number reads the same as an integer.
        let number = format!("{}{}", draw(1, b"123456789")?, draw(NUMBER_LEN - 1, b"0123456789")?);
        let row = ConferenceRow {
            focus_uri: focus_uri(&req.organizer, &id),
            join_url: join_url(web_base, &req.organizer, &id),
            conference_number: number,
            organizer: req.organizer.clone(),
            subject: req.subject.clone(),
            starts_at: req.starts_at,
            ends_at: req.ends_at,
            attendees: attendees.clone(),
            mailbox_uid: req.mailbox_uid.clone(),
            access_level,
            created_at: now,
            updated_at: now,
            id,
        };
        match store.create_conference(&row).await {
            Ok(()) => {
                let mut row = row;
                row.attendees.sort();
                row.attendees.dedup();
                return Ok(row);
            }
            Err(DataError::Store(e)) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ConferenceError::Exhausted)
}

/// Changes a conference's schedule, subject, attendees, UID (and lobby when given); None
/// when there is no such conference of that organizer.
pub async fn update(
    store: &FrontendStore,
    id: &str,
    req: &ConferenceRequest,
) -> Result<Option<ConferenceRow>, ConferenceError> {
    let attendees = check(req)?;
    let Some(mut row) = store.conference(id).await? else { return Ok(None) };
    if row.organizer != req.organizer {
        return Ok(None);
    }
    row.subject = req.subject.clone();
    row.starts_at = req.starts_at;
    row.ends_at = req.ends_at;
    row.attendees = attendees;
    row.mailbox_uid = req.mailbox_uid.clone();
    if let Some(a) = req.access_level {
        row.access_level = a;
    }
    row.updated_at = tandem_store::now_unix();
    if !store.update_conference(&row).await? {
        return Ok(None);
    }
    row.attendees.sort();
    row.attendees.dedup();
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_uris_are_skype_for_business_s_and_read_back() {
        let f = focus_uri("sip:alice@litwareinc.com", "AB12CD34");
        assert_eq!(f, "sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:AB12CD34");
        let uri = tandem_sip_proto::Uri::parse(&f).unwrap();
        assert_eq!(focus_id(&uri).as_deref(), Some("AB12CD34"));
        let lower =
            tandem_sip_proto::Uri::parse("sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:ab12cd34").unwrap();
        assert_eq!(focus_id(&lower).as_deref(), Some("AB12CD34"));
        for bad in [
            "sip:alice@litwareinc.com",
            "sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:SHORT",
            "sip:alice@litwareinc.com;gruu;opaque=app:conf:audio-video:id:AB12CD34",
            "sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:AB12CD3!",
        ] {
            assert_eq!(focus_id(&tandem_sip_proto::Uri::parse(bad).unwrap()), None, "{bad}");
        }
        assert_eq!(
            join_url("https://pool.litwareinc.com:4443/", "sip:alice@litwareinc.com", "AB12CD34"),
            "https://pool.litwareinc.com:4443/meet/alice/AB12CD34"
        );
    }

    #[test]
    fn requests_are_checked() {
        let ok = ConferenceRequest {
            organizer: "sip:alice@litwareinc.com".into(),
            subject: "Plan".into(),
            starts_at: Some(10),
            ends_at: Some(20),
            attendees: vec!["Bob@litwareinc.com".into(), "sip:carol@litwareinc.com".into()],
            mailbox_uid: None,
            access_level: None,
        };
        assert_eq!(check(&ok).unwrap(), ["sip:bob@litwareinc.com", "sip:carol@litwareinc.com"]);
        let backwards = ConferenceRequest { ends_at: Some(5), ..ok.clone() };
        assert!(matches!(check(&backwards), Err(ConferenceError::Invalid(_))));
        let nobody = ConferenceRequest { organizer: "alice".into(), ..ok.clone() };
        assert!(matches!(check(&nobody), Err(ConferenceError::Invalid(_))));
        let crowd = ConferenceRequest { attendees: vec!["sip:x@y.z".into(); MAX_ATTENDEES + 1], ..ok };
        assert!(matches!(check(&crowd), Err(ConferenceError::Invalid(_))));
    }
}

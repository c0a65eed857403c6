//! Presence documents: PIDF (RFC 3863) with RPID activities (RFC 4480), read with a small
//! tag scanner that never expands entities or reads a DTD, and written from a typed summary.

use crate::scan::{escape, tags, unescape};

/// The availability a presentity shows, ordered as the aggregation rule ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Availability {
    Offline,
    Available,
    Away,
    Busy,
    OnThePhone,
}

impl Availability {
    /// Aggregation across a user's endpoints: on-the-phone > busy > away > available > offline.
    pub fn aggregate(all: impl IntoIterator<Item = Availability>) -> Availability {
        all.into_iter().max().unwrap_or(Availability::Offline)
    }

    pub fn is_open(self) -> bool {
        self != Availability::Offline
    }

    /// The RPID activity element for this state, if any.
    fn activity(self) -> Option<&'static str> {
        match self {
            Availability::Away => Some("away"),
            Availability::Busy => Some("busy"),
            Availability::OnThePhone => Some("on-the-phone"),
            _ => None,
        }
    }
}

/// What a published document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceSummary {
    pub availability: Availability,
    pub note: Option<String>,
}

/// Why a body is not a usable PIDF document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    #[error("not UTF-8")]
    Encoding,
    #[error("document type declarations and entities are refused")]
    Dtd,
    #[error("no <presence> element")]
    NotPidf,
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    #[error("<basic> must be open or closed, not `{0}`")]
    BasicStatus(String),
}

/// Largest PIDF document accepted.
pub const MAX_PIDF: usize = 32 * 1024;

/// Reads the basic status, RPID activities and the first note of a PIDF document.
pub fn parse(body: &[u8]) -> Result<PresenceSummary, PidfError> {
    if body.len() > MAX_PIDF {
        return Err(PidfError::TooLarge(MAX_PIDF));
    }
    let text = std::str::from_utf8(body).map_err(|_| PidfError::Encoding)?;
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(PidfError::Dtd);
    }
    let tags = tags(text);
    if !tags.iter().any(|t| t.name == "presence" && !t.closing) {
        return Err(PidfError::NotPidf);
    }
    let mut open = false;
    let mut activity: Option<Availability> = None;
    let mut note = None;
    let mut in_activities = false;
    for t in &tags {
        match (t.name.as_str(), t.closing) {
            ("basic", false) => match t.text.trim() {
                b if b.eq_ignore_ascii_case("open") => open = true,
                b if b.eq_ignore_ascii_case("closed") => {}
                // RFC 3863 allows only these two; a client still starting up sends "unknown".
                other => return Err(PidfError::BasicStatus(other.to_owned())),
            },
            ("activities", c) => in_activities = !c && !t.empty,
            ("note", false) if note.is_none() && !t.text.trim().is_empty() => {
                note = Some(unescape(t.text.trim()));
            }
            (a, false) if in_activities => {
                let found = match a {
                    "away" | "vacation" | "sleeping" | "steering" => Some(Availability::Away),
                    "busy" | "meeting" | "appointment" | "performance" | "presentation" | "worship" => {
                        Some(Availability::Busy)
                    }
                    "on-the-phone" => Some(Availability::OnThePhone),
                    _ => None,
                };
                if let Some(f) = found {
                    activity = Some(activity.map_or(f, |x| x.max(f)));
                }
            }
            _ => {}
        }
    }
    let availability = if !open { Availability::Offline } else { activity.unwrap_or(Availability::Available) };
    Ok(PresenceSummary { availability, note })
}

/// A PIDF document for `entity` (a SIP URI) with RPID activities.
pub fn render(entity: &str, summary: &PresenceSummary) -> Vec<u8> {
    render_activity(entity, summary, None)
}

/// A PIDF document whose RPID activity is `activity` (such as `meeting` or `vacation`, which the
/// server derives from the calendar) instead of the one the availability implies.
pub fn render_activity(entity: &str, summary: &PresenceSummary, activity: Option<&str>) -> Vec<u8> {
    render_person(entity, summary, activity, None)
}

/// [`render_activity`] with an RPID `status-icon` (RFC 4480 §3.10) on the person: the URL of an
/// image that represents the presentity (the user's photo).
pub fn render_person(
    entity: &str,
    summary: &PresenceSummary,
    activity: Option<&str>,
    status_icon: Option<&str>,
) -> Vec<u8> {
    let basic = if summary.availability.is_open() { "open" } else { "closed" };
    let mut doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{}\">\n\
         <tuple id=\"tandem\"><status><basic>{basic}</basic></status></tuple>\n",
        escape(entity)
    );
    doc.push_str("<dm:person id=\"p\">");
    if let Some(a) = activity.filter(|_| summary.availability.is_open()).or(summary.availability.activity()) {
        doc.push_str(&format!("<rpid:activities><rpid:{a}/></rpid:activities>"));
    }
    if let Some(icon) = status_icon {
        doc.push_str(&format!("<rpid:status-icon>{}</rpid:status-icon>", escape(icon)));
    }
    doc.push_str("</dm:person>\n");
    if let Some(n) = &summary.note {
        doc.push_str(&format!("<note>{}</note>\n", escape(n)));
    }
    doc.push_str("</presence>\n");
    doc.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baresip_style_document() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@x.com">
<dm:person id="p4159"><rpid:activities><rpid:busy/></rpid:activities></dm:person>
<tuple id="t4109"><status><basic>open</basic></status><contact>sip:bob@x.com</contact></tuple>
<note>in a call &amp; more</note>
</presence>"#;
        let s = parse(doc).unwrap();
        assert_eq!(s.availability, Availability::Busy);
        assert_eq!(s.note.as_deref(), Some("in a call & more"));
        assert_eq!(parse(&render("sip:bob@x.com", &s)).unwrap(), s);
        let closed = parse(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"><status><basic>closed</basic></status></tuple></presence>"#).unwrap();
        assert_eq!(closed.availability, Availability::Offline);
        assert_eq!(parse(b"<!DOCTYPE x [<!ENTITY a 'b'>]><presence/>"), Err(PidfError::Dtd));
        assert_eq!(parse(b"<foo/>"), Err(PidfError::NotPidf));
        assert!(matches!(
            parse(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="x"><status><basic>unknown</basic></status></tuple></presence>"#),
            Err(PidfError::BasicStatus(_))
        ));
    }

    #[test]
    fn calendar_activities_are_written_and_read_back() {
        let s = PresenceSummary { availability: Availability::Busy, note: Some("In a meeting".into()) };
        let doc = String::from_utf8(render_activity("sip:bob@x.com", &s, Some("meeting"))).unwrap();
        assert!(doc.contains("<rpid:meeting/>") && !doc.contains("<rpid:busy/>"), "{doc}");
        assert_eq!(parse(doc.as_bytes()).unwrap(), s);
        let off = PresenceSummary { availability: Availability::Offline, note: Some("On leave".into()) };
        let doc = String::from_utf8(render_activity("sip:bob@x.com", &off, Some("vacation"))).unwrap();
        assert!(doc.contains("<basic>closed</basic>") && !doc.contains("vacation"), "{doc}");
    }

    #[test]
    fn the_status_icon_is_on_the_person_and_escaped() {
        let s = PresenceSummary { availability: Availability::Available, note: None };
        let url = "https://mail.x.com/EWS/Exchange.asmx/s/GetUserPhoto?email=bob@x.com&size=HR96x96";
        let doc = String::from_utf8(render_person("sip:bob@x.com", &s, None, Some(url))).unwrap();
        assert!(doc.contains("<dm:person id=\"p\"><rpid:status-icon>https://mail.x.com/EWS/Exchange.asmx/s/GetUserPhoto?email=bob@x.com&amp;size=HR96x96</rpid:status-icon></dm:person>"), "{doc}");
        assert_eq!(parse(doc.as_bytes()).unwrap(), s);
        assert!(!String::from_utf8(render_activity("sip:bob@x.com", &s, None)).unwrap().contains("status-icon"));
    }

    #[test]
    fn aggregation_order() {
        use Availability::*;
        assert_eq!(Availability::aggregate([Available, Away]), Away);
        assert_eq!(Availability::aggregate([Busy, OnThePhone, Available]), OnThePhone);
        assert_eq!(Availability::aggregate([]), Offline);
    }
}

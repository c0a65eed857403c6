//! The conference event package's document (RFC 4575, `application/conference-info+xml`): the
//! focus's view of a conference — its description and the users in it with their endpoints'
//! status — as full state first, then partial state naming only who changed (a user that left
//! is sent once with `state="deleted"`). Built only: the Front End is the focus, never a watcher.

use crate::scan::escape;

/// The MIME type of the document.
pub const CONTENT_TYPE: &str = "application/conference-info+xml";

/// Full state (the first NOTIFY, and after a refresh) or partial state (only the changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocState {
    Full,
    Partial,
}

impl DocState {
    fn as_str(self) -> &'static str {
        match self {
            DocState::Full => "full",
            DocState::Partial => "partial",
        }
    }
}

/// An endpoint's status (RFC 4575 §5.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Connected,
    /// Waiting to be let in (the lobby).
    Pending,
    OnHold,
    Disconnected,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Connected => "connected",
            EndpointStatus::Pending => "pending",
            EndpointStatus::OnHold => "on-hold",
            EndpointStatus::Disconnected => "disconnected",
        }
    }
}

/// One endpoint (a dialog with the focus) of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint's URI (its Contact, or the user's URI with the dialog's tag).
    pub entity: String,
    pub status: EndpointStatus,
    /// Dialed in (`dialed-in`) or brought in by the focus (`dialed-out`).
    pub dialed_in: bool,
    /// Whether the endpoint's audio is mixed (false: muted or held).
    pub audio_mixed: bool,
}

/// A user of the conference, with the roles Skype for Business gives (`presenter`, `attendee`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfUser {
    pub entity: String,
    pub display_text: Option<String>,
    pub roles: Vec<String>,
    /// Sent once in a partial document after the user's last endpoint left.
    pub deleted: bool,
    pub endpoints: Vec<Endpoint>,
}

/// A `conference-info` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceInfo {
    /// The focus URI.
    pub entity: String,
    /// Counts up by one per document sent to the subscriber (RFC 4575 §4.6).
    pub version: u32,
    pub state: DocState,
    pub subject: Option<String>,
    /// Users connected (or waiting) in all (for full and partial state alike).
    pub user_count: usize,
    /// Whether the conference is active (false in the last document, when it ended).
    pub active: bool,
    pub users: Vec<ConfUser>,
}

impl ConferenceInfo {
    pub fn render(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256 + self.users.len() * 256);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(&format!(
            "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"{}\" state=\"{}\" version=\"{}\">\n",
            escape(&self.entity),
            self.state.as_str(),
            self.version
        ));
        if self.state == DocState::Full {
            s.push_str(" <conference-description>\n");
            if let Some(subject) = &self.subject {
                s.push_str(&format!("  <subject>{}</subject>\n", escape(subject)));
            }
            s.push_str("  <available-media><entry label=\"audio\"><type>audio</type></entry></available-media>\n");
            s.push_str(" </conference-description>\n");
        }
        s.push_str(&format!(
            " <conference-state><user-count>{}</user-count><active>{}</active></conference-state>\n",
            self.user_count, self.active
        ));
        s.push_str(&format!(" <users state=\"{}\">\n", self.state.as_str()));
        for u in &self.users {
            let state = if u.deleted { "deleted" } else { self.state.as_str() };
            s.push_str(&format!("  <user entity=\"{}\" state=\"{state}\">\n", escape(&u.entity)));
            if u.deleted {
                s.push_str("  </user>\n");
                continue;
            }
            if let Some(d) = &u.display_text {
                s.push_str(&format!("   <display-text>{}</display-text>\n", escape(d)));
            }
            if !u.roles.is_empty() {
                s.push_str("   <roles>");
                for r in &u.roles {
                    s.push_str(&format!("<entry>{}</entry>", escape(r)));
                }
                s.push_str("</roles>\n");
            }
            for e in &u.endpoints {
                s.push_str(&format!("   <endpoint entity=\"{}\" state=\"full\">\n", escape(&e.entity)));
                s.push_str(&format!("    <status>{}</status>\n", e.status.as_str()));
                let how = if e.dialed_in { "dialed-in" } else { "dialed-out" };
                s.push_str(&format!("    <joining-method>{how}</joining-method>\n"));
                s.push_str(&format!(
                    "    <media id=\"1\"><type>audio</type><status>{}</status></media>\n",
                    if e.audio_mixed { "sendrecv" } else { "inactive" }
                ));
                s.push_str("   </endpoint>\n");
            }
            s.push_str("  </user>\n");
        }
        s.push_str(" </users>\n</conference-info>\n");
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_then_partial_documents() {
        let alice = ConfUser {
            entity: "sip:alice@litwareinc.com".into(),
            display_text: Some("Alice <A&B>".into()),
            roles: vec!["presenter".into()],
            deleted: false,
            endpoints: vec![Endpoint {
                entity: "sip:alice@litwareinc.com;tag=1".into(),
                status: EndpointStatus::Connected,
                dialed_in: true,
                audio_mixed: true,
            }],
        };
        let mut doc = ConferenceInfo {
            entity: "sip:alice@litwareinc.com;gruu;opaque=app:conf:focus:id:AB12CD34".into(),
            version: 1,
            state: DocState::Full,
            subject: Some("Plan".into()),
            user_count: 1,
            active: true,
            users: vec![alice.clone()],
        };
        let full = String::from_utf8(doc.render()).unwrap();
        assert!(full.contains("state=\"full\" version=\"1\""), "{full}");
        assert!(full.contains("<subject>Plan</subject>"));
        assert!(full.contains("<display-text>Alice &lt;A&amp;B&gt;</display-text>"));
        assert!(full.contains("<status>connected</status>"));
        assert!(full.contains("<user-count>1</user-count>"));
        doc.state = DocState::Partial;
        doc.version = 2;
        doc.user_count = 0;
        doc.users = vec![ConfUser { deleted: true, ..alice }];
        let partial = String::from_utf8(doc.render()).unwrap();
        assert!(partial.contains("state=\"partial\" version=\"2\""));
        assert!(partial.contains("<user entity=\"sip:alice@litwareinc.com\" state=\"deleted\">"));
        assert!(!partial.contains("<subject>"), "the description is full state only");
        assert!(!partial.contains("<endpoint"));
    }
}

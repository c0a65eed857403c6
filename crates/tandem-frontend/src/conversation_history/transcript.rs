//! A conversation's transcript as its Conversation History item shows it: the subject (the first
//! message's first line, as Skype for Business names a conversation by its first words) and an
//! HTML body with the start and end and, per message, its time, sender and text. Everything a
//! user typed is escaped, so HTML or script in an IM shows as the text it was. No I/O.

use std::fmt::Write as _;

use crate::store::{ConversationKind, ConversationMessage, ConversationRow};

/// Subjects are cut to this many characters (Outlook shows far fewer; Exchange takes 255).
pub const MAX_SUBJECT_CHARS: usize = 255;

/// A participant as the transcript names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub sip_uri: String,
    pub display_name: String,
    /// Their mailbox address, when they have one.
    pub smtp: Option<String>,
}

impl Person {
    fn name(&self) -> &str {
        if self.display_name.is_empty() { self.sip_uri.trim_start_matches("sip:") } else { &self.display_name }
    }
}

/// The subject: the first message's first non-empty line, trimmed and cut to
/// [`MAX_SUBJECT_CHARS`]; a conversation of empty messages is named by its participants.
pub fn subject(messages: &[ConversationMessage], people: &[Person]) -> String {
    let first = messages.first().and_then(|m| m.text.lines().map(str::trim).find(|l| !l.is_empty()));
    match first {
        Some(line) => {
            let cut: String = line.chars().filter(|c| !c.is_control()).take(MAX_SUBJECT_CHARS).collect();
            cut.trim_end().to_owned()
        }
        None => {
            let names: Vec<&str> = people.iter().map(Person::name).collect();
            format!("Conversation with {}", names.join(", "))
        }
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// HTML text with `&`, `<`, `>`, `"` and `'` escaped, line breaks kept as `<br>`.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The HTML body: participants, start and end, then each message with its time and sender.
pub fn html_body(c: &ConversationRow, messages: &[ConversationMessage], people: &[Person]) -> String {
    let name_of = |uri: &str| -> String {
        people
            .iter()
            .find(|p| p.sip_uri == uri)
            .map_or_else(|| uri.trim_start_matches("sip:").to_owned(), |p| p.name().to_owned())
    };
    let ended_at = messages.last().map_or(c.last_at, |m| m.sent_at).max(c.last_at);
    let mut s = String::from(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body>",
    );
    let names: Vec<String> = people.iter().map(|p| escape_html(p.name())).collect();
    let _ = write!(
        s,
        "<div class=\"tandem-conversation\"><p>Conversation with {}</p><p>Started: {}<br>Ended: {}</p><table>",
        names.join(", "),
        utc(c.started_at),
        utc(ended_at)
    );
    // In the order they were sent: a message answered late may have reached the queue after
    // a later one.
    let mut ordered: Vec<&ConversationMessage> = messages.iter().collect();
    ordered.sort_by_key(|m| (m.sent_at, m.seq));
    for m in ordered {
        let _ = write!(
            s,
            "<tr><td class=\"time\">{}</td><td class=\"sender\">{}</td><td class=\"text\">{}</td></tr>",
            utc(m.sent_at),
            escape_html(&name_of(&m.sender)),
            escape_html(&m.text)
        );
    }
    s.push_str("</table></div></body></html>");
    s
}

/// `h:mm:ss`.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A call's subject as `owner` sees it.
pub fn call_subject(c: &ConversationRow, people: &[Person], owner: &str) -> String {
    let other = people.iter().find(|p| p.sip_uri != owner).map_or("", Person::name);
    match c.kind {
        ConversationKind::MissedCall => format!("Missed call from {other}"),
        _ if c.initiator == owner => format!("Call to {other}"),
        _ => format!("Call from {other}"),
    }
}

/// A call log or missed call as `owner` sees it: who, the direction, the start and the
/// duration (or why it was missed). No audio is kept.
pub fn call_body(c: &ConversationRow, people: &[Person], owner: &str) -> String {
    let name = |uri: &str| {
        people
            .iter()
            .find(|p| p.sip_uri == uri)
            .map_or_else(|| uri.trim_start_matches("sip:").to_owned(), |p| p.name().to_owned())
    };
    let callee = c.participants.iter().find(|p| **p != c.initiator).map_or("", String::as_str);
    let direction = if c.initiator == owner { "Outgoing" } else { "Incoming" };
    let mut s = String::from(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><div class=\"tandem-call\">",
    );
    let _ = write!(
        s,
        "<p>Caller: {}<br>Callee: {}<br>Direction: {direction}<br>Start: {}<br>",
        escape_html(&name(&c.initiator)),
        escape_html(&name(callee)),
        utc(c.started_at)
    );
    match (c.kind, &c.detail) {
        (ConversationKind::MissedCall, detail) => {
            let _ = write!(s, "Missed: {}</p>", escape_html(detail.as_deref().unwrap_or("unavailable")));
        }
        _ => {
            let _ = write!(s, "End: {}<br>Duration: {}</p>", utc(c.last_at), duration(c.last_at - c.started_at));
        }
    }
    s.push_str("</div></body></html>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> Vec<Person> {
        vec![
            Person {
                sip_uri: "sip:alice@x.com".into(),
                display_name: "Alice <A>".into(),
                smtp: Some("alice@x.com".into()),
            },
            Person { sip_uri: "sip:bob@x.com".into(), display_name: String::new(), smtp: None },
        ]
    }

    fn msg(seq: i64, at: i64, sender: &str, text: &str) -> ConversationMessage {
        ConversationMessage { conversation_id: "c".into(), seq, sent_at: at, sender: sender.into(), text: text.into() }
    }

    #[test]
    fn calls_show_direction_start_and_duration() {
        let c = ConversationRow {
            id: "c".into(),
            kind: ConversationKind::Call,
            participants: ["sip:alice@x.com".into(), "sip:bob@x.com".into()],
            initiator: "sip:bob@x.com".into(),
            started_at: 0,
            last_at: 3_725_900,
            ..ConversationRow::default()
        };
        let p = people();
        assert_eq!(call_subject(&c, &p, "sip:alice@x.com"), "Call from bob@x.com");
        assert_eq!(call_subject(&c, &p, "sip:bob@x.com"), "Call to Alice <A>");
        let body = call_body(&c, &p, "sip:alice@x.com");
        assert!(body.contains("Caller: bob@x.com<br>Callee: Alice &lt;A&gt;<br>Direction: Incoming"), "{body}");
        assert!(body.contains("Duration: 1:02:05"), "{body}");
        assert!(call_body(&c, &p, "sip:bob@x.com").contains("Direction: Outgoing"));
        let missed =
            ConversationRow { kind: ConversationKind::MissedCall, detail: Some("busy".into()), last_at: 0, ..c };
        assert_eq!(call_subject(&missed, &p, "sip:alice@x.com"), "Missed call from bob@x.com");
        let body = call_body(&missed, &p, "sip:alice@x.com");
        assert!(body.contains("Missed: busy") && !body.contains("Duration"), "{body}");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_798_243_200_000 + 3_723_000), "2026-12-26 01:02:03 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn the_subject_is_the_first_line_of_the_first_message() {
        let p = people();
        assert_eq!(subject(&[msg(0, 0, "sip:alice@x.com", "\n  Lunch today?  \nat noon")], &p), "Lunch today?");
        let long = "é".repeat(300);
        assert_eq!(subject(&[msg(0, 0, "sip:alice@x.com", &long)], &p).chars().count(), MAX_SUBJECT_CHARS);
        assert_eq!(subject(&[msg(0, 0, "sip:alice@x.com", " \n ")], &p), "Conversation with Alice <A>, bob@x.com");
        assert_eq!(subject(&[], &p), "Conversation with Alice <A>, bob@x.com");
    }

    #[test]
    fn the_body_escapes_what_users_typed() {
        let c = ConversationRow {
            id: "c".into(),
            kind: crate::store::ConversationKind::Im,
            participants: ["sip:alice@x.com".into(), "sip:bob@x.com".into()],
            initiator: "sip:alice@x.com".into(),
            started_at: 0,
            last_at: 61_000,
            message_count: 2,
            ended: true,
            sip_call_id: None,
            detail: None,
        };
        let m = [
            msg(0, 0, "sip:alice@x.com", "<script>alert('x')</script> & \"q\""),
            msg(1, 61_000, "sip:bob@x.com", "line one\r\nline two\u{7}"),
        ];
        let html = html_body(&c, &m, &people());
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("line one<br>line two</td>"), "{html}");
        assert!(html.contains("Alice &lt;A&gt;"), "display names are escaped too: {html}");
        assert!(html.contains("<td class=\"sender\">bob@x.com</td>"), "{html}");
        assert!(html.contains("Started: 1970-01-01 00:00:00 UTC<br>Ended: 1970-01-01 00:01:01 UTC"), "{html}");
        let first = html.find("alert").unwrap();
        let second = html.find("line one").unwrap();
        assert!(first < second, "messages in order");
    }
}

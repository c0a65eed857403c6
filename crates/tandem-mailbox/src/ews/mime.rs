//! Just enough MIME for EWS: header reading (subject and recipients of MimeContent items) and a
//! plain RFC 5322 rendering of items that were created from typed properties.

use base64::Engine as _;

use crate::data::{Item, element_text};

/// Header fields of a message (folded lines joined), up to the blank line.
/// The item's Internet message id: its MIME `Message-ID` when it has MIME, else the one the
/// generated MIME carries (so InternetMessageId and MimeContent agree).
pub(crate) fn message_id(i: &Item) -> String {
    if let Some(m) = &i.mime
        && let Some(id) = header(&headers(m), "Message-ID").map(str::trim).filter(|v| !v.is_empty())
    {
        return id.to_owned();
    }
    format!("<{}@tandem>", hex::encode(&i.id.as_bytes()[..8.min(i.id.len())]))
}

pub(crate) fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

pub(crate) fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Decodes RFC 2047 encoded words (`=?UTF-8?B?…?=` and `?Q?`) in a header value.
pub(crate) fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let parts: Vec<&str> = after.splitn(3, '?').collect();
        if parts.len() == 3
            && let Some(end) = parts[2].find("?=")
        {
            let (enc, payload) = (parts[1], &parts[2][..end]);
            let bytes = if enc.eq_ignore_ascii_case("B") {
                base64::engine::general_purpose::STANDARD.decode(payload).ok()
            } else {
                Some(q_decode(payload))
            };
            if let Some(b) = bytes {
                out.push_str(&String::from_utf8_lossy(&b));
                rest = &parts[2][end + 2..];
                // Space between two encoded words is not part of the text (RFC 2047 §6.2).
                if rest.trim_start().starts_with("=?") {
                    rest = rest.trim_start();
                }
                continue;
            }
        }
        out.push_str("=?");
        rest = after;
    }
    out.push_str(rest);
    out
}

fn q_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..(i + 3).min(b.len())])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'='),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// SMTP addresses in an address-list header.
pub(crate) fn addresses(v: &str) -> Vec<String> {
    v.split(',')
        .filter_map(|part| {
            let p = part.trim();
            let addr = match (p.rfind('<'), p.rfind('>')) {
                (Some(a), Some(b)) if b > a => &p[a + 1..b],
                _ => p,
            };
            addr.contains('@').then(|| addr.trim().to_owned())
        })
        .collect()
}

/// True when MIME content is an iCalendar object (CalDAV clients through DavMail send these).
pub(crate) fn is_icalendar(raw: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).to_ascii_uppercase();
    head.trim_start().starts_with("BEGIN:VCALENDAR") || head.contains("CONTENT-TYPE: TEXT/CALENDAR")
}

/// SUMMARY, DTSTART, DTEND and LOCATION of the first VEVENT. Times with a TZID are read as UTC
/// (zone conversion is not implemented yet); all-day dates start at midnight UTC.
pub(crate) fn icalendar_event(raw: &[u8]) -> (Option<String>, Option<i64>, Option<i64>, Option<String>) {
    let text = String::from_utf8_lossy(raw).replace("\r\n ", "").replace("\n ", "").replace("\r\n\t", "");
    let (mut summary, mut start, mut end, mut location) = (None, None, None, None);
    let mut in_event = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.eq_ignore_ascii_case("BEGIN:VEVENT") {
            in_event = true;
            continue;
        }
        if line.eq_ignore_ascii_case("END:VEVENT") {
            break;
        }
        if !in_event {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let key = name.split(';').next().unwrap_or("").to_ascii_uppercase();
        match key.as_str() {
            "SUMMARY" => summary = Some(unescape_text(value)),
            "LOCATION" => location = Some(unescape_text(value)),
            "DTSTART" => start = ical_time(value),
            "DTEND" => end = ical_time(value),
            _ => {}
        }
    }
    (summary, start, end, location)
}

fn unescape_text(v: &str) -> String {
    v.replace("\\n", "\n").replace("\\N", "\n").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
}

fn ical_time(v: &str) -> Option<i64> {
    let v = v.trim().trim_end_matches('Z');
    let digits = |r: std::ops::Range<usize>| v.get(r).and_then(|d| d.parse::<i64>().ok());
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, s) = if v.len() >= 15 { (digits(9..11)?, digits(11..13)?, digits(13..15)?) } else { (0, 0, 0) };
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()?;
    let t = time::Time::from_hms(u8::try_from(h).ok()?, u8::try_from(mi).ok()?, u8::try_from(s).ok()?).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

fn ical_stamp(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&fmt).unwrap_or_default()
}

fn ical_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace('\n', "\\n").replace('\r', "")
}

/// An iCalendar rendering of a calendar item made from typed properties, with a VTIMEZONE for
/// its start time zone (DavMail reads the user's zone this way). Times are written in UTC.
pub(crate) fn generate_icalendar(i: &Item, stored: &[(String, String)]) -> Vec<u8> {
    let get = |n: &str| stored.iter().find(|(k, _)| k == n).map(|(_, x)| x.as_str());
    let zone = ["StartTimeZone", "MeetingTimeZone"]
        .iter()
        .find_map(|n| get(n))
        .and_then(|x| {
            let (at, len) = match x.find("TimeZoneName=\"") {
                Some(a) => (a, 14),
                None => (x.find("Id=\"")?, 4),
            };
            let at = at + len;
            Some(x[at..at + x[at..].find('"')?].to_owned())
        })
        .unwrap_or_else(|| "UTC".to_owned());
    let mut out = String::new();
    out.push_str("BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nPRODID:-//Tandem//Mailbox//EN\r\nVERSION:2.0\r\n");
    out.push_str(&format!(
        "BEGIN:VTIMEZONE\r\nTZID:{}\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
        ical_escape(&zone)
    ));
    out.push_str("BEGIN:VEVENT\r\n");
    out.push_str(&format!("UID:{}\r\n", ical_escape(&i.id)));
    out.push_str(&format!("SUMMARY:{}\r\n", ical_escape(&i.subject)));
    if let Some(l) = get("Location") {
        out.push_str(&format!("LOCATION:{}\r\n", ical_escape(&element_text(l))));
    }
    if let Some(s) = i.start_at {
        out.push_str(&format!("DTSTART:{}\r\n", ical_stamp(s)));
    }
    if let Some(e) = i.end_at {
        out.push_str(&format!("DTEND:{}\r\n", ical_stamp(e)));
    }
    out.push_str(&format!("DTSTAMP:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", ical_stamp(i.modified_at)));
    out.into_bytes()
}

/// A MIME rendering of an item made from typed properties (multipart/mixed with its
/// attachments when it has any).
pub(crate) fn generate(i: &Item, stored: &[(String, String)], attachments: &[crate::data::Attachment]) -> Vec<u8> {
    let get = |n: &str| stored.iter().find(|(k, _)| k == n).map(|(_, x)| x.as_str());
    let mut out = String::new();
    let addr_of = |n: &str| get(n).map(element_text).unwrap_or_default();
    if let Some(f) = get("From") {
        out.push_str(&format!("From: {}\r\n", element_text(f)));
    }
    for (n, h) in [("ToRecipients", "To"), ("CcRecipients", "Cc")] {
        let v = addr_of(n);
        if !v.is_empty() {
            out.push_str(&format!(
                "{h}: {}\r\n",
                v.split_whitespace().filter(|w| w.contains('@')).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let subject: String = i.subject.chars().filter(|c| !c.is_control()).collect();
    out.push_str(&format!("Subject: {subject}\r\n"));
    let date = time::OffsetDateTime::from_unix_timestamp(i.sent_at.unwrap_or(i.received_at))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let date = date.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    out.push_str(&format!("Date: {date}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\n", message_id(i)));
    let body = get("Body");
    let html = body.is_some_and(|b| b.contains("BodyType=\"HTML\""));
    let boundary = format!("tandem-{}", hex::encode(&i.id.as_bytes()[..12.min(i.id.len())]));
    if !attachments.is_empty() {
        out.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        if html { "html" } else { "plain" }
    ));
    if let Some(b) = body {
        out.push_str(&element_text(b).replace('\n', "\r\n"));
        out.push_str("\r\n");
    }
    for a in attachments {
        let name: String = a.name.chars().filter(|c| !c.is_control() && *c != '"').collect();
        if a.item_element.is_some() {
            // An attached item is a message/rfc822 part: its own MIME (as stored, or generated
            // from its properties; its own attachments are not carried into this part).
            let inner = match super::get_attachment::embedded(a) {
                Ok(e) => match &e.mime {
                    Some(m) => m.clone(),
                    None => {
                        let stored = crate::data::split_elements(&e.fields).unwrap_or_default();
                        if e.element == "CalendarItem" {
                            generate_icalendar(&e, &stored)
                        } else {
                            generate(&e, &stored, &[])
                        }
                    }
                },
                Err(err) => {
                    tracing::error!(error = %err, "cannot generate an attached item's MIME");
                    continue;
                }
            };
            out.push_str(&format!(
                "--{boundary}\r\nContent-Type: message/rfc822; name=\"{name}\"\r\nContent-Disposition: {}; filename=\"{name}\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
                if a.is_inline { "inline" } else { "attachment" }
            ));
            out.push_str(&String::from_utf8_lossy(&inner));
            if !out.ends_with("\r\n") {
                out.push_str("\r\n");
            }
            continue;
        }
        let ctype: String = a.content_type.chars().filter(|c| !c.is_control()).collect();
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: {}; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            if a.is_inline { "inline" } else { "attachment" }
        ));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&a.content);
        for chunk in b64.as_bytes().chunks(76) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push_str("\r\n");
        }
    }
    if !attachments.is_empty() {
        out.push_str(&format!("--{boundary}--\r\n"));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers() {
        let raw = b"Subject: =?UTF-8?B?SGVsbG8=?= world\r\nTo: Bob <bob@x.com>,\r\n carol@x.com\r\n\r\nbody";
        let hs = headers(raw);
        assert_eq!(decode_words(header(&hs, "subject").unwrap()), "Hello world");
        assert_eq!(addresses(header(&hs, "To").unwrap()), ["bob@x.com", "carol@x.com"]);
        assert_eq!(decode_words("=?iso-8859-1?Q?a_b=41?="), "a bA");
    }
}

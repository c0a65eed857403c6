//! GetUserAvailability: free/busy of mailboxes over a time window, merged (one digit per
//! interval) and/or detailed (one event per calendar item), with working hours.

use tandem_xml::{Node, Writer, child, children, text};

use super::BuildRequest;
use crate::reply::{Message, MessageError, ReplyError};
use crate::working_hours::WorkingHours;
use crate::{ProtoError, ns, parse_datetime};

/// What the client asked to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    None,
    MergedOnly,
    FreeBusy,
    FreeBusyMerged,
    Detailed,
    DetailedMerged,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::None => "None",
            View::MergedOnly => "MergedOnly",
            View::FreeBusy => "FreeBusy",
            View::FreeBusyMerged => "FreeBusyMerged",
            View::Detailed => "Detailed",
            View::DetailedMerged => "DetailedMerged",
        }
    }
    pub fn merged(self) -> bool {
        matches!(self, View::MergedOnly | View::FreeBusyMerged | View::DetailedMerged)
    }
    pub fn events(self) -> bool {
        matches!(self, View::FreeBusy | View::FreeBusyMerged | View::Detailed | View::DetailedMerged)
    }
    pub fn details(self) -> bool {
        matches!(self, View::Detailed | View::DetailedMerged)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Minutes to add to the request's local times to get UTC (the TimeZone's Bias).
    pub bias_minutes: i64,
    pub mailboxes: Vec<String>,
    /// UTC seconds.
    pub start: i64,
    pub end: i64,
    pub interval_minutes: i64,
    pub view: View,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let t = ns::TYPES;
        let bias_minutes = child(op, t, "TimeZone")
            .map(|tz| {
                let b = child(tz, t, "Bias").map(text).and_then(|b| b.parse::<i64>().ok()).unwrap_or(0);
                let sb = child(tz, t, "StandardTime")
                    .and_then(|s| child(s, t, "Bias"))
                    .map(text)
                    .and_then(|b| b.parse::<i64>().ok())
                    .unwrap_or(0);
                b + sb
            })
            .unwrap_or(0);
        let array = children(op)
            .find(|c| c.tag_name().name() == "MailboxDataArray")
            .ok_or_else(|| ProtoError::schema("GetUserAvailability needs MailboxDataArray"))?;
        let mailboxes = children(array)
            .map(|md| {
                child(md, t, "Email")
                    .and_then(|e| child(e, t, "Address"))
                    .map(text)
                    .ok_or_else(|| ProtoError::schema("MailboxData needs Email/Address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let opts = child(op, t, "FreeBusyViewOptions").ok_or_else(|| {
            ProtoError::schema("only FreeBusyViewOptions requests are supported (not SuggestionsViewOptions)")
        })?;
        let window =
            child(opts, t, "TimeWindow").ok_or_else(|| ProtoError::schema("FreeBusyViewOptions needs TimeWindow"))?;
        let time = |name: &str| {
            child(window, t, name)
                .map(text)
                .and_then(|s| {
                    parse_datetime(&s)
                        .map(|v| if s.ends_with('Z') || s.contains('+') { v } else { v + bias_minutes * 60 })
                })
                .ok_or_else(|| ProtoError::schema(format!("TimeWindow {name} is not a date-time")))
        };
        let (start, end) = (time("StartTime")?, time("EndTime")?);
        if end <= start || end - start > 62 * 86_400 {
            return Err(ProtoError::new(
                crate::ResponseCode::ErrorInvalidRequest,
                "The time window must be positive and at most 62 days.",
            ));
        }
        let interval_minutes = child(opts, t, "MergedFreeBusyIntervalInMinutes")
            .map(text)
            .and_then(|m| m.parse::<i64>().ok())
            .unwrap_or(30)
            .clamp(5, 1440);
        let view = match child(opts, t, "RequestedView").map(text).as_deref() {
            None | Some("Detailed") => View::Detailed,
            Some("None") => View::None,
            Some("MergedOnly") => View::MergedOnly,
            Some("FreeBusy") => View::FreeBusy,
            Some("FreeBusyMerged") => View::FreeBusyMerged,
            Some("DetailedMerged") => View::DetailedMerged,
            Some(other) => return Err(ProtoError::schema(format!("RequestedView {other} is not valid"))),
        };
        Ok(Request { bias_minutes, mailboxes, start, end, interval_minutes, view })
    }
}

impl View {
    fn parse(s: &str) -> Option<View> {
        Some(match s {
            "None" => View::None,
            "MergedOnly" => View::MergedOnly,
            "FreeBusy" => View::FreeBusy,
            "FreeBusyMerged" => View::FreeBusyMerged,
            "Detailed" => View::Detailed,
            "DetailedMerged" => View::DetailedMerged,
            _ => return None,
        })
    }
}

impl Request {
    /// Free/busy of `mailboxes` between `start` and `end` (UTC seconds), in UTC.
    pub fn new(mailboxes: Vec<String>, start: i64, end: i64, interval_minutes: i64, view: View) -> Request {
        Request { bias_minutes: 0, mailboxes, start, end, interval_minutes, view }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "GetUserAvailability";

    /// Times are written in the request's zone (its bias, no daylight saving), as Outlook does.
    fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.start("m:GetUserAvailabilityRequest", &[]);
        w.start("t:TimeZone", &[]).leaf("t:Bias", &self.bias_minutes.to_string());
        for p in ["t:StandardTime", "t:DaylightTime"] {
            w.start(p, &[])
                .leaf("t:Bias", "0")
                .leaf("t:Time", "00:00:00")
                .leaf("t:DayOrder", "1")
                .leaf("t:Month", "1")
                .leaf("t:DayOfWeek", "Sunday")
                .end();
        }
        w.end();
        w.start("m:MailboxDataArray", &[]);
        for m in &self.mailboxes {
            w.start("t:MailboxData", &[])
                .start("t:Email", &[])
                .leaf("t:Address", m)
                .end()
                .leaf("t:AttendeeType", "Required")
                .leaf("t:ExcludeConflicts", "false")
                .end();
        }
        w.end();
        w.start("t:FreeBusyViewOptions", &[])
            .start("t:TimeWindow", &[])
            .leaf("t:StartTime", &local(self.start, self.bias_minutes))
            .leaf("t:EndTime", &local(self.end, self.bias_minutes))
            .end()
            .leaf("t:MergedFreeBusyIntervalInMinutes", &self.interval_minutes.to_string())
            .leaf("t:RequestedView", self.view.as_str())
            .end();
        w.finish()
    }
}

/// One mailbox's free/busy as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeBusy {
    pub view: View,
    /// One digit per interval (see [`digit`]) when the view is merged.
    pub merged: Option<String>,
    /// Busy periods; `details` when the caller may see them.
    pub events: Vec<Event>,
    /// The mailbox's working hours, when the answer carries them.
    pub working_hours: Option<WorkingHours>,
}

/// Reads a GetUserAvailability answer of a request made with `bias_minutes`: one free/busy view
/// or error per mailbox asked for, in order.
pub fn parse_response(
    doc: &tandem_xml::Document<'_>,
    bias_minutes: i64,
) -> Result<Vec<Result<FreeBusy, MessageError>>, ReplyError> {
    let (m, t) = (ns::MESSAGES, ns::TYPES);
    let op = crate::reply::response(doc, "GetUserAvailability")?;
    let array = child(op, m, "FreeBusyResponseArray")
        .ok_or_else(|| ReplyError::unexpected("GetUserAvailability", "no FreeBusyResponseArray"))?;
    let time = |n: Node<'_, '_>, name: &str| {
        child(n, t, name).map(text).and_then(|s| {
            parse_datetime(&s).map(|v| if s.ends_with('Z') || s.contains('+') { v } else { v + bias_minutes * 60 })
        })
    };
    let mut out = Vec::new();
    for r in children(array) {
        let message = child(r, m, "ResponseMessage").ok_or_else(|| {
            ReplyError::unexpected("GetUserAvailability", "a FreeBusyResponse without ResponseMessage")
        })?;
        if let Err(e) = Message::of(message).result() {
            out.push(Err(e));
            continue;
        }
        let fbv = child(r, m, "FreeBusyView");
        let view = fbv.and_then(|v| child(v, t, "FreeBusyViewType")).map(text);
        let view = view.as_deref().and_then(View::parse).unwrap_or(View::None);
        let mut events = Vec::new();
        for e in fbv.and_then(|v| child(v, t, "CalendarEventArray")).into_iter().flat_map(children) {
            let details = child(e, t, "CalendarEventDetails").map(|d| {
                let f = |n: &str| child(d, t, n).map(text).unwrap_or_default();
                (f("ID"), f("Subject"), f("Location"))
            });
            let recurring = child(e, t, "CalendarEventDetails")
                .and_then(|d| child(d, t, "IsRecurring"))
                .map(text)
                .and_then(|b| crate::parse_bool(&b))
                .unwrap_or(false);
            events.push(Event {
                start: time(e, "StartTime").unwrap_or(0),
                end: time(e, "EndTime").unwrap_or(0),
                busy_type: child(e, t, "BusyType").map(text).unwrap_or_default(),
                details,
                recurring,
            });
        }
        let working_hours = fbv.and_then(|v| child(v, t, "WorkingHours")).and_then(WorkingHours::parse);
        out.push(Ok(FreeBusy {
            view,
            merged: fbv.and_then(|v| child(v, t, "MergedFreeBusy")).map(text),
            events,
            working_hours,
        }));
    }
    Ok(out)
}

/// A busy period of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub start: i64,
    pub end: i64,
    /// Free, Tentative, Busy, OOF, WorkingElsewhere.
    pub busy_type: String,
    /// (id, subject, location) when the caller may see details.
    pub details: Option<(String, String, String)>,
    pub recurring: bool,
}

/// The digit of a busy type in MergedFreeBusy.
pub fn digit(busy_type: &str) -> u8 {
    match busy_type {
        "Free" => 0,
        "Tentative" => 1,
        "Busy" => 2,
        "OOF" => 3,
        "WorkingElsewhere" => 4,
        _ => 5,
    }
}

/// Local time (with the request's bias) as the response writes it.
fn local(unix: i64, bias_minutes: i64) -> String {
    crate::format_datetime(unix - bias_minutes * 60).trim_end_matches('Z').to_owned()
}

/// The merged string: for each interval, the highest busy digit of the events overlapping it.
pub fn merged(req: &Request, events: &[Event]) -> String {
    let step = req.interval_minutes * 60;
    let mut out = String::new();
    let mut t = req.start;
    while t < req.end {
        let e = t + step;
        let d = events.iter().filter(|ev| ev.start < e && ev.end > t).map(|ev| digit(&ev.busy_type)).max().unwrap_or(0);
        out.push(char::from(b'0' + d));
        t = e;
    }
    out
}

/// One FreeBusyResponse for a found mailbox.
/// `hours`: the mailbox's working hours ([`WorkingHours::default`] when it has none).
pub fn render_view(req: &Request, events: &[Event], hours: &WorkingHours) -> String {
    let mut w = Writer::new();
    w.start("m:FreeBusyResponse", &[]);
    w.start("m:ResponseMessage", &[("ResponseClass", "Success")]).leaf("m:ResponseCode", "NoError").end();
    w.start("m:FreeBusyView", &[]).leaf("t:FreeBusyViewType", req.view.as_str());
    if req.view.merged() {
        w.leaf("t:MergedFreeBusy", &merged(req, events));
    }
    if req.view.events() {
        w.start("t:CalendarEventArray", &[]);
        for ev in events.iter().filter(|e| e.busy_type != "Free") {
            w.start("t:CalendarEvent", &[])
                .leaf("t:StartTime", &local(ev.start, req.bias_minutes))
                .leaf("t:EndTime", &local(ev.end, req.bias_minutes))
                .leaf("t:BusyType", &ev.busy_type);
            if req.view.details()
                && let Some((id, subject, location)) = &ev.details
            {
                w.start("t:CalendarEventDetails", &[])
                    .leaf("t:ID", id)
                    .leaf("t:Subject", subject)
                    .leaf("t:Location", location)
                    .leaf("t:IsMeeting", "false")
                    .leaf("t:IsRecurring", if ev.recurring { "true" } else { "false" })
                    .leaf("t:IsException", "false")
                    .leaf("t:IsReminderSet", "false")
                    .leaf("t:IsPrivate", "false")
                    .end();
            }
            w.end();
        }
        w.end();
    }
    hours.render(&mut w);
    w.end().end();
    w.finish()
}

/// A FreeBusyResponse for a mailbox that could not be read.
pub fn render_error(code: &str, message: &str) -> String {
    let mut w = Writer::new();
    w.start("m:FreeBusyResponse", &[]);
    w.start("m:ResponseMessage", &[("ResponseClass", "Error")])
        .leaf("m:MessageText", message)
        .leaf("m:ResponseCode", code)
        .leaf("m:DescriptiveLinkKey", "0")
        .end();
    w.start("m:FreeBusyView", &[]).leaf("t:FreeBusyViewType", "None").end();
    w.end();
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_by_interval() {
        let req = Request {
            bias_minutes: 0,
            mailboxes: vec![],
            start: 0,
            end: 4 * 1800,
            interval_minutes: 30,
            view: View::DetailedMerged,
        };
        let ev =
            |s: i64, e: i64, b: &str| Event { start: s, end: e, busy_type: b.into(), details: None, recurring: false };
        assert_eq!(merged(&req, &[ev(1800, 3600, "Busy"), ev(1800, 5400, "Tentative"), ev(5400, 9000, "OOF")]), "0213");
    }
}

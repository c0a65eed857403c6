//! A user's working hours: what Outlook and OWA keep in the `WorkHours` configuration object of
//! the Calendar folder (`IPM.Configuration.WorkHours`, its XmlData in the WorkingHours.xsd
//! format), and what GetUserAvailability returns as `WorkingHours` (a `SerializableTimeZone` and
//! `WorkingPeriod`s). Biases follow Windows: UTC = local + bias, in minutes. A mailbox with no
//! configuration works Monday to Friday, 08:00–17:00 UTC ([`WorkingHours::default`]).

use tandem_xml::{Node, Writer, children, text};

use crate::timezone::{YearlyChange, Zone};

/// A change to standard or daylight time: the bias added to the base, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub bias_minutes: i64,
    /// Seconds after local midnight.
    pub time: i64,
    /// 1–4, or 5 for the last.
    pub day_order: u8,
    pub month: u8,
    /// 0 = Sunday.
    pub weekday: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    pub bias_minutes: i64,
    /// Both or neither: a zone without daylight time has none.
    pub standard: Option<Change>,
    pub daylight: Option<Change>,
    /// Working days, 0 = Sunday.
    pub days: Vec<u8>,
    /// Local minutes after midnight.
    pub start_minutes: i64,
    pub end_minutes: i64,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            bias_minutes: 0,
            standard: None,
            daylight: None,
            days: vec![1, 2, 3, 4, 5],
            start_minutes: 8 * 60,
            end_minutes: 17 * 60,
        }
    }
}

const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// `HH:MM[:SS]` in seconds.
fn clock(s: &str) -> Option<i64> {
    let mut p = s.trim().split(':').map(|x| x.parse::<i64>().ok());
    let (h, m) = (p.next()??, p.next()??);
    let sec = p.next().flatten().unwrap_or(0);
    ((0..=24).contains(&h) && (0..60).contains(&m) && (0..60).contains(&sec)).then_some(h * 3600 + m * 60 + sec)
}

fn hms(secs: i64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The child of `n` with the local name `name`, in whatever namespace (WorkingHours.xsd
/// documents declare `xmlns="WorkingHours.xsd"`; some writers leave it out).
fn kid<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    children(n).find(|c| c.tag_name().name() == name)
}

impl WorkingHours {
    /// Reads the XmlData of the WorkHours configuration object; `None` when it is not a
    /// WorkingHours.xsd document this server understands.
    pub fn from_work_hours_xml(xml: &str) -> Option<WorkingHours> {
        let limits = tandem_xml::Limits { max_bytes: 64 * 1024, max_depth: 16, ..tandem_xml::Limits::default() };
        let doc = tandem_xml::parse(xml.as_bytes(), limits).ok()?;
        let v1 = kid(doc.root_element(), "WorkHoursVersion1")?;
        let mut out = WorkingHours::default();
        if let Some(tz) = kid(v1, "TimeZone") {
            let int = |n: Node<'_, '_>, name: &str| kid(n, name).map(text).and_then(|v| v.trim().parse::<i64>().ok());
            out.bias_minutes = int(tz, "Bias").unwrap_or(0);
            let change = |name: &str| -> Option<Change> {
                let c = kid(tz, name)?;
                let d = kid(c, "ChangeDate")?;
                // `0000/MM/WW`: a yearly rule, WW the week of the month (5 = last).
                let date = kid(d, "Date").map(text)?;
                let mut parts = date.trim().split('/');
                let (_, month, order) =
                    (parts.next()?, parts.next()?.parse::<u8>().ok()?, parts.next()?.parse::<u8>().ok()?);
                let weekday = u8::try_from(int(d, "DayOfWeek")?).ok().filter(|w| *w < 7)?;
                ((1..=12).contains(&month) && (1..=5).contains(&order)).then_some(())?;
                Some(Change {
                    bias_minutes: int(c, "Bias").unwrap_or(0),
                    time: clock(&kid(d, "Time").map(text)?)?,
                    day_order: order,
                    month,
                    weekday,
                })
            };
            if let (Some(s), Some(d)) = (change("Standard"), change("DaylightSavings")) {
                out.standard = Some(s);
                out.daylight = Some(d);
            }
        }
        if let Some(slot) = kid(v1, "TimeSlot") {
            let start = clock(&kid(slot, "Start").map(text)?)?;
            let end = clock(&kid(slot, "End").map(text)?)?;
            if end <= start {
                return None;
            }
            out.start_minutes = start / 60;
            out.end_minutes = end / 60;
        }
        if let Some(days) = kid(v1, "WorkDays") {
            let mut list = Vec::new();
            for d in text(days).split_whitespace() {
                let i = DAYS.iter().position(|n| n.eq_ignore_ascii_case(d))?;
                list.push(u8::try_from(i).ok()?);
            }
            list.sort_unstable();
            list.dedup();
            out.days = list;
        }
        Some(out)
    }

    /// The zone the hours are in.
    pub fn zone(&self) -> Zone {
        let yearly = |c: Option<Change>| {
            c.map(|c| YearlyChange {
                month: c.month,
                weekday: c.weekday,
                occurrence: i8::try_from(c.day_order).unwrap_or(5),
                offset: c.time,
                bias: c.bias_minutes * 60,
            })
        };
        Zone::yearly(self.bias_minutes * 60, yearly(self.standard), yearly(self.daylight))
    }

    /// Whether the instant `utc` falls inside the working hours; the next instant (after
    /// `utc`, within a week) at which that answer changes.
    pub fn at(&self, utc: i64) -> (bool, Option<i64>) {
        let zone = self.zone();
        let working = |t: i64| {
            let local = zone.to_local(t);
            let day = (local.div_euclid(86_400) + 4).rem_euclid(7); // 1 January 1970 was a Thursday
            let minute = local.rem_euclid(86_400) / 60;
            self.days.iter().any(|d| i64::from(*d) == day) && minute >= self.start_minutes && minute < self.end_minutes
        };
        let now = working(utc);
        // Boundaries fall on whole local minutes: step minute by minute through the first day,
        // then by a quarter-hour (every bias is whole quarter-hours) up to a week.
        let base = utc - utc.rem_euclid(60) + 60;
        let mut t = base;
        while t < utc + 7 * 86_400 {
            if working(t) != now {
                if t <= base + 86_400 {
                    return (now, Some(t));
                }
                // Found on a quarter-hour step: the minute it happened.
                let mut m = t - 840;
                while working(m) == now {
                    m += 60;
                }
                return (now, Some(m));
            }
            t += if t < base + 86_400 { 60 } else { 900 };
        }
        (now, None)
    }

    /// The `WorkingHours` element of a FreeBusyView.
    pub fn render(&self, w: &mut Writer) {
        w.start("t:WorkingHours", &[]);
        w.start("t:TimeZone", &[]).leaf("t:Bias", &self.bias_minutes.to_string());
        let none = Change { bias_minutes: 0, time: 0, day_order: 0, month: 0, weekday: 0 };
        for (el, c) in [("t:StandardTime", self.standard), ("t:DaylightTime", self.daylight)] {
            let c = c.unwrap_or(none);
            w.start(el, &[])
                .leaf("t:Bias", &c.bias_minutes.to_string())
                .leaf("t:Time", &hms(c.time))
                .leaf("t:DayOrder", &c.day_order.to_string())
                .leaf("t:Month", &c.month.to_string())
                .leaf("t:DayOfWeek", DAYS[usize::from(c.weekday % 7)])
                .end();
        }
        w.end();
        let days: Vec<&str> = self.days.iter().map(|d| DAYS[usize::from(*d % 7)]).collect();
        w.start("t:WorkingPeriodArray", &[]).start("t:WorkingPeriod", &[]);
        w.leaf("t:DayOfWeek", &days.join(" "))
            .leaf("t:StartTimeInMinutes", &self.start_minutes.to_string())
            .leaf("t:EndTimeInMinutes", &self.end_minutes.to_string());
        w.end().end().end();
    }

    /// Reads the `WorkingHours` element of a FreeBusyView (a client reading its answer).
    pub fn parse(n: Node<'_, '_>) -> Option<WorkingHours> {
        let int = |n: Node<'_, '_>, name: &str| kid(n, name).map(text).and_then(|v| v.trim().parse::<i64>().ok());
        let tz = kid(n, "TimeZone")?;
        let change = |name: &str| -> Option<Change> {
            let c = kid(tz, name)?;
            let month = u8::try_from(int(c, "Month")?).ok().filter(|m| (1..=12).contains(m))?;
            let day = kid(c, "DayOfWeek").map(text)?;
            Some(Change {
                bias_minutes: int(c, "Bias").unwrap_or(0),
                time: clock(&kid(c, "Time").map(text)?)?,
                day_order: u8::try_from(int(c, "DayOrder")?).ok()?.clamp(1, 5),
                month,
                weekday: u8::try_from(DAYS.iter().position(|d| *d == day.trim())?).ok()?,
            })
        };
        let period = kid(kid(n, "WorkingPeriodArray")?, "WorkingPeriod")?;
        let mut days = Vec::new();
        for d in kid(period, "DayOfWeek").map(text)?.split_whitespace() {
            days.push(u8::try_from(DAYS.iter().position(|n| *n == d)?).ok()?);
        }
        let (standard, daylight) = match (change("StandardTime"), change("DaylightTime")) {
            (Some(s), Some(d)) => (Some(s), Some(d)),
            _ => (None, None),
        };
        Some(WorkingHours {
            bias_minutes: int(tz, "Bias").unwrap_or(0),
            standard,
            daylight,
            days,
            start_minutes: int(period, "StartTimeInMinutes")?,
            end_minutes: int(period, "EndTimeInMinutes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Outlook writes it for Pacific time, 09:00–17:30 Monday to Thursday.
    const PACIFIC: &str = r#"<?xml version="1.0"?><Root xmlns="WorkingHours.xsd"><WorkHoursVersion1><TimeZone><Bias>480</Bias><Standard><Bias>0</Bias><ChangeDate><Time>02:00:00</Time><Date>0000/11/01</Date><DayOfWeek>0</DayOfWeek></ChangeDate></Standard><DaylightSavings><Bias>-60</Bias><ChangeDate><Time>02:00:00</Time><Date>0000/03/02</Date><DayOfWeek>0</DayOfWeek></ChangeDate></DaylightSavings><Name>Pacific Standard Time</Name></TimeZone><TimeSlot><Start>09:00:00</Start><End>17:30:00</End></TimeSlot><WorkDays>Monday Tuesday Wednesday Thursday</WorkDays></WorkHoursVersion1></Root>"#;

    fn at(s: &str) -> i64 {
        crate::parse_datetime(s).unwrap()
    }

    #[test]
    fn outlooks_work_hours_are_read_and_evaluated_in_their_zone() {
        let h = WorkingHours::from_work_hours_xml(PACIFIC).unwrap();
        assert_eq!(
            (h.bias_minutes, h.start_minutes, h.end_minutes, h.days.clone()),
            (480, 540, 1050, vec![1, 2, 3, 4])
        );
        // Thursday 3 December 2026, 09:30 Pacific standard time = 17:30 UTC.
        assert_eq!(h.at(at("2026-12-03T17:30:00Z")), (true, Some(at("2026-12-04T01:30:00Z"))));
        assert!(!h.at(at("2026-12-03T16:59:00Z")).0);
        // Friday is not a working day.
        let (on, next) = h.at(at("2026-12-04T18:00:00Z"));
        assert!(!on);
        assert_eq!(next, Some(at("2026-12-07T17:00:00Z")));
        // In July (daylight time) 09:00 local is 16:00 UTC.
        assert!(h.at(at("2026-07-01T16:00:00Z")).0 && !h.at(at("2026-07-01T15:59:00Z")).0);
        // Rendered for GetUserAvailability and read back.
        let mut w = Writer::new();
        h.render(&mut w);
        let xml = w.finish().replace("<t:WorkingHours>", &format!("<t:WorkingHours xmlns:t=\"{}\">", crate::ns::TYPES));
        let d = tandem_xml::parse(xml.as_bytes(), Default::default()).unwrap();
        assert_eq!(WorkingHours::parse(d.root_element()), Some(h));
    }

    #[test]
    fn the_default_and_refusals() {
        let d = WorkingHours::default();
        assert!(d.at(at("2026-12-03T08:00:00Z")).0 && !d.at(at("2026-12-03T17:00:00Z")).0);
        assert!(WorkingHours::from_work_hours_xml("<Root/>").is_none());
        assert!(WorkingHours::from_work_hours_xml(&PACIFIC.replace("17:30:00", "08:00:00")).is_none());
        assert!(WorkingHours::from_work_hours_xml(&PACIFIC.replace("Thursday", "Someday")).is_none());
        assert!(WorkingHours::from_work_hours_xml("not xml").is_none());
    }
}

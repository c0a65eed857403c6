//! Time zone definitions sent with calendar items, evaluated far enough to turn a wall-clock
//! time into an instant: `StartTimeZone`/`EndTimeZone` (`TimeZoneDefinitionType`, MS-OXWSGTZ:
//! periods with a bias, transition groups of recurring-day and absolute-date transitions, and
//! the transitions choosing a group from a date on) and Exchange 2007's `MeetingTimeZone`
//! (`BaseOffset` with Standard and Daylight offsets and yearly rules). A date-time a client
//! writes without an offset is read in the item's zone; one with an offset or `Z` is already an
//! instant. Biases follow Windows: UTC = local + bias.

use tandem_xml::{Node, child, children, text};

use crate::ns;

/// When, in local wall-clock time of a year, a zone changes to another bias.
#[derive(Debug, Clone, PartialEq, Eq)]
enum When {
    /// The `occurrence`th (1–4, or -1 for the last) `weekday` (0 = Sunday) of `month`, at
    /// `offset` seconds after midnight.
    Recurring { month: u8, weekday: u8, occurrence: i8, offset: i64 },
    /// Once, at a local date-time (Unix seconds of the wall clock read as UTC).
    Absolute(i64),
}

/// A rule in force from a local date on: a constant bias, or biases switched on dates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    /// Bias (seconds) when no transition of the group has happened yet this year.
    constant: Option<i64>,
    transitions: Vec<(When, i64)>,
}

/// A time zone that can answer "what bias is in force at this local time".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// (local start, group); the first starts at the beginning of time.
    groups: Vec<(i64, Group)>,
}

/// xs:duration (`PT8H`, `-PT60M`, `P0DT7H0M0.0S`) in whole seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s),
    };
    let rest = rest.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0f64;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, mul) = units.iter().find(|(u, _)| *u == c)?;
                total += num.parse::<f64>().ok()? * mul;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('Y', 365.0 * 86_400.0), ('M', 30.0 * 86_400.0), ('D', 86_400.0)])?;
    take(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    Some(sign * total.round() as i64)
}

fn weekday(name: &str) -> Option<u8> {
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name.trim()))
        .map(|n| n as u8)
}

fn month(name: &str) -> Option<u8> {
    let months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let n = name.trim();
    n.parse::<u8>()
        .ok()
        .filter(|m| (1..=12).contains(m))
        .or_else(|| months.iter().position(|m| m.eq_ignore_ascii_case(n)).map(|p| p as u8 + 1))
}

/// A local `YYYY-MM-DDTHH:MM:SS` (fractions and any offset ignored) as wall-clock seconds.
fn local_seconds(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let base: String = s.trim().chars().take(19).collect();
    time::PrimitiveDateTime::parse(&base, &fmt).ok().map(|p| p.assume_utc().unix_timestamp())
}

/// True when an xs:dateTime names its offset (`Z`, `+hh:mm`, `-hh:mm` after the time).
pub fn has_offset(s: &str) -> bool {
    let s = s.trim();
    let Some((_, time)) = s.split_once('T') else { return false };
    time.ends_with('Z') || time.ends_with('z') || time.contains('+') || time.contains('-')
}

/// One yearly change of a zone, as `SerializableTimeZone` (free/busy working hours) and
/// Outlook's WorkingHours.xsd write it: the `occurrence`th (1–4, 5 or -1 for the last) `weekday`
/// (0 = Sunday) of `month`, `offset` seconds after local midnight; `bias` seconds are added to
/// the zone's base bias from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearlyChange {
    pub month: u8,
    pub weekday: u8,
    pub occurrence: i8,
    pub offset: i64,
    pub bias: i64,
}

impl Zone {
    /// A zone of a base bias (seconds; UTC = local + bias) and, when both are given, its
    /// standard and daylight changes.
    pub fn yearly(base: i64, standard: Option<YearlyChange>, daylight: Option<YearlyChange>) -> Zone {
        let mut group = Group { constant: Some(base), transitions: Vec::new() };
        if let (Some(s), Some(d)) = (standard, daylight) {
            let when = |c: YearlyChange| When::Recurring {
                month: c.month,
                weekday: c.weekday,
                occurrence: if c.occurrence >= 5 { -1 } else { c.occurrence },
                offset: c.offset,
            };
            group.transitions = vec![(when(s), base + s.bias), (when(d), base + d.bias)];
        }
        Zone { groups: vec![(i64::MIN, group)] }
    }

    /// The wall-clock time (Unix seconds of the local time read as UTC) of an instant.
    pub fn to_local(&self, utc: i64) -> i64 {
        let guess = utc - self.bias_at(utc);
        utc - self.bias_at(guess)
    }

    /// Reads a `TimeZoneDefinitionType` element (StartTimeZone, EndTimeZone) or a 2007
    /// `MeetingTimeZone`. `None` when it carries no rule (an Id alone names a Windows zone this
    /// server has no table for).
    pub fn parse(node: Node<'_, '_>) -> Option<Zone> {
        if child(node, ns::TYPES, "BaseOffset").is_some() {
            return Zone::parse_meeting(node);
        }
        let t = ns::TYPES;
        let periods: Vec<(String, i64)> = children(child(node, t, "Periods")?)
            .filter_map(|p| Some((p.attribute("Id")?.to_owned(), parse_duration(p.attribute("Bias")?)?)))
            .collect();
        let bias_of = |id: &str| periods.iter().find(|(p, _)| p == id).map(|(_, b)| *b);
        let target = |n: Node<'_, '_>| child(n, t, "To").map(text);
        let mut groups_by_id: Vec<(String, Group)> = Vec::new();
        if let Some(gs) = child(node, t, "TransitionsGroups") {
            for g in children(gs) {
                let mut group = Group { constant: None, transitions: Vec::new() };
                for tr in children(g) {
                    let bias = bias_of(&target(tr)?)?;
                    match tr.tag_name().name() {
                        "RecurringDayTransition" => {
                            let when = When::Recurring {
                                month: month(&child(tr, t, "Month").map(text)?)?,
                                weekday: weekday(&child(tr, t, "DayOfWeek").map(text)?)?,
                                occurrence: child(tr, t, "Occurrence").map(text)?.trim().parse().ok()?,
                                offset: parse_duration(&child(tr, t, "TimeOffset").map(text)?)?,
                            };
                            group.transitions.push((when, bias));
                        }
                        "AbsoluteDateTransition" => {
                            let at = local_seconds(&child(tr, t, "DateTime").map(text)?)?;
                            group.transitions.push((When::Absolute(at), bias));
                        }
                        _ => group.constant = Some(bias),
                    }
                }
                groups_by_id.push((g.attribute("Id")?.to_owned(), group));
            }
        }
        let mut groups = Vec::new();
        for tr in children(child(node, t, "Transitions")?) {
            let to = child(tr, t, "To")?;
            let group = match to.attribute("Kind") {
                Some("Period") => Group { constant: Some(bias_of(&text(to))?), transitions: Vec::new() },
                _ => groups_by_id.iter().find(|(id, _)| *id == text(to))?.1.clone(),
            };
            let from = match child(tr, t, "DateTime") {
                Some(d) => local_seconds(&text(d))?,
                None => i64::MIN,
            };
            groups.push((from, group));
        }
        (!groups.is_empty()).then_some(Zone { groups })
    }

    /// Reads a zone element as the Mailbox stores it (`<t:StartTimeZone …>` without its
    /// namespace declaration).
    pub fn from_stored(xml: &str) -> Option<Zone> {
        let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", ns::TYPES);
        let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
        children(doc.root_element()).next().and_then(Zone::parse)
    }

    fn parse_meeting(node: Node<'_, '_>) -> Option<Zone> {
        let t = ns::TYPES;
        let base = parse_duration(&child(node, t, "BaseOffset").map(text)?)?;
        let rule = |name: &str| -> Option<(When, i64)> {
            let r = child(node, t, name)?;
            let offset = parse_duration(&child(r, t, "Offset").map(text)?)?;
            let rel = child(r, t, "RelativeYearlyRecurrence")?;
            let occurrence = match child(rel, t, "DayOfWeekIndex").map(text)?.trim() {
                "First" => 1,
                "Second" => 2,
                "Third" => 3,
                "Fourth" => 4,
                _ => -1,
            };
            let time = child(r, t, "Time").map(text)?;
            let mut hms = time.trim().split(':').map(|p| p.parse::<i64>().ok());
            let secs = hms.next()?? * 3600 + hms.next()?? * 60 + hms.next().flatten().unwrap_or(0);
            let when = When::Recurring {
                month: month(&child(rel, t, "Month").map(text)?)?,
                weekday: weekday(&child(rel, t, "DaysOfWeek").map(text)?)?,
                occurrence,
                offset: secs,
            };
            Some((when, base + offset))
        };
        let mut group = Group { constant: Some(base), transitions: Vec::new() };
        if let (Some(std), Some(dst)) = (rule("Standard"), rule("Daylight")) {
            group.transitions = vec![std, dst];
        }
        Some(Zone { groups: vec![(i64::MIN, group)] })
    }

    /// The instant (Unix seconds) of a wall-clock time in this zone.
    pub fn to_utc(&self, local: i64) -> i64 {
        local + self.bias_at(local)
    }

    fn bias_at(&self, local: i64) -> i64 {
        let Some((_, group)) = self.groups.iter().rev().find(|(from, _)| *from <= local).or(self.groups.first()) else {
            return 0;
        };
        if group.transitions.is_empty() {
            return group.constant.unwrap_or(0);
        }
        let year = time::OffsetDateTime::from_unix_timestamp(local).map(|t| t.year()).unwrap_or(1970);
        // The latest change at or before `local`, looking back into last year for the rule in
        // force on 1 January.
        let mut best: Option<(i64, i64)> = None;
        for y in [year - 1, year] {
            for (when, bias) in &group.transitions {
                if let Some(at) = occurs(when, y)
                    && at <= local
                    && best.is_none_or(|(b, _)| at > b)
                {
                    best = Some((at, *bias));
                }
            }
        }
        best.map(|(_, b)| b).or(group.constant).unwrap_or(0)
    }
}

/// When a transition happens in `year`, as wall-clock seconds.
fn occurs(when: &When, year: i32) -> Option<i64> {
    match when {
        When::Absolute(at) => {
            let y = time::OffsetDateTime::from_unix_timestamp(*at).ok()?.year();
            (y == year).then_some(*at)
        }
        When::Recurring { month, weekday, occurrence, offset } => {
            let m = time::Month::try_from(*month).ok()?;
            let first = time::Date::from_calendar_date(year, m, 1).ok()?;
            let shift = (i64::from(*weekday) - i64::from(first.weekday().number_days_from_sunday())).rem_euclid(7);
            let mut day = 1 + shift;
            let last_day = i64::from(m.length(year));
            if *occurrence < 0 {
                while day + 7 <= last_day {
                    day += 7;
                }
            } else {
                day += 7 * (i64::from(*occurrence).clamp(1, 5) - 1);
                while day > last_day {
                    day -= 7;
                }
            }
            let date = time::Date::from_calendar_date(year, m, u8::try_from(day).ok()?).ok()?;
            Some(date.midnight().assume_utc().unix_timestamp() + offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(xml: &str) -> Zone {
        let x = format!(r#"<t:StartTimeZone xmlns:t="{}" {xml}"#, ns::TYPES);
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        Zone::parse(d.root_element()).unwrap()
    }

    const PACIFIC: &str = r#"Id="Pacific Standard Time" Name="(UTC-08:00) Pacific Time"><t:Periods><t:Period Bias="-P0DT0H0M0.0S" Name="x" Id="unused"/><t:Period Bias="P0DT8H0M0.0S" Name="Standard" Id="Std"/><t:Period Bias="P0DT7H0M0.0S" Name="Daylight" Id="Dlt"/></t:Periods><t:TransitionsGroups><t:TransitionsGroup Id="0"><t:RecurringDayTransition><t:To Kind="Period">Dlt</t:To><t:TimeOffset>P0DT2H0M0.0S</t:TimeOffset><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek><t:Occurrence>2</t:Occurrence></t:RecurringDayTransition><t:RecurringDayTransition><t:To Kind="Period">Std</t:To><t:TimeOffset>P0DT2H0M0.0S</t:TimeOffset><t:Month>11</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek><t:Occurrence>1</t:Occurrence></t:RecurringDayTransition></t:TransitionsGroup></t:TransitionsGroups><t:Transitions><t:Transition><t:To Kind="Group">0</t:To></t:Transition></t:Transitions></t:StartTimeZone>"#;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT8H"), Some(28_800));
        assert_eq!(parse_duration("-PT60M"), Some(-3600));
        assert_eq!(parse_duration("P0DT7H30M0.0S"), Some(27_000));
        assert_eq!(parse_duration("PT0H"), Some(0));
        assert_eq!(parse_duration("8 hours"), None);
    }

    #[test]
    fn definitions_with_daylight_rules() {
        let z = zone(PACIFIC);
        // 3 December 2026 10:00 in Pacific standard time is 18:00 UTC; 1 July 10:00 is 17:00 UTC.
        assert_eq!(
            z.to_utc(local_seconds("2026-12-03T10:00:00").unwrap()),
            crate::parse_datetime("2026-12-03T18:00:00Z").unwrap()
        );
        assert_eq!(
            z.to_utc(local_seconds("2026-07-01T10:00:00").unwrap()),
            crate::parse_datetime("2026-07-01T17:00:00Z").unwrap()
        );
        // 8 March 2026 is the second Sunday of March: daylight time from 02:00.
        assert_eq!(
            z.to_utc(local_seconds("2026-03-08T01:00:00").unwrap()),
            crate::parse_datetime("2026-03-08T09:00:00Z").unwrap()
        );
        assert_eq!(
            z.to_utc(local_seconds("2026-03-08T03:00:00").unwrap()),
            crate::parse_datetime("2026-03-08T10:00:00Z").unwrap()
        );
    }

    #[test]
    fn the_utc_definition_and_meeting_time_zones() {
        let utc = crate::ops::get_server_time_zones::utc_definition();
        let xml = utc.replace("<t:TimeZoneDefinition", &format!("<t:TimeZoneDefinition xmlns:t=\"{}\"", ns::TYPES));
        let d = tandem_xml::parse(xml.as_bytes(), Default::default()).unwrap();
        assert_eq!(Zone::parse(d.root_element()).unwrap().to_utc(1000), 1000);
        let z = zone(
            r#"TimeZoneName="W. Europe"><t:BaseOffset>-PT60M</t:BaseOffset><t:Standard><t:Offset>PT0M</t:Offset><t:RelativeYearlyRecurrence><t:DaysOfWeek>Sunday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex><t:Month>October</t:Month></t:RelativeYearlyRecurrence><t:Time>03:00:00</t:Time></t:Standard><t:Daylight><t:Offset>-PT60M</t:Offset><t:RelativeYearlyRecurrence><t:DaysOfWeek>Sunday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex><t:Month>March</t:Month></t:RelativeYearlyRecurrence><t:Time>02:00:00</t:Time></t:Daylight></t:StartTimeZone>"#,
        );
        assert_eq!(
            z.to_utc(local_seconds("2026-12-03T10:00:00").unwrap()),
            crate::parse_datetime("2026-12-03T09:00:00Z").unwrap()
        );
        assert_eq!(
            z.to_utc(local_seconds("2026-07-01T10:00:00").unwrap()),
            crate::parse_datetime("2026-07-01T08:00:00Z").unwrap()
        );
        assert!(has_offset("2026-07-01T10:00:00Z") && has_offset("2026-07-01T10:00:00-03:00"));
        assert!(!has_offset("2026-07-01T10:00:00.000"));
    }
}

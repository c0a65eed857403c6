//! Expands an EWS `Recurrence` (as stored on a calendar item) into occurrence start times inside
//! a window, for free/busy. Patterns: DailyRecurrence, WeeklyRecurrence, AbsoluteMonthlyRecurrence,
//! AbsoluteYearlyRecurrence; ranges: NoEndRecurrence, EndDateRecurrence, NumberedRecurrence.
//! Relative monthly/yearly patterns are not expanded (the master counts once). Times are UTC: an
//! occurrence starts at the master's time of day.

use time::{Date, Duration, Month, OffsetDateTime, Weekday};

/// Most occurrences produced per item, whatever the window.
const MAX_OCCURRENCES: usize = 5000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Daily(i64),
    Weekly(i64, Vec<Weekday>),
    Monthly(i64, u8),
    Yearly(u8, Month),
}

fn weekday(name: &str) -> Vec<Weekday> {
    use Weekday::*;
    match name {
        "Sunday" => vec![Sunday],
        "Monday" => vec![Monday],
        "Tuesday" => vec![Tuesday],
        "Wednesday" => vec![Wednesday],
        "Thursday" => vec![Thursday],
        "Friday" => vec![Friday],
        "Saturday" => vec![Saturday],
        "Day" => vec![Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday],
        "Weekday" => vec![Monday, Tuesday, Wednesday, Thursday, Friday],
        "WeekendDay" => vec![Saturday, Sunday],
        _ => vec![],
    }
}

fn month(n: &str) -> Option<Month> {
    use Month::*;
    Some(match n {
        "January" => January,
        "February" => February,
        "March" => March,
        "April" => April,
        "May" => May,
        "June" => June,
        "July" => July,
        "August" => August,
        "September" => September,
        "October" => October,
        "November" => November,
        "December" => December,
        _ => return None,
    })
}

/// An xs:date (`2026-12-01`, `2026-12-01Z`, `2026-12-01-08:00`): the calendar date.
fn date(s: &str) -> Option<Date> {
    let s = s.trim();
    let d = s.get(0..10)?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(d, &fmt).ok()
}

/// Occurrence starts (Unix seconds) of the item whose first occurrence starts at `start` and
/// lasts `length` seconds, that overlap `[from, to)`. `None` when the Recurrence is not one this
/// module expands.
pub(crate) fn occurrences(recurrence_xml: &str, start: i64, length: i64, from: i64, to: i64) -> Option<Vec<i64>> {
    let t = tandem_ews_proto::ns::TYPES;
    let wrapped = format!("<r xmlns:t=\"{t}\">{recurrence_xml}</r>");
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
    let rec = tandem_xml::children(doc.root_element()).next()?;
    let text_of = |n: tandem_xml::Node<'_, '_>, name: &str| tandem_xml::child(n, t, name).map(tandem_xml::text);
    let mut pattern = None;
    let mut range_end: Option<Date> = None;
    let mut count: Option<usize> = None;
    let mut range_start: Option<Date> = None;
    for c in tandem_xml::children(rec) {
        let interval = || text_of(c, "Interval").and_then(|i| i.parse::<i64>().ok()).filter(|i| *i > 0).unwrap_or(1);
        match c.tag_name().name() {
            "DailyRecurrence" => pattern = Some(Pattern::Daily(interval())),
            "WeeklyRecurrence" => {
                let days: Vec<Weekday> =
                    text_of(c, "DaysOfWeek").unwrap_or_default().split_whitespace().flat_map(weekday).collect();
                pattern = Some(Pattern::Weekly(interval(), days));
            }
            "AbsoluteMonthlyRecurrence" => {
                let day = text_of(c, "DayOfMonth")?.parse::<u8>().ok()?;
                pattern = Some(Pattern::Monthly(interval(), day));
            }
            "AbsoluteYearlyRecurrence" => {
                let day = text_of(c, "DayOfMonth")?.parse::<u8>().ok()?;
                pattern = Some(Pattern::Yearly(day, month(&text_of(c, "Month")?)?));
            }
            "NoEndRecurrence" => range_start = text_of(c, "StartDate").and_then(|d| date(&d)),
            "EndDateRecurrence" => {
                range_start = text_of(c, "StartDate").and_then(|d| date(&d));
                range_end = Some(date(&text_of(c, "EndDate")?)?);
            }
            "NumberedRecurrence" => {
                range_start = text_of(c, "StartDate").and_then(|d| date(&d));
                count = Some(text_of(c, "NumberOfOccurrences")?.parse().ok()?);
            }
            _ => {}
        }
    }
    let pattern = pattern?;
    let first = OffsetDateTime::from_unix_timestamp(start).ok()?;
    let time_of_day = first.time();
    let mut day = range_start.unwrap_or(first.date());
    let last_day = range_end.unwrap_or(Date::MAX);
    let window_end = OffsetDateTime::from_unix_timestamp(to).ok()?.date();
    let mut out = Vec::new();
    let mut produced = 0usize;
    let origin = day;
    while day <= last_day && day <= window_end && produced < MAX_OCCURRENCES && count.is_none_or(|c| produced < c) {
        let hit = match &pattern {
            Pattern::Daily(n) => (day - origin).whole_days() % n == 0,
            Pattern::Weekly(n, days) => {
                let week = (day - origin).whole_days().div_euclid(7);
                week % n == 0 && days.contains(&day.weekday())
            }
            Pattern::Monthly(n, d) => {
                let months = (i64::from(day.year()) - i64::from(origin.year())) * 12 + i64::from(day.month() as u8)
                    - i64::from(origin.month() as u8);
                months % n == 0 && day.day() == *d
            }
            Pattern::Yearly(d, m) => day.month() == *m && day.day() == *d,
        };
        if hit {
            produced += 1;
            let s = day.with_time(time_of_day).assume_utc().unix_timestamp();
            if s < to && s + length > from {
                out.push(s);
            }
        }
        day = day.checked_add(Duration::days(1))?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-12-01T09:00:00Z";

    fn at(s: &str) -> i64 {
        tandem_ews_proto::parse_datetime(s).unwrap()
    }

    #[test]
    fn expands_weekly_and_numbered() {
        let rec = "<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Tuesday Thursday</t:DaysOfWeek></t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>2026-12-01Z</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>";
        let occ = occurrences(rec, at(T), 1800, at("2026-12-01T00:00:00Z"), at("2027-01-31T00:00:00Z")).unwrap();
        let days: Vec<String> = occ.iter().map(|s| tandem_ews_proto::format_datetime(*s)[..10].to_owned()).collect();
        assert_eq!(days, ["2026-12-01", "2026-12-03", "2026-12-08", "2026-12-10", "2026-12-15"]);
    }

    #[test]
    fn expands_daily_until_end_date_within_window() {
        let rec = "<t:Recurrence><t:DailyRecurrence><t:Interval>2</t:Interval></t:DailyRecurrence><t:EndDateRecurrence><t:StartDate>2026-12-01</t:StartDate><t:EndDate>2026-12-09</t:EndDate></t:EndDateRecurrence></t:Recurrence>";
        let occ = occurrences(rec, at(T), 3600, at("2026-12-04T00:00:00Z"), at("2026-12-31T00:00:00Z")).unwrap();
        assert_eq!(occ.len(), 3); // 5th, 7th, 9th
        let monthly = "<t:Recurrence><t:AbsoluteMonthlyRecurrence><t:Interval>1</t:Interval><t:DayOfMonth>15</t:DayOfMonth></t:AbsoluteMonthlyRecurrence><t:NoEndRecurrence><t:StartDate>2026-12-01</t:StartDate></t:NoEndRecurrence></t:Recurrence>";
        assert_eq!(
            occurrences(monthly, at(T), 60, at("2026-12-01T00:00:00Z"), at("2027-03-01T00:00:00Z")).unwrap().len(),
            3
        );
    }
}

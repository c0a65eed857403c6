//! The rules that turn a user's calendar and out-of-office state into presence, kept pure so
//! each rule users ask for is a unit test: what the calendar says now ([`calendar_now`]) and how
//! that meets what the user's endpoints publish ([`combine`]).

use tandem_sip_proto::pidf::{Availability, PresenceSummary};

/// A calendar item as CalendarView returns it, reduced to what presence needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    pub start: i64,
    pub end: i64,
    /// LegacyFreeBusyStatus: Free, Tentative, Busy, OOF, WorkingElsewhere, NoData.
    pub free_busy: String,
    /// Sensitivity Private or Confidential: the subject never leaves the mailbox.
    pub private: bool,
    pub subject: String,
    pub location: String,
}

/// Out-of-office settings as GetUserOofSettings returns them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Oof {
    /// Enabled, Disabled or Scheduled.
    pub state: String,
    pub window: Option<(i64, i64)>,
    pub internal_reply: String,
}

/// The administrator's client policy for one user (Set-CsClientPolicy), globals and per-user
/// settings already merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub disable_calendar_presence: bool,
    pub disable_meeting_subject_and_location: bool,
    pub disable_free_busy_info: bool,
    /// "Off Work" outside the user's working hours (EnableOffWorkPresence, Tandem's setting).
    pub enable_off_work_presence: bool,
}

impl Default for Policy {
    /// Calendar presence on; subject and location hidden, as `DisableMeetingSubjectAndLocation`
    /// is off by default only in clients that ask; the issue wants them private unless allowed.
    fn default() -> Self {
        Policy {
            disable_calendar_presence: false,
            disable_meeting_subject_and_location: true,
            disable_free_busy_info: false,
            enable_off_work_presence: false,
        }
    }
}

/// What the calendar says at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarNow {
    /// The meeting going on, as watchers may see it: the note text and why.
    pub meeting: Option<Meeting>,
    /// The first line of the internal automatic reply, when out of office.
    pub oof_note: Option<String>,
    /// Why the user is out of office (the OOF settings or an OOF calendar item).
    pub oof_reason: Option<String>,
    /// Outside working hours (when the policy shows it): why.
    pub off_work: Option<String>,
    /// The next instant at which this answer changes (a meeting starts or ends, an OOF window
    /// opens or closes): the timer to set.
    pub next_change: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub note: String,
    pub reason: String,
}

/// The note Skype for Business shows for a meeting.
pub const IN_A_MEETING: &str = "In a meeting";

/// The calendar's answer at `now` under `policy`. Free, tentative and working-elsewhere items
/// (and free, i.e. transparent, ones) are ignored; an OOF item counts as out of office.
pub fn calendar_now(items: &[CalendarItem], oof: Option<&Oof>, now: i64, policy: Policy) -> CalendarNow {
    let mut out = CalendarNow::default();
    if policy.disable_calendar_presence {
        return out;
    }
    let mut bump = |t: i64| {
        if t > now {
            out.next_change = Some(out.next_change.map_or(t, |n: i64| n.min(t)));
        }
    };
    let counted: Vec<&CalendarItem> = items
        .iter()
        .filter(|i| i.end > i.start && matches!(i.free_busy.as_str(), "Busy" | "OOF"))
        .filter(|i| !policy.disable_free_busy_info || i.free_busy == "OOF")
        .collect();
    for i in &counted {
        bump(i.start);
        bump(i.end);
    }
    let current: Vec<&&CalendarItem> = counted.iter().filter(|i| i.start <= now && now < i.end).collect();
    if let Some(m) = current.iter().filter(|i| i.free_busy == "Busy").min_by_key(|i| (i.start, i.end)) {
        let shown = !policy.disable_meeting_subject_and_location && !m.private && !m.subject.is_empty();
        let note = if shown {
            let place = if m.location.is_empty() { String::new() } else { format!(" ({})", m.location) };
            format!("{IN_A_MEETING}: {}{place}", m.subject)
        } else {
            IN_A_MEETING.to_owned()
        };
        let what = if m.private { "a private calendar item" } else { "a busy calendar item" };
        out.meeting = Some(Meeting { note, reason: format!("{what} from {} to {}", iso(m.start), iso(m.end)) });
    }
    let oof_item = current.iter().find(|i| i.free_busy == "OOF");
    if let Some(o) = oof {
        if let Some((s, e)) = o.window.filter(|_| o.state == "Scheduled") {
            bump(s);
            bump(e);
        }
        let on = match o.state.as_str() {
            "Enabled" => true,
            "Scheduled" => o.window.is_some_and(|(s, e)| s <= now && now < e),
            _ => false,
        };
        if on {
            out.oof_note = Some(first_line(&o.internal_reply).unwrap_or_else(|| "Out of office".to_owned()));
            out.oof_reason = Some(format!("automatic replies {}", o.state.to_ascii_lowercase()));
        }
    }
    if out.oof_note.is_none()
        && let Some(i) = oof_item
    {
        out.oof_note = Some("Out of office".to_owned());
        out.oof_reason = Some(format!("an out-of-office calendar item until {}", iso(i.end)));
    }
    out
}

/// The note Skype for Business shows outside working hours.
pub const OFF_WORK: &str = "Off Work";

/// Adds what the user's working hours say at `now` (when the policy shows Off Work): outside
/// them, Off Work, and a timer at the next start or end of working hours.
pub fn apply_working_hours(
    out: &mut CalendarNow,
    hours: &tandem_ews_proto::working_hours::WorkingHours,
    now: i64,
    policy: Policy,
) {
    if policy.disable_calendar_presence || !policy.enable_off_work_presence {
        return;
    }
    let (working, next) = hours.at(now);
    if !working {
        out.off_work = Some(match next {
            Some(t) => format!("outside working hours (they start again at {})", iso(t)),
            None => "outside working hours (no working day set)".to_owned(),
        });
    }
    if let Some(t) = next {
        out.next_change = Some(out.next_change.map_or(t, |n| n.min(t)));
    }
}

/// The first non-empty line of a reply, with HTML tags removed (Outlook writes HTML replies).
pub fn first_line(reply: &str) -> Option<String> {
    let mut text = String::with_capacity(reply.len());
    let mut in_tag = false;
    let mut rest = reply;
    while let Some(c) = rest.chars().next() {
        let lower = rest.get(..4).map(str::to_ascii_lowercase);
        if !in_tag && c == '<' {
            // Block elements and <br> end a line.
            if matches!(lower.as_deref(), Some("<br>" | "<br/" | "<br " | "</p>" | "<div" | "</di" | "<p>" | "<p ")) {
                text.push('\n');
            }
            in_tag = true;
        } else if in_tag && c == '>' {
            in_tag = false;
        } else if !in_tag {
            text.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    let text = text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
}

/// What watchers are shown, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub summary: PresenceSummary,
    /// The RPID activity to write (`meeting`, `vacation`), when the calendar decided it;
    /// `None` keeps the one the availability implies.
    pub activity: Option<&'static str>,
    pub reason: String,
}

/// Combines what the endpoints publish (`endpoints`: their aggregate, `published` whether any
/// publication exists, `registered` whether any endpoint is signed in) with the calendar.
/// A status set by hand (busy, do-not-disturb, away) is never overridden; a call beats a
/// meeting; an offline user who is out of office stays offline with the OOF note.
pub fn combine(endpoints: &PresenceSummary, published: bool, registered: bool, cal: &CalendarNow) -> Shown {
    let from_endpoints = |why: String| Shown { summary: endpoints.clone(), activity: None, reason: why };
    let by_hand = match endpoints.availability {
        Availability::OnThePhone => Some("a call in progress (on-the-phone, published by an endpoint)"),
        Availability::Busy => Some("a status set by hand (busy or do-not-disturb, published by an endpoint)"),
        Availability::Away => Some("a status set by hand (away, published by an endpoint)"),
        _ => None,
    };
    if let Some(why) = by_hand {
        let mut shown = from_endpoints(why.to_owned());
        if shown.summary.note.is_none()
            && let Some(n) = &cal.oof_note
        {
            shown.summary.note = Some(n.clone());
            shown.reason.push_str("; note from out of office");
        }
        return shown;
    }
    if endpoints.availability == Availability::Offline {
        return match &cal.oof_note {
            Some(n) => Shown {
                summary: PresenceSummary { availability: Availability::Offline, note: Some(n.clone()) },
                activity: None,
                reason: format!(
                    "offline (no signed-in endpoint), note from {}",
                    cal.oof_reason.as_deref().unwrap_or("out of office")
                ),
            },
            None => from_endpoints("offline (no signed-in endpoint)".to_owned()),
        };
    }
    if let Some(n) = &cal.oof_note {
        return Shown {
            summary: PresenceSummary { availability: Availability::Away, note: Some(n.clone()) },
            activity: Some("vacation"),
            reason: format!("out of office: {}", cal.oof_reason.as_deref().unwrap_or("automatic replies on")),
        };
    }
    if let Some(m) = &cal.meeting {
        return Shown {
            summary: PresenceSummary { availability: Availability::Busy, note: Some(m.note.clone()) },
            activity: Some("meeting"),
            reason: format!("in a meeting: {}", m.reason),
        };
    }
    if let Some(why) = &cal.off_work {
        // Skype for Business shows Off Work as an away state.
        return Shown {
            summary: PresenceSummary { availability: Availability::Away, note: Some(OFF_WORK.to_owned()) },
            activity: None,
            reason: format!("off work: {why}"),
        };
    }
    let why = match (published, registered) {
        (true, _) => "published by an endpoint (available)",
        (false, true) => "signed in, nothing published (available)",
        (false, false) => "nothing published",
    };
    from_endpoints(why.to_owned())
}

fn iso(t: i64) -> String {
    tandem_ews_proto::format_datetime(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn item(start: i64, end: i64, fb: &str) -> CalendarItem {
        CalendarItem {
            start: NOW + start,
            end: NOW + end,
            free_busy: fb.into(),
            private: false,
            subject: "Budget".into(),
            location: "Room 1".into(),
        }
    }

    fn avail(a: Availability) -> PresenceSummary {
        PresenceSummary { availability: a, note: None }
    }

    #[test]
    fn a_busy_meeting_now_is_in_a_meeting_with_timers_at_its_boundaries() {
        let items = [item(-60, 600, "Busy"), item(1200, 1800, "Busy")];
        let now = calendar_now(&items, None, NOW, Policy::default());
        assert_eq!(now.meeting.as_ref().map(|m| m.note.as_str()), Some(IN_A_MEETING));
        assert_eq!(now.next_change, Some(NOW + 600));
        let shown = combine(&avail(Availability::Available), false, true, &now);
        assert_eq!(shown.summary.availability, Availability::Busy);
        assert_eq!(shown.activity, Some("meeting"));
        assert!(shown.reason.starts_with("in a meeting"), "{}", shown.reason);
        // Between meetings: free, and the timer is at the next start.
        let later = calendar_now(&items, None, NOW + 700, Policy::default());
        assert_eq!((later.meeting, later.next_change), (None, Some(NOW + 1200)));
    }

    #[test]
    fn free_tentative_and_working_elsewhere_are_ignored() {
        for fb in ["Free", "Tentative", "WorkingElsewhere", "NoData"] {
            let now = calendar_now(&[item(-60, 600, fb)], None, NOW, Policy::default());
            assert_eq!(now, CalendarNow::default(), "{fb}");
        }
    }

    #[test]
    fn subject_and_location_only_when_allowed_and_never_for_private_items() {
        let allow = Policy { disable_meeting_subject_and_location: false, ..Policy::default() };
        let now = calendar_now(&[item(-60, 600, "Busy")], None, NOW, allow);
        assert_eq!(now.meeting.unwrap().note, "In a meeting: Budget (Room 1)");
        let mut private = item(-60, 600, "Busy");
        private.private = true;
        let now = calendar_now(&[private.clone()], None, NOW, allow);
        let m = now.meeting.unwrap();
        assert_eq!(m.note, IN_A_MEETING);
        assert!(!m.reason.contains("Budget"));
        let hidden = calendar_now(&[item(-60, 600, "Busy")], None, NOW, Policy::default());
        assert_eq!(hidden.meeting.unwrap().note, IN_A_MEETING);
    }

    #[test]
    fn a_status_set_by_hand_and_a_call_beat_the_meeting() {
        let now = calendar_now(&[item(-60, 600, "Busy")], None, NOW, Policy::default());
        for a in [Availability::Busy, Availability::Away, Availability::OnThePhone] {
            let shown = combine(&avail(a), true, true, &now);
            assert_eq!((shown.summary.availability, shown.activity), (a, None), "{a:?}");
        }
    }

    #[test]
    fn out_of_office_is_vacation_with_the_first_line_of_the_internal_reply() {
        let oof = Oof {
            state: "Enabled".into(),
            window: None,
            internal_reply: "<html><body><p>On leave until May</p><p>Ask Carol</p>".into(),
        };
        let now = calendar_now(&[item(-60, 600, "Busy")], Some(&oof), NOW, Policy::default());
        assert_eq!(now.oof_note.as_deref(), Some("On leave until May"));
        let shown = combine(&avail(Availability::Available), true, true, &now);
        assert_eq!((shown.summary.availability, shown.activity), (Availability::Away, Some("vacation")));
        assert_eq!(shown.summary.note.as_deref(), Some("On leave until May"));
        // Offline users stay offline and carry the note.
        let shown = combine(&avail(Availability::Offline), false, false, &now);
        assert_eq!(
            shown.summary,
            PresenceSummary { availability: Availability::Offline, note: Some("On leave until May".into()) }
        );
        // Disabled: nothing.
        let off = Oof { state: "Disabled".into(), ..oof.clone() };
        assert_eq!(calendar_now(&[], Some(&off), NOW, Policy::default()).oof_note, None);
    }

    #[test]
    fn scheduled_out_of_office_counts_inside_its_window_and_sets_timers() {
        let oof =
            Oof { state: "Scheduled".into(), window: Some((NOW + 100, NOW + 200)), internal_reply: "Away".into() };
        let before = calendar_now(&[], Some(&oof), NOW, Policy::default());
        assert_eq!((before.oof_note, before.next_change), (None, Some(NOW + 100)));
        let inside = calendar_now(&[], Some(&oof), NOW + 150, Policy::default());
        assert_eq!((inside.oof_note.as_deref(), inside.next_change), (Some("Away"), Some(NOW + 200)));
        // An OOF calendar item counts too.
        let now = calendar_now(&[item(-10, 10, "OOF")], None, NOW, Policy::default());
        assert_eq!(now.oof_note.as_deref(), Some("Out of office"));
    }

    #[test]
    fn policies_turn_calendar_presence_and_free_busy_off() {
        let items = [item(-60, 600, "Busy")];
        let oof = Oof { state: "Enabled".into(), window: None, internal_reply: "Gone".into() };
        let off = Policy { disable_calendar_presence: true, ..Policy::default() };
        assert_eq!(calendar_now(&items, Some(&oof), NOW, off), CalendarNow::default());
        let no_fb = Policy { disable_free_busy_info: true, ..Policy::default() };
        let now = calendar_now(&items, Some(&oof), NOW, no_fb);
        assert_eq!((now.meeting, now.oof_note.as_deref()), (None, Some("Gone")));
    }

    #[test]
    fn off_work_outside_working_hours_only_when_the_policy_says_so() {
        use tandem_ews_proto::working_hours::WorkingHours;
        // NOW is Friday 15 January 2027, 08:00 UTC: inside the default hours.
        let hours = WorkingHours::default();
        let on = Policy { enable_off_work_presence: true, ..Policy::default() };
        let mut inside = calendar_now(&[], None, NOW, on);
        apply_working_hours(&mut inside, &hours, NOW, on);
        assert_eq!((inside.off_work.as_ref(), inside.next_change), (None, Some(NOW + 9 * 3600)));
        let evening = NOW + 10 * 3600;
        let mut out = calendar_now(&[], None, evening, on);
        apply_working_hours(&mut out, &hours, evening, on);
        assert!(out.off_work.is_some());
        let shown = combine(&avail(Availability::Available), true, true, &out);
        assert_eq!((shown.summary.availability, shown.summary.note.as_deref()), (Availability::Away, Some(OFF_WORK)));
        // A meeting and a status set by hand beat it; offline stays offline.
        let mut meeting = calendar_now(&[item(9 * 3600, 11 * 3600, "Busy")], None, evening, on);
        apply_working_hours(&mut meeting, &hours, evening, on);
        assert_eq!(combine(&avail(Availability::Available), true, true, &meeting).activity, Some("meeting"));
        assert_eq!(combine(&avail(Availability::Busy), true, true, &out).summary.availability, Availability::Busy);
        assert_eq!(combine(&avail(Availability::Offline), false, false, &out).summary.note, None);
        // Off by default.
        let mut none = calendar_now(&[], None, evening, Policy::default());
        apply_working_hours(&mut none, &hours, evening, Policy::default());
        assert_eq!(none, CalendarNow::default());
    }

    #[test]
    fn nothing_from_the_calendar_leaves_the_endpoints_alone() {
        let shown = combine(&avail(Availability::Available), false, true, &CalendarNow::default());
        assert_eq!((shown.summary.availability, shown.activity), (Availability::Available, None));
        assert_eq!(first_line("\n\n  hello \nworld"), Some("hello".into()));
        assert_eq!(first_line("<div>a&amp;b<br>c</div>"), Some("a&b".into()));
        assert_eq!(first_line(""), None);
    }
}

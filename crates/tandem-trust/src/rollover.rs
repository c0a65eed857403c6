//! Rollover of a token-signing certificate (the Mailbox's Auth certificate, the Front End's
//! OAuthTokenIssuer) as a state machine over the three slots both roles store: current, next
//! and previous.
//!
//! The manual cmdlets (Set-AuthConfig -NewCertificateThumbprint/-PublishCertificate,
//! Set-CsCertificate -Roll -EffectiveDate) and the automatic rollover move through the same
//! states: a successor is published as *next* (partners fetch it with the metadata before it
//! signs anything), becomes *current* on its effective date, and the certificate it replaces
//! stays published as *previous* for the overlap, so tokens signed a moment before the switch and
//! partners that have not refreshed yet keep working. Everything here is pure: time comes in as
//! an argument, the caller generates successors and saves the result.

use tandem_config::CertificatesConfig;

const DAY: i64 = 86_400;

/// A certificate kept in a slot.
pub trait Rolling: Clone {
    fn thumbprint(&self) -> &str;
    /// Expiry (Unix seconds).
    fn not_after(&self) -> i64;
    /// When a next certificate takes over; `None` for one due at once.
    fn effective_date(&self) -> Option<i64>;
    fn set_effective_date(&mut self, at: Option<i64>);
    /// When a previous certificate stopped signing; `None` when not known yet.
    fn retired_at(&self) -> Option<i64>;
    fn set_retired_at(&mut self, at: Option<i64>);
}

/// The stored certificate records of both roles carry the same rollover fields
/// (`thumbprint`, `not_after_unix`, `effective_date`, `retired_at`): one implementation for both.
macro_rules! rolling_fields {
    ($($record:ty),+) => {$(
        impl Rolling for $record {
            fn thumbprint(&self) -> &str {
                &self.thumbprint
            }
            fn not_after(&self) -> i64 {
                self.not_after_unix
            }
            fn effective_date(&self) -> Option<i64> {
                self.effective_date
            }
            fn set_effective_date(&mut self, at: Option<i64>) {
                self.effective_date = at;
            }
            fn retired_at(&self) -> Option<i64> {
                self.retired_at
            }
            fn set_retired_at(&mut self, at: Option<i64>) {
                self.retired_at = at;
            }
        }
    )+};
}
rolling_fields!(crate::frontend::StoredCertificate, crate::mailbox::AuthCertificate);

/// When certificates are succeeded, warned about and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Seconds before expiry a successor is published; 0: never automatically.
    pub renew_before: i64,
    /// Seconds a successor is published before it signs, and its predecessor kept after.
    pub overlap: i64,
    /// Warning thresholds in days, largest first.
    pub warn_days: Vec<u32>,
    /// Seconds added to the clock when judging expiry (a test knob).
    pub clock_offset: i64,
    /// Lifetime of a generated successor, in days.
    pub signing_validity_days: u32,
}

impl Policy {
    pub fn of(c: &CertificatesConfig) -> Policy {
        Policy {
            renew_before: i64::from(c.renew_before_days) * DAY,
            overlap: i64::try_from(c.overlap_seconds).unwrap_or(i64::MAX / 4),
            warn_days: c.warn_days.clone(),
            clock_offset: c.clock_offset_days.saturating_mul(DAY),
            signing_validity_days: c.signing_validity_days,
        }
    }

    /// Seconds left before `not_after`, judged at `now` plus the clock offset.
    pub fn seconds_left(&self, not_after: i64, now: i64) -> i64 {
        not_after - now.saturating_add(self.clock_offset)
    }

    /// True when a freshly generated successor would itself be inside the renewal window (a
    /// clock offset beyond the signing validity): generating one would only loop.
    pub fn successor_would_roll_at_once(&self) -> bool {
        i64::from(self.signing_validity_days) * DAY - self.clock_offset <= self.renew_before
    }
}

/// The tightest threshold `days_left` has reached (7 before 30 before 60), if
/// any; an expired certificate has reached every threshold.
pub fn warning_threshold(days_left: i64, warn_days: &[u32]) -> Option<u32> {
    warn_days.iter().copied().filter(|t| days_left <= i64::from(*t)).min()
}

/// What a transition did, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A successor is published as next.
    Published { thumbprint: String, effective: i64 },
    /// Next became current; `previous` is the one it replaced.
    Promoted { thumbprint: String, previous: Option<String> },
    /// The previous certificate is no longer published.
    Retired { thumbprint: String },
}

/// No current certificate (before first start, or after an administrator's odd edits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unassigned<C> {
    pub next: Option<C>,
    pub previous: Option<C>,
}

/// One certificate signs and is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steady<C> {
    pub current: C,
}

/// A successor is published and takes over on its effective date; the certificate replaced last
/// time may still be retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publishing<C> {
    pub current: C,
    pub next: C,
    pub previous: Option<C>,
}

/// The successor signs; its predecessor stays published for the overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retaining<C> {
    pub current: C,
    pub previous: C,
}

/// The slots of one signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollover<C> {
    Unassigned(Unassigned<C>),
    Steady(Steady<C>),
    Publishing(Publishing<C>),
    Retaining(Retaining<C>),
}

/// The current certificate's expiry as judged by a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub thumbprint: String,
    pub not_after: i64,
    pub days_left: i64,
    /// The tightest warning threshold reached.
    pub warning: Option<u32>,
    /// A published successor: thumbprint and effective date.
    pub successor: Option<(String, i64)>,
}

impl Expiry {
    /// One line for logs and status: days left, and what happens next.
    pub fn describe(&self) -> String {
        let left = if self.days_left < 0 {
            format!("expired {} day(s) ago", -self.days_left)
        } else {
            format!("expires in {} day(s)", self.days_left)
        };
        match &self.successor {
            Some((t, _)) => format!("{left}; successor {t} is published as next"),
            None => left,
        }
    }

    /// True when the certificate needs an administrator: a threshold is reached and no
    /// successor is published.
    pub fn needs_attention(&self) -> bool {
        self.warning.is_some() && self.successor.is_none()
    }
}

impl<C: Rolling> Rollover<C> {
    /// The state the stored slots are in.
    pub fn from_slots(current: Option<C>, next: Option<C>, previous: Option<C>) -> Rollover<C> {
        match (current, next, previous) {
            (None, next, previous) => Rollover::Unassigned(Unassigned { next, previous }),
            (Some(current), Some(next), previous) => Rollover::Publishing(Publishing { current, next, previous }),
            (Some(current), None, Some(previous)) => Rollover::Retaining(Retaining { current, previous }),
            (Some(current), None, None) => Rollover::Steady(Steady { current }),
        }
    }

    /// The slots to store: (current, next, previous).
    pub fn into_slots(self) -> (Option<C>, Option<C>, Option<C>) {
        match self {
            Rollover::Unassigned(s) => (None, s.next, s.previous),
            Rollover::Steady(s) => (Some(s.current), None, None),
            Rollover::Publishing(s) => (Some(s.current), Some(s.next), s.previous),
            Rollover::Retaining(s) => (Some(s.current), None, Some(s.previous)),
        }
    }

    pub fn current(&self) -> Option<&C> {
        match self {
            Rollover::Unassigned(_) => None,
            Rollover::Steady(Steady { current })
            | Rollover::Publishing(Publishing { current, .. })
            | Rollover::Retaining(Retaining { current, .. }) => Some(current),
        }
    }

    pub fn next(&self) -> Option<&C> {
        match self {
            Rollover::Unassigned(Unassigned { next, .. }) => next.as_ref(),
            Rollover::Publishing(Publishing { next, .. }) => Some(next),
            _ => None,
        }
    }

    pub fn previous(&self) -> Option<&C> {
        match self {
            Rollover::Unassigned(Unassigned { previous, .. }) | Rollover::Publishing(Publishing { previous, .. }) => {
                previous.as_ref()
            }
            Rollover::Retaining(Retaining { previous, .. }) => Some(previous),
            Rollover::Steady(_) => None,
        }
    }

    /// Next becomes current when its effective date has come (the read path: every reader sees
    /// the switch at the same instant, before anyone saves it).
    pub fn promote_due(self, now: i64) -> (Rollover<C>, Option<Event>) {
        match self.next() {
            Some(n) if n.effective_date().unwrap_or(i64::MIN) <= now => self.promote(now),
            _ => (self, None),
        }
    }

    /// Next becomes current now (-PublishCertificate); `None` when there is no next.
    pub fn promote(self, now: i64) -> (Rollover<C>, Option<Event>) {
        let (current, next, _) = self.clone().into_slots();
        let Some(mut next) = next else { return (self, None) };
        let switched_at = next.effective_date().unwrap_or(now).min(now);
        next.set_effective_date(None);
        next.set_retired_at(None);
        let event = Event::Promoted {
            thumbprint: next.thumbprint().to_owned(),
            previous: current.as_ref().map(|c| c.thumbprint().to_owned()),
        };
        let state = match current {
            Some(mut old) => {
                old.set_retired_at(Some(switched_at));
                old.set_effective_date(None);
                Rollover::Retaining(Retaining { current: next, previous: old })
            }
            None => Rollover::Steady(Steady { current: next }),
        };
        (state, Some(event))
    }

    /// Every transition time alone makes: promotion on the effective date, then the previous
    /// certificate dropped once the overlap has passed since it stopped signing (one whose
    /// retirement time is unknown, as after a manual replacement, is stamped now).
    pub fn advance(self, now: i64, policy: &Policy) -> (Rollover<C>, Vec<Event>) {
        let mut events = Vec::new();
        let (state, promoted) = self.promote_due(now);
        events.extend(promoted);
        let (current, next, previous) = state.into_slots();
        let previous = previous.and_then(|mut p| match p.retired_at() {
            None => {
                p.set_retired_at(Some(now));
                Some(p)
            }
            Some(at) if now >= at.saturating_add(policy.overlap) => {
                events.push(Event::Retired { thumbprint: p.thumbprint().to_owned() });
                None
            }
            Some(_) => Some(p),
        });
        (Rollover::from_slots(current, next, previous), events)
    }

    /// True when the current certificate is inside the renewal window and no successor is
    /// published: the caller should generate one and hand it to [`Rollover::publish`].
    pub fn needs_successor(&self, now: i64, policy: &Policy) -> bool {
        policy.renew_before > 0
            && matches!(self, Rollover::Steady(_) | Rollover::Retaining(_))
            && self.current().is_some_and(|c| policy.seconds_left(c.not_after(), now) < policy.renew_before)
    }

    /// Publishes `successor` as next, effective after the overlap (sooner if the current
    /// certificate would expire first).
    pub fn publish(self, mut successor: C, now: i64, policy: &Policy) -> (Rollover<C>, Event) {
        let (current, _, previous) = self.into_slots();
        let mut effective = now.saturating_add(policy.overlap);
        if let Some(c) = &current {
            // The instant the current certificate expires as the policy judges it.
            effective = effective.min(c.not_after().saturating_sub(policy.clock_offset)).max(now);
        }
        successor.set_effective_date(Some(effective));
        successor.set_retired_at(None);
        let event = Event::Published { thumbprint: successor.thumbprint().to_owned(), effective };
        (Rollover::from_slots(current, Some(successor), previous), event)
    }

    /// The current certificate's expiry, judged by `policy`.
    pub fn expiry(&self, now: i64, policy: &Policy) -> Option<Expiry> {
        let c = self.current()?;
        let seconds = policy.seconds_left(c.not_after(), now);
        let days_left = seconds.div_euclid(DAY);
        Some(Expiry {
            thumbprint: c.thumbprint().to_owned(),
            not_after: c.not_after(),
            days_left,
            warning: warning_threshold(days_left, &policy.warn_days),
            successor: self.next().map(|n| (n.thumbprint().to_owned(), n.effective_date().unwrap_or(now))),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Cert {
        t: &'static str,
        not_after: i64,
        effective: Option<i64>,
        retired: Option<i64>,
    }

    impl Rolling for Cert {
        fn thumbprint(&self) -> &str {
            self.t
        }
        fn not_after(&self) -> i64 {
            self.not_after
        }
        fn effective_date(&self) -> Option<i64> {
            self.effective
        }
        fn set_effective_date(&mut self, at: Option<i64>) {
            self.effective = at;
        }
        fn retired_at(&self) -> Option<i64> {
            self.retired
        }
        fn set_retired_at(&mut self, at: Option<i64>) {
            self.retired = at;
        }
    }

    fn cert(t: &'static str, not_after: i64) -> Cert {
        Cert { t, not_after, effective: None, retired: None }
    }

    fn policy() -> Policy {
        Policy::of(&CertificatesConfig { overlap_seconds: 3600, ..CertificatesConfig::default() })
    }

    const YEAR: i64 = 365 * DAY;

    #[test]
    fn a_full_rollover_current_next_previous_then_steady() {
        let p = policy();
        let t0 = 1_000_000_000;
        let s = Rollover::from_slots(Some(cert("A", t0 + YEAR)), None, None);
        assert!(matches!(s, Rollover::Steady(_)));
        // Far from expiry: nothing happens, no warning.
        let (s, ev) = s.advance(t0, &p);
        assert!(ev.is_empty() && !s.needs_successor(t0, &p));
        assert_eq!(s.expiry(t0, &p).unwrap().warning, None);

        // 59 days before expiry: inside the 60-day window, a successor is wanted and the
        // 60-day warning is reached.
        let t1 = t0 + YEAR - 59 * DAY;
        assert!(s.needs_successor(t1, &p));
        assert_eq!(s.expiry(t1, &p).unwrap().warning, Some(60));
        let (s, ev) = s.publish(cert("B", t1 + 5 * YEAR), t1, &p);
        assert_eq!(ev, Event::Published { thumbprint: "B".into(), effective: t1 + 3600 });
        let Rollover::Publishing(Publishing { current, next, previous: None }) = &s else { panic!("{s:?}") };
        assert_eq!((current.t, next.t), ("A", "B"));
        assert!(!s.needs_successor(t1, &p), "one successor at a time");
        let e = s.expiry(t1, &p).unwrap();
        assert_eq!(e.successor, Some(("B".into(), t1 + 3600)));
        assert!(!e.needs_attention(), "a published successor answers the warning");

        // Before the effective date nothing changes; on it, B signs and A is retained.
        let (s, ev) = s.advance(t1 + 3599, &p);
        assert!(ev.is_empty() && matches!(s, Rollover::Publishing(_)));
        let (s, ev) = s.advance(t1 + 3600, &p);
        assert_eq!(ev, vec![Event::Promoted { thumbprint: "B".into(), previous: Some("A".into()) }]);
        let Rollover::Retaining(Retaining { current, previous }) = &s else { panic!("{s:?}") };
        assert_eq!((current.t, current.effective), ("B", None));
        assert_eq!((previous.t, previous.retired), ("A", Some(t1 + 3600)));

        // The previous stays for the overlap, then goes.
        let (s, ev) = s.advance(t1 + 2 * 3600 - 1, &p);
        assert!(ev.is_empty() && s.previous().is_some());
        let (s, ev) = s.advance(t1 + 2 * 3600, &p);
        assert_eq!(ev, vec![Event::Retired { thumbprint: "A".into() }]);
        assert_eq!(s, Rollover::Steady(Steady { current: cert("B", t1 + 5 * YEAR) }));
    }

    #[test]
    fn the_read_path_promotes_without_retiring() {
        let mut next = cert("B", 10 * YEAR);
        next.effective = Some(500);
        let s = Rollover::from_slots(Some(cert("A", YEAR)), Some(next), Some(cert("Z", YEAR)));
        let (same, ev) = s.clone().promote_due(499);
        assert_eq!((same, ev), (s.clone(), None));
        let (s, ev) = s.promote_due(800);
        assert!(matches!(ev, Some(Event::Promoted { .. })));
        // The older previous is replaced by the one just retired, stamped with the effective date.
        assert_eq!(s.previous().unwrap().t, "A");
        assert_eq!(s.previous().unwrap().retired, Some(500));
    }

    #[test]
    fn a_manual_previous_is_stamped_then_dropped_after_the_overlap() {
        let p = policy();
        // `--certificate-thumbprint` replaced A with B at once: A is previous, retirement unknown.
        let s = Rollover::from_slots(Some(cert("B", 5 * YEAR)), None, Some(cert("A", YEAR)));
        let (s, ev) = s.advance(100, &p);
        assert!(ev.is_empty());
        assert_eq!(s.previous().unwrap().retired, Some(100));
        let (s, _) = s.advance(100 + 3599, &p);
        assert!(s.previous().is_some());
        let (s, ev) = s.advance(100 + 3600, &p);
        assert_eq!(ev.len(), 1);
        assert!(matches!(s, Rollover::Steady(_)));
    }

    #[test]
    fn publish_now_and_no_next() {
        let s = Rollover::from_slots(Some(cert("A", YEAR)), None, None);
        let (same, ev) = s.clone().promote(10);
        assert_eq!((same, ev), (s, None));
        let s = Rollover::from_slots(None, Some(cert("B", YEAR)), None);
        let (s, ev) = s.promote_due(10);
        assert!(ev.is_some());
        assert_eq!(s, Rollover::Steady(Steady { current: cert("B", YEAR) }));
    }

    #[test]
    fn warnings_clock_offset_and_guards() {
        let p = policy();
        assert_eq!(warning_threshold(61, &p.warn_days), None);
        assert_eq!(warning_threshold(60, &p.warn_days), Some(60));
        assert_eq!(warning_threshold(29, &p.warn_days), Some(30));
        assert_eq!(warning_threshold(7, &p.warn_days), Some(7));
        assert_eq!(warning_threshold(-3, &p.warn_days), Some(7));
        // The offset moves the judged clock: 1770 days on, a 5-year certificate has 55 days left.
        let shifted = Policy { clock_offset: 1770 * DAY, ..p.clone() };
        let s = Rollover::from_slots(Some(cert("A", 5 * YEAR)), None, None);
        assert!(!s.needs_successor(0, &p));
        assert!(s.needs_successor(0, &shifted));
        assert_eq!(s.expiry(0, &shifted).unwrap().days_left, 55);
        assert!(shifted.successor_would_roll_at_once(), "a 5-year successor would be inside the window too");
        assert!(!Policy { signing_validity_days: 3650, ..shifted.clone() }.successor_would_roll_at_once());
        // Its successor takes over no later than the judged expiry.
        let (s, Event::Published { effective, .. }) = s.publish(cert("B", 10 * YEAR), 0, &shifted) else { panic!() };
        assert_eq!(effective, 3600);
        assert!(matches!(s, Rollover::Publishing(_)));
        // Automatic rollover off: never a successor, warnings still.
        let off = Policy { renew_before: 0, ..shifted };
        let s = Rollover::from_slots(Some(cert("A", 5 * YEAR)), None, None);
        assert!(!s.needs_successor(0, &off));
        assert_eq!(s.expiry(0, &off).unwrap().warning, Some(60));
        let expired = Rollover::from_slots(Some(cert("A", 10)), None, None);
        assert!(expired.expiry(10 + DAY, &p).unwrap().describe().starts_with("expired 1 day(s) ago"));
    }
}

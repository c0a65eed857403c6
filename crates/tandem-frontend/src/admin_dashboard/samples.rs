//! The figures the dashboard charts, sampled from the process's `/metrics` every [`INTERVAL`]
//! for the last [`KEEP`] samples (an hour): registrations, requests per second (SIP and HTTPS),
//! the mean EWS operation latency, and bearer-token validations per second (the UC web API's).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a sample is taken.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Samples kept.
pub const KEEP: usize = 720;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Unix seconds.
    pub time: i64,
    pub registrations: f64,
    pub requests_per_second: f64,
    /// Mean over the interval; 0 when no EWS operation ran.
    pub ews_latency_ms: f64,
    pub token_validations_per_second: f64,
}

/// The cumulative figures of one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub registrations: f64,
    pub requests: f64,
    pub ews_seconds: f64,
    pub ews_count: f64,
    pub validations: f64,
}

/// The sum of every series of `name` (exactly that metric, any labels) in a Prometheus text
/// exposition.
pub fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if let Some(labels) = rest.strip_prefix('{') {
                labels.rsplit_once('}')?.1
            } else if rest.starts_with(' ') {
                rest
            } else {
                return None;
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .filter(|v| v.is_finite())
        .sum()
}

impl Totals {
    pub fn of(text: &str) -> Totals {
        Totals {
            registrations: sum_of(text, "tandem_sip_registrations"),
            requests: sum_of(text, "tandem_sip_requests_total") + sum_of(text, "tandem_http_requests_total"),
            ews_seconds: sum_of(text, "tandem_ews_operation_seconds_sum"),
            ews_count: sum_of(text, "tandem_ews_operation_seconds_count"),
            validations: sum_of(text, "tandem_ucwa_token_validations_total"),
        }
    }

    /// The sample between an earlier scrape and this one, `secs` apart.
    pub fn since(&self, before: &Totals, secs: f64, time: i64) -> Sample {
        let rate = |now: f64, then: f64| if secs > 0.0 { ((now - then).max(0.0)) / secs } else { 0.0 };
        let ops = self.ews_count - before.ews_count;
        Sample {
            time,
            registrations: self.registrations,
            requests_per_second: rate(self.requests, before.requests),
            ews_latency_ms: if ops > 0.0 {
                (self.ews_seconds - before.ews_seconds).max(0.0) / ops * 1000.0
            } else {
                0.0
            },
            token_validations_per_second: rate(self.validations, before.validations),
        }
    }
}

/// The last scrape (when, what) and the samples.
type Kept = (Option<(Instant, Totals)>, VecDeque<Sample>);

/// The kept samples.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Kept>,
}

impl History {
    /// Takes a sample from a scrape.
    pub fn take(&self, text: &str) {
        let now = Totals::of(text);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (last, samples) = &mut *g;
        if let Some((at, before)) = last.as_ref() {
            let s = now.since(before, at.elapsed().as_secs_f64(), tandem_store::now_unix());
            if samples.len() == KEEP {
                samples.pop_front();
            }
            samples.push_back(s);
        }
        *last = Some((Instant::now(), now));
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "# TYPE tandem_sip_registrations gauge\ntandem_sip_registrations 3\n\
        tandem_sip_requests_total{method=\"REGISTER\"} 10\ntandem_sip_requests_total{method=\"MESSAGE\"} 5\n\
        tandem_http_requests_total{role=\"frontend\",route=\"/x\",method=\"GET\",status=\"200\"} 5\n\
        tandem_sip_requests_total_other 99\n\
        tandem_ews_operation_seconds_sum{operation=\"GetItem\"} 0.5\ntandem_ews_operation_seconds_count{operation=\"GetItem\"} 10\n";

    #[test]
    fn totals_sum_every_series_of_exactly_the_name() {
        let t = Totals::of(SCRAPE);
        assert_eq!(t.registrations, 3.0);
        assert_eq!(t.requests, 20.0);
        assert_eq!(t.ews_count, 10.0);
    }

    #[test]
    fn a_sample_is_rates_and_mean_latency_over_the_interval() {
        let before = Totals { registrations: 1.0, requests: 10.0, ews_seconds: 0.25, ews_count: 5.0, validations: 0.0 };
        let s = Totals::of(SCRAPE).since(&before, 5.0, 0);
        assert_eq!(s.requests_per_second, 2.0);
        assert!((s.ews_latency_ms - 50.0).abs() < 1e-9);
        assert_eq!(s.registrations, 3.0);
    }
}

//! EWS throttling as Exchange's default throttling policy does it for concurrency
//! (EwsMaxConcurrency, 27): a user may have that many EWS requests in progress at once, counted
//! from sign-in to the answer (the body upload included, so a slow sender holds its place); one
//! more is refused at once with an `ErrorServerBusy` SOAP fault whose detail carries
//! `<t:MessageXml><t:Value Name="BackOffMilliseconds">…</t:Value></t:MessageXml>`, which clients
//! (the Managed API, exchangelib) wait out before retrying. The count is per mailbox user, so the
//! Front End acting as many users with one partner token is counted per user, as Exchange charges
//! a budget to the user acted as. GetStreamingEvents gives its place back once it is recognised
//! (Exchange bounds hanging connections separately).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The back-off suggested to a refused client.
pub(crate) const BACK_OFF_MILLISECONDS: u64 = 1000;

/// Requests in progress per user.
#[derive(Debug)]
pub(crate) struct Concurrency {
    max: usize,
    in_progress: Arc<Mutex<HashMap<String, usize>>>,
}

/// A place held by one request; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Slot {
    user: String,
    in_progress: Arc<Mutex<HashMap<String, usize>>>,
}

impl Concurrency {
    pub fn new(max: u32) -> Concurrency {
        Concurrency { max: max.max(1) as usize, in_progress: Arc::default() }
    }

    /// A place for one more request of `user`, or None when the user holds the maximum.
    pub fn enter(&self, user: &str) -> Option<Slot> {
        let mut m = self.in_progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(user.to_owned()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot { user: user.to_owned(), in_progress: self.in_progress.clone() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.in_progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_its_own_places() {
        let c = Concurrency::new(2);
        let a1 = c.enter("alice").unwrap();
        let _a2 = c.enter("alice").unwrap();
        assert!(c.enter("alice").is_none());
        let _b = c.enter("bob").unwrap();
        drop(a1);
        let _a3 = c.enter("alice").unwrap();
        assert!(c.enter("alice").is_none());
        assert_eq!(c.in_progress.lock().unwrap().get("bob"), Some(&1));
    }
}

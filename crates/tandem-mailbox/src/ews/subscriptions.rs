//! The role's subscriptions by id, with a count per account so that one account cannot take
//! them all (Exchange's EwsMaxSubscriptions throttling policy): whoever fills its own share gets
//! `ErrorExceededSubscriptionCount`, and everybody else still subscribes.

use std::collections::HashMap;

use crate::Subscription;

use tandem_config::EwsLimits;

/// Why a subscription was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The account (an owner acting on one mailbox: a signed-in user on their own mailbox, or a
    /// partner application such as the Front End acting as that user) holds its maximum
    /// (`[mailbox] ews_max_subscriptions_per_account`, Exchange's EwsMaxSubscriptions).
    AccountFull,
    /// The role holds its maximum (`[mailbox] ews_max_subscriptions`).
    ServerFull,
}

/// Subscriptions by id, counted per (owner, mailbox); every change goes through here so the
/// counts never drift.
#[derive(Debug)]
pub(crate) struct SubscriptionTable {
    by_id: HashMap<String, Subscription>,
    per_account: HashMap<(String, String), usize>,
    max_per_account: usize,
    max_total: usize,
}

impl SubscriptionTable {
    pub fn new(limits: EwsLimits) -> SubscriptionTable {
        let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        SubscriptionTable {
            by_id: HashMap::new(),
            per_account: HashMap::new(),
            max_per_account: size(limits.max_subscriptions_per_account),
            max_total: size(limits.max_subscriptions),
        }
    }

    pub fn max_per_account(&self) -> usize {
        self.max_per_account
    }

    /// Full: a sweep of expired ones is due before anything is refused.
    pub fn is_full(&self) -> bool {
        self.by_id.len() >= self.max_total
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn get(&self, id: &str) -> Option<&Subscription> {
        self.by_id.get(id)
    }

    /// For polling marks and watermarks; owner and mailbox are not to be changed through it.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.by_id.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<Subscription> {
        let removed = self.by_id.remove(id)?;
        self.forget(&removed);
        Some(removed)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Subscription) -> bool) {
        let mut gone = Vec::new();
        self.by_id.retain(|id, s| {
            let k = keep(id, s);
            if !k {
                gone.push((s.owner.clone(), s.mailbox.clone()));
            }
            k
        });
        for key in gone {
            self.decrement(key);
        }
    }

    /// Adds a subscription unless its account or the role is full.
    pub fn insert(&mut self, id: String, sub: Subscription) -> Result<(), Refused> {
        if self.is_full() {
            return Err(Refused::ServerFull);
        }
        let key = (sub.owner.clone(), sub.mailbox.clone());
        let held = self.per_account.entry(key).or_insert(0);
        if *held >= self.max_per_account {
            return Err(Refused::AccountFull);
        }
        *held += 1;
        self.by_id.insert(id, sub);
        Ok(())
    }

    /// Subscriptions the account (owner on mailbox) holds.
    #[cfg(test)]
    pub fn held_by(&self, owner: &str, mailbox: &str) -> usize {
        self.per_account.get(&(owner.to_owned(), mailbox.to_owned())).copied().unwrap_or(0)
    }

    fn forget(&mut self, s: &Subscription) {
        self.decrement((s.owner.clone(), s.mailbox.clone()));
    }

    fn decrement(&mut self, key: (String, String)) {
        if let Some(n) = self.per_account.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_account.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn sub(owner: &str, mailbox: &str) -> Subscription {
        Subscription {
            mailbox: mailbox.into(),
            owner: owner.into(),
            signal: crate::data::notify::Wakeups::default().signal(mailbox),
            folders: None,
            event_types: vec![],
            timeout: Duration::from_secs(60),
            last_poll: Instant::now(),
            streaming: false,
            push: None,
            watermark: 0,
        }
    }

    #[test]
    fn one_account_filling_its_share_leaves_room_for_others() {
        let mut t = SubscriptionTable::new(EwsLimits::default());
        let max = t.max_per_account();
        assert_eq!(max, 5000, "Exchange's default EwsMaxSubscriptions");
        for n in 0..max {
            t.insert(format!("a{n}"), sub("alice", "alice")).unwrap();
        }
        assert_eq!(t.insert("one-more".into(), sub("alice", "alice")), Err(Refused::AccountFull));
        t.insert("b".into(), sub("bob", "bob")).unwrap();
        // The Front End acting as many users holds one per user.
        t.insert("fe-alice".into(), sub("app@realm", "alice")).unwrap();
        assert_eq!(t.held_by("alice", "alice"), max);
        // Removing and sweeping give places back, and the counts follow.
        t.remove("a0");
        t.insert("again".into(), sub("alice", "alice")).unwrap();
        t.retain(|id, _| !id.starts_with('a') || id == "again");
        assert_eq!(t.held_by("alice", "alice"), 1);
        assert_eq!(t.len(), 3); // b, fe-alice, again
        // Both caps come from the configuration.
        let mut small = SubscriptionTable::new(EwsLimits { max_subscriptions_per_account: 2, max_subscriptions: 3 });
        small.insert("1".into(), sub("alice", "alice")).unwrap();
        small.insert("2".into(), sub("alice", "alice")).unwrap();
        assert_eq!(small.insert("3".into(), sub("alice", "alice")), Err(Refused::AccountFull));
        small.insert("4".into(), sub("bob", "bob")).unwrap();
        assert_eq!(small.insert("5".into(), sub("carol", "carol")), Err(Refused::ServerFull));
    }
}

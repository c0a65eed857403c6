//! Which conversation a page-mode MESSAGE belongs to: messages between the same two users,
//! in either direction, form one conversation until nobody has written for the idle timeout
//! (or the conversation reached its size bounds); the next message starts a new one.
//!
//! A pair's conversation is an enum of per-state structs: [`Open`] takes messages, [`Ended`] is
//! final and queues the transcript. A transition that does not exist (a message for an ended
//! conversation) is an error, not a silent change. No I/O: the runner persists what comes out.

use std::collections::HashMap;

use crate::store::{ConversationKind, ConversationRow};

/// Bounds on one conversation, so its transcript stays one reasonable EWS request: past either
/// the conversation ends and the next message starts another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_messages: i64,
    /// Sum of the messages' text lengths, in bytes.
    pub max_text_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        // 1,000 lines or 4 MiB of text: far beyond a chat, well below the EWS client's 16 MiB.
        Bounds { max_messages: 1000, max_text_bytes: 4 * 1024 * 1024 }
    }
}

/// What ends conversations: the idle timeout and the size bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub idle_ms: i64,
    pub bounds: Bounds,
}

/// One relayed message, as grouping sees it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub kind: ConversationKind,
    pub sender: &'a str,
    pub to: &'a str,
    /// Unix milliseconds.
    pub at: i64,
    /// Its text's length in bytes.
    pub text_len: usize,
}

/// A conversation taking messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub id: String,
    pub kind: ConversationKind,
    pub participants: [String; 2],
    pub initiator: String,
    pub started_at: i64,
    pub last_at: i64,
    pub messages: i64,
    pub text_bytes: usize,
}

/// A conversation that takes no more messages: its items are to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub id: String,
    pub kind: ConversationKind,
    pub participants: [String; 2],
    pub initiator: String,
    pub ended_at: i64,
}

impl Ended {
    /// The participants other than the initiator (a missed conversation's recipient).
    pub fn recipients(&self) -> impl Iterator<Item = &String> {
        self.participants.iter().filter(|p| **p != self.initiator)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversation {
    Open(Open),
    Ended(Ended),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a conversation cannot go from {from} on {event}")]
pub struct TransitionError {
    pub from: &'static str,
    pub event: &'static str,
}

/// What a message did to its pair's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// It joined the open conversation.
    Joined(Open),
    /// It started a conversation; the one before it, if any, ended.
    Started { open: Open, ended: Option<Ended> },
}

/// The two participants in sorted order.
pub fn pair(a: &str, b: &str) -> [String; 2] {
    if a <= b { [a.to_owned(), b.to_owned()] } else { [b.to_owned(), a.to_owned()] }
}

/// The key of a conversation: an IM conversation is the pair's, whoever writes; a missed one
/// is the sender's to the recipient (the recipient's answer, later, is another conversation).
type Key = (ConversationKind, [String; 2]);

fn key(kind: ConversationKind, sender: &str, to: &str) -> Key {
    match kind {
        ConversationKind::Im => (kind, pair(sender, to)),
        _ => (kind, [sender.to_owned(), to.to_owned()]),
    }
}

impl Open {
    /// A conversation started by the message `m`.
    pub fn start(id: String, m: Incoming<'_>) -> Open {
        let Incoming { kind, sender, to, at, text_len } = m;
        Open {
            id,
            kind,
            participants: pair(sender, to),
            initiator: sender.to_owned(),
            started_at: at,
            last_at: at,
            messages: 1,
            text_bytes: text_len,
        }
    }

    /// Carries on a conversation found open in the store (after a restart).
    pub fn resume(row: &ConversationRow, text_bytes: usize) -> Open {
        Open {
            id: row.id.clone(),
            kind: row.kind,
            participants: row.participants.clone(),
            initiator: row.initiator.clone(),
            started_at: row.started_at,
            last_at: row.last_at,
            messages: row.message_count,
            text_bytes,
        }
    }

    /// Whether a message at `at` still belongs here.
    fn takes(&self, at: i64, idle_ms: i64, text_len: usize, bounds: Bounds) -> bool {
        at.saturating_sub(self.last_at) < idle_ms
            && self.messages < bounds.max_messages
            && self.text_bytes.saturating_add(text_len) <= bounds.max_text_bytes
    }

    fn end(self, at: i64) -> Ended {
        Ended { id: self.id, kind: self.kind, participants: self.participants, initiator: self.initiator, ended_at: at }
    }

    fn key(&self) -> Key {
        let other = self.participants.iter().find(|p| **p != self.initiator).unwrap_or(&self.initiator);
        key(self.kind, &self.initiator, other)
    }

    /// The store's row for this state.
    pub fn row(&self) -> ConversationRow {
        ConversationRow {
            id: self.id.clone(),
            kind: self.kind,
            participants: self.participants.clone(),
            initiator: self.initiator.clone(),
            started_at: self.started_at,
            last_at: self.last_at,
            message_count: self.messages,
            ended: false,
            sip_call_id: None,
            detail: None,
        }
    }
}

impl Conversation {
    pub fn state_name(&self) -> &'static str {
        match self {
            Conversation::Open(_) => "Open",
            Conversation::Ended(_) => "Ended",
        }
    }

    /// A message: joins the open conversation, or ends it and starts another (`new_id` names
    /// it) when the conversation was idle too long or is full.
    pub fn on_message(
        self,
        m: Incoming<'_>,
        rules: Rules,
        new_id: impl FnOnce() -> String,
    ) -> Result<Placed, TransitionError> {
        let Incoming { at, text_len, .. } = m;
        match self {
            Conversation::Open(mut o) => {
                if o.takes(at, rules.idle_ms, text_len, rules.bounds) {
                    // A clock stepping back never moves the end before a message already kept.
                    o.last_at = o.last_at.max(at);
                    o.messages += 1;
                    o.text_bytes += text_len;
                    Ok(Placed::Joined(o))
                } else {
                    let ended_at = o.last_at;
                    Ok(Placed::Started { open: Open::start(new_id(), m), ended: Some(o.end(ended_at)) })
                }
            }
            other => Err(TransitionError { from: other.state_name(), event: "message" }),
        }
    }

    /// Time passes: an open conversation idle for `idle_ms` ends, at its last message.
    pub fn on_tick(self, now: i64, idle_ms: i64) -> Result<Conversation, TransitionError> {
        match self {
            Conversation::Open(o) if now.saturating_sub(o.last_at) >= idle_ms => {
                let at = o.last_at;
                Ok(Conversation::Ended(o.end(at)))
            }
            open @ Conversation::Open(_) => Ok(open),
            other => Err(TransitionError { from: other.state_name(), event: "tick" }),
        }
    }
}

/// The open conversation of every pair (a pair with none is quiet: its next message starts one).
#[derive(Debug, Default)]
pub struct Grouper {
    open: HashMap<Key, Open>,
}

impl Grouper {
    /// Carries on the conversations the store holds open.
    pub fn resume(&mut self, open: impl IntoIterator<Item = Open>) {
        for o in open {
            self.open.insert(o.key(), o);
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Places a message in its pair's conversation.
    pub fn place(
        &mut self,
        m: Incoming<'_>,
        rules: Rules,
        new_id: impl FnOnce() -> String,
    ) -> Result<Placed, TransitionError> {
        let key = key(m.kind, m.sender, m.to);
        let placed = match self.open.remove(&key) {
            None => Placed::Started { open: Open::start(new_id(), m), ended: None },
            Some(o) => Conversation::Open(o).on_message(m, rules, new_id)?,
        };
        let open = match &placed {
            Placed::Joined(o) | Placed::Started { open: o, .. } => o.clone(),
        };
        self.open.insert(key, open);
        Ok(placed)
    }

    /// Ends every conversation idle for `idle_ms` at `now`.
    pub fn expire(&mut self, now: i64, idle_ms: i64) -> Vec<Ended> {
        let idle: Vec<Key> = self
            .open
            .iter()
            .filter(|(_, o)| now.saturating_sub(o.last_at) >= idle_ms)
            .map(|(k, _)| k.clone())
            .collect();
        let mut ended = Vec::new();
        for key in idle {
            let Some(o) = self.open.remove(&key) else { continue };
            match Conversation::Open(o).on_tick(now, idle_ms) {
                Ok(Conversation::Ended(e)) => ended.push(e),
                Ok(Conversation::Open(o)) => {
                    self.open.insert(key, o);
                }
                // An open conversation always takes a tick.
                Err(e) => tracing::error!(error = %e, "conversation history: impossible transition"),
            }
        }
        ended
    }

    /// The open IM conversation of a pair, if any.
    pub fn get(&self, a: &str, b: &str) -> Option<&Open> {
        self.open.get(&key(ConversationKind::Im, a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sip:alice@x.com";
    const B: &str = "sip:bob@x.com";
    const C: &str = "sip:carol@x.com";
    const IDLE: i64 = 10_000;

    fn m<'a>(sender: &'a str, to: &'a str, at: i64, text_len: usize) -> Incoming<'a> {
        Incoming { kind: ConversationKind::Im, sender, to, at, text_len }
    }

    fn missed<'a>(sender: &'a str, to: &'a str, at: i64) -> Incoming<'a> {
        Incoming { kind: ConversationKind::Missed, ..m(sender, to, at, 1) }
    }

    fn rules(bounds: Bounds) -> Rules {
        Rules { idle_ms: IDLE, bounds }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("c{n}")
        }
    }

    #[test]
    fn both_directions_are_one_conversation_until_the_idle_timeout() {
        let mut g = Grouper::default();
        let mut id = ids();
        let b = Bounds::default();
        let Placed::Started { open, ended: None } = g.place(m(A, B, 1_000, 5), rules(b), &mut id).unwrap() else {
            panic!()
        };
        assert_eq!((open.id.as_str(), open.initiator.as_str()), ("c1", A));
        assert_eq!(open.participants, [A.to_owned(), B.to_owned()]);
        let Placed::Joined(o) = g.place(m(B, A, 5_000, 3), rules(b), &mut id).unwrap() else { panic!() };
        assert_eq!((o.id.as_str(), o.messages, o.last_at, o.text_bytes), ("c1", 2, 5_000, 8));
        // Another pair is another conversation.
        let Placed::Started { open: other, ended: None } = g.place(m(A, C, 6_000, 1), rules(b), &mut id).unwrap()
        else {
            panic!()
        };
        assert_eq!(other.id, "c2");
        // Just before the timeout nothing ends; at it, the conversation ends at its last message.
        assert!(g.expire(14_999, IDLE).is_empty());
        let ended = g.expire(15_000, IDLE);
        assert_eq!(
            ended,
            vec![Ended {
                id: "c1".into(),
                kind: ConversationKind::Im,
                participants: pair(A, B),
                initiator: A.into(),
                ended_at: 5_000
            }]
        );
        assert_eq!(g.len(), 1);
        // The next message of the pair starts a new one.
        let Placed::Started { open, ended: None } = g.place(m(A, B, 20_000, 1), rules(b), &mut id).unwrap() else {
            panic!()
        };
        assert_eq!(open.id, "c3");
    }

    #[test]
    fn a_late_message_ends_the_conversation_and_starts_the_next() {
        let mut g = Grouper::default();
        let mut id = ids();
        let b = Bounds::default();
        g.place(m(A, B, 0, 1), rules(b), &mut id).unwrap();
        // No tick ran (a busy runner): the message itself closes the old conversation.
        let Placed::Started { open, ended: Some(e) } = g.place(m(B, A, IDLE, 1), rules(b), &mut id).unwrap() else {
            panic!()
        };
        assert_eq!((e.id.as_str(), e.ended_at), ("c1", 0));
        assert_eq!((open.id.as_str(), open.initiator.as_str(), open.messages), ("c2", B, 1));
    }

    #[test]
    fn a_full_conversation_ends_and_the_next_message_starts_another() {
        let mut g = Grouper::default();
        let mut id = ids();
        let b = Bounds { max_messages: 2, max_text_bytes: 10 };
        g.place(m(A, B, 0, 4), rules(b), &mut id).unwrap();
        assert!(matches!(g.place(m(A, B, 1, 4), rules(b), &mut id).unwrap(), Placed::Joined(_)));
        let Placed::Started { ended: Some(e), .. } = g.place(m(A, B, 2, 1), rules(b), &mut id).unwrap() else {
            panic!("a third message exceeds max_messages")
        };
        assert_eq!(e.id, "c1");
        // The text bound too: 1 + 10 > 10.
        let Placed::Started { ended: Some(e), .. } = g.place(m(A, B, 3, 10), rules(b), &mut id).unwrap() else {
            panic!("the text bound")
        };
        assert_eq!(e.id, "c2");
    }

    #[test]
    fn a_clock_stepping_back_keeps_the_conversation_end() {
        let mut g = Grouper::default();
        let mut id = ids();
        g.place(m(A, B, 5_000, 1), rules(Bounds::default()), &mut id).unwrap();
        let Placed::Joined(o) = g.place(m(B, A, 4_000, 1), rules(Bounds::default()), &mut id).unwrap() else {
            panic!()
        };
        assert_eq!(o.last_at, 5_000);
    }

    #[test]
    fn an_ended_conversation_takes_nothing() {
        let e = Conversation::Ended(Ended {
            id: "c".into(),
            kind: ConversationKind::Im,
            participants: pair(A, B),
            initiator: A.into(),
            ended_at: 0,
        });
        let err = e.clone().on_message(m(A, B, 1, 1), rules(Bounds::default()), || "n".into()).unwrap_err();
        assert_eq!(err, TransitionError { from: "Ended", event: "message" });
        assert_eq!(e.on_tick(1, IDLE).unwrap_err().event, "tick");
        let open = Conversation::Open(Open::start("c".into(), m(A, B, 0, 1)));
        assert!(matches!(open.clone().on_tick(IDLE - 1, IDLE).unwrap(), Conversation::Open(_)));
        assert!(matches!(open.on_tick(IDLE, IDLE).unwrap(), Conversation::Ended(_)));
    }

    #[test]
    fn resumed_conversations_carry_on() {
        let row = ConversationRow {
            id: "old".into(),
            kind: ConversationKind::Im,
            participants: pair(A, B),
            initiator: B.into(),
            started_at: 100,
            last_at: 2_000,
            message_count: 7,
            ended: false,
            sip_call_id: None,
            detail: None,
        };
        let mut g = Grouper::default();
        g.resume([Open::resume(&row, 50)]);
        let Placed::Joined(o) = g.place(m(A, B, 3_000, 1), rules(Bounds::default()), || "new".into()).unwrap() else {
            panic!("a message after a restart joins the conversation from before it")
        };
        assert_eq!((o.id.as_str(), o.messages, o.initiator.as_str()), ("old", 8, B));
        assert_eq!(o.row(), ConversationRow { last_at: 3_000, message_count: 8, ..row.clone() });
        assert_eq!(g.get(B, A).unwrap().messages, 8);
        assert_eq!(g.expire(3_000 + IDLE, IDLE).len(), 1);
        assert!(g.is_empty());
    }

    #[test]
    fn missed_conversations_are_the_senders_to_the_recipient_and_apart_from_im() {
        let mut g = Grouper::default();
        let mut id = ids();
        let r = rules(Bounds::default());
        let Placed::Started { open, .. } = g.place(missed(A, B, 0), r, &mut id).unwrap() else { panic!() };
        assert_eq!((open.kind, open.initiator.as_str()), (ConversationKind::Missed, A));
        assert!(matches!(g.place(missed(A, B, 1), r, &mut id).unwrap(), Placed::Joined(_)));
        // The recipient's own offline messages back, and a live IM of the pair, are others.
        assert!(matches!(g.place(missed(B, A, 2), r, &mut id).unwrap(), Placed::Started { ended: None, .. }));
        assert!(matches!(g.place(m(A, B, 3, 1), r, &mut id).unwrap(), Placed::Started { ended: None, .. }));
        assert_eq!(g.len(), 3);
        let mut ended = g.expire(IDLE + 2, IDLE);
        ended.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(ended.len(), 2, "c1 and c2 ended, c3 (at 3) is 1 ms short");
        assert_eq!(ended[0].recipients().collect::<Vec<_>>(), vec![B]);
        assert_eq!(ended[1].recipients().collect::<Vec<_>>(), vec![A]);
        // Resumed after a restart, a missed conversation keeps its direction.
        let row = Open::resume(&ConversationRow { ended: false, ..g.get(A, B).unwrap().row() }, 0);
        let mut g2 = Grouper::default();
        g2.resume([Open { kind: ConversationKind::Missed, initiator: B.into(), ..row }]);
        assert!(matches!(g2.place(missed(B, A, 4), r, &mut id).unwrap(), Placed::Joined(_)));
    }
}

//! The last warnings and errors the process logged, for the dashboard: the binary's logging
//! hands each WARN and ERROR event to [`record`]; the newest [`KEEP`] are kept.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Events kept.
pub const KEEP: usize = 100;
/// The longest message kept (characters).
const MAX_MESSAGE: usize = 1000;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedEvent {
    /// Unix seconds.
    pub time: i64,
    pub level: &'static str,
    pub target: String,
    pub message: String,
}

static RECENT: Mutex<VecDeque<LoggedEvent>> = Mutex::new(VecDeque::new());

/// Keeps one event.
pub fn record(level: &'static str, target: &str, message: &str) {
    let message: String = message.chars().take(MAX_MESSAGE).collect();
    let mut q = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    if q.len() == KEEP {
        q.pop_front();
    }
    q.push_back(LoggedEvent { time: tandem_store::now_unix(), level, target: target.to_owned(), message });
}

/// The kept events, newest first.
pub fn recent() -> Vec<LoggedEvent> {
    RECENT.lock().unwrap_or_else(|p| p.into_inner()).iter().rev().cloned().collect()
}

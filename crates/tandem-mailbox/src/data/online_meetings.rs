//! Online meetings (`mbx_online_meetings`): what the Mailbox owes the Front End's meeting API
//! for each online meeting it holds, kept so calls that failed are retried (and a conference is
//! removed after its item is gone).

use sqlx::Row;

use super::{Data, DataError};

/// A call the Front End still has to answer for a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// No conference yet: POST one.
    Create,
    /// The meeting changed (time, subject, attendees): PUT it.
    Update,
    /// The meeting was cancelled or deleted: DELETE the conference, then forget the row.
    Delete,
}

impl Pending {
    pub fn as_str(self) -> &'static str {
        match self {
            Pending::Create => "create",
            Pending::Update => "update",
            Pending::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Pending> {
        match s {
            "create" => Some(Pending::Create),
            "update" => Some(Pending::Update),
            "delete" => Some(Pending::Delete),
            _ => None,
        }
    }
}

/// One online meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineMeeting {
    /// The meeting's UID (every copy shares it).
    pub uid: String,
    /// The organizer's mailbox (account name) and their calendar item.
    pub mailbox: String,
    pub item_id: String,
    /// The Front End's conference id, once it answered.
    pub conference_id: Option<String>,
    pub pending: Option<Pending>,
    /// Failed calls since the last success.
    pub attempts: i64,
    /// When the pending call is due (Unix seconds).
    pub next_attempt_at: i64,
    /// Why the last call failed.
    pub last_error: Option<String>,
}

const COLUMNS: &str = "uid, mailbox, item_id, conference_id, pending, attempts, next_attempt_at, last_error";

fn from_row(r: &sqlx::any::AnyRow) -> Result<OnlineMeeting, DataError> {
    let pending: Option<String> = r.try_get("pending")?;
    Ok(OnlineMeeting {
        uid: r.try_get("uid")?,
        mailbox: r.try_get("mailbox")?,
        item_id: r.try_get("item_id")?,
        conference_id: r.try_get("conference_id")?,
        pending: pending.as_deref().and_then(Pending::parse),
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
    })
}

impl Data {
    /// The online meeting with `uid`.
    pub async fn online_meeting(&self, uid: &str) -> Result<Option<OnlineMeeting>, DataError> {
        let sql = format!("SELECT {COLUMNS} FROM mbx_online_meetings WHERE uid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(uid).fetch_optional(self.pool()).await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Writes an online meeting (replacing the row with its UID).
    pub async fn put_online_meeting(&self, m: &OnlineMeeting) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO mbx_online_meetings (uid, mailbox, item_id, conference_id, pending, attempts, next_attempt_at, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (uid) DO UPDATE SET mailbox = excluded.mailbox, item_id = excluded.item_id,
               conference_id = excluded.conference_id, pending = excluded.pending, attempts = excluded.attempts,
               next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error",
        )
        .bind(&m.uid)
        .bind(&m.mailbox)
        .bind(&m.item_id)
        .bind(m.conference_id.as_deref())
        .bind(m.pending.map(Pending::as_str))
        .bind(m.attempts)
        .bind(m.next_attempt_at)
        .bind(m.last_error.as_deref())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Meetings with a call due at `now`, the longest waiting first, at most `limit`.
    pub async fn due_online_meetings(&self, now: i64, limit: usize) -> Result<Vec<OnlineMeeting>, DataError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM mbx_online_meetings WHERE pending IS NOT NULL AND next_attempt_at <= $1
             ORDER BY next_attempt_at, uid LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Forgets an online meeting; false when there was none.
    pub async fn remove_online_meeting(&self, uid: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM mbx_online_meetings WHERE uid = $1").bind(uid).execute(self.pool()).await?;
        Ok(done.rows_affected() > 0)
    }
}

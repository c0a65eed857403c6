//! Voicemail: the UM-enabled mailboxes (Enable-UMMailbox: PIN, rings before call answering, an
//! uploaded greeting) and the spool of recordings kept until the callee's mailbox took them.

use sqlx::Row;

use super::{DataError, FrontendStore};

/// One UM-enabled user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmMailboxRow {
    /// The user's address of record (`sip:bob@domain`).
    pub aor: String,
    /// The mailbox voicemail is left in.
    pub smtp: String,
    /// The PIN's hash for calling in (PHC string), when one was set.
    pub pin_hash: Option<String>,
    /// Rings before an unanswered call goes to voicemail.
    pub call_answering_rings: u32,
    /// The uploaded greeting (a checked WAV file), when there is one.
    pub greeting: Option<Vec<u8>>,
    pub updated_at: i64,
}

/// A recording waiting for its mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledVoicemail {
    pub id: String,
    pub callee_smtp: String,
    pub caller_uri: String,
    pub caller_name: Option<String>,
    pub started_at: i64,
    /// The recording as a WAV file.
    pub wav: Vec<u8>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

fn um_row(r: &sqlx::any::AnyRow) -> Result<UmMailboxRow, sqlx::Error> {
    let rings: i64 = r.try_get("call_answering_rings")?;
    Ok(UmMailboxRow {
        aor: r.try_get("aor")?,
        smtp: r.try_get("smtp")?,
        pin_hash: r.try_get("pin_hash")?,
        call_answering_rings: u32::try_from(rings).unwrap_or(u32::MAX),
        greeting: r.try_get("greeting")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn spool_row(r: &sqlx::any::AnyRow) -> Result<SpooledVoicemail, sqlx::Error> {
    Ok(SpooledVoicemail {
        id: r.try_get("id")?,
        callee_smtp: r.try_get("callee_smtp")?,
        caller_uri: r.try_get("caller_uri")?,
        caller_name: r.try_get("caller_name")?,
        started_at: r.try_get("started_at")?,
        wav: r.try_get("wav")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
    })
}

impl FrontendStore {
    /// The UM mailbox of an address of record, when the user is UM-enabled.
    pub async fn um_mailbox(&self, aor: &str) -> Result<Option<UmMailboxRow>, DataError> {
        let row = sqlx::query(
            "SELECT aor, smtp, pin_hash, call_answering_rings, greeting, updated_at FROM um_mailboxes WHERE aor = $1",
        )
        .bind(aor)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(um_row).transpose()?)
    }

    /// Every UM-enabled user, by address of record.
    pub async fn um_mailboxes(&self) -> Result<Vec<UmMailboxRow>, DataError> {
        let rows = sqlx::query(
            "SELECT aor, smtp, pin_hash, call_answering_rings, greeting, updated_at FROM um_mailboxes ORDER BY aor",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(um_row).collect::<Result<_, _>>()?)
    }

    /// Creates or replaces a UM mailbox row.
    pub async fn put_um_mailbox(&self, row: &UmMailboxRow) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO um_mailboxes (aor, smtp, pin_hash, call_answering_rings, greeting, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (aor) DO UPDATE SET smtp = excluded.smtp, pin_hash = excluded.pin_hash,
               call_answering_rings = excluded.call_answering_rings, greeting = excluded.greeting,
               updated_at = excluded.updated_at",
        )
        .bind(&row.aor)
        .bind(&row.smtp)
        .bind(row.pin_hash.clone())
        .bind(i64::from(row.call_answering_rings))
        .bind(row.greeting.clone())
        .bind(row.updated_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Disable-UMMailbox; false when the user was not UM-enabled.
    pub async fn delete_um_mailbox(&self, aor: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM um_mailboxes WHERE aor = $1").bind(aor).execute(self.store.pool()).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Keeps a recording before its first delivery attempt.
    pub async fn spool_voicemail(&self, v: &SpooledVoicemail) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO vm_spool (id, callee_smtp, caller_uri, caller_name, started_at, wav, attempts, next_attempt_at, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&v.id)
        .bind(&v.callee_smtp)
        .bind(&v.caller_uri)
        .bind(v.caller_name.clone())
        .bind(v.started_at)
        .bind(v.wav.clone())
        .bind(v.attempts)
        .bind(v.next_attempt_at)
        .bind(v.last_error.clone())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Recordings due for another attempt at `now`, oldest first, at most `limit`.
    pub async fn due_voicemails(&self, now: i64, limit: i64) -> Result<Vec<SpooledVoicemail>, DataError> {
        let rows = sqlx::query(
            "SELECT id, callee_smtp, caller_uri, caller_name, started_at, wav, attempts, next_attempt_at, last_error
             FROM vm_spool WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(spool_row).collect::<Result<_, _>>()?)
    }

    /// How many recordings wait for their mailbox.
    pub async fn spooled_voicemail_count(&self) -> Result<i64, DataError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM vm_spool").fetch_one(self.store.pool()).await?;
        Ok(row.try_get("n")?)
    }

    /// A failed attempt: when to try again and why it failed.
    pub async fn voicemail_retry(&self, id: &str, next_attempt_at: i64, error: &str) -> Result<(), DataError> {
        sqlx::query("UPDATE vm_spool SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// The mailbox took the recording; false when it was gone already.
    pub async fn voicemail_delivered(&self, id: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM vm_spool WHERE id = $1").bind(id).execute(self.store.pool()).await?;
        Ok(done.rows_affected() > 0)
    }
}

//! Instant messages kept for users who were offline, until an endpoint of theirs accepts them.

use sqlx::Row;

use super::{DataError, FrontendStore};

/// One kept message, replayed as a MESSAGE with its original From, type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: String,
    pub target_aor: String,
    /// The authenticated sender's SIP URI.
    pub sender: String,
    /// The From header as the sender's request carried it.
    pub from_header: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub received_at: i64,
}

impl FrontendStore {
    /// How many messages wait for an address of record.
    pub async fn offline_message_count(&self, target_aor: &str) -> Result<i64, DataError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sip_offline_messages WHERE target_aor = $1")
            .bind(target_aor)
            .fetch_one(self.store.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Keeps a message.
    pub async fn insert_offline_message(&self, m: &OfflineMessage) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO sip_offline_messages (id, target_aor, sender, from_header, content_type, body, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&m.id)
        .bind(&m.target_aor)
        .bind(&m.sender)
        .bind(&m.from_header)
        .bind(&m.content_type)
        .bind(m.body.clone())
        .bind(m.received_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The messages waiting for an address of record, oldest first.
    pub async fn offline_messages_for(&self, target_aor: &str) -> Result<Vec<OfflineMessage>, DataError> {
        let rows = sqlx::query(
            "SELECT id, target_aor, sender, from_header, content_type, body, received_at FROM sip_offline_messages
             WHERE target_aor = $1 ORDER BY received_at, id",
        )
        .bind(target_aor)
        .fetch_all(self.store.pool())
        .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<OfflineMessage, sqlx::Error> {
            Ok(OfflineMessage {
                id: r.try_get("id")?,
                target_aor: r.try_get("target_aor")?,
                sender: r.try_get("sender")?,
                from_header: r.try_get("from_header")?,
                content_type: r.try_get("content_type")?,
                body: r.try_get("body")?,
                received_at: r.try_get("received_at")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Removes a delivered message; false when it was gone already.
    pub async fn delete_offline_message(&self, id: &str) -> Result<bool, DataError> {
        let done =
            sqlx::query("DELETE FROM sip_offline_messages WHERE id = $1").bind(id).execute(self.store.pool()).await?;
        Ok(done.rows_affected() > 0)
    }
}

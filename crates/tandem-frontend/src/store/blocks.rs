//! Presence block lists: watchers an owner has blocked are told "offline" (polite blocking).

use super::{DataError, FrontendStore};

impl FrontendStore {
    /// Whether `owner_aor` has blocked `watcher_aor`.
    pub async fn is_blocked(&self, owner_aor: &str, watcher_aor: &str) -> Result<bool, DataError> {
        let row = sqlx::query("SELECT 1 FROM presence_blocks WHERE owner_aor = $1 AND watcher_aor = $2")
            .bind(owner_aor)
            .bind(watcher_aor)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Blocks a watcher; blocking twice is no error.
    pub async fn block(&self, owner_aor: &str, watcher_aor: &str) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO presence_blocks (owner_aor, watcher_aor) VALUES ($1, $2)
             ON CONFLICT (owner_aor, watcher_aor) DO NOTHING",
        )
        .bind(owner_aor)
        .bind(watcher_aor)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Lifts a block; false when there was none.
    pub async fn unblock(&self, owner_aor: &str, watcher_aor: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM presence_blocks WHERE owner_aor = $1 AND watcher_aor = $2")
            .bind(owner_aor)
            .bind(watcher_aor)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

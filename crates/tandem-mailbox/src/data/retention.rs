//! Deleted-item retention: what Recoverable Items (Deletions, Purges, Versions) has kept longer
//! than its mailbox's RetainDeletedItemsFor is found here and removed for good, a batch per
//! transaction. Whether a mailbox is on hold is the caller's decision (`holds::sweep`).

use sqlx::Row;

use super::items::{LIGHT_COLUMNS, from_row};
use super::{Data, DataError, Item};

/// The folders of Recoverable Items that hold items.
pub(crate) const RECOVERABLE: [&str; 3] =
    ["recoverableitemsdeletions", "recoverableitemspurges", "recoverableitemsversions"];

impl Data {
    /// The mailboxes whose Recoverable Items hold at least one item.
    pub async fn mailboxes_with_recoverable_items(&self) -> Result<Vec<String>, DataError> {
        let rows = sqlx::query(
            "SELECT DISTINCT mailbox FROM mbx_folders WHERE distinguished IN ($1, $2, $3) AND item_count > 0
             ORDER BY mailbox",
        )
        .bind(RECOVERABLE[0])
        .bind(RECOVERABLE[1])
        .bind(RECOVERABLE[2])
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.try_get("mailbox")).collect::<Result<_, _>>()?)
    }

    /// Up to `limit` items of a mailbox's Recoverable Items last moved there (or written there)
    /// at or before `cutoff` (Unix seconds), without their large columns.
    pub async fn recoverable_items_before(
        &self,
        mailbox: &str,
        cutoff: i64,
        limit: usize,
    ) -> Result<Vec<Item>, DataError> {
        let cols: Vec<String> = LIGHT_COLUMNS.split(", ").map(|c| format!("i.{c}")).collect();
        let sql = format!(
            "SELECT {} FROM mbx_folders f JOIN mbx_items i ON i.folder_id = f.id
             WHERE f.mailbox = $1 AND f.distinguished IN ($2, $3, $4) AND i.modified_at <= $5 LIMIT {}",
            cols.join(", "),
            i64::try_from(limit).unwrap_or(i64::MAX)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox)
            .bind(RECOVERABLE[0])
            .bind(RECOVERABLE[1])
            .bind(RECOVERABLE[2])
            .bind(cutoff)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| from_row(r, false)).collect::<Result<_, _>>()?)
    }

    /// Removes items of one mailbox for good, with their attachments and index entries (one
    /// transaction, one change number).
    pub async fn purge_items(&self, mailbox: &str, items: &[Item]) -> Result<(), DataError> {
        let mut w = self.write().await?;
        let (change, _) = w.next_numbers(mailbox, 0).await?;
        for i in items {
            w.delete_item(i, change).await?;
        }
        w.commit().await
    }
}

//! The change log (`mbx_changes`) and the per-mailbox counters (`mbx_counters`). Every item and
//! folder write takes its change number (and article numbers, the IMAP UIDs DavMail uses) from
//! the counters and logs what it touched, in its own transaction; SyncFolderItems,
//! SyncFolderHierarchy, GetEvents and GetStreamingEvents read the log back.

use sqlx::Row;

use super::{Data, DataError, Write};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Created,
    Modified,
    Deleted,
    Moved,
    Copied,
    NewMail,
    /// Only the read flag changed: SyncFolderItems reports a ReadFlagChange, notifications a
    /// ModifiedEvent, as Exchange does.
    ReadFlag,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "Created",
            ChangeKind::Modified => "Modified",
            ChangeKind::Deleted => "Deleted",
            ChangeKind::Moved => "Moved",
            ChangeKind::Copied => "Copied",
            ChangeKind::NewMail => "NewMail",
            ChangeKind::ReadFlag => "ReadFlagChanged",
        }
    }
}

/// What kind of object a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Item,
    Folder,
}

impl ObjectKind {
    fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Item => "item",
            ObjectKind::Folder => "folder",
        }
    }
}

/// A logged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub change_number: i64,
    pub kind: String,
    pub object_kind: String,
    pub object_id: String,
    pub folder_id: String,
    pub old_folder_id: Option<String>,
    pub at: i64,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Change, sqlx::Error> {
    Ok(Change {
        change_number: r.try_get("change_number")?,
        kind: r.try_get("kind")?,
        object_kind: r.try_get("object_kind")?,
        object_id: r.try_get("object_id")?,
        folder_id: r.try_get("folder_id")?,
        old_folder_id: r.try_get("old_folder_id")?,
        at: r.try_get("at")?,
    })
}

/// One item's changes in a folder after a state, folded (SyncFolderItems).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemSync {
    pub item_id: String,
    /// The item's last change number after the state.
    pub last: i64,
    /// The last change number at which it came into the folder (created or moved in), else 0.
    pub arrived: i64,
    /// Every change after the state only flipped its read flag.
    pub read_flag_only: bool,
}

impl Data {
    /// The mailbox's latest change number (0 before any write).
    pub async fn current_change(&self, mailbox: &str) -> Result<i64, DataError> {
        let row = sqlx::query("SELECT COALESCE(MAX(next_change), 1) - 1 AS n FROM mbx_counters WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Changes after `after`, oldest first: of one kind of object or all, at most `limit`.
    pub async fn changes_after(
        &self,
        mailbox: &str,
        after: i64,
        only: Option<ObjectKind>,
        limit: usize,
    ) -> Result<Vec<Change>, DataError> {
        self.count_log_read();
        let rows = sqlx::query(
            "SELECT change_number, kind, object_kind, object_id, folder_id, old_folder_id, at FROM mbx_changes
             WHERE mailbox = $1 AND change_number > $2 AND ($3 = '' OR object_kind = $3)
             ORDER BY change_number LIMIT $4",
        )
        .bind(mailbox)
        .bind(after)
        .bind(only.map(ObjectKind::as_str).unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The items that came into, changed in or left a folder after `after`, in the order of
    /// their last change.
    pub async fn item_changes_in(
        &self,
        mailbox: &str,
        folder_id: &str,
        after: i64,
    ) -> Result<Vec<ItemSync>, DataError> {
        self.count_log_read();
        let rows = sqlx::query(
            "SELECT object_id, MAX(change_number) AS last,
                    MAX(CASE WHEN (kind = 'Created' AND folder_id = $1) OR (kind = 'Moved' AND folder_id = $1) THEN change_number ELSE 0 END) AS arrived,
                    CAST(MIN(CASE WHEN kind = 'ReadFlagChanged' THEN 1 ELSE 0 END) AS BIGINT) AS read_flag_only
             FROM mbx_changes
             WHERE mailbox = $2 AND object_kind = 'item' AND change_number > $3 AND (folder_id = $1 OR old_folder_id = $1)
             GROUP BY object_id ORDER BY last",
        )
        .bind(folder_id)
        .bind(mailbox)
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(ItemSync {
                item_id: r.try_get("object_id")?,
                last: r.try_get("last")?,
                arrived: r.try_get("arrived")?,
                read_flag_only: r.try_get::<i64, _>("read_flag_only")? == 1,
            });
        }
        Ok(out)
    }
}

impl Write<'_> {
    /// Takes the next change number, and `articles` article numbers, for a mailbox.
    pub async fn next_numbers(&mut self, mailbox: &str, articles: i64) -> Result<(i64, i64), DataError> {
        let row = sqlx::query(
            "UPDATE mbx_counters SET next_change = next_change + 1, next_article = next_article + $2
             WHERE mailbox = $1 RETURNING next_change, next_article",
        )
        .bind(mailbox)
        .bind(articles)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| DataError::Corrupt(format!("mailbox {mailbox} has no counters")))?;
        let change: i64 = row.try_get("next_change")?;
        let article: i64 = row.try_get("next_article")?;
        self.touch(mailbox, change - 1);
        Ok((change - 1, article - articles))
    }

    /// Appends one change to the log.
    #[allow(clippy::too_many_arguments)]
    pub async fn log_change(
        &mut self,
        mailbox: &str,
        change: i64,
        kind: ChangeKind,
        object: ObjectKind,
        object_id: &str,
        folder_id: &str,
        old_folder_id: Option<&str>,
    ) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO mbx_changes (mailbox, change_number, kind, object_kind, object_id, folder_id, old_folder_id, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(mailbox)
        .bind(change)
        .bind(kind.as_str())
        .bind(object.as_str())
        .bind(object_id)
        .bind(folder_id)
        .bind(old_folder_id)
        .bind(tandem_store::now_unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

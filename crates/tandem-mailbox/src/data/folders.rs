//! Folders (`mbx_folders`): the distinguished folders a new mailbox gets, lookups, and the folder
//! writes — create, rename or change class, move (MoveFolder and the soft deletes of DeleteFolder
//! share it) and hard delete of a subtree with its items — each one transaction with its change
//! log row. Item and unread counts are kept here by every item write.

use sqlx::Row;
use tandem_ews_proto::ids::IdKind;

use super::changes::ObjectKind;
use super::{ChangeKind, Data, DataError, Write, new_id};

/// A folder row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folder {
    pub id: String,
    pub mailbox: String,
    pub parent_id: Option<String>,
    pub distinguished: Option<String>,
    pub display_name: String,
    pub class: String,
    pub hidden: bool,
    pub item_count: i64,
    pub unread_count: i64,
    pub change_number: i64,
    pub modified_at: i64,
}

const COLUMNS: &str = "id, mailbox, parent_id, distinguished, display_name, folder_class, hidden, item_count, unread_count, change_number, modified_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Folder, sqlx::Error> {
    Ok(Folder {
        id: r.try_get("id")?,
        mailbox: r.try_get("mailbox")?,
        parent_id: r.try_get("parent_id")?,
        distinguished: r.try_get("distinguished")?,
        display_name: r.try_get("display_name")?,
        class: r.try_get("folder_class")?,
        hidden: r.try_get::<i64, _>("hidden")? != 0,
        item_count: r.try_get("item_count")?,
        unread_count: r.try_get("unread_count")?,
        change_number: r.try_get("change_number")?,
        modified_at: r.try_get("modified_at")?,
    })
}

/// The distinguished folders of a new mailbox: (name, parent, display name, class, hidden).
const LAYOUT: &[(&str, Option<&str>, &str, &str, bool)] = &[
    ("root", None, "Root", "", true),
    ("msgfolderroot", Some("root"), "Top of Information Store", "", false),
    ("inbox", Some("msgfolderroot"), "Inbox", "IPF.Note", false),
    ("drafts", Some("msgfolderroot"), "Drafts", "IPF.Note", false),
    ("sentitems", Some("msgfolderroot"), "Sent Items", "IPF.Note", false),
    ("deleteditems", Some("msgfolderroot"), "Deleted Items", "IPF.Note", false),
    ("junkemail", Some("msgfolderroot"), "Junk Email", "IPF.Note", false),
    ("outbox", Some("msgfolderroot"), "Outbox", "IPF.Note", false),
    ("calendar", Some("msgfolderroot"), "Calendar", "IPF.Appointment", false),
    ("contacts", Some("msgfolderroot"), "Contacts", "IPF.Contact", false),
    ("quickcontacts", Some("contacts"), "Quick Contacts", "IPF.Contact.MOC.QuickContacts", true),
    ("imcontactlist", Some("contacts"), "IM Contacts List", "IPF.Contact.MOC.ImContactList", true),
    ("tasks", Some("msgfolderroot"), "Tasks", "IPF.Task", false),
    ("notes", Some("msgfolderroot"), "Notes", "IPF.StickyNote", false),
    ("journal", Some("msgfolderroot"), "Journal", "IPF.Journal", false),
    ("conversationhistory", Some("msgfolderroot"), "Conversation History", "IPF.Note.Microsoft.Conversation", false),
    ("voicemail", Some("msgfolderroot"), "Voice Mail", "IPF.Note.Microsoft.Voicemail", false),
    ("syncissues", Some("msgfolderroot"), "Sync Issues", "IPF.Note", false),
    ("conflicts", Some("syncissues"), "Conflicts", "IPF.Note", false),
    ("localfailures", Some("syncissues"), "Local Failures", "IPF.Note", false),
    ("serverfailures", Some("syncissues"), "Server Failures", "IPF.Note", false),
    ("archiveinbox", Some("msgfolderroot"), "Archive", "IPF.Note", false),
    ("recoverableitemsroot", Some("root"), "Recoverable Items", "", true),
    ("recoverableitemsdeletions", Some("recoverableitemsroot"), "Deletions", "", true),
    ("recoverableitemspurges", Some("recoverableitemsroot"), "Purges", "", true),
    ("recoverableitemsversions", Some("recoverableitemsroot"), "Versions", "", true),
];

impl Data {
    /// Creates the mailbox's distinguished folders on first access (one transaction).
    pub async fn ensure_mailbox(&self, mailbox: &str) -> Result<(), DataError> {
        if self.provisioned.lock().map(|p| p.contains(mailbox)).unwrap_or(false) {
            return Ok(());
        }
        let exists = sqlx::query("SELECT 1 FROM mbx_counters WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(self.pool())
            .await?
            .is_some();
        if !exists {
            match self.provision(mailbox).await {
                Ok(()) => tracing::info!(mailbox, "mailbox provisioned"),
                // Another request provisioned it at the same moment.
                Err(DataError::Store(e)) if e.is_unique_violation() => {}
                Err(e) => return Err(e),
            }
        }
        if let Ok(mut p) = self.provisioned.lock() {
            p.insert(mailbox.to_owned());
        }
        Ok(())
    }

    async fn provision(&self, mailbox: &str) -> Result<(), DataError> {
        let now = tandem_store::now_unix();
        let mut w = self.write().await?;
        sqlx::query("INSERT INTO mbx_counters (mailbox, next_change, next_article) VALUES ($1, 1, 1)")
            .bind(mailbox)
            .execute(&mut *w.tx)
            .await?;
        let mut made: Vec<(&str, String)> = Vec::new();
        for (name, parent, display, class, hidden) in LAYOUT {
            let id = new_id(IdKind::Folder);
            let parent_id = parent.and_then(|p| made.iter().find(|(n, _)| *n == p).map(|(_, id)| id.clone()));
            sqlx::query(
                "INSERT INTO mbx_folders (id, mailbox, parent_id, distinguished, display_name, folder_class, hidden,
                   item_count, unread_count, change_number, created_at, modified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 1, $8, $8)",
            )
            .bind(&id)
            .bind(mailbox)
            .bind(parent_id)
            .bind(*name)
            .bind(*display)
            .bind(*class)
            .bind(i64::from(*hidden))
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
            made.push((name, id));
        }
        w.commit().await
    }

    pub async fn folder_by_id(&self, id: &str) -> Result<Option<Folder>, DataError> {
        let sql = format!("SELECT {COLUMNS} FROM mbx_folders WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// A distinguished folder (`inbox`, `calendar`…) of a mailbox.
    pub async fn folder_by_name(&self, mailbox: &str, name: &str) -> Result<Option<Folder>, DataError> {
        let sql = format!("SELECT {COLUMNS} FROM mbx_folders WHERE mailbox = $1 AND distinguished = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox).bind(name).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The id of a mailbox's Recoverable Items\Purges folder (read once per mailbox and process).
    pub async fn purges_id(&self, mailbox: &str) -> Result<Option<String>, DataError> {
        if let Some(id) = self.purges.lock().ok().and_then(|p| p.get(mailbox).cloned()) {
            return Ok(Some(id));
        }
        let Some(f) = self.folder_by_name(mailbox, super::retention::RECOVERABLE[1]).await? else {
            return Ok(None);
        };
        if let Ok(mut p) = self.purges.lock() {
            p.insert(mailbox.to_owned(), f.id.clone());
        }
        Ok(Some(f.id))
    }

    /// Every folder of a mailbox, by display name.
    pub async fn folders_of(&self, mailbox: &str) -> Result<Vec<Folder>, DataError> {
        let sql = format!("SELECT {COLUMNS} FROM mbx_folders WHERE mailbox = $1 ORDER BY display_name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// How many folders a folder holds directly.
    pub async fn child_count(&self, folder_id: &str) -> Result<i64, DataError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM mbx_folders WHERE parent_id = $1")
            .bind(folder_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Creates a folder under `parent` (one transaction); `None` when the parent already holds
    /// one of that name (compared without case). Returns the new folder's id and change number.
    pub async fn create_folder(
        &self,
        mailbox: &str,
        parent: &str,
        name: &str,
        class: &str,
    ) -> Result<Option<(String, i64)>, DataError> {
        let mut w = self.write().await?;
        let clash = sqlx::query("SELECT 1 FROM mbx_folders WHERE parent_id = $1 AND LOWER(display_name) = LOWER($2)")
            .bind(parent)
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
        if clash {
            return Ok(None);
        }
        let (change, _) = w.next_numbers(mailbox, 0).await?;
        let id = new_id(IdKind::Folder);
        let now = tandem_store::now_unix();
        sqlx::query(
            "INSERT INTO mbx_folders (id, mailbox, parent_id, distinguished, display_name, folder_class, hidden,
               item_count, unread_count, change_number, created_at, modified_at)
             VALUES ($1, $2, $3, NULL, $4, $5, 0, 0, 0, $6, $7, $7)",
        )
        .bind(&id)
        .bind(mailbox)
        .bind(parent)
        .bind(name)
        .bind(class)
        .bind(change)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.log_change(mailbox, change, ChangeKind::Created, ObjectKind::Folder, &id, parent, None).await?;
        w.commit().await?;
        Ok(Some((id, change)))
    }

    /// Sets a folder's display name and class (one transaction); returns its new change number.
    pub async fn update_folder(&self, f: &Folder, name: &str, class: &str) -> Result<i64, DataError> {
        let mut w = self.write().await?;
        let (change, _) = w.next_numbers(&f.mailbox, 0).await?;
        sqlx::query(
            "UPDATE mbx_folders SET display_name = $2, folder_class = $3, change_number = $4, modified_at = $5 WHERE id = $1",
        )
        .bind(&f.id)
        .bind(name)
        .bind(class)
        .bind(change)
        .bind(tandem_store::now_unix())
        .execute(&mut *w.tx)
        .await?;
        let parent = f.parent_id.clone().unwrap_or_default();
        w.log_change(&f.mailbox, change, ChangeKind::Modified, ObjectKind::Folder, &f.id, &parent, None).await?;
        w.commit().await?;
        Ok(change)
    }

    /// Re-parents a folder under `to` (one transaction); returns its new change number.
    pub async fn move_folder(&self, f: &Folder, to: &str) -> Result<i64, DataError> {
        let mut w = self.write().await?;
        let (change, _) = w.next_numbers(&f.mailbox, 0).await?;
        sqlx::query("UPDATE mbx_folders SET parent_id = $2, change_number = $3 WHERE id = $1")
            .bind(&f.id)
            .bind(to)
            .bind(change)
            .execute(&mut *w.tx)
            .await?;
        w.log_change(&f.mailbox, change, ChangeKind::Moved, ObjectKind::Folder, &f.id, to, f.parent_id.as_deref())
            .await?;
        w.commit().await?;
        Ok(change)
    }

    /// Removes folders with their items and attachments (one transaction, one change number).
    /// The caller passes the whole subtree.
    pub async fn delete_folders(&self, mailbox: &str, doomed: &[&Folder]) -> Result<i64, DataError> {
        let mut w = self.write().await?;
        let (change, _) = w.next_numbers(mailbox, 0).await?;
        for d in doomed {
            w.unindex_folder(&d.id).await?;
            sqlx::query("DELETE FROM mbx_attachments WHERE item_id IN (SELECT id FROM mbx_items WHERE folder_id = $1)")
                .bind(&d.id)
                .execute(&mut *w.tx)
                .await?;
            sqlx::query("DELETE FROM mbx_items WHERE folder_id = $1").bind(&d.id).execute(&mut *w.tx).await?;
            sqlx::query("DELETE FROM mbx_folders WHERE id = $1").bind(&d.id).execute(&mut *w.tx).await?;
            let parent = d.parent_id.clone().unwrap_or_default();
            w.log_change(mailbox, change, ChangeKind::Deleted, ObjectKind::Folder, &d.id, &parent, None).await?;
        }
        w.commit().await?;
        Ok(change)
    }
}

impl Write<'_> {
    /// Adjusts a folder's counts and change number.
    pub async fn adjust_counts(
        &mut self,
        folder_id: &str,
        items: i64,
        unread: i64,
        change: i64,
    ) -> Result<(), DataError> {
        sqlx::query(
            "UPDATE mbx_folders SET item_count = item_count + $2, unread_count = unread_count + $3, change_number = $4,
               modified_at = $5 WHERE id = $1",
        )
        .bind(folder_id)
        .bind(items)
        .bind(unread)
        .bind(change)
        .bind(tandem_store::now_unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

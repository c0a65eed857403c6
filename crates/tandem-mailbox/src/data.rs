//! The mailbox model over the role's store: folders, items with their typed properties, MAPI
//! extended properties and MIME, per-folder counts, and change and article numbers.
//!
//! Items keep a few columns that queries sort and page on (received time, start/end, article
//! number — the IMAP UID DavMail uses) behind indexes that start with the folder, so a page costs
//! the same in a folder of 1k or 100k items. Folder counts are maintained in the same
//! transaction as every item write. Typed properties are stored as the client sent them (XML
//! elements in the EWS types namespace), so nothing a client set is dropped.

use std::collections::HashSet;
use std::sync::Mutex;

use sqlx::Row;
use tandem_ews_proto::ids::{self, IdKind};
use tandem_ews_proto::types::ExtendedField;
use tandem_store::{Any, Migration, Store, StoreError, Transaction};

/// The schema; the MIME column is BLOB in SQLite and BYTEA in PostgreSQL.
macro_rules! schema {
    ($blob:literal) => {
        concat!(
            "CREATE TABLE mbx_counters (
        mailbox TEXT PRIMARY KEY,
        next_change BIGINT NOT NULL,
        next_article BIGINT NOT NULL
    );
    CREATE TABLE mbx_folders (
        id TEXT PRIMARY KEY,
        mailbox TEXT NOT NULL,
        parent_id TEXT,
        distinguished TEXT,
        display_name TEXT NOT NULL,
        folder_class TEXT NOT NULL,
        hidden BIGINT NOT NULL,
        item_count BIGINT NOT NULL,
        unread_count BIGINT NOT NULL,
        change_number BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        modified_at BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX mbx_folders_distinguished ON mbx_folders (mailbox, distinguished);
    CREATE INDEX mbx_folders_parent ON mbx_folders (parent_id);
    CREATE TABLE mbx_items (
        id TEXT PRIMARY KEY,
        mailbox TEXT NOT NULL,
        folder_id TEXT NOT NULL,
        element TEXT NOT NULL,
        item_class TEXT NOT NULL,
        subject TEXT NOT NULL,
        is_read BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        modified_at BIGINT NOT NULL,
        sent_at BIGINT,
        size BIGINT NOT NULL,
        start_at BIGINT,
        end_at BIGINT,
        article BIGINT NOT NULL,
        change_number BIGINT NOT NULL,
        fields TEXT NOT NULL,
        ext TEXT NOT NULL,
        mime ",
            $blob,
            "
    );
    CREATE INDEX mbx_items_folder_received ON mbx_items (folder_id, received_at, article);
    CREATE INDEX mbx_items_folder_article ON mbx_items (folder_id, article);
    CREATE INDEX mbx_items_folder_start ON mbx_items (folder_id, start_at)"
        )
    };
}

pub(crate) const MIGRATION: Migration =
    Migration { version: 1, name: "mailbox folders and items", sqlite: schema!("BLOB"), postgres: schema!("BYTEA") };

/// Per-mailbox settings kept as the client sent them (out-of-office today).
pub(crate) const MIGRATION_SETTINGS: Migration = Migration::portable(
    2,
    "mailbox user settings",
    "CREATE TABLE mbx_user_settings (
        mailbox TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        changed_at BIGINT NOT NULL,
        PRIMARY KEY (mailbox, name)
    )",
);

/// The change log: one row per object touched by a write, in the write's transaction. It drives
/// SyncFolderItems/SyncFolderHierarchy and pull subscriptions (GetEvents).
pub(crate) const MIGRATION_CHANGES: Migration = Migration::portable(
    3,
    "mailbox change log",
    "CREATE TABLE mbx_changes (
        mailbox TEXT NOT NULL,
        change_number BIGINT NOT NULL,
        kind TEXT NOT NULL,
        object_kind TEXT NOT NULL,
        object_id TEXT NOT NULL,
        folder_id TEXT NOT NULL,
        old_folder_id TEXT,
        at BIGINT NOT NULL,
        PRIMARY KEY (mailbox, change_number, object_id, kind)
    );
    CREATE INDEX mbx_changes_folder ON mbx_changes (folder_id, change_number);
    CREATE INDEX mbx_changes_old_folder ON mbx_changes (old_folder_id, change_number)",
);

/// File attachments of items.
macro_rules! attachments_schema {
    ($blob:literal) => {
        concat!(
            "CREATE TABLE mbx_attachments (
        id TEXT PRIMARY KEY,
        item_id TEXT NOT NULL,
        mailbox TEXT NOT NULL,
        name TEXT NOT NULL,
        content_type TEXT NOT NULL,
        content_id TEXT,
        is_inline BIGINT NOT NULL,
        size BIGINT NOT NULL,
        modified_at BIGINT NOT NULL,
        content ",
            $blob,
            " NOT NULL
    );
    CREATE INDEX mbx_attachments_item ON mbx_attachments (item_id)"
        )
    };
}

pub(crate) const MIGRATION_ATTACHMENTS: Migration = Migration {
    version: 4,
    name: "mailbox attachments",
    sqlite: attachments_schema!("BLOB"),
    postgres: attachments_schema!("BYTEA"),
};

/// A stored attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    pub id: String,
    pub item_id: String,
    pub mailbox: String,
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub is_inline: bool,
    pub size: i64,
    pub modified_at: i64,
    pub content: Vec<u8>,
}

pub(crate) async fn insert_attachment(tx: &mut Transaction<'static, Any>, a: &Attachment) -> Result<(), DataError> {
    sqlx::query(
        "INSERT INTO mbx_attachments (id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&a.id)
    .bind(&a.item_id)
    .bind(&a.mailbox)
    .bind(&a.name)
    .bind(&a.content_type)
    .bind(a.content_id.clone())
    .bind(i64::from(a.is_inline))
    .bind(a.size)
    .bind(a.modified_at)
    .bind(a.content.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn attachment_from_row(r: &sqlx::any::AnyRow, content: bool) -> Result<Attachment, sqlx::Error> {
    Ok(Attachment {
        id: r.try_get("id")?,
        item_id: r.try_get("item_id")?,
        mailbox: r.try_get("mailbox")?,
        name: r.try_get("name")?,
        content_type: r.try_get("content_type")?,
        content_id: r.try_get("content_id")?,
        is_inline: r.try_get::<i64, _>("is_inline")? != 0,
        size: r.try_get("size")?,
        modified_at: r.try_get("modified_at")?,
        content: if content { r.try_get("content")? } else { Vec::new() },
    })
}

/// Copies an item's attachments to another item (deliveries, CopyItem).
pub(crate) async fn copy_attachments(
    tx: &mut Transaction<'static, Any>,
    from_item: &str,
    to_item: &str,
    to_mailbox: &str,
) -> Result<(), DataError> {
    let rows = sqlx::query(
        "SELECT id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content
         FROM mbx_attachments WHERE item_id = $1",
    )
    .bind(from_item)
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let mut a = attachment_from_row(&r, true)?;
        a.id = new_id(IdKind::Attachment);
        a.item_id = to_item.to_owned();
        a.mailbox = to_mailbox.to_owned();
        insert_attachment(tx, &a).await?;
    }
    Ok(())
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Created,
    Modified,
    Deleted,
    Moved,
    Copied,
    NewMail,
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
        }
    }
}

/// Appends one change to the log in a write's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn log_change(
    tx: &mut Transaction<'static, Any>,
    mailbox: &str,
    change: i64,
    kind: ChangeKind,
    object_kind: &str,
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
    .bind(object_kind)
    .bind(object_id)
    .bind(folder_id)
    .bind(old_folder_id)
    .bind(tandem_store::now_unix())
    .execute(&mut **tx)
    .await?;
    Ok(())
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

pub(crate) fn change_from_row(r: &sqlx::any::AnyRow) -> Result<Change, sqlx::Error> {
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

#[derive(Debug, thiserror::Error)]
pub(crate) enum DataError {
    #[error("mailbox store: {0}")]
    Store(#[from] StoreError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for DataError {
    fn from(e: sqlx::Error) -> Self {
        DataError::Store(StoreError::Sql(e))
    }
}

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

const FOLDER_COLUMNS: &str = "id, mailbox, parent_id, distinguished, display_name, folder_class, hidden, item_count, unread_count, change_number, modified_at";

fn folder_from_row(r: &sqlx::any::AnyRow) -> Result<Folder, sqlx::Error> {
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

/// An item row. `fields` and `ext` hold rendered XML elements in the types namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub id: String,
    pub mailbox: String,
    pub folder_id: String,
    pub element: String,
    pub item_class: String,
    pub subject: String,
    pub is_read: bool,
    pub received_at: i64,
    pub created_at: i64,
    pub modified_at: i64,
    pub sent_at: Option<i64>,
    pub size: i64,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub article: i64,
    pub change_number: i64,
    pub fields: String,
    pub ext: String,
    pub mime: Option<Vec<u8>>,
}

/// Columns without the large ones (fields, ext, mime), for id-only pages.
pub(crate) const ITEM_LIGHT_COLUMNS: &str = "id, mailbox, folder_id, element, item_class, subject, is_read, received_at, created_at, modified_at, sent_at, size, start_at, end_at, article, change_number";
pub(crate) const ITEM_COLUMNS: &str = "id, mailbox, folder_id, element, item_class, subject, is_read, received_at, created_at, modified_at, sent_at, size, start_at, end_at, article, change_number, fields, ext, mime";

pub(crate) fn item_from_row(r: &sqlx::any::AnyRow, full: bool) -> Result<Item, sqlx::Error> {
    Ok(Item {
        id: r.try_get("id")?,
        mailbox: r.try_get("mailbox")?,
        folder_id: r.try_get("folder_id")?,
        element: r.try_get("element")?,
        item_class: r.try_get("item_class")?,
        subject: r.try_get("subject")?,
        is_read: r.try_get::<i64, _>("is_read")? != 0,
        received_at: r.try_get("received_at")?,
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
        sent_at: r.try_get("sent_at")?,
        size: r.try_get("size")?,
        start_at: r.try_get("start_at")?,
        end_at: r.try_get("end_at")?,
        article: r.try_get("article")?,
        change_number: r.try_get("change_number")?,
        fields: if full { r.try_get("fields")? } else { String::new() },
        ext: if full { r.try_get("ext")? } else { String::new() },
        mime: if full { r.try_get("mime")? } else { None },
    })
}

/// New opaque id of a kind.
pub(crate) fn new_id(kind: IdKind) -> String {
    ids::encode(kind, uuid::Uuid::new_v4().into_bytes())
}

/// The mailbox data layer.
#[derive(Debug)]
pub(crate) struct Data {
    pub store: Store,
    provisioned: Mutex<HashSet<String>>,
    /// SQLite has one writer: write transactions queue here instead of meeting SQLITE_BUSY and
    /// its sleeping busy handler inside the database.
    writer: tokio::sync::Mutex<()>,
}

impl Data {
    pub fn new(store: Store) -> Data {
        Data { store, provisioned: Mutex::new(HashSet::new()), writer: tokio::sync::Mutex::new(()) }
    }

    /// Starts a write transaction; on SQLite it first takes the role's writer turn, held by the
    /// returned guard until it is dropped (after the commit).
    pub async fn begin_write(
        &self,
    ) -> Result<(Option<tokio::sync::MutexGuard<'_, ()>>, Transaction<'static, Any>), StoreError> {
        let turn = match self.store.backend() {
            tandem_store::Backend::Sqlite => Some(self.writer.lock().await),
            tandem_store::Backend::Postgres => None,
        };
        Ok((turn, self.store.begin().await?))
    }

    /// Creates the mailbox's distinguished folders on first access (one transaction).
    pub async fn ensure_mailbox(&self, mailbox: &str) -> Result<(), DataError> {
        if self.provisioned.lock().map(|p| p.contains(mailbox)).unwrap_or(false) {
            return Ok(());
        }
        let exists = sqlx::query("SELECT 1 FROM mbx_counters WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(self.store.pool())
            .await?
            .is_some();
        if !exists {
            let result = self.provision(mailbox).await;
            match result {
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
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query("INSERT INTO mbx_counters (mailbox, next_change, next_article) VALUES ($1, 1, 1)")
            .bind(mailbox)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
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
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            made.push((name, id));
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    pub async fn folder_by_id(&self, id: &str) -> Result<Option<Folder>, DataError> {
        let sql = format!("SELECT {FOLDER_COLUMNS} FROM mbx_folders WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.store.pool()).await?;
        Ok(row.as_ref().map(folder_from_row).transpose()?)
    }

    pub async fn folder_by_name(&self, mailbox: &str, name: &str) -> Result<Option<Folder>, DataError> {
        let sql = format!("SELECT {FOLDER_COLUMNS} FROM mbx_folders WHERE mailbox = $1 AND distinguished = $2");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox).bind(name).fetch_optional(self.store.pool()).await?;
        Ok(row.as_ref().map(folder_from_row).transpose()?)
    }

    pub async fn folders_of(&self, mailbox: &str) -> Result<Vec<Folder>, DataError> {
        let sql = format!("SELECT {FOLDER_COLUMNS} FROM mbx_folders WHERE mailbox = $1 ORDER BY display_name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mailbox).fetch_all(self.store.pool()).await?;
        Ok(rows.iter().map(folder_from_row).collect::<Result<_, _>>()?)
    }

    /// A per-mailbox setting.
    pub async fn user_setting(&self, mailbox: &str, name: &str) -> Result<Option<String>, DataError> {
        let row = sqlx::query("SELECT value FROM mbx_user_settings WHERE mailbox = $1 AND name = $2")
            .bind(mailbox)
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }

    /// Replaces a per-mailbox setting (one statement).
    pub async fn set_user_setting(&self, mailbox: &str, name: &str, value: &str) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO mbx_user_settings (mailbox, name, value, changed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox, name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
        )
        .bind(mailbox)
        .bind(name)
        .bind(value)
        .bind(tandem_store::now_unix())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// An item's attachments (without content unless asked).
    pub async fn attachments_of(&self, item_id: &str, content: bool) -> Result<Vec<Attachment>, DataError> {
        let cols = if content {
            "id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content"
        } else {
            "id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at"
        };
        let sql = format!("SELECT {cols} FROM mbx_attachments WHERE item_id = $1 ORDER BY modified_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(item_id).fetch_all(self.store.pool()).await?;
        Ok(rows.iter().map(|r| attachment_from_row(r, content)).collect::<Result<_, _>>()?)
    }

    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>, DataError> {
        let row = sqlx::query(
            "SELECT id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content
             FROM mbx_attachments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(|r| attachment_from_row(r, true)).transpose()?)
    }

    /// Per-mailbox settings whose names start with `prefix`.
    pub async fn user_settings_with(&self, mailbox: &str, prefix: &str) -> Result<Vec<(String, String)>, DataError> {
        let rows =
            sqlx::query("SELECT name, value FROM mbx_user_settings WHERE mailbox = $1 AND name LIKE $2 ORDER BY name")
                .bind(mailbox)
                .bind(format!("{prefix}%"))
                .fetch_all(self.store.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get::<String, _>("name")?, r.try_get::<String, _>("value")?));
        }
        Ok(out)
    }

    pub async fn remove_user_setting(&self, mailbox: &str, name: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM mbx_user_settings WHERE mailbox = $1 AND name = $2")
            .bind(mailbox)
            .bind(name)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn item(&self, id: &str) -> Result<Option<Item>, DataError> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM mbx_items WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.store.pool()).await?;
        Ok(row.as_ref().map(|r| item_from_row(r, true)).transpose()?)
    }
}

/// Takes the next change number, and `articles` article numbers, for a mailbox.
pub(crate) async fn next_numbers(
    tx: &mut Transaction<'static, Any>,
    mailbox: &str,
    articles: i64,
) -> Result<(i64, i64), DataError> {
    let row = sqlx::query(
        "UPDATE mbx_counters SET next_change = next_change + 1, next_article = next_article + $2
         WHERE mailbox = $1 RETURNING next_change, next_article",
    )
    .bind(mailbox)
    .bind(articles)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| DataError::Corrupt(format!("mailbox {mailbox} has no counters")))?;
    let change: i64 = row.try_get("next_change")?;
    let article: i64 = row.try_get("next_article")?;
    Ok((change - 1, article - articles))
}

/// Adjusts a folder's counts in a transaction.
pub(crate) async fn adjust_counts(
    tx: &mut Transaction<'static, Any>,
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts an item (its folder's counts follow).
pub(crate) async fn insert_item(tx: &mut Transaction<'static, Any>, i: &Item) -> Result<(), DataError> {
    sqlx::query(
        "INSERT INTO mbx_items (id, mailbox, folder_id, element, item_class, subject, is_read, received_at, created_at,
           modified_at, sent_at, size, start_at, end_at, article, change_number, fields, ext, mime)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(&i.id)
    .bind(&i.mailbox)
    .bind(&i.folder_id)
    .bind(&i.element)
    .bind(&i.item_class)
    .bind(&i.subject)
    .bind(i64::from(i.is_read))
    .bind(i.received_at)
    .bind(i.created_at)
    .bind(i.modified_at)
    .bind(i.sent_at)
    .bind(i.size)
    .bind(i.start_at)
    .bind(i.end_at)
    .bind(i.article)
    .bind(i.change_number)
    .bind(&i.fields)
    .bind(&i.ext)
    .bind(i.mime.clone())
    .execute(&mut **tx)
    .await?;
    log_change(tx, &i.mailbox, i.change_number, ChangeKind::Created, "item", &i.id, &i.folder_id, None).await?;
    adjust_counts(tx, &i.folder_id, 1, i64::from(!i.is_read), i.change_number).await
}

/// Rewrites an item's row in place; `old_folder` names the folder it left when it moved.
pub(crate) async fn update_item(
    tx: &mut Transaction<'static, Any>,
    i: &Item,
    old_folder: Option<&str>,
) -> Result<(), DataError> {
    match old_folder.filter(|f| *f != i.folder_id) {
        Some(old) => {
            log_change(tx, &i.mailbox, i.change_number, ChangeKind::Moved, "item", &i.id, &i.folder_id, Some(old))
                .await?
        }
        None => {
            log_change(tx, &i.mailbox, i.change_number, ChangeKind::Modified, "item", &i.id, &i.folder_id, None).await?
        }
    }
    sqlx::query(
        "UPDATE mbx_items SET folder_id = $2, element = $3, item_class = $4, subject = $5, is_read = $6, modified_at = $7,
           sent_at = $8, size = $9, start_at = $10, end_at = $11, article = $12, change_number = $13, fields = $14,
           ext = $15, mime = $16 WHERE id = $1",
    )
    .bind(&i.id)
    .bind(&i.folder_id)
    .bind(&i.element)
    .bind(&i.item_class)
    .bind(&i.subject)
    .bind(i64::from(i.is_read))
    .bind(i.modified_at)
    .bind(i.sent_at)
    .bind(i.size)
    .bind(i.start_at)
    .bind(i.end_at)
    .bind(i.article)
    .bind(i.change_number)
    .bind(&i.fields)
    .bind(&i.ext)
    .bind(i.mime.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn delete_item(tx: &mut Transaction<'static, Any>, i: &Item, change: i64) -> Result<(), DataError> {
    sqlx::query("DELETE FROM mbx_items WHERE id = $1").bind(&i.id).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM mbx_attachments WHERE item_id = $1").bind(&i.id).execute(&mut **tx).await?;
    log_change(tx, &i.mailbox, change, ChangeKind::Deleted, "item", &i.id, &i.folder_id, None).await?;
    adjust_counts(tx, &i.folder_id, -1, -i64::from(!i.is_read), change).await
}

/// Splits stored XML elements (`<t:A>…</t:A><t:B/>…`) into (local name, element text).
pub(crate) fn split_elements(xml: &str) -> Result<Vec<(String, String)>, DataError> {
    if xml.is_empty() {
        return Ok(Vec::new());
    }
    let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default())
        .map_err(|e| DataError::Corrupt(e.to_string()))?;
    Ok(tandem_xml::children(doc.root_element())
        .map(|c| (c.tag_name().name().to_owned(), wrapped[c.range()].to_owned()))
        .collect())
}

/// The text of one stored element (all descendant text joined with spaces).
pub(crate) fn element_text(xml: &str) -> String {
    let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
    match tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()) {
        Ok(doc) => doc
            .root_element()
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => String::new(),
    }
}

/// Stored extended properties: (field, values).
pub(crate) fn split_extended(xml: &str) -> Result<Vec<(ExtendedField, Vec<String>)>, DataError> {
    if xml.is_empty() {
        return Ok(Vec::new());
    }
    let t = tandem_ews_proto::ns::TYPES;
    let wrapped = format!("<r xmlns:t=\"{t}\">{xml}</r>");
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default())
        .map_err(|e| DataError::Corrupt(e.to_string()))?;
    let mut out = Vec::new();
    for ep in tandem_xml::children(doc.root_element()) {
        let uri = tandem_xml::child(ep, t, "ExtendedFieldURI")
            .ok_or_else(|| DataError::Corrupt("extended property".into()))?;
        let field = ExtendedField::parse(uri).map_err(|e| DataError::Corrupt(e.message))?;
        let values = match tandem_xml::child(ep, t, "Values") {
            Some(vs) => tandem_xml::children(vs).map(tandem_xml::text).collect(),
            None => vec![tandem_xml::child(ep, t, "Value").map(tandem_xml::text).unwrap_or_default()],
        };
        out.push((field, values));
    }
    Ok(out)
}

/// Renders extended properties for storage.
pub(crate) fn join_extended(props: &[(ExtendedField, Vec<String>)]) -> String {
    props
        .iter()
        .map(|(f, v)| {
            tandem_ews_proto::render::extended_property(f, v, tandem_ews_proto::render::is_multi(&f.property_type))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_stored_elements() {
        let x = "<t:Subject>a &amp; b</t:Subject><t:Body BodyType=\"Text\">x</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>b@x</t:EmailAddress></t:Mailbox></t:ToRecipients>";
        let parts = split_elements(x).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], ("Subject".to_owned(), "<t:Subject>a &amp; b</t:Subject>".to_owned()));
        assert_eq!(element_text(&parts[2].1), "b@x");
    }
}

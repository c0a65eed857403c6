//! The mailbox store's schema, in order: folders, items and counters (1), per-mailbox settings
//! (2), the change log (3), attachments (4), item attachments (5), user photos (6), the full-text
//! index (7), the audit log (8) and online meetings (9). Binary columns are BLOB in SQLite and BYTEA in
//! PostgreSQL; everything else is portable.

use tandem_store::Migration;

/// The mailbox database schema, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    MIGRATION,
    MIGRATION_SETTINGS,
    MIGRATION_CHANGES,
    MIGRATION_ATTACHMENTS,
    MIGRATION_ITEM_ATTACHMENTS,
    MIGRATION_PHOTOS,
    MIGRATION_SEARCH,
    MIGRATION_AUDIT,
    MIGRATION_ONLINE_MEETINGS,
];

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

/// Item attachments (an item attached to an item): the embedded item's element (`Message`,
/// `CalendarItem`…; NULL for a file attachment), its properties as XML in `content`, and, for
/// attachments of an embedded item, the attachment that holds them (`item_id` stays the root
/// item, so deleting the item or its folder removes every level).
pub(crate) const MIGRATION_ITEM_ATTACHMENTS: Migration = Migration::portable(
    5,
    "mailbox item attachments",
    "ALTER TABLE mbx_attachments ADD COLUMN item_element TEXT;
    ALTER TABLE mbx_attachments ADD COLUMN parent_attachment_id TEXT;
    CREATE INDEX mbx_attachments_parent ON mbx_attachments (parent_attachment_id)",
);

/// User photos (Set-UserPhoto), one row per size of the current photo and of a preview.
macro_rules! photos_schema {
    ($blob:literal) => {
        concat!(
            "CREATE TABLE mbx_user_photos (
        mailbox TEXT NOT NULL,
        kind TEXT NOT NULL,
        pixels BIGINT NOT NULL,
        etag TEXT NOT NULL,
        changed_at BIGINT NOT NULL,
        content ",
            $blob,
            " NOT NULL,
        PRIMARY KEY (mailbox, kind, pixels)
    )"
        )
    };
}

pub(crate) const MIGRATION_PHOTOS: Migration = Migration {
    version: 6,
    name: "mailbox user photos",
    sqlite: photos_schema!("BLOB"),
    postgres: photos_schema!("BYTEA"),
};

/// The full-text index over items' subject, body and participants (their words as
/// `tandem_ews_proto::aqs::normalize` cuts them). SQLite: an FTS5 table whose rowid is a stable
/// document number kept per item in `mbx_search_keys`. PostgreSQL: one tsvector per item (subject
/// weight A, body B, sender C, recipients D) under a GIN index.
pub(crate) const MIGRATION_SEARCH: Migration = Migration {
    version: 7,
    name: "mailbox full-text index",
    sqlite: "CREATE TABLE mbx_search_keys (
        doc INTEGER PRIMARY KEY,
        item_id TEXT NOT NULL UNIQUE
    );
    CREATE VIRTUAL TABLE mbx_search USING fts5(subject, body, sender, recipients, tokenize = 'unicode61')",
    postgres: "CREATE TABLE mbx_search (
        item_id TEXT PRIMARY KEY,
        doc TSVECTOR NOT NULL
    );
    CREATE INDEX mbx_search_doc ON mbx_search USING GIN (doc)",
};

/// The administrator's audit log: who ran which eDiscovery search or export, when, over which
/// mailboxes, and how many items it found.
pub(crate) const MIGRATION_AUDIT: Migration = Migration::portable(
    8,
    "mailbox audit log",
    "CREATE TABLE mbx_audit (
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        query TEXT NOT NULL,
        scope TEXT NOT NULL,
        hits BIGINT NOT NULL
    );
    CREATE INDEX mbx_audit_at ON mbx_audit (at)",
);

/// Online meetings the Mailbox provisioned on the Front End, by the meeting's UID: the
/// organizer's mailbox and item, the Front End's conference id once it answered, and the call
/// still owed to it (`create`, `update`, `delete`) with its retry schedule — so a Front End that
/// is down delays the join information, and a cancelled meeting's conference is still removed
/// after the item is gone.
pub(crate) const MIGRATION_ONLINE_MEETINGS: Migration = Migration::portable(
    9,
    "mailbox online meetings",
    "CREATE TABLE mbx_online_meetings (
        uid TEXT PRIMARY KEY,
        mailbox TEXT NOT NULL,
        item_id TEXT NOT NULL,
        conference_id TEXT,
        pending TEXT,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        last_error TEXT
    );
    CREATE INDEX mbx_online_meetings_due ON mbx_online_meetings (next_attempt_at)",
);

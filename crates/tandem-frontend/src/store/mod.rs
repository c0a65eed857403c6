//! The Front End's data layer: every SQL statement of the role and its schema.
//!
//! The role keeps little on disk: registrations (write-back copies of the registrar's memory, so
//! UDP endpoints stay reachable across a restart), instant messages kept for offline users,
//! the presence block lists, the calendar-presence client policies and the presence last shown
//! per watched user, contact lists kept here rather than in the mailbox (with the user services
//! policies that decide where), the UM-enabled mailboxes and the voicemail spool (recordings until
//! the mailbox took them), conferences and the meeting configuration, and the conversation-history queue (conversations and their messages until
//! their transcripts are in the mailbox). Presence publications and subscriptions are soft state that clients
//! refresh and live in memory only (see `sip::presence`). The SIP handlers and the admin commands
//! call the typed functions here through [`FrontendStore`] and never see SQL; OAuth settings use
//! the store's settings map. Queries are portable across SQLite and PostgreSQL (see
//! `tandem-store`).

mod blocks;
mod calendar;
mod conferences;
mod contact_lists;
mod conversations;
mod offline_messages;
mod registrations;
mod voicemail;
mod web_service;

use tandem_store::{Migration, Store, StoreError};

pub use self::calendar::{ClientPolicyRow, GLOBAL as GLOBAL_POLICY, PresenceStatusRow};
pub use self::conferences::{AccessLevel, ConferenceRow, MeetingConfigurationRow};
pub use self::contact_lists::{ContactListState, FeContact, FeGroup, ListLocation, UserServicesPolicyRow, now_millis};
pub use self::conversations::{
    ArchivingConfigRow, ArchivingPolicyRow, ConversationKind, ConversationMessage, ConversationRow, HistoryBacklog,
    HistoryConfigRow, HistoryWrite, ItemTarget, PendingItem,
};
pub use self::offline_messages::OfflineMessage;
pub use self::registrations::Registration;
pub use self::voicemail::{SpooledVoicemail, UmMailboxRow};
pub use self::web_service::WebServiceConfigRow;

/// The Front End database schema, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        1,
        "sip registrations, offline messages, presence blocks",
        "CREATE TABLE sip_registrations (
        aor TEXT NOT NULL,
        contact TEXT NOT NULL,
        transport TEXT NOT NULL,
        peer TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        call_id TEXT NOT NULL,
        cseq BIGINT NOT NULL,
        user_agent TEXT
    );
    CREATE INDEX sip_registrations_aor ON sip_registrations (aor);
    CREATE TABLE sip_offline_messages (
        id TEXT PRIMARY KEY,
        target_aor TEXT NOT NULL,
        sender TEXT NOT NULL,
        from_header TEXT NOT NULL,
        content_type TEXT NOT NULL,
        body BYTEA NOT NULL,
        received_at BIGINT NOT NULL
    );
    CREATE INDEX sip_offline_target ON sip_offline_messages (target_aor, received_at);
    CREATE TABLE presence_blocks (
        owner_aor TEXT NOT NULL,
        watcher_aor TEXT NOT NULL,
        PRIMARY KEY (owner_aor, watcher_aor)
    )",
    ),
    Migration::portable(
        2,
        "registrations reached at their contact",
        // Rows from before were reached at their source address, as the default 0 says.
        "ALTER TABLE sip_registrations ADD COLUMN by_contact BIGINT NOT NULL DEFAULT 0",
    ),
    Migration::portable(
        3,
        "calendar presence: client policies and the presence shown",
        "CREATE TABLE cs_client_policies (
        identity TEXT PRIMARY KEY,
        disable_calendar_presence BIGINT,
        disable_meeting_subject_and_location BIGINT,
        disable_free_busy_info BIGINT,
        web_service_poll_seconds BIGINT
    );
    CREATE TABLE presence_status (
        aor TEXT PRIMARY KEY,
        availability TEXT NOT NULL,
        activity TEXT,
        note TEXT,
        reason TEXT NOT NULL,
        calendar TEXT NOT NULL,
        calendar_error TEXT,
        updated_at BIGINT NOT NULL
    )",
    ),
    Migration::portable(
        4,
        "calendar presence: Off Work outside working hours (a client policy setting)",
        "ALTER TABLE cs_client_policies ADD COLUMN enable_off_work_presence BIGINT",
    ),
    Migration::portable(
        5,
        "server-side conversation history: conversations, their messages, the item writes queued; the client policy's archiving switches",
        "CREATE TABLE ch_conversations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        participant_a TEXT NOT NULL,
        participant_b TEXT NOT NULL,
        initiator TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        last_at BIGINT NOT NULL,
        message_count BIGINT NOT NULL,
        ended BIGINT NOT NULL,
        sip_call_id TEXT,
        detail TEXT
    );
    CREATE INDEX ch_conversations_open ON ch_conversations (ended);
    CREATE TABLE ch_messages (
        conversation_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        sent_at BIGINT NOT NULL,
        sender TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    );
    CREATE TABLE ch_items (
        conversation_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        folder TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        last_error TEXT,
        done BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, owner, folder)
    );
    CREATE INDEX ch_items_due ON ch_items (done, next_attempt_at);
    ALTER TABLE cs_client_policies ADD COLUMN enable_im_auto_archiving BIGINT;
    ALTER TABLE cs_client_policies ADD COLUMN enable_call_log_auto_archiving BIGINT",
    ),
    Migration::portable(
        6,
        "contact lists in the Front End store (before the Unified Contact Store, and after a rollback), where each lives, user services policies",
        "CREATE TABLE cs_user_services_policies (
        identity TEXT PRIMARY KEY,
        ucs_allowed BIGINT
    );
    CREATE TABLE fe_contact_list_state (
        aor TEXT PRIMARY KEY,
        location TEXT NOT NULL,
        migrate_after BIGINT NOT NULL,
        changed_at BIGINT NOT NULL
    );
    CREATE INDEX fe_contact_list_state_changed ON fe_contact_list_state (changed_at);
    CREATE TABLE fe_contact_groups (
        aor TEXT NOT NULL,
        position BIGINT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (aor, name)
    );
    CREATE TABLE fe_contacts (
        aor TEXT NOT NULL,
        group_name TEXT NOT NULL,
        position BIGINT NOT NULL,
        uri TEXT NOT NULL,
        display_name TEXT,
        PRIMARY KEY (aor, group_name, uri)
    )",
    ),
    Migration::portable(
        7,
        "voicemail: UM-enabled mailboxes and recordings waiting for the mailbox",
        "CREATE TABLE um_mailboxes (
        aor TEXT PRIMARY KEY,
        smtp TEXT NOT NULL,
        pin_hash TEXT,
        call_answering_rings BIGINT NOT NULL,
        greeting BYTEA,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE vm_spool (
        id TEXT PRIMARY KEY,
        callee_smtp TEXT NOT NULL,
        caller_uri TEXT NOT NULL,
        caller_name TEXT,
        started_at BIGINT NOT NULL,
        wav BYTEA NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        last_error TEXT
    );
    CREATE INDEX vm_spool_due ON vm_spool (next_attempt_at)",
    ),
    Migration::portable(
        8,
        "conferences: the records the focus admits by, their invited attendees, the meeting configuration",
        "CREATE TABLE conferences (
        id TEXT PRIMARY KEY,
        focus_uri TEXT NOT NULL UNIQUE,
        join_url TEXT NOT NULL,
        conference_number TEXT NOT NULL UNIQUE,
        organizer TEXT NOT NULL,
        subject TEXT NOT NULL,
        starts_at BIGINT,
        ends_at BIGINT,
        mailbox_uid TEXT,
        access_level TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX conferences_organizer ON conferences (organizer, starts_at);
    CREATE TABLE conference_attendees (
        conference_id TEXT NOT NULL,
        uri TEXT NOT NULL,
        PRIMARY KEY (conference_id, uri)
    );
    CREATE TABLE cs_meeting_configuration (
        identity TEXT PRIMARY KEY,
        admit_anonymous_users_by_default BIGINT,
        assigned_conference_type_by_default BIGINT,
        enable_assigned_conference_type BIGINT,
        updated_at BIGINT NOT NULL
    )",
    ),
];

/// Opens (creating and migrating) the Front End database at a URL.
pub async fn open(url: &str) -> Result<Store, StoreError> {
    Store::open(url, MIGRATIONS).await
}

/// What went wrong in the Front End's data layer. Callers add what they were doing.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The database failed or refused a statement.
    #[error("Front End store: {0}")]
    Store(#[from] StoreError),
    /// A stored setting does not read as what was written (edited by hand?).
    #[error("Front End store: a setting cannot be read: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for DataError {
    fn from(e: sqlx::Error) -> Self {
        DataError::Store(StoreError::Sql(e))
    }
}

/// The Front End's tables over an opened store (one opened with [`open`], whose migrations
/// created them). Cheap to clone.
#[derive(Debug, Clone)]
pub struct FrontendStore {
    store: Store,
}

impl FrontendStore {
    /// Wraps a store opened with [`open`].
    pub fn new(store: Store) -> FrontendStore {
        FrontendStore { store }
    }

    /// The underlying store (readiness probes, the settings map).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A database made before registrations knew how they are reached keeps its rows, and they
    /// are reached at their source as before.
    #[tokio::test]
    async fn registrations_from_schema_1_read_as_reached_at_their_source() {
        let db = tandem_store::testing::TestDatabase::sqlite();
        let old = Store::open(&db.url, &MIGRATIONS[..1]).await.unwrap();
        sqlx::query(
            "INSERT INTO sip_registrations (aor, contact, transport, peer, expires_at, call_id, cseq, user_agent)
             VALUES ('sip:a@b.c', '<sip:a@10.0.0.1>', 'UDP', '10.0.0.1:5060', 9999999999, 'c', 1, NULL)",
        )
        .execute(old.pool())
        .await
        .unwrap();
        old.close().await;
        let fe = FrontendStore::new(open(&db.url).await.unwrap());
        let rows = fe.registrations().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].by_contact);
    }
}

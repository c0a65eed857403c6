//! The Mailbox's data layer: every SQL statement of the role lives below this module, split by
//! what it stores — [`schema`] (the migrations), [`folders`], [`items`] (with their stored XML
//! properties), [`changes`] (the change log and the per-mailbox counters), [`attachments`],
//! [`settings`] (per-mailbox settings, delegates among them, and the server-wide client access
//! values), [`photos`] (user photos in every size). Handlers in `ews/` and `autodiscover/` call the typed functions here and never see
//! SQL; the one error they get is [`DataError`], which `ews` turns into a response code once.
//!
//! Writes go through a [`Write`]: one transaction per item or folder write (its counts and change
//! log rows with it), and on SQLite the role's writer turn, so writers queue here rather than
//! meeting SQLITE_BUSY inside the database. After its commit a write announces the mailboxes it
//! changed to the [`notify`] feed, which wakes the subscriptions watching them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tandem_ews_proto::ids::{self, IdKind};
use tandem_store::{Any, Store, StoreError, Transaction};

pub(crate) mod attachments;
pub(crate) mod audit;
pub(crate) mod changes;
pub(crate) mod folders;
pub(crate) mod im_list;
pub(crate) mod items;
pub(crate) mod notify;
pub(crate) mod online_meetings;
pub(crate) mod photos;
pub(crate) mod retention;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod settings;

#[cfg(test)]
mod battery;
#[cfg(test)]
mod search_bench;

pub(crate) use attachments::Attachment;
pub(crate) use changes::ChangeKind;
pub(crate) use folders::Folder;
pub(crate) use items::{Item, ItemOrder, element_text, join_extended, split_elements, split_extended};

/// A failure of the mailbox store, or stored data that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
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

/// New opaque id of a kind.
pub(crate) fn new_id(kind: IdKind) -> String {
    ids::encode(kind, uuid::Uuid::new_v4().into_bytes())
}

/// The mailbox data layer over the role's store.
#[derive(Debug)]
pub(crate) struct Data {
    store: Store,
    /// Mailboxes known to exist, so provisioning is checked once per mailbox and process.
    provisioned: Mutex<HashSet<String>>,
    /// Each mailbox's Recoverable Items\Purges folder id (distinguished folders cannot be
    /// deleted or moved, so an id once read stays right).
    purges: Mutex<HashMap<String, String>>,
    /// SQLite has one writer: write transactions queue here instead of meeting SQLITE_BUSY and
    /// its sleeping busy handler inside the database.
    writer: tokio::sync::Mutex<()>,
    /// The watched mailboxes, woken by commits through `feed`.
    wakeups: Arc<notify::Wakeups>,
    /// Where commits are announced: the in-process `wakeups` (a bus in a pool).
    feed: Arc<dyn notify::ChangeFeed>,
    /// Reads of the change log since start, so tests can tell an idle subscription costs none.
    log_reads: AtomicU64,
}

/// One write transaction (and, on SQLite, the writer turn it holds until it is committed or
/// dropped; dropped uncommitted, nothing of it is kept).
pub(crate) struct Write<'a> {
    tx: Transaction<'static, Any>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
    feed: &'a dyn notify::ChangeFeed,
    /// Which SQL dialect the transaction speaks (the index differs by backend).
    backend: tandem_store::Backend,
    /// The mailboxes this write took change numbers in, with the last one taken.
    touched: Vec<(String, i64)>,
}

impl Data {
    pub fn new(store: Store) -> Data {
        let wakeups = Arc::new(notify::Wakeups::default());
        Data {
            store,
            provisioned: Mutex::new(HashSet::new()),
            purges: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
            feed: wakeups.clone(),
            wakeups,
            log_reads: AtomicU64::new(0),
        }
    }

    /// Starts a write transaction; on SQLite it first takes the role's writer turn.
    pub async fn write(&self) -> Result<Write<'_>, DataError> {
        let backend = self.store.backend();
        let turn = match backend {
            tandem_store::Backend::Sqlite => Some(self.writer.lock().await),
            tandem_store::Backend::Postgres => None,
        };
        Ok(Write { tx: self.store.begin().await?, _turn: turn, feed: self.feed.as_ref(), backend, touched: Vec::new() })
    }

    /// The registry subscriptions wait on.
    pub fn wakeups(&self) -> &notify::Wakeups {
        &self.wakeups
    }

    /// How many times the change log was read since start.
    #[cfg(test)]
    pub fn log_reads(&self) -> u64 {
        self.log_reads.load(Ordering::Relaxed)
    }

    /// Counts one read of the change log (here and in `tandem_mailbox_change_log_reads_total`).
    fn count_log_read(&self) {
        self.log_reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tandem_mailbox_change_log_reads_total").increment(1);
    }

    fn pool(&self) -> &tandem_store::Pool {
        self.store.pool()
    }
}

impl Write<'_> {
    /// Commits the transaction, then announces its changes (only now can a woken reader see
    /// them) and gives the writer turn back.
    pub async fn commit(self) -> Result<(), DataError> {
        self.tx.commit().await.map_err(StoreError::from)?;
        for (mailbox, change) in &self.touched {
            self.feed.committed(mailbox, *change);
        }
        Ok(())
    }

    /// Notes a change number taken in `mailbox`, for the announcement after commit.
    fn touch(&mut self, mailbox: &str, change: i64) {
        match self.touched.iter_mut().find(|(m, _)| m == mailbox) {
            Some((_, last)) => *last = (*last).max(change),
            None => self.touched.push((mailbox.to_owned(), change)),
        }
    }
}

//! Litigation hold and deleted-item retention (Set-Mailbox -LitigationHoldEnabled
//! -RetainDeletedItemsFor), kept as per-mailbox settings. A soft delete goes to Recoverable
//! Items\Deletions, where the user can still see it; a hard delete (or a delete from Deletions)
//! removes the item, except under hold, where it is kept in Recoverable Items\Purges
//! (`ews::delete_item`), which the user can neither see nor empty and eDiscovery searches.
//! [`sweep`], run by the Mailbox every `mailbox.retention_sweep_seconds`, removes what Recoverable
//! Items kept longer than the mailbox's retention, unless the mailbox is on hold.

use tandem_store::Store;

use crate::DataError;
use crate::data::Data;

/// Setting names in `mbx_user_settings`.
pub(crate) const LITIGATION_HOLD: &str = "litigation_hold_enabled";
pub(crate) const RETAIN_DELETED_ITEMS_FOR: &str = "retain_deleted_items_for";
/// Exchange's default deleted-item retention, in days.
pub const DEFAULT_RETAIN_DAYS: u32 = 14;
/// Longest retention Set-Mailbox accepts (24855 days in Exchange).
pub const MAX_RETAIN_DAYS: u32 = 24_855;

/// A mailbox's hold settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holds {
    pub litigation_hold_enabled: bool,
    pub retain_deleted_items_for: u32,
}

impl Data {
    pub(crate) async fn holds(&self, mailbox: &str) -> Result<Holds, DataError> {
        let hold = self.user_setting(mailbox, LITIGATION_HOLD).await?.is_some_and(|v| v == "true");
        let days = self
            .user_setting(mailbox, RETAIN_DELETED_ITEMS_FOR)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_RETAIN_DAYS);
        Ok(Holds { litigation_hold_enabled: hold, retain_deleted_items_for: days })
    }
}

/// Get-Mailbox's hold fields.
pub async fn get(store: &Store, mailbox: &str) -> Result<Holds, DataError> {
    Data::new(store.clone()).holds(mailbox).await
}

/// Set-Mailbox: changes what is given, returns the settings in force.
pub async fn set(
    store: &Store,
    mailbox: &str,
    litigation_hold_enabled: Option<bool>,
    retain_deleted_items_for: Option<u32>,
) -> Result<Holds, DataError> {
    let data = Data::new(store.clone());
    if let Some(h) = litigation_hold_enabled {
        data.set_user_setting(mailbox, LITIGATION_HOLD, if h { "true" } else { "false" }).await?;
    }
    if let Some(d) = retain_deleted_items_for {
        data.set_user_setting(mailbox, RETAIN_DELETED_ITEMS_FOR, &d.to_string()).await?;
    }
    data.holds(mailbox).await
}

/// Items purged per transaction by the retention sweep.
const SWEEP_BATCH: usize = 500;

/// One retention pass at `now` (Unix seconds): in every mailbox not on litigation hold, the items
/// Recoverable Items has kept for longer than its RetainDeletedItemsFor (counted from when they
/// were moved or written there) are removed for good. Returns how many.
pub(crate) async fn sweep(data: &Data, now: i64) -> Result<usize, DataError> {
    let mut purged = 0;
    for mailbox in data.mailboxes_with_recoverable_items().await? {
        let h = data.holds(&mailbox).await?;
        if h.litigation_hold_enabled {
            continue;
        }
        let cutoff = now - i64::from(h.retain_deleted_items_for) * 86_400;
        loop {
            let batch = data.recoverable_items_before(&mailbox, cutoff, SWEEP_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            data.purge_items(&mailbox, &batch).await?;
            purged += batch.len();
            if batch.len() < SWEEP_BATCH {
                break;
            }
        }
    }
    Ok(purged)
}

//! Settings: per-mailbox values kept as the client sent them (`mbx_user_settings`: out of office,
//! delegates and their meeting-request delivery), and the server-wide client access values in
//! the store's settings map (`tandem_settings`, keys `cas.*`), which admin commands write without
//! a running role, so those functions take the store itself.

use sqlx::Row;
use tandem_store::Store;

use super::{Data, DataError};

/// The per-mailbox setting that holds the out-of-office settings.
pub(crate) const OOF: &str = "oof";
/// A configuration object of a folder (CreateUserConfiguration…) is kept as the setting
/// `config:<folder id>:<name>`.
const CONFIG_PREFIX: &str = "config:";
/// The senders an automatic reply went to since out of office was last turned on, one setting
/// each (`oof-replied:<address>`), so each gets one.
const OOF_REPLIED_PREFIX: &str = "oof-replied:";
/// Delegates are kept one per setting, named by this prefix and the delegate's address.
const DELEGATE_PREFIX: &str = "delegate:";
/// Who gets meeting requests (DelegatesOnly, DelegatesAndMe…).
pub(crate) const DELIVER_MEETING_REQUESTS: &str = "deliver_meeting_requests";

impl Data {
    /// A per-mailbox setting.
    pub async fn user_setting(&self, mailbox: &str, name: &str) -> Result<Option<String>, DataError> {
        let row = sqlx::query("SELECT value FROM mbx_user_settings WHERE mailbox = $1 AND name = $2")
            .bind(mailbox)
            .bind(name)
            .fetch_optional(self.pool())
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
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Per-mailbox settings whose names start with `prefix`, by name.
    async fn user_settings_with(&self, mailbox: &str, prefix: &str) -> Result<Vec<(String, String)>, DataError> {
        let rows =
            sqlx::query("SELECT name, value FROM mbx_user_settings WHERE mailbox = $1 AND name LIKE $2 ORDER BY name")
                .bind(mailbox)
                .bind(format!("{prefix}%"))
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get::<String, _>("name")?, r.try_get::<String, _>("value")?));
        }
        Ok(out)
    }

    /// Removes a per-mailbox setting; false when there was none.
    pub async fn remove_user_setting(&self, mailbox: &str, name: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM mbx_user_settings WHERE mailbox = $1 AND name = $2")
            .bind(mailbox)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces (`Some`) or removes (`None`) a per-mailbox setting kept in `folder`, as Exchange
    /// keeps out-of-office settings and user configurations in configuration messages of a
    /// folder: in the same transaction the folder takes a new change number and a folder
    /// ModifiedEvent is logged, so subscriptions (on its parent folder) hear of it at once.
    /// Returns the folder's new change number.
    pub async fn set_folder_setting(
        &self,
        folder: &super::Folder,
        name: &str,
        value: Option<&str>,
    ) -> Result<i64, DataError> {
        let mut w = self.write().await?;
        let (change, _) = w.next_numbers(&folder.mailbox, 0).await?;
        let now = tandem_store::now_unix();
        match value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO mbx_user_settings (mailbox, name, value, changed_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (mailbox, name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
                )
                .bind(&folder.mailbox)
                .bind(name)
                .bind(v)
                .bind(now)
                .execute(&mut *w.tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM mbx_user_settings WHERE mailbox = $1 AND name = $2")
                    .bind(&folder.mailbox)
                    .bind(name)
                    .execute(&mut *w.tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE mbx_folders SET change_number = $2, modified_at = $3 WHERE id = $1")
            .bind(&folder.id)
            .bind(change)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        let parent = folder.parent_id.clone().unwrap_or_default();
        w.log_change(
            &folder.mailbox,
            change,
            super::ChangeKind::Modified,
            super::changes::ObjectKind::Folder,
            &folder.id,
            &parent,
            None,
        )
        .await?;
        w.commit().await?;
        Ok(change)
    }

    /// Sets a per-mailbox setting unless it exists; true when this call set it (one statement,
    /// so of two racing callers exactly one wins).
    pub async fn claim_user_setting(&self, mailbox: &str, name: &str, value: &str) -> Result<bool, DataError> {
        let done = sqlx::query(
            "INSERT INTO mbx_user_settings (mailbox, name, value, changed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox, name) DO NOTHING",
        )
        .bind(mailbox)
        .bind(name)
        .bind(value)
        .bind(tandem_store::now_unix())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the per-mailbox settings whose names start with `prefix`; how many went.
    async fn remove_user_settings_with(&self, mailbox: &str, prefix: &str) -> Result<u64, DataError> {
        let done = sqlx::query("DELETE FROM mbx_user_settings WHERE mailbox = $1 AND name LIKE $2")
            .bind(mailbox)
            .bind(format!("{prefix}%"))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// A configuration object of a folder, as stored ([`config_key`]).
    pub async fn user_configuration(
        &self,
        mailbox: &str,
        folder_id: &str,
        name: &str,
    ) -> Result<Option<String>, DataError> {
        self.user_setting(mailbox, &config_key(folder_id, name)).await
    }

    /// Creates, replaces (`Some`) or deletes (`None`) a configuration object of a folder; the
    /// folder is marked modified ([`Data::set_folder_setting`]).
    pub async fn set_user_configuration(
        &self,
        folder: &super::Folder,
        name: &str,
        value: Option<&str>,
    ) -> Result<i64, DataError> {
        self.set_folder_setting(folder, &config_key(&folder.id, name), value).await
    }

    /// Records that `sender` got the automatic reply; false when they already had it.
    pub async fn claim_oof_reply(&self, mailbox: &str, sender: &str) -> Result<bool, DataError> {
        let name = format!("{OOF_REPLIED_PREFIX}{}", sender.to_lowercase());
        self.claim_user_setting(mailbox, &name, "").await
    }

    /// Forgets who got the automatic reply (out of office turned on again).
    pub async fn reset_oof_replies(&self, mailbox: &str) -> Result<u64, DataError> {
        self.remove_user_settings_with(mailbox, OOF_REPLIED_PREFIX).await
    }

    /// A mailbox's delegates: (address in lower case, encoded permissions), by address.
    pub async fn delegates(&self, mailbox: &str) -> Result<Vec<(String, String)>, DataError> {
        let all = self.user_settings_with(mailbox, DELEGATE_PREFIX).await?;
        Ok(all.into_iter().map(|(name, value)| (name.trim_start_matches(DELEGATE_PREFIX).to_owned(), value)).collect())
    }

    /// One delegate's encoded permissions on a mailbox.
    pub async fn delegate(&self, mailbox: &str, address: &str) -> Result<Option<String>, DataError> {
        self.user_setting(mailbox, &delegate_key(address)).await
    }

    /// Adds or replaces a delegate of a mailbox.
    pub async fn set_delegate(&self, mailbox: &str, address: &str, encoded: &str) -> Result<(), DataError> {
        self.set_user_setting(mailbox, &delegate_key(address), encoded).await
    }

    /// Removes a delegate; false when it was none.
    pub async fn remove_delegate(&self, mailbox: &str, address: &str) -> Result<bool, DataError> {
        self.remove_user_setting(mailbox, &delegate_key(address)).await
    }
}

fn config_key(folder_id: &str, name: &str) -> String {
    format!("{CONFIG_PREFIX}{folder_id}:{name}")
}

fn delegate_key(address: &str) -> String {
    format!("{DELEGATE_PREFIX}{}", address.to_lowercase())
}

/// The server-wide settings whose names start with `prefix` (one query).
pub(crate) async fn server_settings_with(store: &Store, prefix: &str) -> Result<Vec<(String, String)>, DataError> {
    let rows = sqlx::query("SELECT name, value FROM tandem_settings WHERE name LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((r.try_get::<String, _>("name")?, r.try_get::<String, _>("value")?));
    }
    Ok(out)
}

/// Stores server-wide settings, all or nothing (one transaction).
pub(crate) async fn set_server_settings(store: &Store, values: &[(&str, &str)]) -> Result<(), DataError> {
    let mut tx = store.begin().await?;
    for (name, value) in values {
        sqlx::query(
            "INSERT INTO tandem_settings (name, value, changed_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
        )
        .bind(*name)
        .bind(*value)
        .bind(tandem_store::now_unix())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

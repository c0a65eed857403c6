//! Contact lists as Skype for Business Server kept them before the Unified Contact Store: a
//! user's groups and contacts in the Front End's own store, where the list lives while the
//! user's policy keeps it out of the mailbox (Set-CsUserServicesPolicy -UcsAllowed $false), after
//! a rollback (Invoke-CsUcsRollback), or until it is migrated at the user's next sign-in. Also
//! the user services policies and, per user, where the list lives now.

use sqlx::Row;

use super::{DataError, FrontendStore};

/// Where a user's contact list lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListLocation {
    /// In the mailbox (the Unified Contact Store), read and written through EWS.
    Mailbox,
    /// In the Front End's store (this module's tables).
    FrontEnd,
}

impl ListLocation {
    fn parse(s: &str) -> ListLocation {
        if s == "mailbox" { ListLocation::Mailbox } else { ListLocation::FrontEnd }
    }
}

/// What the store records of one user's list: where it lives, since when a migration may run
/// (after a rollback, seven days on), and when this record last changed (milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactListState {
    pub aor: String,
    pub location: ListLocation,
    /// Unix seconds before which the list is not migrated into the mailbox (0: any time).
    pub migrate_after: i64,
    /// Unix milliseconds of the last change to the record or to the list it points at.
    pub changed_at: i64,
}

/// One contact in a Front End store list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeContact {
    pub uri: String,
    pub display_name: Option<String>,
}

/// One group, with its contacts in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeGroup {
    pub name: String,
    pub contacts: Vec<FeContact>,
}

/// A user services policy instance (Set-CsUserServicesPolicy): `None` leaves UcsAllowed to the
/// global instance (or the default, true).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserServicesPolicyRow {
    pub identity: String,
    pub ucs_allowed: Option<bool>,
}

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn state_of(r: &sqlx::any::AnyRow) -> Result<ContactListState, sqlx::Error> {
    Ok(ContactListState {
        aor: r.try_get("aor")?,
        location: ListLocation::parse(&r.try_get::<String, _>("location")?),
        migrate_after: r.try_get("migrate_after")?,
        changed_at: r.try_get("changed_at")?,
    })
}

impl FrontendStore {
    /// Every user services policy instance set, the global one included.
    pub async fn user_services_policies(&self) -> Result<Vec<UserServicesPolicyRow>, DataError> {
        let rows = sqlx::query("SELECT identity, ucs_allowed FROM cs_user_services_policies ORDER BY identity")
            .fetch_all(self.store.pool())
            .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<UserServicesPolicyRow, sqlx::Error> {
            Ok(UserServicesPolicyRow {
                identity: r.try_get("identity")?,
                ucs_allowed: r.try_get::<Option<i64>, _>("ucs_allowed")?.map(|v| v != 0),
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Sets a policy instance's UcsAllowed (creating the instance).
    pub async fn set_user_services_policy(&self, p: &UserServicesPolicyRow) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO cs_user_services_policies (identity, ucs_allowed) VALUES ($1, $2)
             ON CONFLICT (identity) DO UPDATE SET ucs_allowed = $2",
        )
        .bind(&p.identity)
        .bind(p.ucs_allowed.map(i64::from))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Where `aor`'s list lives, when the store records it.
    pub async fn contact_list_state(&self, aor: &str) -> Result<Option<ContactListState>, DataError> {
        let row =
            sqlx::query("SELECT aor, location, migrate_after, changed_at FROM fe_contact_list_state WHERE aor = $1")
                .bind(aor)
                .fetch_optional(self.store.pool())
                .await?;
        Ok(row.as_ref().map(state_of).transpose()?)
    }

    /// The records changed at or after `since` (Unix milliseconds), for the running Front End
    /// to follow moves and edits made by admin commands.
    pub async fn contact_list_states_since(&self, since: i64) -> Result<Vec<ContactListState>, DataError> {
        let rows = sqlx::query(
            "SELECT aor, location, migrate_after, changed_at FROM fe_contact_list_state
             WHERE changed_at >= $1 ORDER BY changed_at",
        )
        .bind(since)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(state_of).collect::<Result<_, _>>()?)
    }

    /// `aor`'s list in the Front End store: its groups in order, each with its contacts.
    pub async fn fe_contact_list(&self, aor: &str) -> Result<Vec<FeGroup>, DataError> {
        let groups = sqlx::query("SELECT name FROM fe_contact_groups WHERE aor = $1 ORDER BY position")
            .bind(aor)
            .fetch_all(self.store.pool())
            .await?;
        let contacts = sqlx::query(
            "SELECT group_name, uri, display_name FROM fe_contacts WHERE aor = $1 ORDER BY group_name, position",
        )
        .bind(aor)
        .fetch_all(self.store.pool())
        .await?;
        let mut out: Vec<FeGroup> = Vec::with_capacity(groups.len());
        for g in &groups {
            out.push(FeGroup { name: g.try_get("name")?, contacts: Vec::new() });
        }
        for c in &contacts {
            let group: String = c.try_get("group_name")?;
            let contact = FeContact { uri: c.try_get("uri")?, display_name: c.try_get("display_name")? };
            if let Some(g) = out.iter_mut().find(|g| g.name == group) {
                g.contacts.push(contact);
            }
        }
        Ok(out)
    }

    /// Makes `groups` the whole of `aor`'s list in the Front End store, which is then where the
    /// list lives; `migrate_after` (Unix seconds) replaces the record's when given. One
    /// transaction: a failure leaves the list as it was.
    pub async fn put_fe_contact_list(
        &self,
        aor: &str,
        groups: &[FeGroup],
        migrate_after: Option<i64>,
    ) -> Result<(), DataError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM fe_contacts WHERE aor = $1").bind(aor).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM fe_contact_groups WHERE aor = $1").bind(aor).execute(&mut *tx).await?;
        for (gi, g) in groups.iter().enumerate() {
            sqlx::query("INSERT INTO fe_contact_groups (aor, position, name) VALUES ($1, $2, $3)")
                .bind(aor)
                .bind(i64::try_from(gi).unwrap_or(i64::MAX))
                .bind(&g.name)
                .execute(&mut *tx)
                .await?;
            for (ci, c) in g.contacts.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO fe_contacts (aor, group_name, position, uri, display_name) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(aor)
                .bind(&g.name)
                .bind(i64::try_from(ci).unwrap_or(i64::MAX))
                .bind(&c.uri)
                .bind(c.display_name.as_deref())
                .execute(&mut *tx)
                .await?;
            }
        }
        let now = now_millis();
        sqlx::query(
            "INSERT INTO fe_contact_list_state (aor, location, migrate_after, changed_at) VALUES ($1, 'frontend', $2, $3)
             ON CONFLICT (aor) DO UPDATE SET location = 'frontend', changed_at = $3,
                 migrate_after = CASE WHEN $4 = 1 THEN $2 ELSE fe_contact_list_state.migrate_after END",
        )
        .bind(aor)
        .bind(migrate_after.unwrap_or(0))
        .bind(now)
        .bind(i64::from(migrate_after.is_some()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records where `aor`'s list lives when nothing is recorded yet (a user's first use of
    /// their list), so a later policy change does not move it by itself; returns the record.
    pub async fn pin_contact_list_location(
        &self,
        aor: &str,
        location: ListLocation,
    ) -> Result<ContactListState, DataError> {
        let name = if location == ListLocation::Mailbox { "mailbox" } else { "frontend" };
        sqlx::query(
            "INSERT INTO fe_contact_list_state (aor, location, migrate_after, changed_at) VALUES ($1, $2, 0, $3)
             ON CONFLICT (aor) DO NOTHING",
        )
        .bind(aor)
        .bind(name)
        .bind(now_millis())
        .execute(self.store.pool())
        .await?;
        let state = self.contact_list_state(aor).await?;
        Ok(state.unwrap_or(ContactListState { aor: aor.to_owned(), location, migrate_after: 0, changed_at: 0 }))
    }

    /// Records that `aor`'s list now lives in the mailbox (a finished migration): the Front End
    /// store's copy goes, so there is one list. One transaction.
    pub async fn contact_list_moved_to_mailbox(&self, aor: &str) -> Result<(), DataError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM fe_contacts WHERE aor = $1").bind(aor).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM fe_contact_groups WHERE aor = $1").bind(aor).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO fe_contact_list_state (aor, location, migrate_after, changed_at) VALUES ($1, 'mailbox', 0, $2)
             ON CONFLICT (aor) DO UPDATE SET location = 'mailbox', changed_at = $2",
        )
        .bind(aor)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

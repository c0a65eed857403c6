//! Conferences (Skype for Business's scheduled and Meet Now meetings): the record the focus
//! admits participants by, with its invited attendees, and the pool's meeting configuration
//! (Set-CsMeetingConfiguration). Live state (who is in, the lobby, the mixer) is the running
//! focus's and lives in memory (`crate::conference`).

use sqlx::Row;

use super::{DataError, FrontendStore};

/// Who enters a conference without waiting in the lobby (the Outlook add-in's "Who doesn't have
/// to wait in the lobby?", UCMA's `ConferenceAccessLevel`). The organizer always enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessLevel {
    /// "Only me, the meeting organizer": everyone else waits to be admitted.
    Locked,
    /// "People I invite from my company": the invited attendees.
    Invited,
    /// "Anyone from my organization": every user of this deployment.
    SameEnterprise,
    /// "Anyone (no restrictions)": as SameEnterprise here, since the Front End serves only
    /// its own domain's authenticated users (no anonymous or federated SIP).
    Everyone,
}

impl AccessLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Locked => "Locked",
            AccessLevel::Invited => "Invited",
            AccessLevel::SameEnterprise => "SameEnterprise",
            AccessLevel::Everyone => "Everyone",
        }
    }

    /// The stored or typed name, case-insensitively.
    pub fn parse(s: &str) -> Option<AccessLevel> {
        [AccessLevel::Locked, AccessLevel::Invited, AccessLevel::SameEnterprise, AccessLevel::Everyone]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// One conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceRow {
    /// Eight upper-case alphanumerics, unique (the `id:` of the focus URI and the join URL's last part).
    pub id: String,
    /// `sip:<organizer user>@<domain>;gruu;opaque=app:conf:focus:id:<ID>`.
    pub focus_uri: String,
    /// `https://<fe host>[:port]/meet/<organizer user>/<ID>`.
    pub join_url: String,
    /// The numeric conference ID for dial-in (digits, unique).
    pub conference_number: String,
    /// The organizer's address of record (`sip:alice@domain`).
    pub organizer: String,
    pub subject: String,
    /// Unix seconds; None for a Meet Now conference.
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    /// Invited attendees' addresses of record, sorted, without duplicates.
    pub attendees: Vec<String>,
    /// The mailbox item's iCalendar UID, for a scheduled meeting.
    pub mailbox_uid: Option<String>,
    /// Who bypasses the lobby.
    pub access_level: AccessLevel,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Set-CsMeetingConfiguration (the global instance): what new meetings default to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetingConfigurationRow {
    /// Anonymous users may join by default (new meetings: Everyone) unless meetings are private.
    pub admit_anonymous_users_by_default: bool,
    /// New meetings are private ("assigned"): invited attendees bypass the lobby, others wait.
    pub assigned_conference_type_by_default: bool,
    /// Users may schedule private ("assigned") meetings at all; false makes every new meeting
    /// public, open to the whole organisation.
    pub enable_assigned_conference_type: bool,
}

impl Default for MeetingConfigurationRow {
    /// Skype for Business's defaults (all True).
    fn default() -> Self {
        MeetingConfigurationRow {
            admit_anonymous_users_by_default: true,
            assigned_conference_type_by_default: true,
            enable_assigned_conference_type: true,
        }
    }
}

impl MeetingConfigurationRow {
    /// The lobby a new meeting gets under this configuration.
    pub fn default_access_level(&self) -> AccessLevel {
        if self.enable_assigned_conference_type && self.assigned_conference_type_by_default {
            AccessLevel::Invited
        } else if self.admit_anonymous_users_by_default {
            AccessLevel::Everyone
        } else {
            AccessLevel::SameEnterprise
        }
    }
}

/// The conference columns, for `concat!` (statements stay static strings).
macro_rules! columns {
    () => {
        "id, focus_uri, join_url, conference_number, organizer, subject, starts_at, ends_at, mailbox_uid, access_level, created_at, updated_at"
    };
}

fn conference_row(r: &sqlx::any::AnyRow) -> Result<ConferenceRow, sqlx::Error> {
    let access: String = r.try_get("access_level")?;
    Ok(ConferenceRow {
        id: r.try_get("id")?,
        focus_uri: r.try_get("focus_uri")?,
        join_url: r.try_get("join_url")?,
        conference_number: r.try_get("conference_number")?,
        organizer: r.try_get("organizer")?,
        subject: r.try_get("subject")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        attendees: Vec::new(),
        mailbox_uid: r.try_get("mailbox_uid")?,
        // Rows are written from the enum only; an unknown name reads as the strictest lobby.
        access_level: AccessLevel::parse(&access).unwrap_or(AccessLevel::Locked),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn bool_of(r: &sqlx::any::AnyRow, column: &str, default: bool) -> Result<bool, sqlx::Error> {
    let v: Option<i64> = r.try_get(column)?;
    Ok(v.map_or(default, |v| v != 0))
}

fn normalised(attendees: &[String]) -> Vec<String> {
    let mut a: Vec<String> =
        attendees.iter().map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
    a.sort();
    a.dedup();
    a
}

impl FrontendStore {
    /// Stores a new conference with its attendees. A taken id, focus URI or conference number
    /// is the store's unique violation (`StoreError::is_unique_violation`), so the caller draws
    /// again.
    pub async fn create_conference(&self, c: &ConferenceRow) -> Result<(), DataError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query(concat!(
            "INSERT INTO conferences (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&c.id)
        .bind(&c.focus_uri)
        .bind(&c.join_url)
        .bind(&c.conference_number)
        .bind(&c.organizer)
        .bind(&c.subject)
        .bind(c.starts_at)
        .bind(c.ends_at)
        .bind(c.mailbox_uid.clone())
        .bind(c.access_level.as_str())
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&mut *tx)
        .await?;
        for a in normalised(&c.attendees) {
            sqlx::query("INSERT INTO conference_attendees (conference_id, uri) VALUES ($1, $2)")
                .bind(&c.id)
                .bind(a)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn attendees_of(&self, id: &str) -> Result<Vec<String>, DataError> {
        let rows = sqlx::query("SELECT uri FROM conference_attendees WHERE conference_id = $1 ORDER BY uri")
            .bind(id)
            .fetch_all(self.store.pool())
            .await?;
        Ok(rows.iter().map(|r| r.try_get("uri")).collect::<Result<_, _>>()?)
    }

    async fn with_attendees(&self, row: Option<sqlx::any::AnyRow>) -> Result<Option<ConferenceRow>, DataError> {
        let Some(row) = row else { return Ok(None) };
        let mut c = conference_row(&row)?;
        c.attendees = self.attendees_of(&c.id).await?;
        Ok(Some(c))
    }

    /// A conference by its id (case-insensitively: ids are upper-case).
    pub async fn conference(&self, id: &str) -> Result<Option<ConferenceRow>, DataError> {
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM conferences WHERE id = $1"))
            .bind(id.to_ascii_uppercase())
            .fetch_optional(self.store.pool())
            .await?;
        self.with_attendees(row).await
    }

    /// A conference by its focus URI, exactly as stored.
    pub async fn conference_by_focus_uri(&self, focus_uri: &str) -> Result<Option<ConferenceRow>, DataError> {
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM conferences WHERE focus_uri = $1"))
            .bind(focus_uri)
            .fetch_optional(self.store.pool())
            .await?;
        self.with_attendees(row).await
    }

    /// A conference by the mailbox item it was provisioned for.
    pub async fn conference_by_mailbox_uid(
        &self,
        organizer: &str,
        uid: &str,
    ) -> Result<Option<ConferenceRow>, DataError> {
        let row =
            sqlx::query(concat!("SELECT ", columns!(), " FROM conferences WHERE organizer = $1 AND mailbox_uid = $2"))
                .bind(organizer)
                .bind(uid)
                .fetch_optional(self.store.pool())
                .await?;
        self.with_attendees(row).await
    }

    /// An organizer's conferences, by start (Meet Now ones, without a start, first) then id.
    pub async fn conferences_of(&self, organizer: &str) -> Result<Vec<ConferenceRow>, DataError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM conferences WHERE organizer = $1 ORDER BY COALESCE(starts_at, 0), id"
        ))
        .bind(organizer)
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut c = conference_row(r)?;
            c.attendees = self.attendees_of(&c.id).await?;
            out.push(c);
        }
        Ok(out)
    }

    /// Rewrites a conference's schedule, subject, attendees, mailbox UID and lobby (its id,
    /// URIs, number, organizer and creation time stay); false when there is no such conference.
    pub async fn update_conference(&self, c: &ConferenceRow) -> Result<bool, DataError> {
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query(
            "UPDATE conferences SET subject = $2, starts_at = $3, ends_at = $4, mailbox_uid = $5,
               access_level = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(&c.id)
        .bind(&c.subject)
        .bind(c.starts_at)
        .bind(c.ends_at)
        .bind(c.mailbox_uid.clone())
        .bind(c.access_level.as_str())
        .bind(c.updated_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM conference_attendees WHERE conference_id = $1").bind(&c.id).execute(&mut *tx).await?;
        for a in normalised(&c.attendees) {
            sqlx::query("INSERT INTO conference_attendees (conference_id, uri) VALUES ($1, $2)")
                .bind(&c.id)
                .bind(a)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a conference and its attendees; false when there was none. A running focus ends
    /// the live conference at its next sweep (or at once through `conference::Focus::end`).
    pub async fn delete_conference(&self, id: &str) -> Result<bool, DataError> {
        let id = id.to_ascii_uppercase();
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM conference_attendees WHERE conference_id = $1").bind(&id).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM conferences WHERE id = $1").bind(&id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Which of `ids` still exist (the focus's sweep for conferences removed meanwhile).
    pub async fn existing_conference_ids(&self, ids: &[String]) -> Result<Vec<String>, DataError> {
        let mut out = Vec::new();
        for id in ids {
            let row = sqlx::query("SELECT id FROM conferences WHERE id = $1")
                .bind(id)
                .fetch_optional(self.store.pool())
                .await?;
            if row.is_some() {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    /// The global meeting configuration (Skype for Business's defaults until set).
    pub async fn meeting_configuration(&self) -> Result<MeetingConfigurationRow, DataError> {
        let row = sqlx::query(
            "SELECT admit_anonymous_users_by_default, assigned_conference_type_by_default, enable_assigned_conference_type
             FROM cs_meeting_configuration WHERE identity = 'Global'",
        )
        .fetch_optional(self.store.pool())
        .await?;
        let d = MeetingConfigurationRow::default();
        let Some(r) = row else { return Ok(d) };
        Ok(MeetingConfigurationRow {
            admit_anonymous_users_by_default: bool_of(
                &r,
                "admit_anonymous_users_by_default",
                d.admit_anonymous_users_by_default,
            )?,
            assigned_conference_type_by_default: bool_of(
                &r,
                "assigned_conference_type_by_default",
                d.assigned_conference_type_by_default,
            )?,
            enable_assigned_conference_type: bool_of(
                &r,
                "enable_assigned_conference_type",
                d.enable_assigned_conference_type,
            )?,
        })
    }

    /// Set-CsMeetingConfiguration -Identity Global.
    pub async fn put_meeting_configuration(&self, c: &MeetingConfigurationRow) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO cs_meeting_configuration (identity, admit_anonymous_users_by_default,
               assigned_conference_type_by_default, enable_assigned_conference_type, updated_at)
             VALUES ('Global', $1, $2, $3, $4)
             ON CONFLICT (identity) DO UPDATE SET
               admit_anonymous_users_by_default = excluded.admit_anonymous_users_by_default,
               assigned_conference_type_by_default = excluded.assigned_conference_type_by_default,
               enable_assigned_conference_type = excluded.enable_assigned_conference_type,
               updated_at = excluded.updated_at",
        )
        .bind(i64::from(c.admit_anonymous_users_by_default))
        .bind(i64::from(c.assigned_conference_type_by_default))
        .bind(i64::from(c.enable_assigned_conference_type))
        .bind(tandem_store::now_unix())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }
}

//! Calendar presence: the client policies (Set-CsClientPolicy's calendar settings, global and
//! per user, and its archiving switches that conversation history reads) and the presence each watched user is shown, with why, written by the running Front
//! End so `tandem cs get-presence` and `tandem integration status` can read it.

use sqlx::Row;

use super::{DataError, FrontendStore};

/// The identity of the policy every user has unless one of their own overrides it.
pub const GLOBAL: &str = "global";

/// One policy instance; `None` leaves a setting to the global policy (or the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientPolicyRow {
    pub identity: String,
    pub disable_calendar_presence: Option<bool>,
    pub disable_meeting_subject_and_location: Option<bool>,
    pub disable_free_busy_info: Option<bool>,
    /// WebServicePollInterval in seconds. Kept as Set-CsClientPolicy has it; the Front End
    /// polls nothing (the calendar, out of office and working hours are all pushed).
    pub web_service_poll_seconds: Option<i64>,
    /// EnableOffWorkPresence (Tandem's): "Off Work" outside the user's working hours.
    pub enable_off_work_presence: Option<bool>,
    /// EnableIMAutoArchiving: IM transcripts (and missed IMs) are saved to the user's mailbox.
    pub enable_im_auto_archiving: Option<bool>,
    /// EnableCallLogAutoArchiving: call logs (and missed calls) are saved to the user's mailbox.
    pub enable_call_log_auto_archiving: Option<bool>,
}

/// The presence shown for one user, as the Front End last computed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresenceStatusRow {
    pub aor: String,
    pub availability: String,
    pub activity: Option<String>,
    pub note: Option<String>,
    pub reason: String,
    /// The calendar watch: `watching`, `disabled`, `connecting` or `failing`.
    pub calendar: String,
    pub calendar_error: Option<String>,
    pub updated_at: i64,
}

fn flag(row: &sqlx::any::AnyRow, name: &str) -> Result<Option<bool>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(name)?.map(|v| v != 0))
}

impl FrontendStore {
    /// Every policy instance, the global one included when set.
    pub async fn client_policies(&self) -> Result<Vec<ClientPolicyRow>, DataError> {
        let rows = sqlx::query(
            "SELECT identity, disable_calendar_presence, disable_meeting_subject_and_location,
                    disable_free_busy_info, web_service_poll_seconds, enable_off_work_presence,
                    enable_im_auto_archiving, enable_call_log_auto_archiving
             FROM cs_client_policies ORDER BY identity",
        )
        .fetch_all(self.store.pool())
        .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<ClientPolicyRow, sqlx::Error> {
            Ok(ClientPolicyRow {
                identity: r.try_get("identity")?,
                disable_calendar_presence: flag(r, "disable_calendar_presence")?,
                disable_meeting_subject_and_location: flag(r, "disable_meeting_subject_and_location")?,
                disable_free_busy_info: flag(r, "disable_free_busy_info")?,
                web_service_poll_seconds: r.try_get("web_service_poll_seconds")?,
                enable_off_work_presence: flag(r, "enable_off_work_presence")?,
                enable_im_auto_archiving: flag(r, "enable_im_auto_archiving")?,
                enable_call_log_auto_archiving: flag(r, "enable_call_log_auto_archiving")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Sets the given settings of a policy instance (creating it), leaving the others as they were.
    pub async fn set_client_policy(&self, p: &ClientPolicyRow) -> Result<(), DataError> {
        let b = |v: Option<bool>| v.map(i64::from);
        sqlx::query(
            "INSERT INTO cs_client_policies (identity, disable_calendar_presence,
                 disable_meeting_subject_and_location, disable_free_busy_info, web_service_poll_seconds,
                 enable_off_work_presence, enable_im_auto_archiving, enable_call_log_auto_archiving)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (identity) DO UPDATE SET
                 disable_calendar_presence = COALESCE($2, cs_client_policies.disable_calendar_presence),
                 disable_meeting_subject_and_location =
                     COALESCE($3, cs_client_policies.disable_meeting_subject_and_location),
                 disable_free_busy_info = COALESCE($4, cs_client_policies.disable_free_busy_info),
                 web_service_poll_seconds = COALESCE($5, cs_client_policies.web_service_poll_seconds),
                 enable_off_work_presence = COALESCE($6, cs_client_policies.enable_off_work_presence),
                 enable_im_auto_archiving = COALESCE($7, cs_client_policies.enable_im_auto_archiving),
                 enable_call_log_auto_archiving = COALESCE($8, cs_client_policies.enable_call_log_auto_archiving)",
        )
        .bind(&p.identity)
        .bind(b(p.disable_calendar_presence))
        .bind(b(p.disable_meeting_subject_and_location))
        .bind(b(p.disable_free_busy_info))
        .bind(p.web_service_poll_seconds)
        .bind(b(p.enable_off_work_presence))
        .bind(b(p.enable_im_auto_archiving))
        .bind(b(p.enable_call_log_auto_archiving))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Removes a per-user policy instance (Remove-CsClientPolicy); false when there was none.
    pub async fn remove_client_policy(&self, identity: &str) -> Result<bool, DataError> {
        let done = sqlx::query("DELETE FROM cs_client_policies WHERE identity = $1")
            .bind(identity)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the presence shown for a user (replacing the previous record).
    pub async fn put_presence_status(&self, s: &PresenceStatusRow) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO presence_status (aor, availability, activity, note, reason, calendar, calendar_error, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (aor) DO UPDATE SET availability = $2, activity = $3, note = $4, reason = $5,
                 calendar = $6, calendar_error = $7, updated_at = $8",
        )
        .bind(&s.aor)
        .bind(&s.availability)
        .bind(&s.activity)
        .bind(&s.note)
        .bind(&s.reason)
        .bind(&s.calendar)
        .bind(&s.calendar_error)
        .bind(s.updated_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The recorded presence of one user, or of every recorded user (`None`).
    pub async fn presence_status(&self, aor: Option<&str>) -> Result<Vec<PresenceStatusRow>, DataError> {
        // One statement for both: an empty filter matches every row.
        let rows = sqlx::query(
            "SELECT aor, availability, activity, note, reason, calendar, calendar_error, updated_at
             FROM presence_status WHERE $1 = '' OR aor = $1 ORDER BY aor",
        )
        .bind(aor.unwrap_or(""))
        .fetch_all(self.store.pool())
        .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<PresenceStatusRow, sqlx::Error> {
            Ok(PresenceStatusRow {
                aor: r.try_get("aor")?,
                availability: r.try_get("availability")?,
                activity: r.try_get("activity")?,
                note: r.try_get("note")?,
                reason: r.try_get("reason")?,
                calendar: r.try_get("calendar")?,
                calendar_error: r.try_get("calendar_error")?,
                updated_at: r.try_get("updated_at")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Forgets the records of users no longer watched.
    pub async fn delete_presence_status(&self, aor: &str) -> Result<(), DataError> {
        sqlx::query("DELETE FROM presence_status WHERE aor = $1").bind(aor).execute(self.store.pool()).await?;
        Ok(())
    }
}

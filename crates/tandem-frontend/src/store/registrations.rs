//! Stored registrations: the registrar's bindings, written back from memory in batches.

use sqlx::Row;

use super::{DataError, FrontendStore};

/// One stored binding of an address of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub aor: String,
    /// The Contact value as granted, without its `expires` parameter.
    pub contact: String,
    /// `UDP`, `TCP`, `TLS`, `WS` or `WSS`: only UDP bindings outlive the process.
    pub transport: String,
    /// The source address the endpoint registered from.
    pub peer: String,
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: Option<String>,
    /// Requests go to the Contact rather than to `peer` (a UDP endpoint not behind a NAT).
    pub by_contact: bool,
}

/// The columns every read selects, in a macro so query texts stay `&'static str`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT aor, contact, transport, peer, expires_at, call_id, cseq, user_agent, by_contact FROM sip_registrations",
            $rest
        )
    };
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Registration, sqlx::Error> {
    Ok(Registration {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        transport: row.try_get("transport")?,
        peer: row.try_get("peer")?,
        expires_at: row.try_get("expires_at")?,
        call_id: row.try_get("call_id")?,
        // Written from a u32; anything else was not written by us and reads as 0.
        cseq: u32::try_from(row.try_get::<i64, _>("cseq")?).unwrap_or(0),
        user_agent: row.try_get("user_agent")?,
        by_contact: row.try_get::<i64, _>("by_contact")? != 0,
    })
}

impl FrontendStore {
    /// Every stored registration, expired or not, in no particular order.
    pub async fn registrations(&self) -> Result<Vec<Registration>, DataError> {
        let rows = sqlx::query(select!("")).fetch_all(self.store.pool()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Registrations still live at `now`, of one address of record or of all, ordered by address
    /// of record and expiry (what `cs get-registrations` shows).
    pub async fn live_registrations(&self, now: i64, aor: Option<&str>) -> Result<Vec<Registration>, DataError> {
        let rows = match aor {
            None => {
                sqlx::query(select!(" WHERE expires_at > $1 ORDER BY aor, expires_at"))
                    .bind(now)
                    .fetch_all(self.store.pool())
                    .await?
            }
            Some(aor) => {
                sqlx::query(select!(" WHERE expires_at > $1 AND aor = $2 ORDER BY expires_at"))
                    .bind(now)
                    .bind(aor)
                    .fetch_all(self.store.pool())
                    .await?
            }
        };
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Removes the registrations expired at `now`; returns how many went.
    pub async fn delete_expired_registrations(&self, now: i64) -> Result<u64, DataError> {
        let done = sqlx::query("DELETE FROM sip_registrations WHERE expires_at <= $1")
            .bind(now)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Makes the stored registrations of each of `aors` exactly those of `registrations` that
    /// name it, in one transaction: a failure changes nothing.
    pub async fn replace_registrations(
        &self,
        aors: &[String],
        registrations: &[Registration],
    ) -> Result<(), DataError> {
        let mut tx = self.store.begin().await?;
        for aor in aors {
            sqlx::query("DELETE FROM sip_registrations WHERE aor = $1").bind(aor).execute(&mut *tx).await?;
            for r in registrations.iter().filter(|r| &r.aor == aor) {
                sqlx::query(
                    "INSERT INTO sip_registrations
                     (aor, contact, transport, peer, expires_at, call_id, cseq, user_agent, by_contact)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&r.aor)
                .bind(&r.contact)
                .bind(&r.transport)
                .bind(&r.peer)
                .bind(r.expires_at)
                .bind(&r.call_id)
                .bind(i64::from(r.cseq))
                .bind(r.user_agent.clone())
                .bind(i64::from(r.by_contact))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

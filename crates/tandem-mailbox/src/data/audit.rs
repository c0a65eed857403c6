//! The audit log (`mbx_audit`): one row per administrator action that reads other people's mail
//! (eDiscovery search and export), written before the results are shown.

use sqlx::Row;

use super::{Data, DataError};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub query: String,
    /// The mailboxes and dates searched, as given (`all` when no mailbox was named).
    pub scope: String,
    pub hits: i64,
}

impl Data {
    pub async fn record_audit(&self, e: &AuditEntry) -> Result<(), DataError> {
        sqlx::query("INSERT INTO mbx_audit (at, actor, action, query, scope, hits) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.query)
            .bind(&e.scope)
            .bind(e.hits)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, DataError> {
        let rows =
            sqlx::query("SELECT at, actor, action, query, scope, hits FROM mbx_audit ORDER BY at DESC, actor LIMIT $1")
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(AuditEntry {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                query: r.try_get("query")?,
                scope: r.try_get("scope")?,
                hits: r.try_get("hits")?,
            });
        }
        Ok(out)
    }
}

//! What admin commands read and change in the Front End's store while it runs.

use serde::Serialize;
use sqlx::Row;
use tandem_config::FrontendConfig;
use tandem_store::{Store, StoreError};

/// One registered endpoint as `tandem cs get-registrations` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationRow {
    pub sip_uri: String,
    pub contact: String,
    pub transport: String,
    pub source: String,
    pub expires_in: i64,
    pub user_agent: Option<String>,
}

/// Opens the Front End store (migrating it like the running role does).
pub async fn open_store(config: &FrontendConfig) -> Result<Store, StoreError> {
    open_store_at(&config.store.url()).await
}

/// Opens the Front End store at a database URL.
pub async fn open_store_at(url: &str) -> Result<Store, StoreError> {
    Store::open(url, super::MIGRATIONS).await
}

/// Live registrations, of one user (`sip:alice@…`) or all.
pub async fn registrations(store: &Store, user: Option<&str>) -> Result<Vec<RegistrationRow>, StoreError> {
    let now = tandem_store::now_unix();
    let rows = sqlx::query(
        "SELECT aor, contact, transport, peer, expires_at, user_agent FROM sip_registrations
         WHERE expires_at > $1 ORDER BY aor, expires_at",
    )
    .bind(now)
    .fetch_all(store.pool())
    .await?;
    let want = user.map(|u| u.to_ascii_lowercase());
    let mut out = Vec::new();
    for r in rows {
        let aor: String = r.try_get("aor")?;
        if want.as_ref().is_some_and(|w| *w != aor) {
            continue;
        }
        out.push(RegistrationRow {
            sip_uri: aor,
            contact: r.try_get("contact")?,
            transport: r.try_get("transport")?,
            source: r.try_get("peer")?,
            expires_in: r.try_get::<i64, _>("expires_at")? - now,
            user_agent: r.try_get("user_agent")?,
        });
    }
    Ok(out)
}

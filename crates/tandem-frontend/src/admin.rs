//! What admin commands read and change in the Front End's store while it runs.

use serde::Serialize;
use tandem_config::FrontendConfig;
use tandem_store::{Store, StoreError};

use crate::store::{DataError, FrontendStore};

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
    crate::store::open(url).await
}

/// Live registrations, of one user (`sip:alice@…`) or all.
pub async fn registrations(store: &Store, user: Option<&str>) -> Result<Vec<RegistrationRow>, DataError> {
    let now = tandem_store::now_unix();
    let want = user.map(|u| u.to_ascii_lowercase());
    let rows = FrontendStore::new(store.clone()).live_registrations(now, want.as_deref()).await?;
    Ok(rows
        .into_iter()
        .map(|r| RegistrationRow {
            sip_uri: r.aor,
            contact: r.contact,
            transport: r.transport,
            source: r.peer,
            expires_in: r.expires_at - now,
            user_agent: r.user_agent,
        })
        .collect())
}

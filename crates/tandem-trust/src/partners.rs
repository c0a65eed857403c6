//! Partner applications as both roles keep them (New-CsPartnerApplication on the Front End,
//! New-PartnerApplication on the Mailbox): stored in the role's settings map, created from a
//! downloaded metadata document, and refreshed every [`METADATA_REFRESH`] so a partner's
//! certificate rollover needs no restart.

use std::time::Duration;

use tandem_oauth::metadata::{self, PartnerMetadata};
use tandem_oauth::partner::{DownloadError, check_download, merge_refreshed};
use tandem_oauth::{LYNC_APP_ID, PartnerApplication, SHAREPOINT_APP_ID, TrustLevel};
use tandem_store::Store;
use tandem_types::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{TrustError, load, save, store_err};

/// How often partners' metadata documents are fetched again.
pub const METADATA_REFRESH: Duration = Duration::from_secs(300);

/// The setting holding a role's partner applications.
pub fn setting_partners(role: Role) -> &'static str {
    match role {
        Role::Frontend => "oauth.partner_applications",
        Role::Mailbox => "auth.partner_applications",
    }
}

/// The setting holding the PEM of the CA(s) a role trusts when fetching partners' metadata (the
/// deployment CA); empty or unset: the system's roots.
pub fn setting_trusted_ca(role: Role) -> &'static str {
    match role {
        Role::Frontend => "oauth.trusted_ca_pem",
        Role::Mailbox => "auth.trusted_ca_pem",
    }
}

/// The role's partner applications.
pub async fn list(store: &Store, role: Role) -> Result<Vec<PartnerApplication>, TrustError> {
    Ok(load(store, role, setting_partners(role)).await?.unwrap_or_default())
}

/// Replaces the role's partner applications.
pub async fn save_list(store: &Store, role: Role, partners: &[PartnerApplication]) -> Result<(), TrustError> {
    save(store, role, setting_partners(role), &partners).await
}

/// The partners named `name` (compared without case, as the cmdlets do).
pub fn named<'a>(list: &'a [PartnerApplication], name: &str) -> impl Iterator<Item = &'a PartnerApplication> {
    list.iter().filter(move |p| p.name.eq_ignore_ascii_case(name))
}

/// The HTTPS client for metadata, trusting the role's configured CA.
pub async fn metadata_client(store: &Store, role: Role) -> Result<reqwest::Client, TrustError> {
    let key = setting_trusted_ca(role);
    let ca = store.setting(key).await.map_err(store_err(role))?.filter(|s| !s.trim().is_empty());
    tandem_http::client::https_client(ca.as_deref()).map_err(|e| TrustError::Corrupt(key, e.to_string()))
}

/// Downloads and checks a metadata document; the error is the seed's wording.
pub async fn fetch_metadata(client: &reqwest::Client, url: &str) -> Result<(String, PartnerMetadata), DownloadError> {
    check_download(url, tandem_http::client::get_limited(client, url, metadata::MAX_DOCUMENT_BYTES).await)
}

/// A partner application made from a downloaded document (enabled, Full trust, nothing else set).
pub fn from_metadata(name: &str, url: &str, body: String, doc: &PartnerMetadata, now: i64) -> PartnerApplication {
    PartnerApplication {
        name: name.into(),
        application_identifier: doc.service_name.clone(),
        auth_metadata_url: Some(url.into()),
        enabled: true,
        application_trust_level: TrustLevel::Full,
        metadata: Some(body),
        metadata_fetched_at: Some(now),
        ..PartnerApplication::default()
    }
}

/// Downloads `url`'s document and makes a partner application named `name` of it.
pub async fn download(
    client: &reqwest::Client,
    name: &str,
    url: &str,
) -> Result<(PartnerApplication, PartnerMetadata), DownloadError> {
    let (body, doc) = fetch_metadata(client, url).await?;
    Ok((from_metadata(name, url, body, &doc, tandem_store::now_unix()), doc))
}

/// Fetches every partner's metadata again and saves what changed; returns how many changed.
pub async fn refresh(store: &Store, role: Role) -> Result<usize, TrustError> {
    let client = metadata_client(store, role).await?;
    let mut partners = list(store, role).await?;
    let mut changed = 0;
    for p in partners.iter_mut() {
        let Some(url) = p.auth_metadata_url.clone() else { continue };
        let result = fetch_metadata(&client, &url).await.map(|(body, _)| body);
        if p.record_fetch(result, tandem_store::now_unix()) {
            changed += 1;
        }
    }
    if changed > 0 {
        // Merge into what is stored now, so an admin change made meanwhile is kept.
        let mut latest = list(store, role).await?;
        merge_refreshed(&mut latest, &partners);
        save_list(store, role, &latest).await?;
    }
    Ok(changed)
}

/// Re-fetches the role's partners' metadata every [`METADATA_REFRESH`].
pub fn spawn_refresh(store: Store, role: Role, tasks: &TaskTracker, shutdown: CancellationToken) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(METADATA_REFRESH);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = refresh(&store, role).await {
                tracing::warn!(error = %e, "partner metadata refresh failed");
            }
        }
    });
}

/// The applications Configure-EnterprisePartnerApplication.ps1 knows (`-ApplicationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterpriseApp {
    Lync,
    SharePoint,
}

impl EnterpriseApp {
    /// `Lync` or `SharePoint`, in any case.
    pub fn parse(s: &str) -> Option<EnterpriseApp> {
        match s.to_ascii_lowercase().as_str() {
            "lync" => Some(EnterpriseApp::Lync),
            "sharepoint" => Some(EnterpriseApp::SharePoint),
            _ => None,
        }
    }

    /// The partner application's name.
    pub fn name(self) -> &'static str {
        match self {
            EnterpriseApp::Lync => "Lync",
            EnterpriseApp::SharePoint => "SharePoint",
        }
    }

    /// The well-known application id its document must name.
    pub fn app_id(self) -> &'static str {
        match self {
            EnterpriseApp::Lync => LYNC_APP_ID,
            EnterpriseApp::SharePoint => SHAREPOINT_APP_ID,
        }
    }
}

/// Why Configure-EnterprisePartnerApplication refused a document.
#[derive(Debug, thiserror::Error)]
pub enum EnterpriseError {
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("the document names the service {found}, not {} ({})", app.name(), app.app_id())]
    WrongService { app: EnterpriseApp, found: String },
}

/// Configure-EnterprisePartnerApplication.ps1: the Mailbox's partner application for `app` at
/// `url`, with the linked account and the roles the script grants.
pub async fn enterprise_partner(
    client: &reqwest::Client,
    url: &str,
    app: EnterpriseApp,
) -> Result<(PartnerApplication, PartnerMetadata), EnterpriseError> {
    let (mut p, doc) = download(client, app.name(), url).await?;
    if doc.service_name != app.app_id() {
        return Err(EnterpriseError::WrongService { app, found: doc.service_name });
    }
    p.application_type = Some(app.name().into());
    p.linked_account = Some(format!("{}Enterprise-ApplicationAccount", app.name()));
    p.roles = vec!["UserApplication".into(), "ArchiveApplication".into()];
    Ok((p, doc))
}

/// Adds `p`, replacing any partner of the same name.
pub fn upsert(list: &mut Vec<PartnerApplication>, p: PartnerApplication) {
    list.retain(|x| !x.name.eq_ignore_ascii_case(&p.name));
    list.push(p);
}

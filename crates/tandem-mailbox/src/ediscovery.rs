//! eDiscovery for the administrator (Search-Mailbox, New-MailboxSearch): a query in the AQS
//! subset over every folder of the named mailboxes (all when none), the hidden Recoverable Items
//! folders and held items among them, answered from the full-text index; hit counts per mailbox,
//! then the items; and export of the hits as `.eml` files or one mbox. Every search and export is
//! written to the audit log (who, what, when, how many) before anything is shown.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tandem_ews_proto::aqs::{self, AqsError, Plan};
use tandem_store::Store;

use crate::DataError;
use crate::data::audit::AuditEntry;
use crate::data::search::Scope;
use crate::data::{Data, Item, element_text, split_elements};

pub use crate::data::audit::AuditEntry as Audit;

/// Most items one search lists or exports.
pub const MAX_RESULTS: usize = 100_000;

/// Why a search or export failed.
#[derive(Debug, thiserror::Error)]
pub enum EdiscoveryError {
    #[error("the query is not valid: {0}")]
    Query(#[from] AqsError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What to search.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub query: String,
    /// Mailbox names; all mailboxes when empty.
    pub mailboxes: Vec<String>,
    /// Received on or after (Unix seconds).
    pub start: Option<i64>,
    /// Received before (Unix seconds).
    pub end: Option<i64>,
    /// Who runs it (for the audit log).
    pub actor: String,
}

/// One item found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub mailbox: String,
    /// The folder's distinguished name (`conversationhistory`, `recoverableitemspurges`…) or
    /// display name.
    pub folder: String,
    pub item_id: String,
    pub item_class: String,
    pub subject: String,
    pub received_at: i64,
}

/// Counts per mailbox, then the items (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub counts: Vec<(String, i64)>,
    pub hits: Vec<Hit>,
}

impl Request {
    fn plan(&self) -> Result<Plan, AqsError> {
        let mut plan = aqs::plan(&self.query)?;
        if self.start.is_some() || self.end.is_some() {
            plan.narrow(self.start, self.end);
        }
        Ok(plan)
    }

    fn scope_text(&self) -> String {
        let mut s = if self.mailboxes.is_empty() { "all".to_owned() } else { self.mailboxes.join(",") };
        if let Some(st) = self.start {
            s.push_str(&format!(" from {}", tandem_ews_proto::format_datetime(st)));
        }
        if let Some(e) = self.end {
            s.push_str(&format!(" until {}", tandem_ews_proto::format_datetime(e)));
        }
        s
    }
}

async fn run(data: &Data, req: &Request, action: &str) -> Result<(Vec<(String, i64)>, Vec<Item>), EdiscoveryError> {
    let plan = req.plan()?;
    let scope = Scope::Mailboxes(&req.mailboxes);
    let counts = data.search_counts(scope, &plan).await?;
    let hits: i64 = counts.iter().map(|(_, n)| n).sum();
    data.record_audit(&AuditEntry {
        at: now(),
        actor: req.actor.clone(),
        action: action.to_owned(),
        query: req.query.clone(),
        scope: req.scope_text(),
        hits,
    })
    .await?;
    let items = data.search(scope, &plan, MAX_RESULTS).await?;
    Ok((counts, items))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Search-Mailbox -SearchQuery (estimate and results).
pub async fn search(store: &Store, req: &Request) -> Result<Report, EdiscoveryError> {
    let data = Data::new(store.clone());
    let (counts, items) = run(&data, req, "search").await?;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut hits = Vec::with_capacity(items.len());
    for i in items {
        if !names.contains_key(&i.folder_id) {
            let name = match data.folder_by_id(&i.folder_id).await? {
                Some(f) => f.distinguished.unwrap_or(f.display_name),
                None => String::new(),
            };
            names.insert(i.folder_id.clone(), name);
        }
        hits.push(Hit {
            folder: names.get(&i.folder_id).cloned().unwrap_or_default(),
            mailbox: i.mailbox,
            item_id: i.id,
            item_class: i.item_class,
            subject: i.subject,
            received_at: i.received_at,
        });
    }
    Ok(Report { counts, hits })
}

/// The newest audit entries.
pub async fn audit_log(store: &Store, limit: usize) -> Result<Vec<Audit>, DataError> {
    Data::new(store.clone()).audit_log(limit).await
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One `.eml` file per item, in a folder per mailbox.
    Eml,
    /// One mbox file per mailbox.
    Mbox,
}

/// Exports the hits of a search into `dir`; `progress(done, total)` is called as items are
/// written. Returns the number of items written.
pub async fn export(
    store: &Store,
    req: &Request,
    format: Format,
    dir: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize, EdiscoveryError> {
    let data = Data::new(store.clone());
    let (_, items) = run(&data, req, "export").await?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| EdiscoveryError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let total = items.len();
    let mut mboxes: HashMap<String, std::fs::File> = HashMap::new();
    for (n, i) in items.iter().enumerate() {
        let message = rfc822(i)?;
        match format {
            Format::Eml => {
                let sub = dir.join(safe(&i.mailbox));
                std::fs::create_dir_all(&sub).map_err(io(&sub))?;
                let path = sub.join(format!("{:05}-{}.eml", n + 1, safe(&i.id)));
                std::fs::write(&path, &message).map_err(io(&path))?;
            }
            Format::Mbox => {
                let path = dir.join(format!("{}.mbox", safe(&i.mailbox)));
                if !mboxes.contains_key(&i.mailbox) {
                    let f = std::fs::File::create(&path).map_err(io(&path))?;
                    mboxes.insert(i.mailbox.clone(), f);
                }
                if let Some(f) = mboxes.get_mut(&i.mailbox) {
                    f.write_all(&mbox_entry(i, &message)).map_err(io(&path))?;
                }
            }
        }
        progress(n + 1, total);
    }
    Ok(total)
}

/// A name safe as one path component.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// The item as an RFC 5322 message: its MIME when it has one, else built from its properties.
fn rfc822(i: &Item) -> Result<Vec<u8>, DataError> {
    if let Some(m) = i.mime.as_ref().filter(|m| !m.is_empty()) {
        return Ok(m.clone());
    }
    let stored = split_elements(&i.fields)?;
    let text = |name: &str| stored.iter().find(|(n, _)| n == name).map(|(_, x)| element_text(x)).unwrap_or_default();
    let one_line = |s: String| s.replace(['\r', '\n'], " ");
    let date = time::OffsetDateTime::from_unix_timestamp(i.received_at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
        .unwrap_or_default();
    let body = text("Body");
    let html = stored.iter().any(|(n, x)| n == "Body" && x.contains("BodyType=\"HTML\""));
    let mut out = String::new();
    out.push_str(&format!("From: {}\r\n", one_line(text("From"))));
    out.push_str(&format!("To: {}\r\n", one_line(text("ToRecipients"))));
    out.push_str(&format!("Subject: {}\r\n", one_line(i.subject.clone())));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("X-MS-Exchange-Organization-ItemClass: {}\r\n", one_line(i.item_class.clone())));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: {}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        if html { "text/html" } else { "text/plain" }
    ));
    out.push_str(&body.replace("\r\n", "\n").replace('\n', "\r\n"));
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// One mbox (mboxrd) entry: the `From ` line, the message with `From ` lines quoted, a blank line.
fn mbox_entry(i: &Item, message: &[u8]) -> Vec<u8> {
    let date = time::OffsetDateTime::from_unix_timestamp(i.received_at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
            ))
            .ok()
        })
        .unwrap_or_default();
    let mut out = format!("From MAILER-DAEMON {date}\n").into_bytes();
    let text = String::from_utf8_lossy(message);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_start_matches('>').starts_with("From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Bytes the full-text index takes on disk, where the backend can tell.
pub async fn index_bytes(store: &Store) -> Result<Option<i64>, DataError> {
    Data::new(store.clone()).search_index_bytes().await
}

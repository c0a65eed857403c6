//! The full-text index (`mbx_search`): every item's subject, body (its text, markup dropped) and
//! participants (sender; To, Cc and Bcc), reduced to words by `aqs::normalize`, written in the
//! item's own write transaction, so the index never disagrees with the items. SQLite answers from
//! FTS5, PostgreSQL from a tsvector under GIN; both take the same [`aqs::Plan`] and answer the
//! same hits (the battery runs one set of cases over both).

use sqlx::Row;
use tandem_ews_proto::aqs::{self, Branch, Plan};
use tandem_store::Backend;

use super::items::{COLUMNS, from_row};
use super::{Data, DataError, Item, Write, element_text, split_elements};

/// Which items a search looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// One folder (FindItem on a user's own folder).
    Folder(&'a str),
    /// These mailboxes, every folder of them, hidden ones too; all mailboxes when empty.
    Mailboxes(&'a [String]),
}

/// The text the index keeps for an item: (subject, body, sender, recipients), each normalized.
pub(crate) fn document(i: &Item) -> Result<[String; 4], DataError> {
    let stored = split_elements(&i.fields)?;
    let text = |names: &[&str]| {
        let mut out = String::new();
        for (n, x) in &stored {
            if names.contains(&n.as_str()) {
                out.push(' ');
                out.push_str(&element_text(x));
            }
        }
        out
    };
    let body = strip_markup(&text(&["Body", "UniqueBody"]));
    Ok([
        aqs::normalize(&i.subject),
        aqs::normalize(&body),
        aqs::normalize(&text(&["From", "Sender"])),
        aqs::normalize(&text(&["ToRecipients", "CcRecipients", "BccRecipients"])),
    ])
}

/// Text with HTML tags, comments, `<style>`/`<script>` contents and entities dropped.
fn strip_markup(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        out.push(' ');
        let tag = &rest[lt..];
        let lower = tag.get(..8).unwrap_or(tag).to_ascii_lowercase();
        let close = if lower.starts_with("<script") || lower.starts_with("<style") {
            let name = if lower.starts_with("<script") { "</script" } else { "</style" };
            tag.to_ascii_lowercase().find(name).and_then(|e| tag[e..].find('>').map(|g| e + g))
        } else if tag.starts_with("<!--") {
            tag.find("-->").map(|e| e + 2)
        } else {
            tag.find('>')
        };
        match close {
            Some(c) => rest = &tag[c + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // Entities (`&amp;`, `&#39;`) left by the HTML are separators, not words.
    let mut clean = String::with_capacity(out.len());
    let mut chars = out.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '&'
            && let Some(semi) = out[i..].find(';').filter(|s| *s <= 10)
            && out[i + 1..i + semi].chars().all(|c| c.is_ascii_alphanumeric() || c == '#')
        {
            clean.push(' ');
            while chars.peek().is_some_and(|(j, _)| *j <= i + semi) {
                chars.next();
            }
            continue;
        }
        clean.push(c);
    }
    clean
}

/// The meta row (in `tandem_settings`) saying the backlog pass has finished, with when.
const BACKLOG_DONE: &str = "mailbox.search_backlog_done";

enum Bind {
    Text(String),
    Int(i64),
}

/// The FROM and WHERE of one branch of a search; its binds go on after `binds`.
fn branch_clause(backend: Backend, scope: Scope<'_>, plan: &Branch, binds: &mut Vec<Bind>) -> String {
    let next = |b: Bind, binds: &mut Vec<Bind>| {
        binds.push(b);
        format!("${}", binds.len())
    };
    let mut wheres = Vec::new();
    let from = match (&plan.text, backend) {
        (None, _) => "mbx_items i".to_owned(),
        (Some(t), Backend::Sqlite) => {
            let p = next(Bind::Text(aqs::to_fts5(t)), binds);
            // CROSS JOIN keeps SQLite's join order: the index finds the few matches first,
            // instead of a walk of the folder probing the index per item.
            wheres.push(format!("mbx_search MATCH {p} AND k.doc = s.rowid AND i.id = k.item_id"));
            "mbx_search s CROSS JOIN mbx_search_keys k CROSS JOIN mbx_items i".to_owned()
        }
        (Some(t), Backend::Postgres) => {
            let p = next(Bind::Text(aqs::to_tsquery(t)), binds);
            wheres.push(format!("s.doc @@ to_tsquery('simple', {p})"));
            "mbx_search s JOIN mbx_items i ON i.id = s.item_id".to_owned()
        }
    };
    match scope {
        Scope::Folder(f) => {
            let p = next(Bind::Text(f.to_owned()), binds);
            wheres.push(format!("i.folder_id = {p}"));
        }
        Scope::Mailboxes([]) => {}
        Scope::Mailboxes(list) => {
            let ps: Vec<String> = list.iter().map(|m| next(Bind::Text(m.clone()), binds)).collect();
            wheres.push(format!("i.mailbox IN ({})", ps.join(", ")));
        }
    }
    if let Some(f) = plan.from {
        let p = next(Bind::Int(f), binds);
        wheres.push(format!("i.received_at >= {p}"));
    }
    if let Some(u) = plan.until {
        let p = next(Bind::Int(u), binds);
        wheres.push(format!("i.received_at < {p}"));
    }
    let wheres = if wheres.is_empty() { String::new() } else { format!(" WHERE {}", wheres.join(" AND ")) };
    format!("FROM {from}{wheres}")
}

/// The FROM and WHERE of a search (items as `i`), with its binds; None when the plan has no
/// branch (its ranges never meet). One branch is queried as it is, so the index drives; more
/// are the union of their item ids.
fn clause(backend: Backend, scope: Scope<'_>, plan: &Plan) -> Option<(String, Vec<Bind>)> {
    let mut binds = Vec::new();
    match plan.branches.as_slice() {
        [] => None,
        [one] => Some((branch_clause(backend, scope, one, &mut binds), binds)),
        many => {
            let parts: Vec<String> =
                many.iter().map(|b| format!("SELECT i.id {}", branch_clause(backend, scope, b, &mut binds))).collect();
            Some((format!("FROM mbx_items i WHERE i.id IN ({})", parts.join(" UNION ")), binds))
        }
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(n) => q.bind(n),
        };
    }
    q
}

impl Data {
    /// The items a plan matches in a scope, newest received first, at most `limit`.
    pub async fn search(&self, scope: Scope<'_>, plan: &Plan, limit: usize) -> Result<Vec<Item>, DataError> {
        let Some((clause, binds)) = clause(self.store.backend(), scope, plan) else {
            return Ok(Vec::new());
        };
        let cols: Vec<String> = COLUMNS.split(", ").map(|c| format!("i.{c}")).collect();
        let sql = format!(
            "SELECT {} {clause} ORDER BY i.received_at DESC, i.article DESC LIMIT {}",
            cols.join(", "),
            i64::try_from(limit).unwrap_or(i64::MAX)
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| from_row(r, true)).collect::<Result<_, _>>()?)
    }

    /// Indexes up to `batch` items the index does not hold yet — items stored before the index
    /// existed (migration 7), which a mailbox upgraded in place still has — in one transaction;
    /// returns how many it indexed (0: none is left).
    pub async fn index_backlog(&self, batch: usize) -> Result<usize, DataError> {
        let cols: Vec<String> = COLUMNS.split(", ").map(|c| format!("i.{c}")).collect();
        let missing = match self.store.backend() {
            Backend::Sqlite => "LEFT JOIN mbx_search_keys k ON k.item_id = i.id WHERE k.item_id IS NULL",
            Backend::Postgres => "LEFT JOIN mbx_search k ON k.item_id = i.id WHERE k.item_id IS NULL",
        };
        let sql = format!(
            "SELECT {} FROM mbx_items i {missing} LIMIT {}",
            cols.join(", "),
            i64::try_from(batch).unwrap_or(i64::MAX)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        let items = rows.iter().map(|r| from_row(r, true)).collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Ok(0);
        }
        let mut w = self.write().await?;
        for i in &items {
            w.index_item(i).await?;
        }
        w.commit().await?;
        Ok(items.len())
    }

    /// Whether the backlog pass has ever finished on this store (a server-wide meta row), so a
    /// normal start skips it: every item written since the index existed was indexed with it.
    pub async fn search_backlog_done(&self) -> Result<bool, DataError> {
        Ok(self.store.setting(BACKLOG_DONE).await?.is_some())
    }

    /// Records that the backlog pass found nothing left to index.
    pub async fn mark_search_backlog_done(&self) -> Result<(), DataError> {
        Ok(self.store.set_setting(BACKLOG_DONE, &tandem_store::now_unix().to_string()).await?)
    }

    /// How many items a plan matches in each mailbox of a scope, by mailbox.
    pub async fn search_counts(&self, scope: Scope<'_>, plan: &Plan) -> Result<Vec<(String, i64)>, DataError> {
        let Some((clause, binds)) = clause(self.store.backend(), scope, plan) else {
            return Ok(Vec::new());
        };
        let sql =
            format!("SELECT i.mailbox AS mailbox, COUNT(*) AS hits {clause} GROUP BY i.mailbox ORDER BY i.mailbox");
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds).fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get("mailbox")?, r.try_get("hits")?));
        }
        Ok(out)
    }

    /// Bytes the index takes on disk, where the backend can tell (SQLite's dbstat is not
    /// compiled in by default, so SQLite sums the FTS5 shadow tables' pages through `pgsize`
    /// when it can, else None).
    pub async fn search_index_bytes(&self) -> Result<Option<i64>, DataError> {
        let sql = match self.store.backend() {
            Backend::Postgres => "SELECT CAST(pg_total_relation_size('mbx_search') AS BIGINT) AS bytes",
            Backend::Sqlite => "SELECT CAST(SUM(pgsize) AS BIGINT) AS bytes FROM dbstat WHERE name LIKE 'mbx_search%'",
        };
        match sqlx::query(sql).fetch_one(self.pool()).await {
            Ok(r) => Ok(r.try_get("bytes")?),
            Err(_) => Ok(None),
        }
    }
}

impl Write<'_> {
    /// Writes (or rewrites) an item's index entry.
    pub(super) async fn index_item(&mut self, i: &Item) -> Result<(), DataError> {
        let [subject, body, sender, recipients] = document(i)?;
        let insert = match self.backend {
            Backend::Sqlite => {
                sqlx::query("INSERT INTO mbx_search_keys (item_id) VALUES ($1) ON CONFLICT (item_id) DO NOTHING")
                    .bind(&i.id)
                    .execute(&mut *self.tx)
                    .await?;
                let doc: i64 = sqlx::query("SELECT doc FROM mbx_search_keys WHERE item_id = $1")
                    .bind(&i.id)
                    .fetch_one(&mut *self.tx)
                    .await?
                    .try_get("doc")?;
                sqlx::query("DELETE FROM mbx_search WHERE rowid = $1").bind(doc).execute(&mut *self.tx).await?;
                sqlx::query(
                    "INSERT INTO mbx_search (rowid, subject, body, sender, recipients) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(doc)
            }
            Backend::Postgres => sqlx::query(
                "INSERT INTO mbx_search (item_id, doc) VALUES ($1,
                   setweight(to_tsvector('simple', $2), 'A') || setweight(to_tsvector('simple', $3), 'B') ||
                   setweight(to_tsvector('simple', $4), 'C') || setweight(to_tsvector('simple', $5), 'D'))
                 ON CONFLICT (item_id) DO UPDATE SET doc = EXCLUDED.doc",
            )
            .bind(&i.id),
        };
        // The same four columns, after each backend's key.
        insert.bind(subject).bind(body).bind(sender).bind(recipients).execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Removes an item's index entry.
    pub(super) async fn unindex_item(&mut self, id: &str) -> Result<(), DataError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query(
                    "DELETE FROM mbx_search WHERE rowid IN (SELECT doc FROM mbx_search_keys WHERE item_id = $1)",
                )
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
                sqlx::query("DELETE FROM mbx_search_keys WHERE item_id = $1").bind(id).execute(&mut *self.tx).await?;
            }
            Backend::Postgres => {
                sqlx::query("DELETE FROM mbx_search WHERE item_id = $1").bind(id).execute(&mut *self.tx).await?;
            }
        }
        Ok(())
    }

    /// Removes the index entries of every item in a folder (before the items go).
    pub(super) async fn unindex_folder(&mut self, folder_id: &str) -> Result<(), DataError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query(
                    "DELETE FROM mbx_search WHERE rowid IN (SELECT k.doc FROM mbx_search_keys k
                       JOIN mbx_items i ON i.id = k.item_id WHERE i.folder_id = $1)",
                )
                .bind(folder_id)
                .execute(&mut *self.tx)
                .await?;
                sqlx::query(
                    "DELETE FROM mbx_search_keys WHERE item_id IN (SELECT id FROM mbx_items WHERE folder_id = $1)",
                )
                .bind(folder_id)
                .execute(&mut *self.tx)
                .await?;
            }
            Backend::Postgres => {
                sqlx::query("DELETE FROM mbx_search WHERE item_id IN (SELECT id FROM mbx_items WHERE folder_id = $1)")
                    .bind(folder_id)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::strip_markup;

    #[test]
    fn markup_is_dropped_and_text_kept() {
        let t =
            strip_markup("<html><style>p{x}</style><p>Hi &amp; <b>kiwi</b></p><!-- c --><script>evil()</script>end");
        assert_eq!(tandem_ews_proto::aqs::normalize(&t), "hi kiwi end");
    }
}

//! Items (`mbx_items`) with their typed properties, MAPI extended properties and MIME.
//!
//! Items keep a few columns that queries sort and page on (received time, start/end, article
//! number — the IMAP UID DavMail uses) behind indexes that start with the folder, so a page costs
//! the same in a folder of 1k or 100k items. Folder counts are maintained in the same
//! transaction as every item write. Typed properties are stored as the client sent them (XML
//! elements in the EWS types namespace), so nothing a client set is dropped; the helpers at the
//! end read that stored form back.

use sqlx::Row;
use tandem_ews_proto::types::ExtendedField;

use super::changes::ObjectKind;
use super::{ChangeKind, Data, DataError, Write};

/// An item row. `fields` and `ext` hold rendered XML elements in the types namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub id: String,
    pub mailbox: String,
    pub folder_id: String,
    pub element: String,
    pub item_class: String,
    pub subject: String,
    pub is_read: bool,
    pub received_at: i64,
    pub created_at: i64,
    pub modified_at: i64,
    pub sent_at: Option<i64>,
    pub size: i64,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub article: i64,
    pub change_number: i64,
    pub fields: String,
    pub ext: String,
    pub mime: Option<Vec<u8>>,
}

/// Columns without the large ones (fields, ext, mime), for id-only pages.
pub(crate) const LIGHT_COLUMNS: &str = "id, mailbox, folder_id, element, item_class, subject, is_read, received_at, created_at, modified_at, sent_at, size, start_at, end_at, article, change_number";
pub(crate) const COLUMNS: &str = "id, mailbox, folder_id, element, item_class, subject, is_read, received_at, created_at, modified_at, sent_at, size, start_at, end_at, article, change_number, fields, ext, mime";

pub(crate) fn from_row(r: &sqlx::any::AnyRow, full: bool) -> Result<Item, sqlx::Error> {
    Ok(Item {
        id: r.try_get("id")?,
        mailbox: r.try_get("mailbox")?,
        folder_id: r.try_get("folder_id")?,
        element: r.try_get("element")?,
        item_class: r.try_get("item_class")?,
        subject: r.try_get("subject")?,
        is_read: r.try_get::<i64, _>("is_read")? != 0,
        received_at: r.try_get("received_at")?,
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
        sent_at: r.try_get("sent_at")?,
        size: r.try_get("size")?,
        start_at: r.try_get("start_at")?,
        end_at: r.try_get("end_at")?,
        article: r.try_get("article")?,
        change_number: r.try_get("change_number")?,
        fields: if full { r.try_get("fields")? } else { String::new() },
        ext: if full { r.try_get("ext")? } else { String::new() },
        mime: if full { r.try_get("mime")? } else { None },
    })
}

/// The indexed columns a page of a folder can be sorted on (each ties on the article number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemOrder {
    Received,
    Created,
    Modified,
    Start,
    End,
    Size,
    Subject,
    IsRead,
    Article,
}

impl ItemOrder {
    fn column(self) -> &'static str {
        match self {
            ItemOrder::Received => "received_at",
            ItemOrder::Created => "created_at",
            ItemOrder::Modified => "modified_at",
            ItemOrder::Start => "start_at",
            ItemOrder::End => "end_at",
            ItemOrder::Size => "size",
            ItemOrder::Subject => "subject",
            ItemOrder::IsRead => "is_read",
            ItemOrder::Article => "article",
        }
    }
}

/// A calendar item's times and stored properties, for free/busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CalendarEntry {
    pub id: String,
    pub subject: String,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub fields: String,
}

impl Data {
    pub async fn item(&self, id: &str) -> Result<Option<Item>, DataError> {
        let sql = format!("SELECT {COLUMNS} FROM mbx_items WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(|r| from_row(r, true)).transpose()?)
    }

    /// One page of a folder in an indexed order: `limit` items after skipping `offset`. Without
    /// `full` the large columns (fields, ext, MIME) stay empty.
    pub async fn items_page(
        &self,
        folder_id: &str,
        order: ItemOrder,
        ascending: bool,
        full: bool,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Item>, DataError> {
        let cols = if full { COLUMNS } else { LIGHT_COLUMNS };
        let col = order.column();
        let dir = if ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {cols} FROM mbx_items WHERE folder_id = $1 ORDER BY {col} {dir}, article {dir} LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folder_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| from_row(r, full)).collect::<Result<_, _>>()?)
    }

    /// Every item of a folder, in no particular order.
    pub async fn items_in(&self, folder_id: &str) -> Result<Vec<Item>, DataError> {
        let sql = format!("SELECT {COLUMNS} FROM mbx_items WHERE folder_id = $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(folder_id).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| from_row(r, true)).collect::<Result<_, _>>()?)
    }

    /// The items of a folder that overlap `[start, end)`, by start (a calendar view).
    pub async fn items_overlapping(&self, folder_id: &str, start: i64, end: i64) -> Result<Vec<Item>, DataError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM mbx_items WHERE folder_id = $1 AND start_at < $2 AND end_at > $3 ORDER BY start_at ASC"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(folder_id).bind(end).bind(start).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| from_row(r, true)).collect::<Result<_, _>>()?)
    }

    /// The calendar items of a folder that may be busy in `[start, end)`: those that overlap it
    /// and every recurring one starting before its end (their occurrences are expanded later).
    pub async fn calendar_entries(
        &self,
        folder_id: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<CalendarEntry>, DataError> {
        let rows = sqlx::query(
            "SELECT id, subject, start_at, end_at, fields FROM mbx_items
             WHERE folder_id = $1 AND start_at < $2 AND (end_at > $3 OR fields LIKE '%<t:Recurrence>%')
             ORDER BY start_at",
        )
        .bind(folder_id)
        .bind(end)
        .bind(start)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(CalendarEntry {
                id: r.try_get("id")?,
                subject: r.try_get("subject")?,
                start_at: r.try_get("start_at")?,
                end_at: r.try_get("end_at")?,
                fields: r.try_get("fields")?,
            });
        }
        Ok(out)
    }
}

type RowQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds every column of an item, in table order, as `$1`…`$19` (insert and update alike).
fn bind_row<'q>(q: RowQuery<'q>, i: &'q Item) -> RowQuery<'q> {
    q.bind(&i.id)
        .bind(&i.mailbox)
        .bind(&i.folder_id)
        .bind(&i.element)
        .bind(&i.item_class)
        .bind(&i.subject)
        .bind(i64::from(i.is_read))
        .bind(i.received_at)
        .bind(i.created_at)
        .bind(i.modified_at)
        .bind(i.sent_at)
        .bind(i.size)
        .bind(i.start_at)
        .bind(i.end_at)
        .bind(i.article)
        .bind(i.change_number)
        .bind(&i.fields)
        .bind(&i.ext)
        .bind(i.mime.clone())
}

impl Write<'_> {
    /// An item as this transaction sees it, held for it: on PostgreSQL the row is locked until
    /// commit (`FOR UPDATE`), on SQLite the writer turn already excludes every other writer. A
    /// read-modify-write of one item (a group's member list) reads it here, so two edits at once
    /// each build on the other's instead of one being lost.
    pub async fn item_for_update(&mut self, id: &str) -> Result<Option<Item>, DataError> {
        let lock = match self.backend {
            tandem_store::Backend::Postgres => " FOR UPDATE",
            tandem_store::Backend::Sqlite => "",
        };
        let sql = format!("SELECT {COLUMNS} FROM mbx_items WHERE id = $1{lock}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.tx).await?;
        Ok(row.as_ref().map(|r| from_row(r, true)).transpose()?)
    }

    /// Inserts an item (its folder's counts follow).
    pub async fn insert_item(&mut self, i: &Item) -> Result<(), DataError> {
        let insert = sqlx::query(
            "INSERT INTO mbx_items (id, mailbox, folder_id, element, item_class, subject, is_read, received_at, created_at,
               modified_at, sent_at, size, start_at, end_at, article, change_number, fields, ext, mime)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        );
        bind_row(insert, i).execute(&mut *self.tx).await?;
        self.index_item(i).await?;
        self.log_change(&i.mailbox, i.change_number, ChangeKind::Created, ObjectKind::Item, &i.id, &i.folder_id, None)
            .await?;
        self.adjust_counts(&i.folder_id, 1, i64::from(!i.is_read), i.change_number).await
    }

    /// Rewrites an item's row in place; `old_folder` names the folder it left when it moved.
    pub async fn update_item(&mut self, i: &Item, old_folder: Option<&str>) -> Result<(), DataError> {
        let (kind, old) = match old_folder.filter(|f| *f != i.folder_id) {
            Some(old) => (ChangeKind::Moved, Some(old)),
            None => (ChangeKind::Modified, None),
        };
        self.index_item(i).await?;
        self.rewrite_item(i, kind, old).await
    }

    /// Rewrites an item whose only change is its read flag (logged as such for sync).
    pub async fn update_item_read_flag(&mut self, i: &Item) -> Result<(), DataError> {
        self.rewrite_item(i, ChangeKind::ReadFlag, None).await
    }

    async fn rewrite_item(&mut self, i: &Item, kind: ChangeKind, old: Option<&str>) -> Result<(), DataError> {
        self.log_change(&i.mailbox, i.change_number, kind, ObjectKind::Item, &i.id, &i.folder_id, old).await?;
        let update = sqlx::query(
            "UPDATE mbx_items SET mailbox = $2, folder_id = $3, element = $4, item_class = $5, subject = $6, is_read = $7,
               received_at = $8, created_at = $9, modified_at = $10, sent_at = $11, size = $12, start_at = $13,
               end_at = $14, article = $15, change_number = $16, fields = $17, ext = $18, mime = $19 WHERE id = $1",
        );
        bind_row(update, i).execute(&mut *self.tx).await?;
        Ok(())
    }

    pub async fn delete_item(&mut self, i: &Item, change: i64) -> Result<(), DataError> {
        self.unindex_item(&i.id).await?;
        sqlx::query("DELETE FROM mbx_items WHERE id = $1").bind(&i.id).execute(&mut *self.tx).await?;
        sqlx::query("DELETE FROM mbx_attachments WHERE item_id = $1").bind(&i.id).execute(&mut *self.tx).await?;
        self.log_change(&i.mailbox, change, ChangeKind::Deleted, ObjectKind::Item, &i.id, &i.folder_id, None).await?;
        self.adjust_counts(&i.folder_id, -1, -i64::from(!i.is_read), change).await
    }
}

/// Splits stored XML elements (`<t:A>…</t:A><t:B/>…`) into (local name, element text).
pub(crate) fn split_elements(xml: &str) -> Result<Vec<(String, String)>, DataError> {
    if xml.is_empty() {
        return Ok(Vec::new());
    }
    let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default())
        .map_err(|e| DataError::Corrupt(e.to_string()))?;
    Ok(tandem_xml::children(doc.root_element())
        .map(|c| (c.tag_name().name().to_owned(), wrapped[c.range()].to_owned()))
        .collect())
}

/// The text of one stored element (all descendant text joined with spaces).
pub(crate) fn element_text(xml: &str) -> String {
    let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
    match tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()) {
        Ok(doc) => doc
            .root_element()
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => String::new(),
    }
}

/// Stored extended properties: (field, values).
pub(crate) fn split_extended(xml: &str) -> Result<Vec<(ExtendedField, Vec<String>)>, DataError> {
    if xml.is_empty() {
        return Ok(Vec::new());
    }
    let t = tandem_ews_proto::ns::TYPES;
    let wrapped = format!("<r xmlns:t=\"{t}\">{xml}</r>");
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default())
        .map_err(|e| DataError::Corrupt(e.to_string()))?;
    let mut out = Vec::new();
    for ep in tandem_xml::children(doc.root_element()) {
        let uri = tandem_xml::child(ep, t, "ExtendedFieldURI")
            .ok_or_else(|| DataError::Corrupt("extended property".into()))?;
        let field = ExtendedField::parse(uri).map_err(|e| DataError::Corrupt(e.message))?;
        let values = match tandem_xml::child(ep, t, "Values") {
            Some(vs) => tandem_xml::children(vs).map(tandem_xml::text).collect(),
            None => vec![tandem_xml::child(ep, t, "Value").map(tandem_xml::text).unwrap_or_default()],
        };
        out.push((field, values));
    }
    Ok(out)
}

/// Renders extended properties for storage.
pub(crate) fn join_extended(props: &[(ExtendedField, Vec<String>)]) -> String {
    props
        .iter()
        .map(|(f, v)| {
            tandem_ews_proto::render::extended_property(f, v, tandem_ews_proto::render::is_multi(&f.property_type))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_stored_elements() {
        let x = "<t:Subject>a &amp; b</t:Subject><t:Body BodyType=\"Text\">x</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>b@x</t:EmailAddress></t:Mailbox></t:ToRecipients>";
        let parts = split_elements(x).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], ("Subject".to_owned(), "<t:Subject>a &amp; b</t:Subject>".to_owned()));
        assert_eq!(element_text(&parts[2].1), "b@x");
    }
}

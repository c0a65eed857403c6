//! Attachments of items (`mbx_attachments`): written in the transaction of their item's write,
//! read with or without their content. A file attachment's content is its bytes; an item
//! attachment's is the embedded item's properties as XML (`item_element` names it), and the
//! attachments of an embedded item are rows of the same root item whose `parent_attachment_id`
//! is the item attachment (nesting is bounded by the parser, `tandem_ews_proto::ops::attachments`).

use sqlx::Row;
use tandem_ews_proto::ids::IdKind;

use super::{Data, DataError, Write, new_id};

/// A stored attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    pub id: String,
    pub item_id: String,
    pub mailbox: String,
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub is_inline: bool,
    pub size: i64,
    pub modified_at: i64,
    pub content: Vec<u8>,
    /// An item attachment: the embedded item's element (`Message`…); None: a file attachment.
    pub item_element: Option<String>,
    /// The item attachment whose embedded item this is attached to; None: the root item's own.
    pub parent_attachment_id: Option<String>,
}

const COLUMNS: &str = "id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, item_element, parent_attachment_id";
const COLUMNS_WITH_CONTENT: &str = "id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, item_element, parent_attachment_id, content";

fn from_row(r: &sqlx::any::AnyRow, content: bool) -> Result<Attachment, sqlx::Error> {
    Ok(Attachment {
        id: r.try_get("id")?,
        item_id: r.try_get("item_id")?,
        mailbox: r.try_get("mailbox")?,
        name: r.try_get("name")?,
        content_type: r.try_get("content_type")?,
        content_id: r.try_get("content_id")?,
        is_inline: r.try_get::<i64, _>("is_inline")? != 0,
        size: r.try_get("size")?,
        modified_at: r.try_get("modified_at")?,
        content: if content { r.try_get("content")? } else { Vec::new() },
        item_element: r.try_get("item_element")?,
        parent_attachment_id: r.try_get("parent_attachment_id")?,
    })
}

impl Data {
    /// An item's own attachments (without content unless asked), oldest first; not those of
    /// the items attached to it.
    pub async fn attachments_of(&self, item_id: &str, content: bool) -> Result<Vec<Attachment>, DataError> {
        let cols = if content { COLUMNS_WITH_CONTENT } else { COLUMNS };
        let sql = format!(
            "SELECT {cols} FROM mbx_attachments WHERE item_id = $1 AND parent_attachment_id IS NULL ORDER BY modified_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(item_id).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| from_row(r, content)).collect::<Result<_, _>>()?)
    }

    /// The attachments of the item embedded in the item attachment `attachment_id`.
    pub async fn attachments_within(&self, attachment_id: &str, content: bool) -> Result<Vec<Attachment>, DataError> {
        let cols = if content { COLUMNS_WITH_CONTENT } else { COLUMNS };
        let sql =
            format!("SELECT {cols} FROM mbx_attachments WHERE parent_attachment_id = $1 ORDER BY modified_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(attachment_id).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| from_row(r, content)).collect::<Result<_, _>>()?)
    }

    /// One attachment with its content.
    pub async fn attachment(&self, id: &str) -> Result<Option<Attachment>, DataError> {
        let sql = format!("SELECT {COLUMNS_WITH_CONTENT} FROM mbx_attachments WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(|r| from_row(r, true)).transpose()?)
    }
}

impl Write<'_> {
    pub async fn insert_attachment(&mut self, a: &Attachment) -> Result<(), DataError> {
        sqlx::query(
            "INSERT INTO mbx_attachments (id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content, item_element, parent_attachment_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&a.id)
        .bind(&a.item_id)
        .bind(&a.mailbox)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(a.content_id.clone())
        .bind(i64::from(a.is_inline))
        .bind(a.size)
        .bind(a.modified_at)
        .bind(a.content.clone())
        .bind(a.item_element.clone())
        .bind(a.parent_attachment_id.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Copies an item's attachments, embedded items' attachments included, to another item
    /// (deliveries, CopyItem); each copy gets a new id and nested ones follow their holder's.
    pub async fn copy_attachments(
        &mut self,
        from_item: &str,
        to_item: &str,
        to_mailbox: &str,
    ) -> Result<(), DataError> {
        let sql = format!("SELECT {COLUMNS_WITH_CONTENT} FROM mbx_attachments WHERE item_id = $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from_item).fetch_all(&mut *self.tx).await?;
        let olds: Vec<Attachment> = rows.iter().map(|r| from_row(r, true)).collect::<Result<_, _>>()?;
        let renamed: std::collections::HashMap<String, String> =
            olds.iter().map(|a| (a.id.clone(), new_id(IdKind::Attachment))).collect();
        for mut a in olds {
            a.id = renamed.get(&a.id).cloned().unwrap_or_else(|| new_id(IdKind::Attachment));
            a.parent_attachment_id = a.parent_attachment_id.and_then(|p| renamed.get(&p).cloned());
            a.item_id = to_item.to_owned();
            a.mailbox = to_mailbox.to_owned();
            self.insert_attachment(&a).await?;
        }
        Ok(())
    }

    /// Removes an attachment and, for an item attachment, everything attached to its item.
    /// Returns the ids removed.
    pub async fn delete_attachment(&mut self, id: &str) -> Result<Vec<String>, DataError> {
        let mut gone = vec![id.to_owned()];
        let mut next = 0;
        while next < gone.len() {
            let rows = sqlx::query("SELECT id FROM mbx_attachments WHERE parent_attachment_id = $1")
                .bind(&gone[next])
                .fetch_all(&mut *self.tx)
                .await?;
            for r in rows {
                gone.push(r.try_get("id")?);
            }
            next += 1;
        }
        for g in &gone {
            sqlx::query("DELETE FROM mbx_attachments WHERE id = $1").bind(g).execute(&mut *self.tx).await?;
        }
        Ok(gone)
    }

    /// Removes every attachment of an item.
    pub async fn delete_attachments_of(&mut self, item_id: &str) -> Result<(), DataError> {
        sqlx::query("DELETE FROM mbx_attachments WHERE item_id = $1").bind(item_id).execute(&mut *self.tx).await?;
        Ok(())
    }
}

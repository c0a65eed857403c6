//! File attachments of items (`mbx_attachments`): written in the transaction of their item's
//! write, read with or without their content.

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
}

const COLUMNS: &str = "id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at";
const COLUMNS_WITH_CONTENT: &str =
    "id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content";

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
    })
}

impl Data {
    /// An item's attachments (without content unless asked), oldest first.
    pub async fn attachments_of(&self, item_id: &str, content: bool) -> Result<Vec<Attachment>, DataError> {
        let cols = if content { COLUMNS_WITH_CONTENT } else { COLUMNS };
        let sql = format!("SELECT {cols} FROM mbx_attachments WHERE item_id = $1 ORDER BY modified_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(item_id).fetch_all(self.pool()).await?;
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
            "INSERT INTO mbx_attachments (id, item_id, mailbox, name, content_type, content_id, is_inline, size, modified_at, content)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Copies an item's attachments to another item (deliveries, CopyItem).
    pub async fn copy_attachments(
        &mut self,
        from_item: &str,
        to_item: &str,
        to_mailbox: &str,
    ) -> Result<(), DataError> {
        let sql = format!("SELECT {COLUMNS_WITH_CONTENT} FROM mbx_attachments WHERE item_id = $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from_item).fetch_all(&mut *self.tx).await?;
        for r in rows {
            let mut a = from_row(&r, true)?;
            a.id = new_id(IdKind::Attachment);
            a.item_id = to_item.to_owned();
            a.mailbox = to_mailbox.to_owned();
            self.insert_attachment(&a).await?;
        }
        Ok(())
    }

    pub async fn delete_attachment(&mut self, id: &str) -> Result<(), DataError> {
        sqlx::query("DELETE FROM mbx_attachments WHERE id = $1").bind(id).execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Removes every attachment of an item.
    pub async fn delete_attachments_of(&mut self, item_id: &str) -> Result<(), DataError> {
        sqlx::query("DELETE FROM mbx_attachments WHERE item_id = $1").bind(item_id).execute(&mut *self.tx).await?;
        Ok(())
    }
}

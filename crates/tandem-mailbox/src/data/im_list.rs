//! The Unified Contact Store's reads (`mbx_items` of the two hidden contact folders, Quick
//! Contacts and IM Contacts List): the contacts and the group items of a user's IM list, each
//! read bounded, and the contact count a write checks the cap against inside its transaction.
//! The list's writes are ordinary item writes ([`Write::insert_item`], [`Write::update_item`],
//! [`Write::delete_item`]), so FindItem, GetItem, sync and notifications see them.

use super::items::{COLUMNS, from_row};
use super::{Data, DataError, Item, Write};

impl Data {
    /// The items of one element (`Contact`, `DistributionList`) in the two IM list folders, oldest
    /// first, at most `limit`.
    pub async fn im_list_items(
        &self,
        quick: &str,
        list: &str,
        element: &str,
        limit: usize,
    ) -> Result<Vec<Item>, DataError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM mbx_items WHERE (folder_id = $1 OR folder_id = $2) AND element = $3
             ORDER BY article ASC LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(quick)
            .bind(list)
            .bind(element)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| from_row(r, true)).collect::<Result<_, _>>()?)
    }
}

impl Write<'_> {
    /// How many contact items the two IM list folders hold, read inside this write so the cap
    /// check and the insert it guards commit together.
    pub async fn im_contact_count(&mut self, quick: &str, list: &str) -> Result<i64, DataError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM mbx_items WHERE (folder_id = $1 OR folder_id = $2) AND element = 'Contact'",
        )
        .bind(quick)
        .bind(list)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(sqlx::Row::try_get::<i64, _>(&row, "n")?)
    }
}

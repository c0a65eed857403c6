//! User photos (`mbx_user_photos`): each mailbox's photo, resized once at upload into the sizes
//! GetUserPhoto serves, as one row per size. A mailbox has at most two photos: the current one
//! (`Current`, served to everyone) and one uploaded with `Set-UserPhoto -Preview` (`Preview`,
//! served only to the owner until `-Save`). Every size of a photo shares one ETag. Admin
//! commands write these rows while the role runs, so the functions take the store itself.

use sqlx::Row;
use tandem_store::Store;

use super::DataError;

/// Which of a mailbox's photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoKind {
    Current,
    Preview,
}

impl PhotoKind {
    fn key(self) -> &'static str {
        match self {
            PhotoKind::Current => "current",
            PhotoKind::Preview => "preview",
        }
    }
}

/// One stored size of a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhoto {
    /// Width and height in pixels.
    pub pixels: u32,
    pub etag: String,
    pub changed_at: i64,
    /// JPEG bytes (empty when only the tag was asked for).
    pub content: Vec<u8>,
}

/// Replaces a mailbox's photo of `kind` with `sizes` (pixels, JPEG), all under `etag`, in one
/// transaction: a reader sees the old photo or the new one, never a mix.
pub(crate) async fn put_photo(
    store: &Store,
    mailbox: &str,
    kind: PhotoKind,
    etag: &str,
    sizes: &[(u32, Vec<u8>)],
) -> Result<(), DataError> {
    let now = tandem_store::now_unix();
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM mbx_user_photos WHERE mailbox = $1 AND kind = $2")
        .bind(mailbox)
        .bind(kind.key())
        .execute(&mut *tx)
        .await?;
    for (pixels, content) in sizes {
        sqlx::query(
            "INSERT INTO mbx_user_photos (mailbox, kind, pixels, etag, changed_at, content)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(mailbox)
        .bind(kind.key())
        .bind(i64::from(*pixels))
        .bind(etag)
        .bind(now)
        .bind(content.clone())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await.map_err(tandem_store::StoreError::from)?;
    Ok(())
}

/// The size of a photo to serve for a request of `pixels`: the stored size itself, or, when the
/// original was smaller (sizes are never upscaled), the largest stored one; with `content` false
/// only its tag is read.
pub(crate) async fn photo(
    store: &Store,
    mailbox: &str,
    kind: PhotoKind,
    pixels: u32,
    content: bool,
) -> Result<Option<StoredPhoto>, DataError> {
    let cols = if content { "pixels, etag, changed_at, content" } else { "pixels, etag, changed_at" };
    // The wanted size or the largest below it; a photo whose every size is above the request
    // (none are: 48 is the smallest kept) would fall back to its smallest.
    let sql = format!(
        "SELECT {cols} FROM mbx_user_photos WHERE mailbox = $1 AND kind = $2
         ORDER BY CASE WHEN pixels <= $3 THEN 0 ELSE 1 END, CASE WHEN pixels <= $3 THEN -pixels ELSE pixels END
         LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(mailbox)
        .bind(kind.key())
        .bind(i64::from(pixels))
        .fetch_optional(store.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    let stored_pixels: i64 = r.try_get("pixels")?;
    Ok(Some(StoredPhoto {
        pixels: u32::try_from(stored_pixels).map_err(|_| DataError::Corrupt(format!("photo size {stored_pixels}")))?,
        etag: r.try_get("etag")?,
        changed_at: r.try_get("changed_at")?,
        content: if content { r.try_get("content")? } else { Vec::new() },
    }))
}

/// The sizes stored for a mailbox's photo of `kind`, smallest first.
pub(crate) async fn photo_sizes(store: &Store, mailbox: &str, kind: PhotoKind) -> Result<Vec<u32>, DataError> {
    let rows = sqlx::query("SELECT pixels FROM mbx_user_photos WHERE mailbox = $1 AND kind = $2 ORDER BY pixels")
        .bind(mailbox)
        .bind(kind.key())
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            let p: i64 = r.try_get("pixels")?;
            u32::try_from(p).map_err(|_| DataError::Corrupt(format!("photo size {p}")))
        })
        .collect()
}

/// Makes the preview the current photo (Set-UserPhoto -Save), in one transaction; false when
/// there is no preview.
pub(crate) async fn save_preview(store: &Store, mailbox: &str) -> Result<bool, DataError> {
    let mut tx = store.begin_write().await?;
    let has = sqlx::query("SELECT 1 AS one FROM mbx_user_photos WHERE mailbox = $1 AND kind = 'preview' LIMIT 1")
        .bind(mailbox)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !has {
        return Ok(false);
    }
    sqlx::query("DELETE FROM mbx_user_photos WHERE mailbox = $1 AND kind = 'current'")
        .bind(mailbox)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE mbx_user_photos SET kind = 'current', changed_at = $2 WHERE mailbox = $1 AND kind = 'preview'")
        .bind(mailbox)
        .bind(tandem_store::now_unix())
        .execute(&mut *tx)
        .await?;
    tx.commit().await.map_err(tandem_store::StoreError::from)?;
    Ok(true)
}

/// Removes a mailbox's photo of `kind` (Remove-UserPhoto, Set-UserPhoto -Cancel); false when
/// there was none.
pub(crate) async fn remove_photo(store: &Store, mailbox: &str, kind: PhotoKind) -> Result<bool, DataError> {
    let done = sqlx::query("DELETE FROM mbx_user_photos WHERE mailbox = $1 AND kind = $2")
        .bind(mailbox)
        .bind(kind.key())
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

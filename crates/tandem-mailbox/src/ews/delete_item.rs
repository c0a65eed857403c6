//! DeleteItem: HardDelete removes; SoftDelete moves to Recoverable Items\Deletions;
//! MoveToDeletedItems moves to Deleted Items. A meeting its organizer deletes with
//! SendMeetingCancellations tells its attendees first (`meetings::cancel`). Under litigation
//! hold (`holds`) a soft or hard delete, from any folder, moves the item to Recoverable
//! Items\Purges instead, and an item there cannot be deleted by the user.

use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::delete_item::Request;
use tandem_ews_proto::types::FolderRef;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::delete_folder::target;
use super::messages::record;
use super::move_copy_item::move_to;
use super::{Ctx, EwsError, fail};

/// Where held deletions go.
const PURGES: &str = "recoverableitemspurges";

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("DeleteItem");
    for r in req.items {
        let result = match r {
            Ok(r) => delete(ctx, &r.id, req.delete_type, req.send_cancellations.as_deref()).await,
            Err(e) => Err(EwsError::Ews(e)),
        };
        record(&mut out, result.map(|()| String::new()), "")?;
    }
    Ok(out.finish())
}

async fn delete(ctx: &Ctx<'_>, id: &str, how: DeleteType, cancellations: Option<&str>) -> Result<(), EwsError> {
    let item = ctx.item(id).await?;
    if matches!(cancellations, Some("SendOnlyToAll" | "SendToAllAndSaveCopy")) {
        super::meetings::cancel(ctx, &item).await?;
    }
    let held = ctx.s.data.holds(ctx.mailbox()).await?.litigation_hold_enabled;
    let target = match target(how) {
        _ if held && how != DeleteType::MoveToDeletedItems => {
            let purges = ctx.folder(&FolderRef::Distinguished { name: PURGES.to_owned(), mailbox: None }).await?;
            if item.folder_id == purges.id {
                return Err(fail(
                    ResponseCode::ErrorAccessDenied,
                    "The mailbox is on litigation hold; this item is kept.",
                ));
            }
            Some(PURGES)
        }
        other => other,
    };
    match target {
        Some(name) => {
            let to = ctx.folder(&FolderRef::Distinguished { name: name.to_owned(), mailbox: None }).await?;
            move_to(ctx, &item, &to, false).await?;
        }
        None => {
            let mut w = ctx.s.data.write().await?;
            let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
            w.delete_item(&item, change).await?;
            w.commit().await?;
        }
    }
    Ok(())
}

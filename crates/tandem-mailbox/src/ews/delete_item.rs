//! DeleteItem: SoftDelete moves to Recoverable Items\Deletions (where the user still sees it);
//! HardDelete, or any delete of an item already in Recoverable Items, removes it — except under
//! litigation hold (`holds`), where it moves to Recoverable Items\Purges, hidden from the user,
//! and an item there cannot be deleted; MoveToDeletedItems moves to Deleted Items. A meeting its
//! organizer deletes with SendMeetingCancellations tells its attendees first (`meetings::cancel`).

use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::delete_item::Request;
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::messages::record;
use super::move_copy_item::move_to;
use super::{Ctx, EwsError, PURGES, fail};
use crate::data::retention::RECOVERABLE;

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
    // A delegate with Editor deletes (and cancels) the owner's item as the owner.
    match ctx.delegated_item_owner(id).await? {
        Some(owner) => delete_in(&ctx.acting_for(&owner), id, how, cancellations).await,
        None => delete_in(ctx, id, how, cancellations).await,
    }
}

/// DeleteItem of one item of `ctx`'s user's mailbox.
async fn delete_in(ctx: &Ctx<'_>, id: &str, how: DeleteType, cancellations: Option<&str>) -> Result<(), EwsError> {
    let item = ctx.item(id).await?;
    if matches!(cancellations, Some("SendOnlyToAll" | "SendToAllAndSaveCopy")) {
        super::meetings::cancel(ctx, &item).await?;
    }
    let from = ctx.s.data.folder_by_id(&item.folder_id).await?;
    let from = from.as_ref().and_then(|f| f.distinguished.as_deref());
    let recoverable = from.is_some_and(|d| RECOVERABLE.contains(&d));
    let target = match how {
        DeleteType::MoveToDeletedItems => Some("deleteditems"),
        DeleteType::SoftDelete if !recoverable => Some("recoverableitemsdeletions"),
        // Removed for good, unless the mailbox is on hold.
        _ if ctx.s.data.holds(ctx.mailbox()).await?.litigation_hold_enabled => {
            if from == Some(PURGES) {
                return Err(fail(
                    ResponseCode::ErrorAccessDenied,
                    "The mailbox is on litigation hold; this item is kept.",
                ));
            }
            Some(PURGES)
        }
        _ => None,
    };
    match target {
        Some(name) => {
            let to = ctx.s.data.folder_by_name(ctx.mailbox(), name).await?.ok_or_else(|| {
                fail(ResponseCode::ErrorFolderNotFound, "The target folder could not be found in the store.")
            })?;
            move_to(ctx, &item, &to, false).await?;
        }
        None => {
            let mut w = ctx.s.data.write().await?;
            let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
            w.delete_item(&item, change).await?;
            w.commit().await?;
        }
    }
    // The organizer's online meeting leaves the calendar: its conference goes.
    crate::online_meetings::removed(ctx.s, ctx.user, &item).await?;
    Ok(())
}

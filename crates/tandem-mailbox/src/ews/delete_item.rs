//! DeleteItem: HardDelete removes; SoftDelete moves to Recoverable Items\Deletions;
//! MoveToDeletedItems moves to Deleted Items. A meeting its organizer deletes with
//! SendMeetingCancellations tells its attendees first (`meetings::cancel`).

use tandem_ews_proto::ResponseMessages;
use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::delete_item::Request;
use tandem_ews_proto::types::FolderRef;

use super::delete_folder::target;
use super::messages::record;
use super::move_copy_item::move_to;
use super::{Ctx, EwsError};

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
    match target(how) {
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

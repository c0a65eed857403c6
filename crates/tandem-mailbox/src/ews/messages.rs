//! What the per-message handlers share: adding one outcome to a `ResponseMessages` (an EWS error
//! becomes that message's response code, a server failure fails the whole request) and the
//! folder-id element that the folder writes answer with.

use tandem_ews_proto::{ResponseMessages, ids};

use super::EwsError;

/// Adds one response message: a success with `result`'s XML, or the EWS error with `empty` as
/// its body; any other failure ends the request.
pub(crate) fn record(
    out: &mut ResponseMessages,
    result: Result<String, EwsError>,
    empty: &str,
) -> Result<(), EwsError> {
    match result {
        Ok(xml) => {
            out.success(&xml);
        }
        Err(EwsError::Ews(e)) => {
            out.error(e.code, &e.message, empty);
        }
        Err(other) => return Err(other),
    }
    Ok(())
}

/// `<m:Folders>` with one folder's id and change key, as CreateFolder, UpdateFolder and MoveFolder
/// answer.
pub(crate) fn folder_id(id: &str, change: i64, class: &str) -> String {
    let el = tandem_ews_proto::types::folder_element(class);
    format!(
        "<m:Folders><t:{el}><t:FolderId Id=\"{id}\" ChangeKey=\"{}\"/></t:{el}></m:Folders>",
        ids::change_key(change)
    )
}

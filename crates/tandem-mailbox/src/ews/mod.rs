//! Exchange Web Services at `/EWS/Exchange.asmx`: one handler per operation, mirroring
//! `tandem_ews_proto::ops`. Errors are typed here and turned into the EWS response code (per
//! response message) or a SOAP fault (for the whole request) in one place: [`handle`].

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use tandem_directory::User;
use tandem_ews_proto::ops::{self, Operation};
use tandem_ews_proto::render::{self, FolderView, ItemView};
use tandem_ews_proto::types::{ExtendedField, FolderRef, PropertyPath, Shape};
use tandem_ews_proto::{ProtoError, ResponseCode, format_datetime, ids};
use tandem_xml::soap::Envelope;

use crate::data::{self, DataError, Folder, Item};
use crate::{Call, Shared, xml_response};

mod add_delegate;
mod add_distribution_group_to_im_list;
mod add_im_contact_to_group;
mod add_im_group;
mod add_new_im_contact_to_group;
mod add_new_tel_uri_contact_to_group;
mod auto_reply;
mod convert_id;
mod create_attachment;
mod create_folder;
mod create_item;
mod create_user_configuration;
mod delete_attachment;
mod delete_folder;
mod delete_item;
mod delete_user_configuration;
mod expand_dl;
mod find_folder;
mod find_item;
mod get_attachment;
mod get_delegate;
mod get_events;
mod get_folder;
mod get_im_item_list;
mod get_im_items;
mod get_item;
mod get_mail_tips;
mod get_server_time_zones;
mod get_streaming_events;
mod get_user_availability;
mod get_user_configuration;
mod get_user_oof_settings;
pub(crate) mod get_user_photo;
pub(crate) mod im_list;
mod meetings;
pub(crate) use meetings::write_join_info_and_tell;
mod messages;
pub(crate) mod mime;
mod move_copy_folder;
mod move_copy_item;
pub(crate) mod query;
mod recurrence;
mod remove_contact_from_im_list;
mod remove_delegate;
mod remove_distribution_group_from_im_list;
mod remove_im_contact_from_group;
mod remove_im_group;
mod resolve_names;
mod send_item;
pub(crate) mod send_notification;
mod set_im_group;
mod set_im_list_migration_completed;
mod set_user_oof_settings;
mod subscribe;
#[cfg(test)]
mod subscription_tests;
pub(crate) mod subscriptions;
mod sync_folder_hierarchy;
mod sync_folder_items;
mod update_delegate;
mod update_folder;
mod update_item;
mod update_user_configuration;

/// A failure while serving one response message (or the whole request).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EwsError {
    /// The client's request is wrong in a way EWS has a response code for.
    #[error("{0}")]
    Ews(#[from] ProtoError),
    /// The server failed.
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("directory: {0}")]
    Directory(#[from] tandem_directory::DirectoryError),
}

impl EwsError {
    /// The response code and text for a response message.
    pub fn code(&self) -> (ResponseCode, String) {
        match self {
            EwsError::Ews(e) => (e.code, e.message.clone()),
            other => {
                tracing::error!(error = %other, "EWS operation failed");
                (
                    ResponseCode::ErrorInternalServerError,
                    "An internal server error occurred. The operation failed.".into(),
                )
            }
        }
    }
}

pub(crate) fn fail(code: ResponseCode, message: impl Into<String>) -> EwsError {
    EwsError::Ews(ProtoError::new(code, message))
}

/// What a handler works with: the shared state and the signed-in user.
pub(crate) struct Ctx<'a> {
    pub s: &'a Shared,
    /// The same state, for work that outlives the request (push deliveries).
    pub shared: &'a crate::AppState,
    pub user: &'a User,
    /// Who owns the subscriptions this caller makes ([`Call::owner`]).
    pub owner: String,
    /// A delegate writing in `user`'s mailbox for them ([`Ctx::acting_for`]): what it sends is
    /// from `user` and sent by the delegate, as Exchange records "on behalf of".
    pub sent_by: Option<&'a User>,
}

impl Ctx<'_> {
    /// The mailbox key: the account name.
    pub fn mailbox(&self) -> &str {
        self.user.name.as_str()
    }

    pub fn smtp(&self) -> String {
        self.user.smtp_address.to_string()
    }

    /// Who actually sends: the delegate acting for the mailbox's owner, else the user.
    pub fn sender(&self) -> &User {
        self.sent_by.unwrap_or(self.user)
    }

    /// The same caller acting in `owner`'s mailbox as their delegate: everything written goes to
    /// the owner's mailbox as the owner's (the organizer of a meeting is the owner), and what is
    /// sent names the delegate as its Sender.
    pub fn acting_for<'b>(&'b self, owner: &'b User) -> Ctx<'b> {
        Ctx { s: self.s, shared: self.shared, user: owner, owner: self.owner.clone(), sent_by: Some(self.sender()) }
    }

    /// Where a delegate may write: for a folder of another mailbox (a distinguished folder with
    /// a Mailbox, or a folder id there), its owner and the folder when the caller is a delegate
    /// with Author or Editor on it; `None` for the caller's own folders. Anything else is
    /// refused (`ErrorAccessDenied`; `ErrorNonExistentMailbox` for an unknown mailbox).
    pub async fn delegated_folder(&self, r: &FolderRef) -> Result<Option<(User, Folder)>, EwsError> {
        let (owner, folder) = match r {
            FolderRef::Distinguished { name, mailbox: Some(m) } if !m.eq_ignore_ascii_case(&self.smtp()) => {
                let owner = self.s.directory.find(m).await?.filter(|u| u.can_use_mailbox()).ok_or_else(|| {
                    fail(ResponseCode::ErrorNonExistentMailbox, format!("No mailbox with such guid or address: {m}"))
                })?;
                self.s.data.ensure_mailbox(owner.name.as_str()).await?;
                let folder = self.s.data.folder_by_name(owner.name.as_str(), name).await?.ok_or_else(|| {
                    fail(ResponseCode::ErrorFolderNotFound, "The specified folder could not be found in the store.")
                })?;
                (owner, folder)
            }
            FolderRef::Id(id) => {
                let key = ids::decode(id, ids::IdKind::Folder)?;
                let Some(folder) = self.s.data.folder_by_id(&key).await? else { return Ok(None) };
                if folder.mailbox == self.mailbox() {
                    return Ok(None);
                }
                let owner = self.s.directory.find(&folder.mailbox).await?.ok_or_else(|| {
                    fail(ResponseCode::ErrorAccessDenied, "Access is denied. Check credentials and try again.")
                })?;
                (owner, folder)
            }
            _ => return Ok(None),
        };
        let name = folder.distinguished.clone().unwrap_or_default();
        match self.delegate_level(owner.name.as_str(), &name).await?.as_str() {
            "Author" | "Editor" => Ok(Some((owner, folder))),
            _ => Err(fail(
                ResponseCode::ErrorAccessDenied,
                "Access is denied: writing here needs a delegate with Author or Editor on this folder.",
            )),
        }
    }

    /// Whose item a write names: `None` for the caller's own; the owner when the caller is a
    /// delegate with Editor on the item's folder (changing or deleting items needs Editor: this
    /// server does not record which delegate created an item, which Author would need).
    pub async fn delegated_item_owner(&self, id: &str) -> Result<Option<User>, EwsError> {
        let key = ids::decode(id, ids::IdKind::Item)?;
        let Some(item) = self.s.data.item(&key).await? else { return Ok(None) };
        if item.mailbox == self.mailbox() {
            return Ok(None);
        }
        let folder = self.s.data.folder_by_id(&item.folder_id).await?;
        let name = folder.and_then(|f| f.distinguished).unwrap_or_default();
        let denied = || fail(ResponseCode::ErrorAccessDenied, "Access is denied. Check credentials and try again.");
        if self.delegate_level(&item.mailbox, &name).await? != "Editor" {
            return Err(denied());
        }
        self.s.directory.find(&item.mailbox).await?.filter(|u| u.can_use_mailbox()).map(Some).ok_or_else(denied)
    }

    /// Finds a folder the user may use.
    pub async fn folder(&self, r: &FolderRef) -> Result<Folder, EwsError> {
        let not_found =
            || fail(ResponseCode::ErrorFolderNotFound, "The specified folder could not be found in the store.");
        match r {
            FolderRef::Id(id) => {
                let id = ids::decode(id, ids::IdKind::Folder)?;
                let f = self.s.data.folder_by_id(&id).await?.ok_or_else(not_found)?;
                if f.mailbox != self.mailbox() {
                    return Err(fail(
                        ResponseCode::ErrorAccessDenied,
                        "Access is denied. Check credentials and try again.",
                    ));
                }
                self.open_to_caller(f)
            }
            FolderRef::Distinguished { name, mailbox } => {
                if let Some(m) = mailbox
                    && !m.eq_ignore_ascii_case(&self.smtp())
                {
                    return Err(match self.s.directory.find(m).await? {
                        Some(u) if u.can_use_mailbox() => fail(
                            ResponseCode::ErrorAccessDenied,
                            "Access is denied: this operation works in the caller's own mailbox only (delegates read delegated folders, and save items into them with Author or Editor).",
                        ),
                        _ => fail(
                            ResponseCode::ErrorNonExistentMailbox,
                            format!("No mailbox with such guid or address: {m}"),
                        ),
                    });
                }
                let f = self.s.data.folder_by_name(self.mailbox(), name).await?.ok_or_else(not_found)?;
                self.open_to_caller(f)
            }
        }
    }

    /// Whether the caller is a partner application (the Front End with a server-to-server
    /// token) rather than the user.
    pub fn is_partner(&self) -> bool {
        self.owner.starts_with("partner:")
    }

    /// Whether the caller may see a folder of its mailbox: Recoverable Items\Purges, where holds
    /// and archiving keep items, is hidden from the user as Exchange hides it (only a partner
    /// application, which archives there, and eDiscovery reach it).
    pub fn may_see(&self, f: &Folder) -> bool {
        self.is_partner() || f.distinguished.as_deref() != Some(PURGES)
    }

    fn open_to_caller(&self, f: Folder) -> Result<Folder, EwsError> {
        if self.may_see(&f) { Ok(f) } else { Err(purges_denied()) }
    }

    /// Refuses an item of the caller's mailbox that lies in Purges, unless a partner asks.
    async fn item_open_to_caller(&self, item: Item) -> Result<Item, EwsError> {
        if !self.is_partner() && self.s.data.purges_id(&item.mailbox).await?.as_deref() == Some(item.folder_id.as_str())
        {
            return Err(purges_denied());
        }
        Ok(item)
    }

    /// A folder to read: the caller's own, or a distinguished folder of another mailbox on which
    /// the caller is a delegate with at least Reviewer. With `properties_only` (GetFolder), a
    /// delegate may also see the mailbox's root and top of information store, as the FolderVisible
    /// right Exchange grants with AddDelegate allows.
    pub async fn folder_for_read(&self, r: &FolderRef, properties_only: bool) -> Result<Folder, EwsError> {
        if let FolderRef::Distinguished { name, mailbox: Some(m) } = r
            && !m.eq_ignore_ascii_case(&self.smtp())
        {
            let owner = self.s.directory.find(m).await?.filter(|u| u.can_use_mailbox()).ok_or_else(|| {
                fail(ResponseCode::ErrorNonExistentMailbox, format!("No mailbox with such guid or address: {m}"))
            })?;
            let owner_mailbox = owner.name.to_string();
            let visible = properties_only
                && matches!(name.as_str(), "root" | "msgfolderroot")
                && self.is_delegate_of(&owner_mailbox).await?;
            if !visible && self.delegate_level(&owner_mailbox, name).await? == "None" {
                return Err(fail(
                    ResponseCode::ErrorAccessDenied,
                    "Access is denied: not a delegate with access to this folder.",
                ));
            }
            self.s.data.ensure_mailbox(&owner_mailbox).await?;
            return self.s.data.folder_by_name(&owner_mailbox, name).await?.ok_or_else(|| {
                fail(ResponseCode::ErrorFolderNotFound, "The specified folder could not be found in the store.")
            });
        }
        self.folder(r).await
    }

    async fn is_delegate_of(&self, owner_mailbox: &str) -> Result<bool, EwsError> {
        Ok(self.s.data.delegate(owner_mailbox, &self.smtp()).await?.is_some())
    }

    /// The caller's delegate level on a distinguished folder of another mailbox.
    async fn delegate_level(&self, owner_mailbox: &str, folder_name: &str) -> Result<String, EwsError> {
        if !tandem_ews_proto::ops::delegates::FOLDERS.iter().any(|(f, _)| *f == folder_name) {
            return Ok("None".to_owned());
        }
        Ok(match self.s.data.delegate(owner_mailbox, &self.smtp()).await? {
            Some(v) => tandem_ews_proto::ops::delegates::Delegate::decode("", &v).level(folder_name).to_owned(),
            None => "None".to_owned(),
        })
    }

    /// An item to read: the caller's own, or one in a delegated folder (Reviewer or more).
    pub async fn item_for_read(&self, id: &str) -> Result<Item, EwsError> {
        let key = ids::decode(id, ids::IdKind::Item)?;
        let item =
            self.s.data.item(&key).await?.ok_or_else(|| {
                fail(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.")
            })?;
        if item.mailbox == self.mailbox() {
            return self.item_open_to_caller(item).await;
        }
        let folder = self.s.data.folder_by_id(&item.folder_id).await?;
        let name = folder.and_then(|f| f.distinguished).unwrap_or_default();
        if self.delegate_level(&item.mailbox, &name).await? == "None" {
            return Err(fail(ResponseCode::ErrorAccessDenied, "Access is denied. Check credentials and try again."));
        }
        Ok(item)
    }

    /// Finds an item the user may use.
    pub async fn item(&self, id: &str) -> Result<Item, EwsError> {
        let id = ids::decode(id, ids::IdKind::Item)?;
        let item =
            self.s.data.item(&id).await?.ok_or_else(|| {
                fail(ResponseCode::ErrorItemNotFound, "The specified object was not found in the store.")
            })?;
        if item.mailbox != self.mailbox() {
            return Err(fail(ResponseCode::ErrorAccessDenied, "Access is denied. Check credentials and try again."));
        }
        self.item_open_to_caller(item).await
    }
}

/// Recoverable Items\Purges: kept by holds and archiving, hidden from the mailbox's user.
pub(crate) const PURGES: &str = "recoverableitemspurges";

fn purges_denied() -> EwsError {
    fail(
        ResponseCode::ErrorAccessDenied,
        "Access is denied: Recoverable Items\\Purges is kept for holds and archiving and is not open to the mailbox's user.",
    )
}

/// The EWS endpoint.
pub(crate) async fn handle(shared: &crate::AppState, call: Call, slot: Option<crate::throttle::Slot>) -> Response {
    let s: &Shared = shared;
    let body = call.body.clone();
    let request = match crate::offload::run(body.len(), move || parse_request(&body)).await {
        Some(Ok(r)) => r,
        Some(Err(refused)) => return *refused,
        None => return fault(ResponseCode::ErrorInternalServerError, "The server could not read the request."),
    };
    if let Err(e) = s.data.ensure_mailbox(call.user.name.as_str()).await {
        tracing::error!(error = %e, "cannot provision the mailbox");
        return fault(ResponseCode::ErrorInternalServerError, "The mailbox is not available.");
    }
    let operation = match request.operation {
        Operation::GetStreamingEvents(r) => {
            // A hanging connection does not hold one of the user's EWS places.
            drop(slot);
            return get_streaming_events::handle(shared.clone(), call.owner(), r).await;
        }
        other => other,
    };
    let ctx = Ctx { s, shared, user: &call.user, owner: call.owner(), sent_by: None };
    let op_name = operation_name(&operation);
    let started = std::time::Instant::now();
    let operation = match operation {
        // Its answer carries an ETag header beside the envelope.
        Operation::GetUserPhoto(r) => {
            let answer = get_user_photo::handle(&ctx, r, call.if_none_match.as_deref()).await;
            metrics::histogram!("tandem_ews_operation_seconds", "operation" => op_name)
                .record(started.elapsed().as_secs_f64());
            return match answer {
                Ok((body, etag)) => {
                    let mut resp = xml_response(StatusCode::OK, render::envelope(&body));
                    if let Some(v) = etag.and_then(|t| axum::http::HeaderValue::from_str(&t).ok()) {
                        resp.headers_mut().insert(axum::http::header::ETAG, v);
                    }
                    resp
                }
                Err(e) => {
                    let (code, msg) = e.code();
                    fault(code, &msg)
                }
            };
        }
        other => other,
    };
    let body = match operation {
        Operation::ConvertId(r) => convert_id::handle(&ctx, r).await,
        Operation::GetFolder(r) => get_folder::handle(&ctx, r).await,
        Operation::FindFolder(r) => find_folder::handle(&ctx, r).await,
        Operation::CreateFolder(r) => create_folder::handle(&ctx, r).await,
        Operation::UpdateFolder(r) => update_folder::handle(&ctx, r).await,
        Operation::DeleteFolder(r) => delete_folder::handle(&ctx, r).await,
        Operation::MoveFolder(r) => move_copy_folder::handle(&ctx, r, false).await,
        Operation::CopyFolder(r) => move_copy_folder::handle(&ctx, r, true).await,
        Operation::FindItem(r) => find_item::handle(&ctx, r).await,
        Operation::GetItem(r) => get_item::handle(&ctx, r).await,
        Operation::CreateItem(r) => create_item::handle(&ctx, r).await,
        Operation::UpdateItem(r) => update_item::handle(&ctx, r).await,
        Operation::DeleteItem(r) => delete_item::handle(&ctx, r).await,
        Operation::MoveItem(r) => move_copy_item::handle(&ctx, r, false).await,
        Operation::CopyItem(r) => move_copy_item::handle(&ctx, r, true).await,
        Operation::SendItem(r) => send_item::handle(&ctx, r).await,
        Operation::GetServerTimeZones(r) => get_server_time_zones::handle(&ctx, r).await,
        Operation::ResolveNames(r) => resolve_names::handle(&ctx, r).await,
        Operation::GetUserAvailability(r) => get_user_availability::handle(&ctx, r).await,
        Operation::GetUserOofSettings(r) => get_user_oof_settings::handle(&ctx, r).await,
        Operation::SetUserOofSettings(r) => set_user_oof_settings::handle(&ctx, r).await,
        Operation::Subscribe(r) => subscribe::handle(&ctx, r).await,
        Operation::GetEvents(r) => get_events::handle(&ctx, r).await,
        Operation::GetStreamingEvents(_) => {
            Err(fail(ResponseCode::ErrorInternalServerError, "streaming is served above"))
        }
        Operation::Unsubscribe(r) => get_events::unsubscribe(&ctx, r).await,
        Operation::SyncFolderItems(r) => sync_folder_items::handle(&ctx, r).await,
        Operation::SyncFolderHierarchy(r) => sync_folder_hierarchy::handle(&ctx, r).await,
        Operation::CreateAttachment(r) => create_attachment::handle(&ctx, r).await,
        Operation::GetAttachment(r) => get_attachment::handle(&ctx, r).await,
        Operation::DeleteAttachment(r) => delete_attachment::handle(&ctx, r).await,
        Operation::GetDelegate(r) => get_delegate::handle(&ctx, r).await,
        Operation::AddDelegate(r) => add_delegate::handle(&ctx, r).await,
        Operation::UpdateDelegate(r) => update_delegate::handle(&ctx, r).await,
        Operation::RemoveDelegate(r) => remove_delegate::handle(&ctx, r).await,
        Operation::GetUserConfiguration(r) => get_user_configuration::handle(&ctx, r).await,
        Operation::CreateUserConfiguration(r) => create_user_configuration::handle(&ctx, r).await,
        Operation::UpdateUserConfiguration(r) => update_user_configuration::handle(&ctx, r).await,
        Operation::DeleteUserConfiguration(r) => delete_user_configuration::handle(&ctx, r).await,
        Operation::ExpandDl(r) => expand_dl::handle(&ctx, r).await,
        Operation::GetMailTips(r) => get_mail_tips::handle(&ctx, r).await,
        Operation::GetImItemList(r) => get_im_item_list::handle(&ctx, r).await,
        Operation::GetImItems(r) => get_im_items::handle(&ctx, r).await,
        Operation::AddImGroup(r) => add_im_group::handle(&ctx, r).await,
        Operation::SetImGroup(r) => set_im_group::handle(&ctx, r).await,
        Operation::RemoveImGroup(r) => remove_im_group::handle(&ctx, r).await,
        Operation::AddNewImContactToGroup(r) => add_new_im_contact_to_group::handle(&ctx, r).await,
        Operation::AddImContactToGroup(r) => add_im_contact_to_group::handle(&ctx, r).await,
        Operation::RemoveImContactFromGroup(r) => remove_im_contact_from_group::handle(&ctx, r).await,
        Operation::RemoveContactFromImList(r) => remove_contact_from_im_list::handle(&ctx, r).await,
        Operation::AddNewTelUriContactToGroup(r) => add_new_tel_uri_contact_to_group::handle(&ctx, r).await,
        Operation::AddDistributionGroupToImList(r) => add_distribution_group_to_im_list::handle(&ctx, r).await,
        Operation::RemoveDistributionGroupFromImList(r) => {
            remove_distribution_group_from_im_list::handle(&ctx, r).await
        }
        Operation::SetImListMigrationCompleted(r) => set_im_list_migration_completed::handle(&ctx, r).await,
        Operation::GetUserPhoto(_) => Err(fail(ResponseCode::ErrorInternalServerError, "GetUserPhoto is served above")),
        Operation::NotImplemented(op) => Ok(not_implemented(op)),
    };
    metrics::histogram!("tandem_ews_operation_seconds", "operation" => op_name).record(started.elapsed().as_secs_f64());
    match body {
        Ok(b) => xml_response(StatusCode::OK, render::envelope(&b)),
        Err(e) => {
            let (code, msg) = e.code();
            fault(code, &msg)
        }
    }
}

/// Parses a request body into an operation, or the SOAP fault refusing it: malformed XML and
/// XML past tandem-xml's limits are `ErrorSchemaValidation`, as Exchange answers them.
fn parse_request(body: &[u8]) -> Result<ops::Request, Box<Response>> {
    let doc = tandem_xml::parse(body, tandem_xml::Limits::default()).map_err(|e| {
        Box::new(fault(ResponseCode::ErrorSchemaValidation, &format!("The request failed schema validation: {e}")))
    })?;
    let env = Envelope::of(&doc).map_err(|e| {
        Box::new(fault(ResponseCode::ErrorSchemaValidation, &format!("The request failed schema validation: {e}")))
    })?;
    ops::parse(&env).map_err(|e| {
        let msg = if e.code == ResponseCode::ErrorSchemaValidation {
            format!("The request failed schema validation: {}", e.message)
        } else {
            e.message
        };
        Box::new(fault(e.code, &msg))
    })
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::ConvertId(_) => "ConvertId",
        Operation::GetFolder(_) => "GetFolder",
        Operation::FindFolder(_) => "FindFolder",
        Operation::CreateFolder(_) => "CreateFolder",
        Operation::UpdateFolder(_) => "UpdateFolder",
        Operation::DeleteFolder(_) => "DeleteFolder",
        Operation::MoveFolder(_) => "MoveFolder",
        Operation::CopyFolder(_) => "CopyFolder",
        Operation::FindItem(_) => "FindItem",
        Operation::GetItem(_) => "GetItem",
        Operation::CreateItem(_) => "CreateItem",
        Operation::UpdateItem(_) => "UpdateItem",
        Operation::DeleteItem(_) => "DeleteItem",
        Operation::MoveItem(_) => "MoveItem",
        Operation::CopyItem(_) => "CopyItem",
        Operation::SendItem(_) => "SendItem",
        Operation::GetServerTimeZones(_) => "GetServerTimeZones",
        Operation::ResolveNames(_) => "ResolveNames",
        Operation::GetUserAvailability(_) => "GetUserAvailability",
        Operation::GetUserOofSettings(_) => "GetUserOofSettings",
        Operation::SetUserOofSettings(_) => "SetUserOofSettings",
        Operation::Subscribe(_) => "Subscribe",
        Operation::GetEvents(_) => "GetEvents",
        Operation::GetStreamingEvents(_) => "GetStreamingEvents",
        Operation::Unsubscribe(_) => "Unsubscribe",
        Operation::SyncFolderItems(_) => "SyncFolderItems",
        Operation::SyncFolderHierarchy(_) => "SyncFolderHierarchy",
        Operation::CreateAttachment(_) => "CreateAttachment",
        Operation::GetAttachment(_) => "GetAttachment",
        Operation::DeleteAttachment(_) => "DeleteAttachment",
        Operation::GetDelegate(_) => "GetDelegate",
        Operation::AddDelegate(_) => "AddDelegate",
        Operation::UpdateDelegate(_) => "UpdateDelegate",
        Operation::RemoveDelegate(_) => "RemoveDelegate",
        Operation::GetUserConfiguration(_) => "GetUserConfiguration",
        Operation::CreateUserConfiguration(_) => "CreateUserConfiguration",
        Operation::UpdateUserConfiguration(_) => "UpdateUserConfiguration",
        Operation::DeleteUserConfiguration(_) => "DeleteUserConfiguration",
        Operation::ExpandDl(_) => "ExpandDL",
        Operation::GetMailTips(_) => "GetMailTips",
        Operation::GetImItemList(_) => "GetImItemList",
        Operation::GetImItems(_) => "GetImItems",
        Operation::AddImGroup(_) => "AddImGroup",
        Operation::SetImGroup(_) => "SetImGroup",
        Operation::RemoveImGroup(_) => "RemoveImGroup",
        Operation::AddNewImContactToGroup(_) => "AddNewImContactToGroup",
        Operation::AddImContactToGroup(_) => "AddImContactToGroup",
        Operation::RemoveImContactFromGroup(_) => "RemoveImContactFromGroup",
        Operation::RemoveContactFromImList(_) => "RemoveContactFromImList",
        Operation::AddNewTelUriContactToGroup(_) => "AddNewTelUriContactToGroup",
        Operation::AddDistributionGroupToImList(_) => "AddDistributionGroupToImList",
        Operation::RemoveDistributionGroupFromImList(_) => "RemoveDistributionGroupFromImList",
        Operation::SetImListMigrationCompleted(_) => "SetImListMigrationCompleted",
        Operation::GetUserPhoto(_) => "GetUserPhoto",
        Operation::NotImplemented(_) => "NotImplemented",
    }
}

/// An operation this server does not implement: its response element with one error message,
/// ErrorInvalidOperation, as Exchange answers an operation that is not available to the caller.
fn not_implemented(op: &str) -> String {
    let resp = ops::response_name(op);
    let base = resp.strip_suffix("Response").unwrap_or(&resp);
    format!(
        "<m:{resp} ResponseClass=\"Error\"><m:ResponseMessages><m:{base}ResponseMessage ResponseClass=\"Error\"><m:MessageText>The operation {op} is not supported by this server yet.</m:MessageText><m:ResponseCode>ErrorInvalidOperation</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:{base}ResponseMessage></m:ResponseMessages></m:{resp}>"
    )
}

fn fault(code: ResponseCode, message: &str) -> Response {
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, render::fault(code, message))
}

/// A folder rendered under a shape.
pub(crate) async fn folder_xml(ctx: &Ctx<'_>, f: &Folder, shape: &Shape, all: &[Folder]) -> Result<String, EwsError> {
    let parent = match &f.parent_id {
        Some(pid) => match all.iter().find(|p| &p.id == pid) {
            Some(p) => Some((p.id.clone(), ids::change_key(p.change_number))),
            None => ctx.s.data.folder_by_id(pid).await?.map(|p| (p.id, ids::change_key(p.change_number))),
        },
        None => None,
    };
    let child_count = if all.is_empty() {
        ctx.s.data.child_count(&f.id).await?
    } else {
        all.iter().filter(|c| c.parent_id.as_deref() == Some(&f.id)).count() as i64
    };
    let extended = render::requested_extended(shape)
        .into_iter()
        .filter_map(|e| folder_extended(f, e, child_count).map(|v| (e.clone(), v)))
        .collect();
    let view = FolderView {
        id: f.id.clone(),
        change_key: ids::change_key(f.change_number),
        parent,
        class: f.class.clone(),
        display_name: f.display_name.clone(),
        total: f.item_count,
        unread: f.unread_count,
        child_count,
        extended,
    };
    let rights = if f.mailbox == ctx.mailbox() { render::FolderRights::Owner } else { render::FolderRights::Reader };
    Ok(render::folder_with_rights(&view, shape, rights))
}

/// MAPI properties of folders that clients (DavMail) ask for.
fn folder_extended(f: &Folder, e: &ExtendedField, child_count: i64) -> Option<Vec<String>> {
    let v = match e.tag? {
        0x3613 => f.class.clone(),
        0x3602 => f.item_count.to_string(),
        0x3603 => f.unread_count.to_string(),
        0x360a => (child_count > 0).to_string(),
        0x10f3 => f.display_name.clone(),
        0x3001 => f.display_name.clone(),
        0x3008 | 0x670a => format_datetime(f.modified_at),
        _ => return None,
    };
    Some(vec![v])
}

/// Server-computed item values for paths (restrictions, sorting and rendering share these).
pub(crate) fn computed_value(i: &Item, path: &PropertyPath) -> Option<String> {
    match path {
        PropertyPath::Field(uri) => Some(match uri.as_str() {
            "item:Subject" => i.subject.clone(),
            "item:ItemClass" => i.item_class.clone(),
            "item:DateTimeReceived" => format_datetime(i.received_at),
            "item:DateTimeCreated" => format_datetime(i.created_at),
            "item:LastModifiedTime" => format_datetime(i.modified_at),
            "item:DateTimeSent" => format_datetime(i.sent_at?),
            "item:Size" => i.size.to_string(),
            "message:IsRead" => i.is_read.to_string(),
            "item:HasAttachments" => "false".to_owned(),
            "calendar:Start" => format_datetime(i.start_at?),
            "calendar:End" => format_datetime(i.end_at?),
            "calendar:IsRecurring" if i.element == "CalendarItem" => i.fields.contains("<t:Recurrence>").to_string(),
            "calendar:CalendarItemType" if i.element == "CalendarItem" => {
                if i.fields.contains("<t:Recurrence>") { "RecurringMaster" } else { "Single" }.to_owned()
            }
            "item:ParentFolderId" => i.folder_id.clone(),
            _ => return None,
        }),
        PropertyPath::Extended(e) if e.tag.is_none() => {
            // Named calendar properties DavMail restricts on: PidLidRecurring and the
            // instance type (0 single, 1 recurring master).
            let recurring = i.fields.contains("<t:Recurrence>");
            let set = e.distinguished_set.as_deref();
            match (set, e.id, e.name.as_deref()) {
                (Some("Appointment"), Some(0x8223), _) if i.element == "CalendarItem" => Some(recurring.to_string()),
                (Some("PublicStrings"), _, Some("urn:schemas:calendar:instancetype"))
                    if i.element == "CalendarItem" =>
                {
                    Some(if recurring { "1" } else { "0" }.to_owned())
                }
                _ => None,
            }
        }
        PropertyPath::Extended(e) => match e.tag? {
            0x0e23 => Some(i.article.to_string()),
            0x0e08 => Some(i.size.to_string()),
            0x0e06 => Some(format_datetime(i.received_at)),
            0x3008 => Some(format_datetime(i.modified_at)),
            0x0037 => Some(i.subject.clone()),
            0x001a => Some(i.item_class.clone()),
            0x0e07 => Some(if i.is_read { "1" } else { "0" }.to_owned()),
            _ => None,
        },
        PropertyPath::Indexed { .. } => None,
    }
}

/// An item rendered under a shape.
pub(crate) async fn item_xml(
    ctx: &Ctx<'_>,
    i: &Item,
    shape: &Shape,
    parent: Option<&Folder>,
) -> Result<String, EwsError> {
    let view = item_view(ctx, i, shape, parent).await?;
    Ok(render::item(&view, shape))
}

pub(crate) async fn item_view(
    ctx: &Ctx<'_>,
    i: &Item,
    shape: &Shape,
    parent: Option<&Folder>,
) -> Result<ItemView, EwsError> {
    let embedded = get_attachment::is_embedded(i);
    let folder_ck = match parent.filter(|p| p.id == i.folder_id) {
        Some(p) => ids::change_key(p.change_number),
        None if embedded => String::new(),
        None => {
            ctx.s.data.folder_by_id(&i.folder_id).await?.map(|f| ids::change_key(f.change_number)).unwrap_or_default()
        }
    };
    let stored: Vec<(String, String)> = data::split_elements(&i.fields)?
        .into_iter()
        .map(|(n, x)| {
            // Rows written before date-times were normalized on the way in still render in UTC.
            let utc = tandem_ews_proto::item_schema::normalize_datetime(&n, &x);
            (n, utc.unwrap_or(x))
        })
        .collect();
    let mut computed: Vec<(&'static str, String)> = vec![
        ("ParentFolderId", render::id_element("ParentFolderId", &i.folder_id, &folder_ck)),
        ("DateTimeReceived", format!("<t:DateTimeReceived>{}</t:DateTimeReceived>", format_datetime(i.received_at))),
        ("Size", format!("<t:Size>{}</t:Size>", i.size)),
        ("DateTimeCreated", format!("<t:DateTimeCreated>{}</t:DateTimeCreated>", format_datetime(i.created_at))),
        ("LastModifiedTime", format!("<t:LastModifiedTime>{}</t:LastModifiedTime>", format_datetime(i.modified_at))),
    ];
    let wants_attachments = shape.base != tandem_ews_proto::types::BaseShape::IdOnly
        || shape.wants("item:Attachments")
        || shape.wants("item:HasAttachments")
        || shape.include_mime;
    let with_content = shape.include_mime && i.mime.is_none();
    let attachments = if wants_attachments && embedded {
        ctx.s.data.attachments_within(&i.id, with_content).await?
    } else if wants_attachments {
        ctx.s.data.attachments_of(&i.id, with_content).await?
    } else {
        Vec::new()
    };
    computed.push(("HasAttachments", format!("<t:HasAttachments>{}</t:HasAttachments>", !attachments.is_empty())));
    if !attachments.is_empty() {
        let list: String = attachments
            .iter()
            .map(|a| tandem_ews_proto::ops::get_attachment::render(&get_attachment::view(a, false)))
            .collect();
        computed.push(("Attachments", format!("<t:Attachments>{list}</t:Attachments>")));
    }
    if !stored.iter().any(|(n, _)| n == "ItemClass") {
        computed.push(("ItemClass", format!("<t:ItemClass>{}</t:ItemClass>", tandem_xml::escape(&i.item_class))));
    }
    if i.element == "Message" {
        computed.push(("IsRead", format!("<t:IsRead>{}</t:IsRead>", i.is_read)));
        computed.push(("IsDraft", format!("<t:IsDraft>{}</t:IsDraft>", i.sent_at.is_none())));
        if !stored.iter().any(|(n, _)| n == "InternetMessageId") {
            let id = mime::message_id(i);
            let id = tandem_xml::escape(&id);
            computed.push(("InternetMessageId", format!("<t:InternetMessageId>{id}</t:InternetMessageId>")));
        }
        if let Some(sent) = i.sent_at {
            computed.push(("DateTimeSent", format!("<t:DateTimeSent>{}</t:DateTimeSent>", format_datetime(sent))));
        }
    }
    if i.element == "CalendarItem" {
        // Rendered from the stored instants, so Start/End are in UTC with `Z` as Exchange writes
        // them, also for items made from iCalendar MIME.
        use tandem_ews_proto::item_schema::datetime_element;
        if let Some(start) = i.start_at {
            computed.push(("Start", datetime_element("Start", start)));
        }
        if let Some(end) = i.end_at {
            computed.push(("End", datetime_element("End", end)));
        }
    }
    if shape.base != tandem_ews_proto::types::BaseShape::IdOnly || !shape.additional.is_empty() {
        let own = i.mailbox == ctx.mailbox();
        let owner = if own { Some(ctx.user.clone()) } else { ctx.s.directory.find(&i.mailbox).await? };
        let (owner_name, owner_smtp) = match &owner {
            Some(u) => (u.display_name.clone(), u.smtp_address.to_string()),
            None => (i.mailbox.clone(), String::new()),
        };
        let facts = tandem_ews_proto::item_schema::Facts {
            element: &i.element,
            id: &i.id,
            subject: &i.subject,
            start: i.start_at,
            end: i.end_at,
            owner_name: &owner_name,
            owner_smtp: &owner_smtp,
            own,
            from_me: !owner_smtp.is_empty()
                && stored
                    .iter()
                    .any(|(n, x)| n == "From" && x.to_ascii_lowercase().contains(&owner_smtp.to_ascii_lowercase())),
            stored: &stored,
        };
        for (name, xml) in tandem_ews_proto::item_schema::defaults(&facts) {
            if !computed.iter().any(|(n, _)| *n == name) {
                computed.push((name, xml));
            }
        }
    }
    if shape.include_mime {
        let mime = match &i.mime {
            Some(m) => m.clone(),
            None if i.element == "CalendarItem" => mime::generate_icalendar(i, &stored),
            None => mime::generate(i, &stored, &attachments),
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(mime);
        computed.push(("MimeContent", format!("<t:MimeContent CharacterSet=\"UTF-8\">{b64}</t:MimeContent>")));
    }
    let wanted = render::requested_extended(shape);
    let mut extended = Vec::new();
    if !wanted.is_empty() {
        let ext = data::split_extended(&i.ext)?;
        for e in wanted {
            if let Some((_, v)) = ext.iter().find(|(f, _)| f.key() == e.key()) {
                extended.push((e.clone(), v.clone()));
            } else if let Some(v) = computed_value(i, &PropertyPath::Extended(e.clone())) {
                extended.push((e.clone(), vec![v]));
            }
        }
    }
    Ok(ItemView {
        element: tandem_ews_proto::types::item_element(&i.element),
        id: i.id.clone(),
        change_key: ids::change_key(i.change_number),
        computed,
        stored,
        extended,
    })
}

//! EWS operations, one module per operation: each parses its request element into a type the
//! handler of the same name in `tandem-mailbox` serves; the operations a client calls also write
//! that type back ([`BuildRequest`]) and read their answer (`parse_response`).

use tandem_xml::soap::Envelope;
use tandem_xml::{Node, child};

use crate::{ProtoError, ResponseCode, ns, version};

pub mod add_delegate;
pub mod add_distribution_group_to_im_list;
pub mod add_im_contact_to_group;
pub mod add_im_group;
pub mod add_new_im_contact_to_group;
pub mod add_new_tel_uri_contact_to_group;
pub mod attachments;
pub mod convert_id;
pub mod create_attachment;
pub mod create_folder;
pub mod create_item;
pub mod create_user_configuration;
pub mod delegates;
pub mod delete_attachment;
pub mod delete_folder;
pub mod delete_item;
pub mod delete_user_configuration;
pub mod expand_dl;
pub mod find_folder;
pub mod find_item;
pub mod get_attachment;
pub mod get_delegate;
pub mod get_events;
pub mod get_folder;
pub mod get_im_item_list;
pub mod get_im_items;
pub mod get_item;
pub mod get_mail_tips;
pub mod get_server_time_zones;
pub mod get_streaming_events;
pub mod get_user_availability;
pub mod get_user_configuration;
pub mod get_user_oof_settings;
pub mod get_user_photo;
pub mod im_items;
pub mod move_copy_folder;
pub mod move_copy_item;
pub mod remove_contact_from_im_list;
pub mod remove_delegate;
pub mod remove_distribution_group_from_im_list;
pub mod remove_im_contact_from_group;
pub mod remove_im_group;
pub mod resolve_names;
pub mod send_item;
pub mod send_notification;
pub mod set_im_group;
pub mod set_im_list_migration_completed;
pub mod set_user_oof_settings;
pub mod subscribe;
pub mod sync_folder_hierarchy;
pub mod sync_folder_items;
pub mod update_delegate;
pub mod update_folder;
pub mod update_item;
pub mod update_user_configuration;

/// A parsed EWS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ConvertId(convert_id::Request),
    GetFolder(get_folder::Request),
    FindFolder(find_folder::Request),
    CreateFolder(create_folder::Request),
    UpdateFolder(update_folder::Request),
    DeleteFolder(delete_folder::Request),
    MoveFolder(move_copy_folder::Request),
    CopyFolder(move_copy_folder::Request),
    FindItem(find_item::Request),
    GetItem(get_item::Request),
    CreateItem(create_item::Request),
    UpdateItem(update_item::Request),
    DeleteItem(delete_item::Request),
    MoveItem(move_copy_item::Request),
    CopyItem(move_copy_item::Request),
    SendItem(send_item::Request),
    GetServerTimeZones(get_server_time_zones::Request),
    ResolveNames(resolve_names::Request),
    GetUserAvailability(get_user_availability::Request),
    GetUserOofSettings(get_user_oof_settings::Request),
    SetUserOofSettings(set_user_oof_settings::Request),
    Subscribe(subscribe::Request),
    GetEvents(get_events::Request),
    GetStreamingEvents(get_streaming_events::Request),
    Unsubscribe(get_events::UnsubscribeRequest),
    SyncFolderItems(sync_folder_items::Request),
    SyncFolderHierarchy(sync_folder_hierarchy::Request),
    CreateAttachment(create_attachment::Request),
    GetAttachment(get_attachment::Request),
    DeleteAttachment(delete_attachment::Request),
    GetDelegate(get_delegate::Request),
    AddDelegate(add_delegate::Request),
    UpdateDelegate(update_delegate::Request),
    RemoveDelegate(remove_delegate::Request),
    GetUserConfiguration(get_user_configuration::Request),
    CreateUserConfiguration(create_user_configuration::Request),
    UpdateUserConfiguration(update_user_configuration::Request),
    DeleteUserConfiguration(delete_user_configuration::Request),
    ExpandDl(expand_dl::Request),
    GetMailTips(get_mail_tips::Request),
    GetImItemList(get_im_item_list::Request),
    GetImItems(get_im_items::Request),
    AddImGroup(add_im_group::Request),
    SetImGroup(set_im_group::Request),
    RemoveImGroup(remove_im_group::Request),
    AddNewImContactToGroup(add_new_im_contact_to_group::Request),
    AddImContactToGroup(add_im_contact_to_group::Request),
    RemoveImContactFromGroup(remove_im_contact_from_group::Request),
    RemoveContactFromImList(remove_contact_from_im_list::Request),
    AddNewTelUriContactToGroup(add_new_tel_uri_contact_to_group::Request),
    AddDistributionGroupToImList(add_distribution_group_to_im_list::Request),
    RemoveDistributionGroupFromImList(remove_distribution_group_from_im_list::Request),
    SetImListMigrationCompleted(set_im_list_migration_completed::Request),
    GetUserPhoto(get_user_photo::Request),
    /// An EWS operation this server does not implement: answered with ErrorInvalidOperation
    /// in the operation's own response element.
    NotImplemented(&'static str),
}

/// EWS operations Tandem knows by name but does not implement (yet).
pub const NOT_IMPLEMENTED: &[&str] = &[
    "GetInboxRules",
    "UpdateInboxRules",
    "ArchiveItem",
    "ExportItems",
    "UploadItems",
    "EmptyFolder",
    "MarkAllItemsAsRead",
    "FindPeople",
    "GetPersona",
    "GetRoomLists",
    "GetRooms",
    "GetSharingMetadata",
    "GetSharingFolder",
    "RefreshSharingFolder",
    "GetSearchableMailboxes",
    "SearchMailboxes",
    "GetDiscoverySearchConfiguration",
    "GetHoldOnMailboxes",
    "SetHoldOnMailboxes",
    "GetNonIndexableItemStatistics",
    "GetNonIndexableItemDetails",
    "FindConversation",
    "GetConversationItems",
    "ApplyConversationAction",
    "CreateManagedFolder",
    "GetPasswordExpirationDate",
    "GetAppManifests",
    "GetClientAccessToken",
    "GetAppMarketplaceUrl",
    "InstallApp",
    "UninstallApp",
    "DisableApp",
    "MarkAsJunk",
    "PlayOnPhone",
    "GetPhoneCallInformation",
    "DisconnectPhoneCall",
    "GetReminders",
    "PerformReminderAction",
    "SetUserPhoto",
    "GetUserRetentionPolicyTags",
    "GetServiceConfiguration",
    "AddAggregatedAccount",
    "SetTeamMailbox",
    "UnpinTeamMailbox",
    "FindMessageTrackingReport",
    "GetMessageTrackingReport",
];

/// The response element name for an operation element (`GetUserOofSettingsRequest` →
/// `GetUserOofSettingsResponse`, `GetDelegate` → `GetDelegateResponse`).
pub fn response_name(op: &str) -> String {
    format!("{}Response", op.strip_suffix("Request").unwrap_or(op))
}

/// The schema version a client built here asks for (what Skype for Business asks for).
pub const CLIENT_VERSION: &str = "Exchange2013";

const REQUEST_NAMESPACES: &[(&str, &str)] = &[("m", ns::MESSAGES), ("t", ns::TYPES)];

/// A request a client can send: its operation name and its operation element.
pub trait BuildRequest {
    /// The operation's name as SOAPAction and the response element know it (`GetUserAvailability`,
    /// even where the request element is `GetUserAvailabilityRequest`).
    const OPERATION: &'static str;

    /// The operation element, with the `m:` and `t:` prefixes the envelope declares.
    fn to_xml(&self) -> String;

    /// The whole request envelope asking for `version`.
    fn envelope(&self, version: &str) -> String {
        request_envelope(version, &self.to_xml())
    }
}

/// Wraps an operation element in a SOAP envelope with `RequestServerVersion`.
pub fn request_envelope(version: &str, operation: &str) -> String {
    let header = format!("<t:RequestServerVersion Version=\"{}\"/>", tandem_xml::escape(version));
    tandem_xml::soap::envelope(REQUEST_NAMESPACES, &header, operation)
}

/// The SOAPAction header of an operation (quoted, as Exchange's clients send it).
pub fn soap_action(operation: &str) -> String {
    format!("\"{}/{operation}\"", ns::MESSAGES)
}

/// A whole EWS request: the negotiated version and the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub version: &'static str,
    pub operation: Operation,
}

/// Parses an envelope. Errors become SOAP faults.
pub fn parse(env: &Envelope<'_, '_>) -> Result<Request, ProtoError> {
    let version = version::requested(env.header)?;
    if env.header_element(ns::TYPES, "ExchangeImpersonation").is_some() {
        return Err(ProtoError::new(
            ResponseCode::ErrorImpersonationDenied,
            "The account does not have permission to impersonate the requested user.",
        ));
    }
    let op = env.operation;
    if op.tag_name().namespace() != Some(ns::MESSAGES) {
        return Err(ProtoError::new(ResponseCode::ErrorInvalidRequest, "The request is invalid."));
    }
    let name = op.tag_name().name();
    if im_items::OPERATIONS.contains(&name) && version::older_than(version, "Exchange2013") {
        return Err(ProtoError::new(
            ResponseCode::ErrorIncorrectSchemaVersion,
            "The request is valid but does not specify the correct server version in the RequestServerVersion SOAP header.  Ensure that the RequestServerVersion SOAP header is set with the correct RequestServerVersionValue.",
        ));
    }
    let operation = parse_operation(op)?;
    Ok(Request { version, operation })
}

fn parse_operation(op: Node<'_, '_>) -> Result<Operation, ProtoError> {
    Ok(match op.tag_name().name() {
        "ConvertId" => Operation::ConvertId(convert_id::Request::parse(op)?),
        "GetFolder" => Operation::GetFolder(get_folder::Request::parse(op)?),
        "FindFolder" => Operation::FindFolder(find_folder::Request::parse(op)?),
        "CreateFolder" => Operation::CreateFolder(create_folder::Request::parse(op)?),
        "UpdateFolder" => Operation::UpdateFolder(update_folder::Request::parse(op)?),
        "DeleteFolder" => Operation::DeleteFolder(delete_folder::Request::parse(op)?),
        "MoveFolder" => Operation::MoveFolder(move_copy_folder::Request::parse(op)?),
        "CopyFolder" => Operation::CopyFolder(move_copy_folder::Request::parse(op)?),
        "FindItem" => Operation::FindItem(find_item::Request::parse(op)?),
        "GetItem" => Operation::GetItem(get_item::Request::parse(op)?),
        "CreateItem" => Operation::CreateItem(create_item::Request::parse(op)?),
        "UpdateItem" => Operation::UpdateItem(update_item::Request::parse(op)?),
        "DeleteItem" => Operation::DeleteItem(delete_item::Request::parse(op)?),
        "MoveItem" => Operation::MoveItem(move_copy_item::Request::parse(op)?),
        "CopyItem" => Operation::CopyItem(move_copy_item::Request::parse(op)?),
        "SendItem" => Operation::SendItem(send_item::Request::parse(op)?),
        "GetServerTimeZones" => Operation::GetServerTimeZones(get_server_time_zones::Request::parse(op)?),
        "ResolveNames" => Operation::ResolveNames(resolve_names::Request::parse(op)?),
        "GetUserAvailabilityRequest" => Operation::GetUserAvailability(get_user_availability::Request::parse(op)?),
        "GetUserOofSettingsRequest" => Operation::GetUserOofSettings(get_user_oof_settings::Request::parse(op)?),
        "SetUserOofSettingsRequest" => Operation::SetUserOofSettings(set_user_oof_settings::Request::parse(op)?),
        "Subscribe" => Operation::Subscribe(subscribe::Request::parse(op)?),
        "GetEvents" => Operation::GetEvents(get_events::Request::parse(op)?),
        "GetStreamingEvents" => Operation::GetStreamingEvents(get_streaming_events::Request::parse(op)?),
        "Unsubscribe" => Operation::Unsubscribe(get_events::UnsubscribeRequest::parse(op)?),
        "SyncFolderItems" => Operation::SyncFolderItems(sync_folder_items::Request::parse(op)?),
        "SyncFolderHierarchy" => Operation::SyncFolderHierarchy(sync_folder_hierarchy::Request::parse(op)?),
        "CreateAttachment" => Operation::CreateAttachment(create_attachment::Request::parse(op)?),
        "GetAttachment" => Operation::GetAttachment(get_attachment::Request::parse(op)?),
        "DeleteAttachment" => Operation::DeleteAttachment(delete_attachment::Request::parse(op)?),
        "GetDelegate" => Operation::GetDelegate(get_delegate::Request::parse(op)?),
        "AddDelegate" => Operation::AddDelegate(add_delegate::Request::parse(op)?),
        "UpdateDelegate" => Operation::UpdateDelegate(update_delegate::Request::parse(op)?),
        "RemoveDelegate" => Operation::RemoveDelegate(remove_delegate::Request::parse(op)?),
        "GetUserConfiguration" => Operation::GetUserConfiguration(get_user_configuration::Request::parse(op)?),
        "CreateUserConfiguration" => Operation::CreateUserConfiguration(create_user_configuration::Request::parse(op)?),
        "UpdateUserConfiguration" => Operation::UpdateUserConfiguration(update_user_configuration::Request::parse(op)?),
        "DeleteUserConfiguration" => Operation::DeleteUserConfiguration(delete_user_configuration::Request::parse(op)?),
        "ExpandDL" => Operation::ExpandDl(expand_dl::Request::parse(op)?),
        "GetMailTips" => Operation::GetMailTips(get_mail_tips::Request::parse(op)?),
        "GetImItemList" => Operation::GetImItemList(get_im_item_list::Request::parse(op)?),
        "GetImItems" => Operation::GetImItems(get_im_items::Request::parse(op)?),
        "AddImGroup" => Operation::AddImGroup(add_im_group::Request::parse(op)?),
        "SetImGroup" => Operation::SetImGroup(set_im_group::Request::parse(op)?),
        "RemoveImGroup" => Operation::RemoveImGroup(remove_im_group::Request::parse(op)?),
        "AddNewImContactToGroup" => Operation::AddNewImContactToGroup(add_new_im_contact_to_group::Request::parse(op)?),
        "AddImContactToGroup" => Operation::AddImContactToGroup(add_im_contact_to_group::Request::parse(op)?),
        "RemoveImContactFromGroup" => {
            Operation::RemoveImContactFromGroup(remove_im_contact_from_group::Request::parse(op)?)
        }
        "RemoveContactFromImList" => {
            Operation::RemoveContactFromImList(remove_contact_from_im_list::Request::parse(op)?)
        }
        "AddNewTelUriContactToGroup" => {
            Operation::AddNewTelUriContactToGroup(add_new_tel_uri_contact_to_group::Request::parse(op)?)
        }
        "AddDistributionGroupToImList" => {
            Operation::AddDistributionGroupToImList(add_distribution_group_to_im_list::Request::parse(op)?)
        }
        "RemoveDistributionGroupFromImList" => {
            Operation::RemoveDistributionGroupFromImList(remove_distribution_group_from_im_list::Request::parse(op)?)
        }
        "SetImListMigrationCompleted" => {
            Operation::SetImListMigrationCompleted(set_im_list_migration_completed::Request::parse(op)?)
        }
        "GetUserPhoto" => Operation::GetUserPhoto(get_user_photo::Request::parse(op)?),
        other => match NOT_IMPLEMENTED.iter().find(|n| **n == other) {
            Some(n) => Operation::NotImplemented(n),
            None => {
                return Err(ProtoError::new(
                    ResponseCode::ErrorInvalidRequest,
                    format!("The request is invalid: unknown operation {other}."),
                ));
            }
        },
    })
}

/// The required child `{messages}name` of `op`.
pub(crate) fn need<'a, 'i>(op: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, ProtoError> {
    child(op, ns::MESSAGES, name).ok_or_else(|| ProtoError::schema(format!("{} needs {name}", op.tag_name().name())))
}

/// The optional child `{messages}name` of `op`.
pub(crate) fn opt<'a, 'i>(op: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    child(op, ns::MESSAGES, name)
}

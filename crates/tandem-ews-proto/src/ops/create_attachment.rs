//! CreateAttachment: file attachments added to an existing item.

pub use super::attachments::CreateRequest as Request;
pub use super::attachments::NewAttachment;

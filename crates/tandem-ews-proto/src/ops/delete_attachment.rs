//! DeleteAttachment: removes attachments; the answer names the root item and its new change key.

pub use super::attachments::IdsRequest as Request;

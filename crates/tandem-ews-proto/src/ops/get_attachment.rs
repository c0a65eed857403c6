//! GetAttachment: attachments with their content.

pub use super::attachments::IdsRequest as Request;
pub use super::attachments::{AttachmentView, render};

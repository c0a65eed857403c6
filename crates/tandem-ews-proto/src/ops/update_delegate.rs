//! UpdateDelegate: same shape as AddDelegate; changes delegates that exist.

pub use super::add_delegate::Request;

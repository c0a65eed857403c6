//! UpdateUserConfiguration: replaces the parts a request carries of an existing configuration
//! object; the request has CreateUserConfiguration's shape.

pub use super::create_user_configuration::Request;

//! tandem-http

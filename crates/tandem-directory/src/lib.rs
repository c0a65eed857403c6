//! tandem-directory

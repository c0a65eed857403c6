//! tandem-pki

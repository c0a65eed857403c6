//! tandem-mailbox

//! How a command fails: bad input (exit 2, nothing changed) or a failure while working (exit 1).

use tandem_config::ConfigError;
use tandem_directory::DirectoryError;

/// Exit code for bad input (flags, configuration, addresses): nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failure while doing the work.
pub const EXIT_FAILURE: u8 = 1;

/// A failure, classified by who must act.
#[derive(Debug)]
pub enum Failure {
    /// The input was wrong; the message says which part and how to fix it.
    Usage(String),
    /// Something failed while working.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        usage(e.to_string())
    }
}

impl From<DirectoryError> for Failure {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Store(_) | DirectoryError::Hash(_) | DirectoryError::Corrupt(..) => {
                Failure::Runtime(e.into())
            }
            other => usage(other.to_string()),
        }
    }
}

pub type CliResult<T = ()> = Result<T, Failure>;

/// Shorthand for a usage failure.
pub fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

/// Shorthand for a failure while working, from a message.
pub fn runtime(msg: impl std::fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("{msg}"))
}

//! Tracing output: readable lines by default, JSON lines for log shippers, always on stderr so
//! stdout stays for command output that scripts read.

use std::io::IsTerminal;

use tandem_config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber once; `RUST_LOG` overrides the configured level.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // A second init (tests, or `up` after a command already logged) keeps the first subscriber.
    let _ = result;
}

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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Warnings and errors also go to the dashboard's list (`/admin/`).
    let result = match format {
        LogFormat::Human => builder.finish().with(RecentErrors).try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).finish().with(RecentErrors).try_init()
        }
    };
    // A second init (tests, or `up` after a command already logged) keeps the first subscriber.
    let _ = result;
}

/// Hands WARN and ERROR events to the dashboard's recent-errors list.
struct RecentErrors;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RecentErrors {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            _ => return,
        };
        let mut text = Text(String::new());
        event.record(&mut text);
        tandem_frontend::admin_dashboard::recent_errors::record(level, event.metadata().target(), text.0.trim());
    }
}

/// The event's message followed by its fields (`name=value`).
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
            self.0.push(' ');
        } else {
            self.0.push_str(&format!("{}={value} ", field.name()));
        }
    }
}

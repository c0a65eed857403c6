//! `tandem`: one binary for both server roles and the administration commands.
//!
//! Commands mirror the cmdlets administrators know (docs/ADMIN.md keeps the map), one module per
//! command group under [`commands`]. Bad input — a malformed flag, configuration or address —
//! ends with one line on stderr and exit code 2, before anything is changed; a failure while
//! running ends with exit code 1. [`deployment`] runs the roles for `up` and `serve`.

mod commands;
mod deployment;
mod failure;
mod logging;

use std::process::ExitCode;

use clap::Parser;

use crate::failure::{EXIT_FAILURE, EXIT_USAGE, Failure};

fn main() -> ExitCode {
    // Exactly one crypto provider for every TLS use in the process (listeners, clients, sqlx).
    if rustls::crypto::aws_lc_rs::default_provider().install_default().is_err() {
        eprintln!("tandem: a TLS crypto provider was already installed");
    }
    let args = commands::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("tandem: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("tandem: {}", one_line(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The error chain on one line. Errors that print their source themselves would repeat it, so a
/// cause already contained in the text before it is left out.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain().map(ToString::to_string) {
        if !parts.iter().any(|p| p.contains(&cause)) {
            parts.push(cause);
        }
    }
    parts.join(": ").split_whitespace().collect::<Vec<_>>().join(" ")
}

//! `tandem config`: check a configuration file, print the commented example.

use std::path::PathBuf;

use clap::Subcommand;
use tandem_config::{Config, Overrides};

use crate::failure::CliResult;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse a configuration file and report the first problem.
    Check { file: PathBuf },
    /// Print a commented example configuration.
    Example,
}

pub fn run(cmd: ConfigCommand) -> CliResult {
    match cmd {
        ConfigCommand::Check { file } => {
            let cfg = Config::load(&file, &Overrides::default())?;
            println!("{}: ok (domain {}, data in {})", file.display(), cfg.domain, cfg.data_dir.display());
            Ok(())
        }
        ConfigCommand::Example => {
            print!("{}", tandem_config::EXAMPLE);
            Ok(())
        }
    }
}

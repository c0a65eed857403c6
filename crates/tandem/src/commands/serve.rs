//! `tandem up` (both roles, embedded stores, demo users) and `tandem serve` (roles from a
//! configuration file, as deployed).

use std::path::PathBuf;

use clap::Args;
use tandem_config::{Config, LogFormat, Overrides, RoleSelection};

use crate::deployment::{self, Demo};
use crate::failure::CliResult;
use crate::logging;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where state is kept [default: ./tandem-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The organisation's SIP and SMTP domain [default: litwareinc.com]
    #[arg(long)]
    domain: Option<String>,
    /// Start from this configuration file (first start only; later starts use the data directory's).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long, value_enum, default_value = "all")]
    role: RoleSelection,
}

pub async fn up(args: UpArgs, log_format: Option<LogFormat>) -> CliResult {
    let UpArgs { data_dir, domain, config } = args;
    let (mut cfg, first) = deployment::for_up(data_dir.as_deref(), domain.as_deref(), config.as_deref())?;
    let demo = Demo::from_env()?;
    if let Some(f) = log_format {
        cfg.log.format = f;
    }
    logging::init(cfg.log.format, &cfg.log.level);
    let file = if first {
        let file = deployment::write_config(&cfg)?;
        tracing::info!(config = %file.display(), "first start: configuration written");
        file
    } else {
        cfg.data_dir.join(tandem_config::CONFIG_FILE_NAME)
    };
    deployment::run(cfg, &file, RoleSelection::All, Some(demo), true).await
}

pub async fn serve(args: ServeArgs, log_format: Option<LogFormat>) -> CliResult {
    let overrides = Overrides { log_format, ..Overrides::default() };
    let cfg = Config::load(&args.config, &overrides)?;
    logging::init(cfg.log.format, &cfg.log.level);
    deployment::run(cfg, &args.config, args.role, None, false).await
}

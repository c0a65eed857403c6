//! `tandem cert`: the deployment's TLS certificates (Get-ExchangeCertificate / Get-CsCertificate).

use anyhow::Context;
use clap::Subcommand;
use tandem_config::Config;
use tandem_pki::Pki;

use super::Location;
use crate::failure::{CliResult, usage};

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Subject, names, key size, SHA-1 thumbprint and expiry of every certificate.
    List {
        #[command(flatten)]
        location: Location,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: CertCommand) -> CliResult {
    match cmd {
        CertCommand::List { location, json } => list(&location.config()?, json),
    }
}

fn list(cfg: &Config, json: bool) -> CliResult {
    let pki = Pki::new(cfg.pki_dir());
    let certs = pki.list().with_context(|| format!("cannot read {}", pki.dir().display()))?;
    if certs.is_empty() {
        return Err(usage(format!("no certificates in {}: run `tandem up` first", pki.dir().display())));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&certs).context("serialising certificates")?);
        return Ok(());
    }
    for c in &certs {
        println!("Path          : {}", c.path);
        println!("Subject       : {}", c.subject);
        println!("Issuer        : {}", c.issuer);
        println!("SANs          : {}", c.subject_alt_names.join(", "));
        println!("Key           : {} {} bits", c.key_algorithm, c.key_bits);
        println!("Thumbprint    : {}", c.thumbprint);
        println!("NotAfter      : {}{}", c.not_after, if c.is_ca { "  (CA)" } else { "" });
        println!();
    }
    Ok(())
}

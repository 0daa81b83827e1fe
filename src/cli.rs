//! The command line: `sealgate [serve]`, `check-config`, and the global `--config`.

use std::path::PathBuf;

pub mod bulk;
pub mod migrate;
pub mod rewrap;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sealgate",
    version,
    about = "Transparent encrypting S3 proxy: SigV4 in, SigV4 out, AES-256-GCM at rest under cached bucket keys",
    after_help = "Examples:\n  sealgate                          # embedded backend + local KMS, prints credentials\n  sealgate --config /etc/sealgate/config.toml\n  SEALGATE_BACKEND__ENDPOINT=http://127.0.0.1:9000 SEALGATE_BACKEND__ACCESS_KEY=... \\\n    SEALGATE_BACKEND__SECRET_KEY=... sealgate serve\n  sealgate check-config --config config.toml\n\nEvery config key can be set as SEALGATE_SECTION__KEY (see config.example.toml)."
)]
pub struct Cli {
    /// TOML configuration file (also SEALGATE_CONFIG).
    #[arg(long, short, global = true, env = "SEALGATE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Re-wrap objects under the bucket policy's current KMS key (metadata only).
    Rewrap(rewrap::RewrapArgs),
    /// Encrypt a bucket's plaintext objects in place.
    Migrate(migrate::MigrateArgs),
}

//! The command line: `sealgate [serve]` and the operator tools (`check-config`,
//! `inspect`, `keygen`, `decrypt`, `rewrap`, `migrate`), with the global `--config`.
//!
//! This module owns argument parsing and dispatch; each tool lives in its own
//! submodule. The tools reach the backend and the KMS with the same code the proxy
//! uses ([`crate::upstream::Backend`], [`crate::kms`]), built from the same config, but
//! never start a listener: they work with the proxy stopped, so data is never hostage
//! to a running proxy.
//!
//! Exit codes: 0 success; 1 a check or operation failed; 2 the configuration (or the
//! command line) is invalid.

pub mod bulk;
pub mod check;
pub mod decrypt;
pub mod inspect;
pub mod keygen;
pub mod keys;
pub mod migrate;
pub mod progress;
pub mod rewrap;
pub mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

const MAIN_EXAMPLES: &str = "\
Examples:
  sealgate                          # embedded backend + local KMS, prints credentials
  sealgate --config /etc/sealgate/config.toml
  SEALGATE_BACKEND__ENDPOINT=http://127.0.0.1:7480 SEALGATE_BACKEND__ACCESS_KEY=... \\
    SEALGATE_BACKEND__SECRET_KEY=... sealgate serve
  sealgate check-config --config config.toml
  sealgate inspect s3://photos/2024/cat.jpg
  sealgate decrypt s3://photos/2024/cat.jpg -o cat.jpg
  sealgate keygen --output /var/lib/sealgate/master.key
  sealgate rewrap --bucket photos --dry-run
  sealgate migrate --bucket legacy --jobs 8

Every config key can be set as SEALGATE_SECTION__KEY (see config.example.toml).
Exit codes: 0 ok, 1 a check or operation failed, 2 invalid configuration.";

const CHECK_EXAMPLES: &str = "\
Checks, one line each (ok / WARN / FAIL and the cause):
  config, TLS files, backend reachable, backend credentials, KMS reachable,
  KMS key usable (aws: DescribeKey of every configured key id; local: the master key
  file is readable, private and 256-bit).

Examples:
  sealgate check-config --config /etc/sealgate/config.toml
  sealgate check-config --config config.toml --offline   # files only, no network
  sealgate check-config --config config.toml --config-only   # the configuration alone

Exit codes: 0 every check passed, 1 a check failed, 2 the configuration does not parse.";

const INSPECT_EXAMPLES: &str = "\
Shows what the backend holds for one object: format version, key path (derived or
wrapped data key), KMS key id, bucket key on/off and its fingerprint, segment size,
ciphertext and plaintext sizes, parts, part size, ETag. Never shows key material and
calls no KMS.

Examples:
  sealgate inspect s3://photos/2024/cat.jpg
  sealgate inspect s3://photos/2024/cat.jpg --json | jq .plaintext_size";

const KEYGEN_EXAMPLES: &str = "\
Creates a new 256-bit local master key file (mode 0600) and prints its path and
fingerprint. Objects written under a master key can only be read with that key: back
it up (see docs/OPERATIONS.md) before writing data.

Examples:
  sealgate keygen                                    # kms.master_key_file from the config
  sealgate keygen --output /var/lib/sealgate/master.key
  sealgate keygen --output master.key --force        # replace (old objects become unreadable)";

const DECRYPT_EXAMPLES: &str = "\
Decrypts one object without a running proxy, with the KMS from the config (local
master key file or AWS KMS). Everything is verified; on any failure the output file is
not created. The output is written to a temporary file and renamed when complete.

The part count (needed to size multipart objects) comes from the ETag's `-N` suffix;
pass --parts N when the ETag is unknown or was rewritten.

Examples:
  # download raw from the backend and decrypt
  sealgate decrypt s3://photos/2024/cat.jpg -o cat.jpg
  # from a raw copy and the object's metadata (aws s3api head-object --output json)
  aws s3api head-object --bucket photos --key 2024/cat.jpg > cat.head.json
  sealgate decrypt --bucket photos --key 2024/cat.jpg --input cat.raw \\
    --metadata-from cat.head.json -o cat.jpg
  # or with the envelope value itself
  sealgate decrypt --bucket photos --key 2024/cat.jpg --input cat.raw \\
    --envelope \"$ENVELOPE\" --parts 3 -o cat.jpg";

#[derive(Debug, Parser)]
#[command(
    name = "sealgate",
    version,
    about = "Transparent encrypting S3 proxy: SigV4 in, SigV4 out, AES-256-GCM at rest under cached bucket keys",
    after_help = MAIN_EXAMPLES
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
    #[command(after_help = "Example:\n  sealgate serve --config /etc/sealgate/config.toml")]
    Serve,
    /// Validate the configuration and test the backend, KMS and TLS files it names.
    #[command(after_help = CHECK_EXAMPLES)]
    CheckConfig(CheckArgs),
    /// Show an object's encryption envelope and layout as stored on the backend.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Create a new local master key file.
    #[command(after_help = KEYGEN_EXAMPLES)]
    Keygen(KeygenArgs),
    /// Decrypt an object offline, from the backend or from a raw copy.
    #[command(after_help = DECRYPT_EXAMPLES)]
    Decrypt(DecryptArgs),
    /// Re-wrap objects under the bucket policy's current KMS key (metadata only).
    Rewrap(rewrap::RewrapArgs),
    /// Encrypt a bucket's plaintext objects in place.
    Migrate(migrate::MigrateArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check files only: skip every check that needs the network.
    #[arg(long)]
    pub offline: bool,
    /// Validate the configuration itself only: no file and no network checks (for
    /// configs whose files and hosts exist only where they are deployed).
    #[arg(long, conflicts_with = "offline")]
    pub config_only: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The object, as s3://BUCKET/KEY.
    pub object: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to create the key; default: kms.master_key_file, else
    /// embedded.data_dir/master.key.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Replace an existing key file. Objects written under the old key become
    /// unreadable unless it is kept elsewhere.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The object as s3://BUCKET/KEY: downloaded raw from the backend.
    #[arg(conflicts_with_all = ["bucket", "key", "input"])]
    pub object: Option<String>,
    /// Bucket the object was written to (the envelope is bound to it).
    #[arg(long, requires_all = ["key", "input"])]
    pub bucket: Option<String>,
    /// Object key the object was written under (the envelope is bound to it).
    #[arg(long)]
    pub key: Option<String>,
    /// The raw (encrypted) object body, as downloaded from the backend.
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// The envelope: the value of the object's x-amz-meta-sealgate-envelope.
    #[arg(long, conflicts_with = "metadata_from")]
    pub envelope: Option<String>,
    /// A file with the object's metadata: `aws s3api head-object` JSON output, or
    /// response headers (`curl -I`, `Name: value` lines).
    #[arg(long)]
    pub metadata_from: Option<PathBuf>,
    /// Number of parts of a multipart object (default: from the ETag, else 1).
    #[arg(long)]
    pub parts: Option<u32>,
    /// Where to write the plaintext.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Show a progress line on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// Why an operator tool failed; the text is the one line shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Usage(String),
    #[error("backend: {0}")]
    Backend(String),
    #[error("s3://{bucket}/{key}: no such object on the backend")]
    NoSuchObject { bucket: String, key: String },
    #[error("KMS: {0}")]
    Kms(#[from] crate::kms::KmsError),
    #[error("{0}")]
    KmsSetup(#[from] crate::kms::KmsBuildError),
    #[error("verification failed: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("envelope: {0}")]
    Envelope(#[from] crate::crypto::EnvelopeError),
    #[error("decryption failed: {0}")]
    Decrypt(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl ToolError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ToolError + '_ {
        move |source| ToolError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Splits `s3://BUCKET/KEY`.
pub fn parse_s3_url(url: &str) -> Result<(String, String), ToolError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| ToolError::Usage(format!("{url}: expected s3://BUCKET/KEY")))?;
    match rest.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_string(), k.to_string())),
        _ => Err(ToolError::Usage(format!("{url}: expected s3://BUCKET/KEY"))),
    }
}

/// Runs an operator tool (every command but `serve`) to completion.
pub fn run_tool(command: Command, config: Config) -> ExitCode {
    crate::server::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve | Command::Rewrap(_) | Command::Migrate(_) => Err(ToolError::Usage(
                "serve, rewrap and migrate run from main, not as tools".into(),
            )),
            Command::CheckConfig(args) => Ok(check::run(&config, &args).await),
            Command::Inspect(args) => inspect::run(&config, &args).await.map(|()| true),
            Command::Keygen(args) => keygen::run(&config, &args).map(|()| true),
            Command::Decrypt(args) => decrypt::run(&config, &args).await.map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(ToolError::Usage(m)) => {
            eprintln!("sealgate: {m}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("sealgate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_key() {
        assert_eq!(
            parse_s3_url("s3://b/dir/k.txt").unwrap(),
            ("b".to_string(), "dir/k.txt".to_string())
        );
        for bad in ["b/k", "s3://b", "s3://b/", "s3:///k"] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

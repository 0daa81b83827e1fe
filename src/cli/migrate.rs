//! `sealgate migrate`: encrypts every plaintext object of a bucket in place, through
//! the same code as a CopyObject of a plaintext source into an encrypting bucket
//! (user metadata and content headers kept). Objects that already have an envelope are
//! skipped, so a killed run followed by a new one finishes without loss or double work.
//!
//! Concurrent writers: each object is re-checked by HEAD against its listed ETag, read
//! pinned to that ETag, and written with `If-Match: <ETag>`. Backends that honour
//! conditional writes (Ceph RGW, AWS S3) then refuse the write if the object changed
//! after the read; on backends that ignore `If-Match` on PUT, an overwrite landing
//! between the read and the write of one object is lost (the window is one object's
//! read-seal-write time). Run it with writers paused there.

use std::process::ExitCode;

use clap::Args;
use http::HeaderMap;

use super::bulk::{self, Outcome};
use crate::config::Config;
use crate::rekey::{self, MAX_COPY_SOURCE_LEN, ObjectRef};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The bucket whose plaintext objects are encrypted in place.
    #[arg(long)]
    pub bucket: String,
    /// Only objects whose key starts with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Count what would be encrypted, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Objects in flight at once.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
}

pub fn main(config: Config, args: MigrateArgs) -> ExitCode {
    if !config.policy(&args.bucket).encrypt {
        eprintln!(
            "sealgate migrate: the policy of bucket {} does not encrypt; nothing to do",
            args.bucket
        );
        return ExitCode::from(2);
    }
    bulk::main(config, "migrate", |state| async move {
        let dry_run = args.dry_run;
        bulk::run_over(
            &state,
            "migrate",
            if dry_run { "would migrate" } else { "migrated" },
            &args.bucket,
            &args.prefix,
            args.jobs,
            |rc, listed| async move {
                let at = ObjectRef {
                    bucket: rc.target.bucket.clone().unwrap_or_default(),
                    key: listed.key.clone(),
                    version_id: None,
                };
                let src = match rekey::head_source(&rc, &at).await {
                    Ok(s) => s,
                    Err(e) => return Outcome::Failed(e.to_string()),
                };
                if src.envelope.is_some() {
                    return Outcome::Skipped;
                }
                if src.etag_str() != listed.etag.trim_matches('"') {
                    return Outcome::Failed("changed since it was listed; run again".into());
                }
                if src.plain_len > MAX_COPY_SOURCE_LEN {
                    return Outcome::Failed("larger than 5 GiB, the largest single PUT".into());
                }
                if dry_run {
                    return Outcome::Done;
                }
                let meta = rekey::copied_metadata(&src.headers);
                let etag = src.etag.clone();
                match rekey::through::encrypt(&rc, &src, &at, &HeaderMap::new(), meta, Some(&etag))
                    .await
                {
                    Ok(_) => Outcome::Done,
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            },
        )
        .await
    })
}

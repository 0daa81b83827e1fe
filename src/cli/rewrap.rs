//! `sealgate rewrap`: re-wraps existing objects under the bucket policy's current KMS
//! key and a current bucket key, by metadata only: each object is copied onto itself
//! server-side with its data key re-wrapped (the body is never read), conditional on
//! the ETag its HEAD returned, so a concurrent overwrite is never clobbered. Objects
//! already on the policy's key are skipped, so a second run does nothing.

use std::process::ExitCode;

use clap::Args;
use http::HeaderMap;

use super::bulk::{self, Outcome};
use crate::config::Config;
use crate::rekey::{self, ObjectRef};
use crate::s3::encryption;

#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// The bucket whose objects are re-wrapped.
    #[arg(long)]
    pub bucket: String,
    /// Only objects whose key starts with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Count what would be re-wrapped, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Objects in flight at once.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
}

pub fn main(config: Config, args: RewrapArgs) -> ExitCode {
    bulk::main(config, "rewrap", |state| async move {
        // The key ids an up-to-date envelope may name: the policy's, and the one KMS
        // reports for it (an alias resolves to a key ARN).
        let probe = bulk::context(&state, "rewrap", &args.bucket, "", 0);
        let (policy_key, bucket_key) =
            encryption::write_target(&probe, &args.bucket, &HeaderMap::new())
                .map_err(|e| e.to_string())?;
        let reported = state
            .keys
            .key_for_write(&args.bucket, &policy_key)
            .await
            .map_err(|e| format!("KMS key {policy_key}: {e}"))?
            .kms_key_id
            .clone();
        let dry_run = args.dry_run;
        bulk::run_over(
            &state,
            "rewrap",
            if dry_run { "would rewrap" } else { "rewrapped" },
            &args.bucket,
            &args.prefix,
            args.jobs,
            |rc, listed| {
                let (policy_key, reported) = (policy_key.clone(), reported.clone());
                async move {
                    let at = ObjectRef {
                        bucket: rc.target.bucket.clone().unwrap_or_default(),
                        key: listed.key.clone(),
                        version_id: None,
                    };
                    let src = match rekey::head_source(&rc, &at).await {
                        Ok(s) => s,
                        Err(e) => return Outcome::Failed(e.to_string()),
                    };
                    let Some(env) = &src.envelope else {
                        return Outcome::Skipped;
                    };
                    let on_key = env.kms_key_id() == policy_key || env.kms_key_id() == reported;
                    if on_key && env.bucket_key() == bucket_key {
                        return Outcome::Skipped;
                    }
                    if dry_run {
                        return Outcome::Done;
                    }
                    let meta = rekey::copied_metadata(&src.headers);
                    match rekey::server_side::copy(&rc, &src, &at, &HeaderMap::new(), meta).await {
                        Ok(_) => Outcome::Done,
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
            },
        )
        .await
    })
}

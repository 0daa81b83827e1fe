//! What `rewrap` and `migrate` share: the proxy's own state built from the same config
//! as `serve`, the bucket listing, bounded concurrency, progress on stderr once per
//! second (count/total and rate) and the final summary.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

use crate::config::Config;
use crate::rekey::list::{self, Listed};
use crate::s3::handlers::RequestContext;
use crate::s3::op::{Operation, Target};
use crate::server::{Built, build_state};
use crate::service::AppState;

/// What happened to one object.
#[derive(Debug)]
pub enum Outcome {
    /// Re-keyed (or would be, in a dry run).
    Done,
    /// Nothing to do.
    Skipped,
    /// Left as it was; the reason is printed.
    Failed(String),
}

/// Counts of a finished run.
#[derive(Debug, Default)]
pub struct Summary {
    pub examined: u64,
    pub done: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// A context for one object operation of a bulk command: audit records name the
/// command as identity and operation CopyObject (the commands copy objects onto
/// themselves).
pub fn context(
    state: &Arc<AppState>,
    command: &str,
    bucket: &str,
    key: &str,
    n: usize,
) -> RequestContext {
    RequestContext {
        state: state.clone(),
        request_id: format!("{command}-{n}"),
        target: Target {
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            query: Vec::new(),
            virtual_hosted: false,
        },
        operation: Operation::CopyObject,
        identity: format!("sealgate-{command}"),
        // The operator's own command: `[backend]`'s identity.
        backend: state.backend.own_identity(),
    }
}

/// Builds the runtime and state, runs `body`, and maps its summary to an exit code
/// (1 when any object failed, 2 when the run could not start).
pub fn main<F, Fut>(config: Config, command: &'static str, body: F) -> ExitCode
where
    F: FnOnce(Arc<AppState>) -> Fut,
    Fut: Future<Output = Result<Summary, String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealgate {command}: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let Built {
            state, embedded, ..
        } = match build_state(config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("sealgate {command}: {e}");
                return ExitCode::from(2);
            }
        };
        let result = body(state).await;
        if let Some(e) = embedded {
            e.stop().await;
        }
        match result {
            Ok(s) if s.failed == 0 => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            Err(e) => {
                eprintln!("sealgate {command}: {e}");
                ExitCode::from(2)
            }
        }
    })
}

/// Lists `bucket` under `prefix` and runs `per_object` over every object, `jobs` at a
/// time, printing progress and the summary; `verb` names what `Done` means.
pub async fn run_over<F, Fut>(
    state: &Arc<AppState>,
    command: &'static str,
    verb: &'static str,
    bucket: &str,
    prefix: &str,
    jobs: usize,
    per_object: F,
) -> Result<Summary, String>
where
    F: Fn(RequestContext, Listed) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let started = Instant::now();
    let listing = context(state, command, bucket, "", 0);
    let objects = list::all_objects(&listing, bucket, prefix)
        .await
        .map_err(|e| format!("listing bucket {bucket}: {e}"))?;
    let total = objects.len();
    eprintln!("sealgate {command}: {total} objects in {bucket}/{prefix}");
    let finished = Arc::new(AtomicU64::new(0));
    let ticker = {
        let finished = finished.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = finished.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(0.001);
                eprintln!(
                    "sealgate {command}: {n}/{total} objects ({:.1}/s)",
                    n as f64 / secs
                );
            }
        })
    };
    let outcomes: Vec<(String, Outcome)> = stream::iter(objects.into_iter().enumerate())
        .map(|(i, obj)| {
            let rc = context(state, command, bucket, &obj.key, i + 1);
            let finished = finished.clone();
            let key = obj.key.clone();
            let fut = per_object(rc, obj);
            async move {
                let outcome = fut.await;
                if let Outcome::Failed(why) = &outcome {
                    eprintln!("sealgate {command}: {key}: {why}");
                }
                finished.fetch_add(1, Ordering::Relaxed);
                (key, outcome)
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    ticker.abort();
    let mut s = Summary::default();
    for (_, o) in &outcomes {
        s.examined += 1;
        match o {
            Outcome::Done => s.done += 1,
            Outcome::Skipped => s.skipped += 1,
            Outcome::Failed(_) => s.failed += 1,
        }
    }
    eprintln!(
        "sealgate {command}: examined {}, {verb} {}, skipped {}, failed {} in {:.1}s",
        s.examined,
        s.done,
        s.skipped,
        s.failed,
        started.elapsed().as_secs_f64()
    );
    Ok(s)
}

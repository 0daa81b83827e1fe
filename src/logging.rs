//! The process's log: `tracing` events formatted as text or JSON lines on stderr.
//!
//! A request's thread never writes to stderr itself. At the default level every request
//! logs a line, and a synchronous write per line put a system call on the request path
//! and let a slow reader of stderr (a full pipe to a container runtime or journald)
//! stall the runtime's worker threads: written that way, the line cost 7.5-12.5 µs of
//! CPU per 4 KiB request, now 2.5-6 µs under load (docs/PERFORMANCE.md, "The request
//! log"). Lines are formatted where they happen and queued to one writer thread, which
//! writes what has queued up in batches of up to 64 KiB. When the queue is full (16,384
//! lines: the reader has fallen that far behind) new lines are dropped, not waited
//! for, and counted in `sealgate_log_lines_dropped_total`.

use std::io::{BufWriter, IsTerminal};
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::config::{LogConfig, LogFormat};

/// Bytes the writer thread gathers before a write (it also writes whenever the queue
/// runs empty, so a quiet proxy's lines are not held back).
const BATCH_BYTES: usize = 64 * 1024;

/// Lines queued before new ones are dropped: at ~300 bytes a line, ~5 MB of a reader's
/// lag.
const QUEUED_LINES: usize = 16_384;

/// Lines dropped because the queue was full, once logging is set up.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the writer thread running; dropping it writes out every queued line. Hold it
/// until the process is done logging.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: WorkerGuard,
}

/// Installs the global subscriber: `config.level` as a tracing filter, lines on stderr
/// through the writer thread.
pub fn init(config: &LogConfig) -> LogGuard {
    let (writer, guard) = writer();
    let _ = DROPPED.set(writer.error_counter());
    let filter = tracing_subscriber::EnvFilter::new(&config.level);
    // Colour only for a person at a terminal: escape codes in a file or a log
    // collector's pipe are noise to every reader and parser there.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match config.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    LogGuard { _writer: guard }
}

fn writer() -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("sealgate-log")
        .finish(BufWriter::with_capacity(BATCH_BYTES, std::io::stderr()))
}

/// Lines dropped so far because the writer thread could not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

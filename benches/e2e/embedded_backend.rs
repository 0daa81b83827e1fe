//! The embedded backend on its own, for `benches/e2e.sh`: the same S3 server over a
//! directory (s3s-fs as a library) that `sealgate` starts when no backend is
//! configured, served on a loopback port with `TCP_NODELAY`.
//!
//! The benchmark's "embedded" backend used to be the standalone `s3s-fs` binary, which
//! leaves Nagle's algorithm on: a GET answer is written as a head and then a body, and
//! the body waits for the client's delayed ACK of the head, up to 40 ms. That stall,
//! not any proxy, decided the 4 KiB GET figures of every target in front of it.
//!
//! ```text
//! embedded-backend DATA_DIR     prints endpoint=, access_key=, secret_key=, region=
//!                               and serves until SIGTERM or Ctrl-C
//! ```

use std::path::PathBuf;

use sealgate::embedded::EmbeddedBackend;

#[tokio::main]
async fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: embedded-backend DATA_DIR");
        std::process::exit(2);
    };
    let backend = match EmbeddedBackend::start(&dir).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("embedded-backend: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "endpoint={}\naccess_key={}\nsecret_key={}\nregion=us-east-1",
        backend.endpoint, backend.access_key, backend.secret_key
    );
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("embedded-backend: {e}");
            std::process::exit(1);
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    backend.stop().await;
}

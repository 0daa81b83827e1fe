//! Entry point: parse the command line, load config, set up logging, run the proxy or
//! hand an operator tool to [`sealgate::cli::run_tool`].

use std::process::ExitCode;

use clap::Parser;
use sealgate::cli::{Cli, Command};
use sealgate::config::Config;
use sealgate::logging;

/// jemalloc, not glibc's malloc: a request allocates ~90 times, five of them above the
/// 1 KiB glibc serves from its per-thread cache (the request and handler futures, the
/// backend answer's read buffer, a sealed segment), and glibc takes those through its
/// shared bins, consolidating its fast bins on the way. jemalloc caches all of them per
/// thread: 1-9 µs (a median of 4) less of the proxy's CPU per 4 KiB request at 16-64 in
/// flight, large transfers as fast as before (docs/PERFORMANCE.md, "Allocator").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load_from_process(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            if matches!(cli.command, Some(Command::CheckConfig(_))) {
                println!("FAIL  config               {e}");
            }
            eprintln!("sealgate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Rewrap(args) => {
            let _log = logging::init(&config.log);
            sealgate::cli::rewrap::main(config, args)
        }
        Command::Migrate(args) => {
            let _log = logging::init(&config.log);
            sealgate::cli::migrate::main(config, args)
        }
        Command::Serve => {
            let _log = logging::init(&config.log);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = config.server.worker_threads {
                builder.worker_threads(n);
            }
            let runtime = match builder.enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("sealgate: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(sealgate::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sealgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        tool => sealgate::cli::run_tool(tool, config),
    }
}

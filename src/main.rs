//! Entry point: parse the command line, load config, set up logging, run the proxy or
//! hand an operator tool to [`sealgate::cli::run_tool`].

use std::process::ExitCode;

use clap::Parser;
use sealgate::cli::{Cli, Command};
use sealgate::config::{Config, LogFormat};

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
            init_tracing(&config);
            sealgate::cli::rewrap::main(config, args)
        }
        Command::Migrate(args) => {
            init_tracing(&config);
            sealgate::cli::migrate::main(config, args)
        }
        Command::Serve => {
            init_tracing(&config);
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

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

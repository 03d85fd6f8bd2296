//! `host-server`: runs the Loom Auth API, or administers its accounts
//! (`host-server users …`). `host-server --help` lists every setting.

use std::process::ExitCode;

use clap::Parser;
use host_server::config::Config;
use host_server::startup::Server;

fn main() -> ExitCode {
    unset_empty_settings();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A setting's environment variable set to nothing (`LOOM_AUTH_PUBLIC_URL= host-server`) counts
/// as unset, as shells and most tools read it, rather than as an invalid value.
fn unset_empty_settings() {
    for (name, value) in std::env::vars_os() {
        let setting = name.to_str().is_some_and(|n| n.starts_with("LOOM_AUTH_") || n == "DATABASE_URL");
        if setting && value.is_empty() {
            // SAFETY: called first thing in `main`, before any other thread exists.
            unsafe { std::env::remove_var(&name) };
        }
    }
}

async fn run() -> ExitCode {
    let config = Config::parse();
    let outcome = match &config.command {
        Some(command) => {
            host_server::telemetry::init_at(config.log_format, "warn");
            host_server::admin::run(&config, command).await
        }
        None => {
            config.check();
            host_server::telemetry::init(config.log_format);
            serve(config).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::build(&config).await?;
    tracing::info!("listening on http://{}", server.local_addr()?);
    server.run().await?;
    Ok(())
}

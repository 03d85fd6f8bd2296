//! `host-server`: runs the Loom Auth API, or administers its accounts
//! (`host-server users …`). `host-server --help` lists every setting.

use std::process::ExitCode;

use clap::Parser;
use host_server::config::Config;
use host_server::startup::Server;

#[tokio::main]
async fn main() -> ExitCode {
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

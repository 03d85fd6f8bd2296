//! `host-server`: runs the Loom Auth API. `host-server --help` lists every setting.

use std::process::ExitCode;

use clap::Parser;
use host_server::config::Config;
use host_server::startup::Server;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    config.check();
    host_server::telemetry::init();
    match serve(config).await {
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

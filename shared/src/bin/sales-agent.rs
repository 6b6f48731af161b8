//! The local mode's command line: `demo` runs the sample campaign, `serve` runs the API, the
//! workers and the scheduler in one process. Configuration comes from the environment.

use clap::{Parser, Subcommand};
use sales_agent::config::Settings;
use sales_agent::local::{EmbeddedRuntime, demo, serve};

#[derive(Parser)]
#[command(name = "sales-agent", version, about = "An AI sales agent: research, draft and send personal outreach, and handle the replies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sample campaign offline and print where every lead ended.
    Demo,
    /// Serve the REST API with the workers and the scheduler in this process.
    Serve,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo prints its own summary; only problems should interrupt it.
    sales_agent::telemetry::init_with_default(if matches!(cli.command, Command::Demo) { "warn" } else { "info" });
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Demo => print!("{}", demo::run(settings).await?.render()),
        Command::Serve => serve::serve(EmbeddedRuntime::open(settings)?).await?,
    }
    Ok(())
}

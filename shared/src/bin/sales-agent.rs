//! The command line: `demo` runs the sample campaign, `serve` runs the API, the workers and the
//! scheduler in one process, `api-key` manages API keys. Configuration comes from the
//! environment (see README), so `api-key` works on the local store and on a deployed table alike.

use clap::{Parser, Subcommand};
use sales_agent::config::Settings;
use sales_agent::local::{EmbeddedRuntime, demo, serve};
use sales_agent::runtime::Runtime;

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
    /// Manage API keys in the configured store.
    ApiKey {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Issue a key; the token is printed once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by its id.
    Revoke { id: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo and key commands print their own output; only problems should interrupt it.
    sales_agent::telemetry::init_with_default(if matches!(cli.command, Command::Serve) { "info" } else { "warn" });
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Demo => print!("{}", demo::run(settings).await?.render()),
        Command::Serve => serve::serve(EmbeddedRuntime::open(settings)?).await?,
        Command::ApiKey { action } => {
            let runtime = Runtime::connect(settings).await?;
            let output = match action {
                KeyAction::Create { name } => sales_agent::admin::create_api_key(&runtime, &name).await?,
                KeyAction::List => sales_agent::admin::list_api_keys(&runtime).await?,
                KeyAction::Revoke { id } => sales_agent::admin::revoke_api_key(&runtime, &id).await?,
            };
            print!("{output}");
        }
    }
    Ok(())
}

//! The research worker: handles batches from the research queue with partial batch failures.

use sales_agent::config::Settings;
use sales_agent::local::EmbeddedRuntime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sales_agent::telemetry::init();
    let runtime = EmbeddedRuntime::open(Settings::from_env()?)?;
    sales_agent::lambda::serve_step_worker(runtime.research_step()).await
}

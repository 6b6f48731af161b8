//! The scheduled function: reads replies, then enqueues the follow-ups that are due.

use sales_agent::config::Settings;
use sales_agent::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sales_agent::telemetry::init();
    let runtime = Runtime::connect(Settings::from_env()?).await?;
    sales_agent::lambda::serve_scheduled(runtime, || async { Runtime::connect(Settings::from_env()?).await }).await
}

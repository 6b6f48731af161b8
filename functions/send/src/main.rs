//! The send worker: handles batches from the send queue with partial batch failures.

use sales_agent::config::Settings;
use sales_agent::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sales_agent::telemetry::init();
    let runtime = Runtime::connect(Settings::from_env()?).await?;
    let max_receive_count = runtime.settings.max_receive_count;
    sales_agent::lambda::serve_step_worker(runtime.send_step(), max_receive_count).await
}

//! The feedback function: applies SES's bounce, complaint and delivery events from the feedback
//! queue to their leads.

use sales_agent::config::Settings;
use sales_agent::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sales_agent::telemetry::init();
    let runtime = Runtime::connect(Settings::from_env()?).await?;
    sales_agent::lambda::serve_feedback(runtime.feedback_consumer()).await
}

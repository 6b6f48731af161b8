//! The REST API behind API Gateway: one router for every route.

use sales_agent::config::Settings;
use sales_agent::runtime::Runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sales_agent::telemetry::init();
    let runtime = Runtime::connect(Settings::from_env()?).await?;
    lambda_http::run(runtime.router()).await
}

//! The REST API behind API Gateway: one router for every route.

use sales_agent::config::Settings;
use sales_agent::local::EmbeddedRuntime;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sales_agent::telemetry::init();
    let runtime = EmbeddedRuntime::open(Settings::from_env()?)?;
    lambda_http::run(runtime.router()).await
}

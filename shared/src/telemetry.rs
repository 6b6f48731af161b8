//! Logging: JSON lines inside Lambda (CloudWatch Logs Insights can query them), readable lines
//! on a terminal. `RUST_LOG` adjusts the level as usual.

use tracing_subscriber::EnvFilter;

pub fn running_in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Logs at `info` unless `RUST_LOG` says otherwise.
pub fn init() {
    init_with_default("info");
}

/// Logs at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_with_default(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},hyper=warn,rustls=warn,reqwest=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if running_in_lambda() {
        // Lambda adds its own timestamp and request id to every line.
        builder.json().flatten_event(true).with_current_span(true).without_time().with_ansi(false).try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
    // A second call (tests, or a library user who set up logging first) keeps the first setup.
    let _ = result;
}

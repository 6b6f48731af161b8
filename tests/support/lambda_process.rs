//! The real send bootstrap run as Lambda runs it: a process whose only contact with "Lambda" is
//! the Runtime API, served here on loopback (`GET …/invocation/next` hands out the event,
//! `POST …/{id}/response` takes the answer), so a test can invoke it and kill it with SIGKILL.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Response;
use axum::routing::{get, post};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::stack::Stack;

#[derive(Default)]
struct Invocations {
    pending: Mutex<Vec<(String, String)>>,
    ready: Notify,
}

async fn next(State(invocations): State<Arc<Invocations>>) -> Response<Body> {
    loop {
        if let Some((id, event)) = invocations.pending.lock().unwrap().pop() {
            return Response::builder()
                .header("lambda-runtime-aws-request-id", id)
                .header("lambda-runtime-deadline-ms", (chrono::Utc::now().timestamp_millis() + 30_000).to_string())
                .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:sales-agent-send-test")
                .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
                .body(Body::from(event))
                .unwrap();
        }
        invocations.ready.notified().await;
    }
}

/// The function's answer to an invocation: taken, and not needed (the test reads the outcome
/// from the table and moto).
async fn answer(Path(_): Path<(String, String)>) -> &'static str {
    "{}"
}

/// A bootstrap that cannot start says why here; the test then fails for want of sends.
async fn init_error(body: String) -> &'static str {
    eprintln!("the send bootstrap failed to start: {body}");
    "{}"
}

/// The `send` bootstrap that `cargo build --workspace --bins` put beside the test binaries.
fn bootstrap() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join("send");
    assert!(path.exists(), "{} is missing: build the functions first (`cargo build --workspace --bins`; .ci/test does)", path.display());
    path
}

pub struct SendFunctionProcess {
    child: Child,
    invocations: Arc<Invocations>,
}

impl SendFunctionProcess {
    /// Starts the send function against `stack` (through its fault proxy, when it has one).
    pub async fn start(stack: &Stack) -> Self {
        let invocations = Arc::new(Invocations::default());
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(invocations.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let runtime_api = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let endpoint = stack.proxy.as_ref().map_or_else(crate::aws::endpoint, |p| p.endpoint.clone());
        let urls = &stack.queues.urls;
        let child = Command::new(bootstrap())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "sales-agent-send-test")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/sales-agent-send-test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("SALES_AGENT_TABLE", &stack.table)
            .env("SALES_AGENT_RESEARCH_QUEUE_URL", &urls.research)
            .env("SALES_AGENT_DRAFT_QUEUE_URL", &urls.draft)
            .env("SALES_AGENT_SEND_QUEUE_URL", &urls.send)
            .env("SALES_AGENT_SECRET_ARN", &stack.secret_id)
            .env("SALES_AGENT_PUBLIC_URL", "https://api.test.example")
            .env("SALES_AGENT_MAX_RECEIVE_COUNT", stack.queues.max_receive_count.to_string())
            // Tests never ask a resolver beyond this machine.
            .env("SALES_AGENT_DNS", "off")
            .env("SALES_AGENT_SES_MAX_SEND_RATE", "1000")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("the send bootstrap starts");
        Self { child, invocations }
    }

    /// Hands the function one invocation.
    pub async fn invoke(&mut self, event: &SqsEvent) {
        let id = uuid::Uuid::new_v4().to_string();
        self.invocations.pending.lock().unwrap().push((id, serde_json::to_string(event).unwrap()));
        self.invocations.ready.notify_waiters();
        self.invocations.ready.notify_one();
    }

    /// SIGKILL: no cleanup, no answer, exactly what a crashed or timed-out function leaves.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("the process can be killed");
        let _ = self.child.wait().await;
    }
}

//! `sales-agent serve`: the REST API, the three workers and the scheduler in one process.

use std::sync::Arc;

use anyhow::Context;

use super::{EmbeddedRuntime, LocalRunner};

impl EmbeddedRuntime {
    pub fn runner(&self) -> LocalRunner {
        LocalRunner {
            queue: self.queue.clone(),
            workers: self.workers(),
            scheduled: self.scheduled_tasks(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            max_receive_count: self.settings.max_receive_count,
        }
    }
}

pub async fn serve(runtime: EmbeddedRuntime) -> anyhow::Result<()> {
    let recovered = runtime.queue.recover_in_flight().await?;
    if recovered > 0 {
        tracing::info!(recovered, "messages that were in flight when the process stopped are queued again");
    }
    let listener =
        tokio::net::TcpListener::bind(runtime.settings.bind).await.with_context(|| format!("binding {}", runtime.settings.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(
        "serving the API on http://{address} (data in {}, emails written to {})",
        runtime.settings.data_dir.display(),
        EmbeddedRuntime::outbox_dir(&runtime.settings).display()
    );
    let runner = Arc::new(runtime.runner());
    let (stop_workers, workers_stopped) = tokio::sync::oneshot::channel::<()>();
    let interval = runtime.settings.scheduler_interval;
    let worker_task = tokio::spawn({
        let runner = runner.clone();
        async move {
            runner
                .run_until(interval, async {
                    let _ = workers_stopped.await;
                })
                .await
        }
    });
    axum::serve(listener, runtime.local_server_router()).with_graceful_shutdown(shutdown_signal()).await?;
    let _ = stop_workers.send(());
    worker_task.await?;
    tracing::info!("stopped; everything is saved in {}", runtime.settings.data_dir.display());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

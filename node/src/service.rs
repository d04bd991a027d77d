//! A background service once started: what stops it, and the task to
//! await. The daemon keeps its services in one list (`daemon.rs`).

use n0_future::task::AbortOnDropHandle;
use tokio::task::JoinHandle;

/// What stopping a service calls: it stops the service's tasks and returns
/// them, aborted, to be awaited.
type Stop = Box<dyn FnOnce() -> Vec<AbortOnDropHandle<()>> + Send>;

/// A running background service.
pub struct Running {
    name: &'static str,
    on_stop: Option<Stop>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("name", &self.name).finish()
    }
}

impl Running {
    /// A service that is one task: stopping it aborts the task and waits
    /// for it to end.
    pub fn task(name: &'static str, task: JoinHandle<()>) -> Running {
        Running {
            name,
            on_stop: None,
            task: Some(task),
        }
    }

    /// A service stopped by calling `stop`, which stops its own tasks and
    /// returns them to be awaited.
    pub fn stopped_by(
        name: &'static str,
        stop: impl FnOnce() -> Vec<AbortOnDropHandle<()>> + Send + 'static,
    ) -> Running {
        Running {
            name,
            on_stop: Some(Box::new(stop)),
            task: None,
        }
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Stops the service and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(stop) = self.on_stop.take() {
            for task in stop() {
                // Cancelled is the expected end.
                let _ = task.await;
            }
        }
        if let Some(task) = self.task.take() {
            task.abort();
            // Cancelled is the expected end; a panic was logged by tokio.
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    /// A service dropped without `stop` still stops (without waiting).
    fn drop(&mut self) {
        if let Some(stop) = self.on_stop.take() {
            // Dropped, the tasks are aborted; nothing waits for them here.
            drop(stop());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

//! Spawning a task with its future boxed.
//!
//! tokio instantiates its task machinery (the harness's poll, completion, shutdown and
//! join-handle paths) once per spawned future type. Every task of the library is spawned
//! through here, boxed as a `dyn Future`, so that machinery exists once per output type: a
//! smaller library (docs/SIZE.md) for one allocation per spawn (tasks are spawned per
//! connection, worker or fan-out, not per command on a connection).

use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinHandle;

type Task<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Spawning with the future boxed (see the module docs).
pub(crate) trait Spawn {
    /// Spawn `fut` on this runtime.
    fn spawn_task<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T>;
}

impl Spawn for tokio::runtime::Handle {
    fn spawn_task<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        self.spawn(Box::pin(fut) as Task<T>)
    }
}

/// Spawn `fut` on the current runtime (`tokio::spawn`), boxed.
pub(crate) fn spawn_task<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    tokio::spawn(Box::pin(fut) as Task<T>)
}

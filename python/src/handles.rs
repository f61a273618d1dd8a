//! The five handles that run handlers on threads of the core — `Worker`, `RpcServer`,
//! `StreamConsumer`, `HashWatcher`, `KeyspaceWatch` — with one lifecycle, the core's:
//! `stop(timeout)` (from inside one of its own handlers: asks and returns at once;
//! `TimeoutError` while a handler still runs at the deadline), `stopped`, `close()` and
//! `with`. Their Python objects are released by the core's `on_stopped`.

use std::time::Duration;

use bytes::Bytes;
use pyo3::prelude::*;

use crate::convert::Seconds;
use crate::errors::Core;
use crate::guard::Detached;
use crate::handler::Callback;
use crate::records::{ConsumerStats, WorkerStats};

/// How long `stop()` waits when not told: as long as dropping a handle waits in the core.
const STOP_TIMEOUT: Duration = redipc::DEFAULT_STOP_TIMEOUT;

/// A pyclass around the core handle `$core` (field `core`), with the lifecycle methods.
macro_rules! runner_handle {
    ($(#[$doc:meta])* $name:ident($core:ty) { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "redipc._native")]
        pub(crate) struct $name {
            core: Detached<$core>,
            $($field: $ty),*
        }

        impl $name {
            /// Wrap a started core handle; `callbacks` are released once it stopped.
            pub(crate) fn new(core: $core, callbacks: Vec<Callback>, $($field: $ty),*) -> Self {
                core.on_stopped(move || callbacks.iter().for_each(Callback::release));
                $name { core: Detached::new(core), $($field),* }
            }
        }

        context_manager!($name);

        #[pymethods]
        impl $name {
            /// Stop, waiting up to `timeout` seconds (default 10) for running handlers.
            #[pyo3(signature = (timeout = None))]
            fn stop(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<()> {
                let deadline = timeout.map_or(STOP_TIMEOUT, |t| t.0);
                py.core(|| self.core.stop(deadline))
            }

            /// The same as `stop()`.
            fn close(&self, py: Python<'_>) -> PyResult<()> {
                self.stop(py, None)
            }

            /// Whether it has stopped for good (every handler returned).
            #[getter]
            fn stopped(&self) -> bool {
                self.core.is_stopped()
            }

            /// Whether it has not stopped yet.
            #[getter]
            fn running(&self) -> bool {
                !self.core.is_stopped()
            }

            fn __repr__(&self) -> String {
                let state = if self.core.is_stopped() { " stopped" } else { "" };
                let label = String::from_utf8_lossy(&self.label);
                format!(concat!("<redipc.", stringify!($name), " {:?}{}>"), label, state)
            }
        }
    };
}

runner_handle! {
    /// A running request worker (`Client.handle_requests`).
    Worker(redipc::Worker) { label: Bytes, queues: Vec<Bytes> }
}

runner_handle! {
    /// A running RPC server (`Client.serve`, `Client.serve_methods`).
    RpcServer(redipc::RpcServer) { label: Bytes }
}

runner_handle! {
    /// A running consumer of a consumer group (`Client.stream_consume`).
    StreamConsumer(redipc::StreamConsumer) { label: Bytes }
}

runner_handle! {
    /// A running hash watcher (`Client.hash_watch`).
    HashWatcher(redipc::HashWatcher) { label: Bytes }
}

runner_handle! {
    /// A keyspace-notification watch (`Client.watch_keys`).
    KeyspaceWatch(redipc::KeyspaceWatch) { label: Bytes }
}

#[pymethods]
impl Worker {
    /// The worker's counters.
    fn stats(&self) -> WorkerStats {
        self.core.stats().into()
    }

    /// The queue names.
    #[getter]
    fn queues(&self) -> Vec<Bytes> {
        self.queues.clone()
    }
}

#[pymethods]
impl RpcServer {
    /// The server's counters (`handled`: calls answered, or dropped past their deadline).
    fn stats(&self) -> WorkerStats {
        self.core.stats().into()
    }

    /// The service name.
    #[getter]
    fn service(&self) -> Bytes {
        self.label.clone()
    }
}

#[pymethods]
impl StreamConsumer {
    /// The counters so far.
    fn stats(&self) -> ConsumerStats {
        self.core.stats().into()
    }
}

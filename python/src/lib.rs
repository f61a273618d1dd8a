//! `redipc._native`: the Python binding of redipc, re-exported by the `redipc` package.
//!
//! The binding only converts: arguments with `FromPyObject` newtypes (`convert.rs`),
//! results, reports and log records into Python objects (`records.rs`, `report.rs`,
//! `logs.rs`), core errors into one exception class per kind (`errors.rs`), and Python
//! callables into core handlers (`handler.rs`). Behaviour (lifecycles, retries, defaults,
//! validation) is the core's. What the interpreter itself forces — the GIL released for
//! every wait, no call into a finalizing interpreter, no core thread waiting for the GIL
//! to hand over a log record — is in `guard.rs`.

#[macro_use]
mod errors;

/// `with obj:` for a class with a `close(py) -> PyResult<()>` method.
macro_rules! context_manager {
    ($ty:ty) => {
        #[pymethods]
        impl $ty {
            fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
                slf
            }

            #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
            fn __exit__(
                &self,
                py: Python<'_>,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc_value: Option<&Bound<'_, PyAny>>,
                _traceback: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<bool> {
                self.close(py)?;
                Ok(false)
            }
        }
    };
}

#[macro_use]
mod records;

mod aio;
mod batch;
mod client;
mod cluster;
mod convert;
mod coord;
mod guard;
mod handler;
mod handles;
mod logs;
mod pubsub;
mod queue;
mod report;
mod state;
mod stream;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::Client>()?;
    m.add_class::<records::Message>()?;
    m.add_class::<pubsub::Subscription>()?;
    m.add_class::<pubsub::SubscriptionGroup>()?;
    m.add_class::<records::SubscriptionStats>()?;
    m.add_class::<batch::Batch>()?;
    // The names of the two kinds of batch.
    m.add("Pipeline", m.py().get_type::<batch::Batch>())?;
    m.add("Transaction", m.py().get_type::<batch::Batch>())?;
    m.add_class::<batch::WatchSession>()?;
    m.add_class::<records::Request>()?;
    m.add_class::<handles::Worker>()?;
    m.add_class::<records::WorkerStats>()?;
    m.add_class::<records::QueueCounts>()?;
    m.add_class::<records::DeadLetter>()?;
    m.add_class::<records::Call>()?;
    m.add_class::<handles::RpcServer>()?;
    m.add_class::<records::StreamEntry>()?;
    m.add_class::<stream::StreamFollower>()?;
    m.add_class::<handles::StreamConsumer>()?;
    m.add_class::<records::PendingInfo>()?;
    m.add_class::<records::ConsumerStats>()?;
    m.add_class::<handles::HashWatcher>()?;
    m.add_class::<state::Lock>()?;
    m.add_class::<coord::RateLimiter>()?;
    m.add_class::<coord::Semaphore>()?;
    m.add_class::<coord::Permit>()?;
    m.add_class::<coord::Script>()?;
    m.add_class::<aio::AsyncClient>()?;
    m.add_class::<aio::AsyncWatchSession>()?;
    m.add_class::<records::Instance>()?;
    m.add_class::<handles::KeyspaceWatch>()?;
    m.add_class::<report::Report>()?;
    m.add_class::<records::ClientStats>()?;
    m.add_class::<records::NodeStats>()?;
    m.add_class::<records::LatencyStats>()?;
    m.add_function(wrap_pyfunction!(cluster::keyslot, m)?)?;
    m.add_function(wrap_pyfunction!(cluster::hash_tag_for_slot, m)?)?;
    errors::add_to(m)?;
    guard::register(m.py())
}

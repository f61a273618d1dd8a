//! `redipc._native`: the Python binding of redipc, re-exported by the `redipc` package.
//!
//! Every call that waits on the network runs inside `Python::detach`, so other Python
//! threads run meanwhile; one `Client` may be shared by any number of threads.

mod client;
mod convert;
mod errors;
mod keyspace;
mod lock;
mod pubsub;
mod queue;
mod rpc;
mod state;
mod stream;
mod tx;
mod wait;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::Client>()?;
    m.add_class::<pubsub::Message>()?;
    m.add_class::<pubsub::Subscription>()?;
    m.add_class::<pubsub::SubscriptionGroup>()?;
    m.add_class::<pubsub::SubscriptionStats>()?;
    m.add_class::<tx::Pipeline>()?;
    m.add_class::<tx::Transaction>()?;
    m.add_class::<tx::WatchSession>()?;
    m.add_class::<queue::Request>()?;
    m.add_class::<queue::Worker>()?;
    m.add_class::<queue::WorkerStats>()?;
    m.add_class::<queue::QueueCounts>()?;
    m.add_class::<queue::DeadLetter>()?;
    m.add_class::<rpc::Call>()?;
    m.add_class::<rpc::RpcServer>()?;
    m.add_class::<stream::StreamEntry>()?;
    m.add_class::<stream::StreamFollower>()?;
    m.add_class::<stream::StreamConsumer>()?;
    m.add_class::<stream::PendingInfo>()?;
    m.add_class::<stream::ConsumerStats>()?;
    m.add_class::<state::HashWatcher>()?;
    m.add_class::<lock::Lock>()?;
    m.add_class::<keyspace::KeyspaceWatch>()?;
    errors::Exceptions::get(m.py())?.add_to(m)?;
    pubsub::register_exit_hook(m.py())?;
    Ok(())
}

//! `redipc._native`: the Python binding of redipc, re-exported by the `redipc` package.
//!
//! Every call that waits on the network runs inside `Python::detach`, so other Python
//! threads run meanwhile; one `Client` may be shared by any number of threads.

mod client;
mod convert;
mod errors;
mod pubsub;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::Client>()?;
    m.add_class::<pubsub::Message>()?;
    m.add_class::<pubsub::Subscription>()?;
    m.add_class::<pubsub::SubscriptionGroup>()?;
    m.add_class::<pubsub::SubscriptionStats>()?;
    errors::Exceptions::get(m.py())?.add_to(m)?;
    pubsub::register_exit_hook(m.py())?;
    Ok(())
}

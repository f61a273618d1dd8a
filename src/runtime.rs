//! The one small tokio runtime of the process, created lazily by the first client.
//!
//! Every connection of every client is driven here; the blocking facade
//! ([`crate::blocking`]) waits on it with [`block_on`]. By default the runtime has a single
//! I/O thread so that it never takes a second core from a Redis server on the same host.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::{Error, Result};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

struct Runtime {
    rt: tokio::runtime::Runtime,
    io_threads: usize,
}

/// The process runtime's handle, creating the runtime with `io_threads` threads (0: one)
/// if it does not exist yet. Asking for an explicit, different thread count once it exists
/// is an error, so that a setting is never silently ignored.
pub(crate) fn handle(io_threads: usize) -> Result<tokio::runtime::Handle> {
    let wanted = io_threads.max(1);
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(wanted)
                .thread_name("redipc-io")
                .enable_all()
                .build()
                .map(|rt| Runtime {
                    rt,
                    io_threads: wanted,
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Error::new(
                crate::ErrorKind::Unsupported,
                format!("cannot start the I/O runtime: {e}"),
            )
        })?;
    if io_threads != 0 && runtime.io_threads != io_threads {
        return Err(Error::invalid(format!(
            "io_threads={io_threads} asked for, but the process runtime already runs with {}",
            runtime.io_threads
        )));
    }
    Ok(runtime.rt.handle().clone())
}

/// Run `fut` to completion from a thread outside the runtime, blocking that thread.
///
/// Called from inside the runtime (an async task), this would deadlock; it returns a
/// clear error instead.
pub(crate) fn block_on<F: Future>(handle: &tokio::runtime::Handle, fut: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid(
            "a blocking redipc call was made from inside an async runtime; use the async Client there",
        ));
    }
    Ok(handle.block_on(fut))
}

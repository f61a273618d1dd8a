//! `ipc_error_out`: how a C handler (request, RPC or stream entry handler) says why it
//! failed (`ipc_error_set()`), and the conversion of its result into the core's
//! (`Error::handler`).

use std::ffi::{CStr, c_char, c_int};

use crate::error::ipc_result;
use crate::handle::as_handle;

/// Where a handler writes why it failed, with `ipc_error_set()`.
///
/// Borrowed from the library for one handler call: a handler gets a pointer to one and
/// must not keep it. Holds at most one message (the last one set).
///
/// Thread safety: used only by the handler call it was given to.
pub struct ipc_error_out {
    _private: [u8; 0],
}
ref_castable!(ipc_error_out => Option<String>);

/// Run a C handler with an `ipc_error_out`: its return value 0 is success; any other is the
/// core's handler error, with the text set by `ipc_error_set()` or `"the handler returned N"`.
pub(crate) fn handler_result(call: impl FnOnce(*mut ipc_error_out) -> c_int) -> redipc::Result<()> {
    let mut message = None;
    match call(as_handle(&mut message)) {
        0 => Ok(()),
        rc => Err(redipc::Error::handler(
            message.unwrap_or_else(|| format!("the handler returned {rc}")),
        )),
    }
}

/// Record why the handler failed: `msg` is a NUL-terminated string (copied; invalid UTF-8
/// is replaced). Call it from inside the handler that received `err`, then return non-zero.
/// Calling it again replaces the message. A handler that fails without calling it gets the
/// message `"the handler returned N"`. The message reaches the reports (`ipc_report`), the
/// dead letters of reliable queues and streams, and the caller of an RPC.
///
/// Errors: `IPC_ERR_NULL_ARG` (`err`, `msg`).
///
/// Thread safety: only from inside the handler call that received `err`; `err` is invalid
/// after that call returns.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_error_set(err: *mut ipc_error_out, msg: *const c_char) -> ipc_result {
    ffi_boundary!(ipc_error_set(err, msg) {
        // SAFETY: `msg` is a NUL-terminated string (C's contract, NULL checked).
        let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
        *try_mut!(err) = Some(text);
        Ok(())
    })
}

/// Counters of one worker or RPC server (`ipc_worker_stats()`, `ipc_server_stats()`).
#[cfg(any(feature = "queues", feature = "rpc"))]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ipc_worker_counts {
    /// Requests handled successfully (handler returned 0); for a server, calls answered
    /// (with a reply or a remote error) and calls dropped unrun after their deadline.
    pub handled: u64,
    /// Handler failures (each failed attempt counts).
    pub failed: u64,
    /// Requests this worker moved to the dead-letter list (reliable mode).
    pub dead_lettered: u64,
    /// Requests of dead workers (expired leases) this worker put back into the queue.
    pub recovered: u64,
}

#[cfg(any(feature = "queues", feature = "rpc"))]
impl From<redipc::WorkerStats> for ipc_worker_counts {
    fn from(s: redipc::WorkerStats) -> Self {
        ipc_worker_counts {
            handled: s.handled,
            failed: s.failed,
            dead_lettered: s.dead_lettered,
            recovered: s.recovered,
        }
    }
}

//! The library's log, for C: `ipc_set_log_callback()` hands redipc's log records to one
//! process-wide C callback through the core's `redipc::logging::forward`, which installs it,
//! replaces it, drops records logged from inside it and waits for a replaced one to return.
//!
//! Ownership: the callback with its `(userdata, userdata_free)` is held by the core's one
//! sink; `userdata_free` runs when that sink is dropped (replaced or removed).

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use crate::convert::{UserData, c_text, ipc_userdata_free_cb};
use crate::error::{Error, ipc_result};

/// The level of a log record, and the most detailed level `ipc_set_log_callback()` passes
/// on (taken and given as an `int`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_log_level {
    /// No records (as a level for `ipc_set_log_callback()` only).
    IPC_LOG_OFF = 0,
    /// The library gave up on something: a connection that will not be re-established
    /// (reconnect attempts exhausted), requests moved to the dead letters.
    IPC_LOG_ERROR = 1,
    /// Something failed and the library repairs it: a connection lost (with the reason) and
    /// being re-established, a handler that failed, a loop's operation that failed.
    IPC_LOG_WARN = 2,
    /// A change of state worth knowing: a connection restored, requests recovered.
    IPC_LOG_INFO = 3,
    /// Details: each connection and reconnection attempt.
    IPC_LOG_DEBUG = 4,
    /// Everything.
    IPC_LOG_TRACE = 5,
}

/// A log callback: `userdata` as given with it, the record's level (an `ipc_log_level`:
/// `IPC_LOG_ERROR` .. `IPC_LOG_TRACE`), its target and its message.
///
/// `target` says which part of the library logs, a NUL-terminated string:
/// `"redipc::connection"` (the command connection: lost, with the reason, at WARN;
/// restored at INFO; each attempt at DEBUG; given up at ERROR), `"redipc::pubsub"` (the
/// pub/sub connection, the same way) and `"redipc::report"` (every `ipc_report` of every
/// handle, its `text` as the message, at its kind's level: `IPC_REPORT_DEAD_LETTERED` at
/// ERROR, `IPC_REPORT_HANDLER_FAILED` and `IPC_REPORT_CONNECTION_LOST` at WARN, ...), and
/// possibly more targets starting with `"redipc"` later. `message` is the record's text,
/// NUL-terminated, one line. Neither ever contains a password. Both are valid only during
/// the call; copy what you keep.
///
/// Thread: whichever thread logs: the library's I/O threads, handles' threads, dispatcher
/// threads, or the thread inside a library call. Records may come from several threads at
/// once, so the callback must be thread-safe. It should return quickly (it delays the I/O
/// of the thread it runs on) and must not wait for anything that waits for the library. It
/// may call the library; records logged while it runs on a thread are dropped (no
/// recursion), and `ipc_set_log_callback()` from inside it fails. It must not unwind (C++
/// exceptions) or `longjmp` out.
pub type ipc_log_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: c_int,
        target: *const c_char,
        message: *const c_char,
    ),
>;

/// A C log callback with its `userdata`; dropping it runs `userdata_free`.
struct LogSink {
    cb: unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *const c_char),
    userdata: UserData,
    free: ipc_userdata_free_cb,
}

impl Drop for LogSink {
    fn drop(&mut self) {
        self.userdata.release(self.free)();
    }
}

impl LogSink {
    fn deliver(&self, level: log::Level, target: &str, message: &str) {
        let target = c_text(target);
        let message = c_text(message);
        // SAFETY: the caller gave `cb` to be called with `userdata` from any thread; the
        // strings outlive the call.
        unsafe {
            (self.cb)(
                self.userdata.ptr(),
                level as usize as c_int,
                target.as_ptr(),
                message.as_ptr(),
            )
        };
    }
}

/// An `ipc_log_level` taken as an `int`.
fn level_filter(level: c_int) -> Result<log::LevelFilter, Error> {
    Ok(match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        5 => log::LevelFilter::Trace,
        _ => {
            return Err(Error::invalid(format!(
                "`level` is {level}: not an ipc_log_level (IPC_LOG_OFF 0 .. IPC_LOG_TRACE 5)"
            )));
        }
    })
}

/// Send the library's log records up to `level` (an `ipc_log_level`: `IPC_LOG_WARN` passes
/// errors and warnings) to `cb` with `userdata` (see `ipc_log_cb` for what it gets and on
/// which thread), replacing the callback set before. One callback for the whole process:
/// every client's records go to it. `cb` NULL (or `IPC_LOG_OFF`) removes it.
///
/// By default no callback is set and records are dropped: the library never prints
/// anything to stderr or stdout. Reports (`ipc_report`) reach a report callback as well as
/// the log.
///
/// Replacing: when this returns `IPC_OK`, the previous callback is no longer running on any
/// thread and will not be called again (a call of it still running on another thread is
/// waited for: do not call this while holding a lock the callback takes), and the previous
/// `userdata_free` has run, on this thread. `userdata_free` (may be NULL) runs exactly once,
/// when this callback is replaced or removed by a later call; never if it stays set until
/// the process exits. `userdata` may be NULL. With `cb` NULL, `userdata` and `userdata_free`
/// are not used. A call that fails changes nothing and never runs `userdata_free` (the
/// caller keeps `userdata`).
///
/// Errors: `IPC_ERR_INVALID_ARGUMENT` for a `level` that is not an `ipc_log_level`, or when
/// called from inside the log callback; `IPC_ERR_UNSUPPORTED` when another logger of the
/// Rust `log` crate was installed in this copy of the library first (its records go there).
///
/// Thread safety: any thread; calls from several threads are applied one after the other.
/// Not from inside the log callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_set_log_callback(
    level: c_int,
    cb: ipc_log_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_set_log_callback(level, #[nullable] cb, #[nullable] userdata, #[nullable] userdata_free) {
        let level = level_filter(level)?;
        let Some(cb) = cb else {
            redipc::logging::forward(log::LevelFilter::Off, None)?;
            return Ok(());
        };
        let sink = Arc::new(LogSink {
            cb,
            userdata: UserData(userdata),
            free: userdata_free,
        });
        let held = sink.clone();
        let installed = redipc::logging::forward(
            level,
            Some(Arc::new(move |l: log::Level, t: &str, m: &str| held.deliver(l, t, m))),
        );
        if let Err(e) = installed {
            // Not installed (the core dropped its copy): the caller keeps `userdata`.
            match Arc::try_unwrap(sink) {
                Ok(mut s) => s.free = None,
                Err(s) => std::mem::forget(s),
            }
            return Err(e.into());
        }
        Ok(())
    })
}

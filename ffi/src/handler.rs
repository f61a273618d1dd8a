//! `ipc_error_out`: how a C handler reports why it failed (`ipc_error_set()`).
//!
//! NOTE to the other parts of the C API (queues, RPC, ...): this is the one definition of
//! `ipc_error_out` and `ipc_error_set()`; reuse it (`crate::handler::ErrorOut`) rather than
//! defining another. Made by the stream consumer part (ffi/src/stream.rs); a handler
//! wrapper makes an [`ErrorOut`], passes [`ErrorOut::as_ptr`] to the C handler, and reads
//! the message back with [`ErrorOut::into_message`].

use std::ffi::{CStr, c_char};

use crate::borrow_mut;
use crate::error::ipc_result;

/// Where a handler (a stream entry handler, ...) writes why it failed, with
/// `ipc_error_set()`.
///
/// Owned by the library: a handler gets a pointer to one for the duration of its call and
/// must not keep it. Holds at most one message (the last one set).
///
/// Thread safety: used only by the handler call it was given to.
pub struct ipc_error_out {
    message: Option<String>,
}

/// An [`ipc_error_out`] for one handler call.
pub(crate) struct ErrorOut(Box<ipc_error_out>);

impl ErrorOut {
    /// An empty one.
    pub(crate) fn new() -> Self {
        ErrorOut(Box::new(ipc_error_out { message: None }))
    }

    /// The pointer to pass to C, valid while `self` lives.
    pub(crate) fn as_ptr(&mut self) -> *mut ipc_error_out {
        &mut *self.0
    }

    /// The message set by the handler, if any.
    pub(crate) fn into_message(self) -> Option<String> {
        self.0.message
    }
}

/// Record why the handler failed: `msg` is a NUL-terminated string (copied; invalid
/// UTF-8 is replaced). Call it from inside the handler that received `err`, then return
/// the handler's failure value. Calling it again replaces the message. A handler that
/// fails without calling it gets a generic message ("the handler returned N").
///
/// Errors: `IPC_ERR_NULL_ARG` (`err`, `msg`).
///
/// Thread safety: only from inside the handler call that received `err`; `err` is invalid
/// after that call returns.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_error_set(err: *mut ipc_error_out, msg: *const c_char) -> ipc_result {
    ffi_boundary!(ipc_error_set(err, msg) {
        // SAFETY: `msg` is a NUL-terminated string (caller contract, NULL checked).
        let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
        // SAFETY: `err` is the live ipc_error_out given to the running handler (caller
        // contract, NULL checked).
        unsafe { borrow_mut(err, "err") }?.message = Some(text);
        Ok(())
    })
}

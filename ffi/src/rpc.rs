//! Request/reply RPC: `ipc_call()` (caller) and `ipc_serve()` (an `ipc_server` answering
//! with a C handler).
//!
//! Ownership: an `ipc_server` owns a `redipc::RpcServer` (a plain queue worker underneath,
//! whose threads hold the handler closure made here) and an [`Owner`] of the caller's
//! `(userdata, userdata_free)`; `userdata_free` runs as for `ipc_worker` (see `queue.rs`).

use std::ffi::{c_char, c_int, c_void};
use std::time::{Duration, UNIX_EPOCH};

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::pubsub::ipc_userdata_free_cb;
use crate::queue::{Owner, Running, ipc_worker_counts, message_arg};
use crate::userdata::present;
use crate::{borrow, borrow_mut, bytes_arg, str_arg, to_handle, write_out};

/// `ipc_call_ex()` flag: fail at once with `IPC_ERR_NO_SERVER` when no live server of the
/// service is registered (one more round trip before the call), instead of after the
/// timeout.
pub const IPC_CALL_FAIL_FAST: u32 = 1;

/// One call as an `ipc_rpc_cb` sees it.
///
/// Lifetime: the struct and what it points to are valid only during the handler call; copy
/// what you need to keep. `method` and `payload` are never NULL (empty: a valid pointer with
/// length 0) and not NUL-terminated.
#[repr(C)]
#[derive(Debug)]
pub struct ipc_call_info {
    /// The method name given by the caller; empty (length 0) when none.
    pub method: *const u8,
    /// Length of `method` in bytes.
    pub method_len: usize,
    /// The request payload.
    pub payload: *const u8,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
    /// When the caller stops waiting, in milliseconds since the Unix epoch (wall clock).
    /// Work finished after it is wasted: the reply is dropped by the caller.
    pub deadline_ms: u64,
}

/// Where an RPC handler puts its answer: `ipc_rpc_reply_set()` for the reply bytes,
/// `ipc_rpc_reply_error()` for the error text.
///
/// Owns what was set so far. Made by the library for one handler call; valid only during
/// that call, on its thread; never free it.
pub struct ipc_rpc_reply {
    data: Option<Vec<u8>>,
    error: Option<String>,
}

/// An RPC handler: `userdata` as given to `ipc_serve()`, the call, and where to put the
/// answer.
///
/// Return 0 to send the bytes set with `ipc_rpc_reply_set()` (0 bytes if none were set),
/// or any other number to send a remote error with the text set by `ipc_rpc_reply_error()`
/// (without it: `"the handler returned N"`); the caller's `ipc_call()` returns
/// `IPC_ERR_REMOTE` with that text in its last error message.
///
/// Methods: one handler serves every method of the service; switch on `call->method`
/// (a `memcmp` against each name) and answer unknown ones with an error. (The Rust core's
/// `serve_methods` does the same with a map.)
///
/// Thread: one of the server's own threads (`redipc-worker-N`), never the thread that
/// called `ipc_serve()`; with a concurrency above 1, calls run in parallel with the same
/// `userdata`. `call`, `reply` and what they point to are valid only during the call. The
/// handler may use the library, including its client (also `ipc_call()` of another
/// service) and `ipc_server_free()` on its own server; not `ipc_server_stop()` on it
/// (refused: it would wait for itself). It must not unwind or `longjmp` out.
pub type ipc_rpc_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        call: *const ipc_call_info,
        reply: *mut ipc_rpc_reply,
    ) -> c_int,
>;

/// A running RPC server of one service: `concurrency` loops, each on a thread and a
/// connection of its own, answering calls with the handler.
///
/// Owns a `redipc::RpcServer` (its worker threads, the handler with `userdata`, and a task
/// announcing the server in `{prefix}{rpc:SERVICE}:servers` every second) and keeps the
/// client's core alive. Made by `ipc_serve()`, stopped by `ipc_server_stop()`, freed by
/// `ipc_server_free()`.
///
/// Thread safety: `ipc_server_stop()` and `ipc_server_stats()` may be called from any
/// thread (a stats call waits while a stop runs on another thread); `ipc_server_free()`
/// must come after every other call on it has returned (a handler of the server may free
/// it).
pub struct ipc_server {
    run: Running<redipc::RpcServer>,
}

/// Hand a buffer to C: the caller frees it with `ipc_buf_free(ptr, len)` (the allocation
/// `ipc_buf_free()` expects: a boxed slice).
fn into_buf(v: Vec<u8>) -> (*mut u8, usize) {
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b).cast::<u8>(), len)
}

/// The body of `ipc_call()` and `ipc_call_ex()`.
///
/// # Safety
/// As `ipc_call_ex()`; every pointer but `method` was checked for NULL.
#[allow(clippy::too_many_arguments)]
unsafe fn call(
    client: *const ipc_client,
    service: *const c_char,
    method: *const c_char,
    req: *const u8,
    len: usize,
    timeout_ms: u64,
    flags: u32,
    reply: *mut *mut u8,
    reply_len: *mut usize,
) -> Result<(), Error> {
    if flags & !IPC_CALL_FAIL_FAST != 0 {
        return Err(Error::invalid(format!(
            "unknown flags {flags:#x}: use 0 or IPC_CALL_FAIL_FAST"
        )));
    }
    if timeout_ms == 0 {
        return Err(Error::invalid("timeout_ms must be greater than 0"));
    }
    // SAFETY: the caller contract of ipc_call_ex (pointers checked).
    let (client, service, method, payload) = unsafe {
        (
            borrow(client, "client")?,
            str_arg(service, "service")?,
            if method.is_null() {
                ""
            } else {
                str_arg(method, "method")?
            },
            bytes_arg(req, len, "req")?,
        )
    };
    let opts = redipc::CallOptions::default()
        .timeout(Duration::from_millis(timeout_ms))
        .fail_fast(flags & IPC_CALL_FAIL_FAST != 0);
    let answer = client.inner.call_with(service, method, payload, opts)?;
    let (p, n) = into_buf(answer.to_vec());
    // SAFETY: both outputs are writable (caller contract, NULL checked before the call, so
    // the buffer is never lost here).
    unsafe {
        reply.write(p);
        reply_len.write(n);
    }
    Ok(())
}

/// Call a service: push the request (with a call id, this client's reply channel and the
/// deadline now + `timeout_ms`) into the service's queue and wait up to `timeout_ms` for
/// the reply of a server (`ipc_serve()`, or a Rust or Python server).
///
/// `service` is a NUL-terminated name (not empty, without `{` or `}`); `method` a
/// NUL-terminated method name, or NULL (or `""`) for none; `req` is `len` bytes (a pointer
/// must be given even for 0 bytes: pass `""`). `timeout_ms` must be greater than 0.
///
/// The first call of a client subscribes its reply channel (`{prefix}rpc:reply:<random>`,
/// one per client, shared by all its calls); a call leaves no key and no subscription
/// behind.
///
/// Output: on `IPC_OK`, `*reply` holds a copy of the reply of `*reply_len` bytes, owned by
/// the caller and freed with `ipc_buf_free(*reply, *reply_len)` (never NULL, even when
/// empty). Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `service`, `req`, `reply`, `reply_len`);
/// `IPC_ERR_INVALID_ARGUMENT` (an empty service name or one with `{`/`}`, a method name
/// over 65535 bytes, `timeout_ms` 0, a payload over the size limit); `IPC_ERR_REMOTE` when
/// the handler reported an error: `ipc_last_error_message()` is
/// `"ipc_call: call SERVICE.METHOD: <the handler's text>"`; `IPC_ERR_TIMEOUT` when no reply
/// came in time although a server is registered; `IPC_ERR_NO_SERVER` when no reply came
/// and no server of the service is registered (after the timeout; see `ipc_call_ex()` to
/// fail at once); `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client (each call waits
/// for its own reply); also from a handler of a worker or server.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_call(
    client: *const ipc_client,
    service: *const c_char,
    method: *const c_char,
    req: *const u8,
    len: usize,
    timeout_ms: u64,
    reply: *mut *mut u8,
    reply_len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_call(client, service, #[nullable] method, req, len, timeout_ms, reply, reply_len) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe { call(client, service, method, req, len, timeout_ms, 0, reply, reply_len) }
    })
}

/// `ipc_call()` with `flags`: 0, or `IPC_CALL_FAIL_FAST` to fail at once with
/// `IPC_ERR_NO_SERVER` when no live server of the service is registered. `method` may be
/// NULL for none.
///
/// Output: as `ipc_call()`.
///
/// Errors: as `ipc_call()`; also `IPC_ERR_INVALID_ARGUMENT` for unknown flags.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_call_ex(
    client: *const ipc_client,
    service: *const c_char,
    method: *const c_char,
    req: *const u8,
    len: usize,
    timeout_ms: u64,
    flags: u32,
    reply: *mut *mut u8,
    reply_len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_call_ex(client, service, #[nullable] method, req, len, timeout_ms, flags, reply, reply_len) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe { call(client, service, method, req, len, timeout_ms, flags, reply, reply_len) }
    })
}

/// Answer calls to `service` (a NUL-terminated name, not empty, without `{` or `}`) with
/// `handler` (see `ipc_rpc_cb`), `concurrency` calls in parallel (1 to 1024), each loop on a
/// thread and a connection of its own. Requests whose deadline already passed are dropped
/// without running the handler. Several servers (in any process and language) may serve one
/// service: each call is answered by one of them.
///
/// `userdata` (may be NULL) is passed to every handler call. `userdata_free` (may be NULL)
/// runs exactly once, after no handler can run any more: inside `ipc_server_free()` on its
/// thread, or — when handlers outlive its deadline, or a handler freed its own server — on
/// a library thread (`redipc-reaper`) right after the last of them returned. If this call
/// fails, it never runs and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the running server, owned by the caller; stop it with
/// `ipc_server_stop()` and free it with `ipc_server_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `service`, `handler`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty service name, one with `{` or `}`, or a
/// concurrency outside 1..1024; `IPC_ERR_UNSUPPORTED` if a thread cannot be started.
///
/// Thread safety: any thread, concurrently with other calls on the client. The server keeps
/// using the client: free the server before the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_serve(
    client: *const ipc_client,
    service: *const c_char,
    handler: ipc_rpc_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    concurrency: usize,
    out: *mut *mut ipc_server,
) -> ipc_result {
    ffi_boundary!(ipc_serve(client, service, handler, #[nullable] userdata, #[nullable] userdata_free, concurrency, out) {
        // SAFETY: `client` is a live handle and `service` a NUL-terminated string (caller
        // contract, NULL checked).
        let (client, service) = unsafe { (borrow(client, "client")?, str_arg(service, "service")?) };
        let Some(cb) = handler else { return Err(Error::null_arg("handler")) };
        let owner = Owner::new(userdata, userdata_free);
        let o = owner.clone();
        let handler = move |c: &redipc::Call| -> redipc::Result<Vec<u8>> {
            let (m, ml) = present(&c.method);
            let (p, pl) = present(&c.payload);
            let deadline_ms = c
                .deadline
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let info = ipc_call_info { method: m, method_len: ml, payload: p, payload_len: pl, deadline_ms };
            let mut answer = ipc_rpc_reply { data: None, error: None };
            // SAFETY: the caller of ipc_serve promised that `cb` may be called with
            // `userdata` on the server's threads; `info` and `answer` outlive the call.
            let rc = o.enter(|| unsafe { cb(o.userdata.0, &info, &mut answer) });
            if rc == 0 {
                Ok(answer.data.unwrap_or_default())
            } else {
                Err(answer.error.unwrap_or_else(|| format!("the handler returned {rc}")).into())
            }
        };
        let server = client.inner.serve(service, handler, concurrency)?;
        let handle = to_handle(ipc_server { run: Running::new(server, owner) });
        // SAFETY: `out` is writable (caller contract, NULL checked by the boundary).
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Inside an `ipc_rpc_cb`: set the reply bytes (`len` bytes at `data`, copied; a pointer
/// must be given even for 0 bytes: pass `""`). A second call replaces the first. Sent when
/// the handler returns 0.
///
/// Errors: `IPC_ERR_NULL_ARG` (`reply`, `data`); `IPC_ERR_INVALID_ARGUMENT` for a length
/// that cannot be a buffer.
///
/// Thread safety: only inside the handler call that received `reply`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rpc_reply_set(
    reply: *mut ipc_rpc_reply,
    data: *const u8,
    len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_rpc_reply_set(reply, data, len) {
        // SAFETY: `data` is readable for `len` bytes and `reply` is the live handler
        // argument (caller contract, NULL checked).
        unsafe {
            let data = bytes_arg(data, len, "data")?.to_vec();
            borrow_mut(reply, "reply")?.data = Some(data);
        }
        Ok(())
    })
}

/// Inside an `ipc_rpc_cb`: set the error text (NUL-terminated, copied; invalid UTF-8 is
/// replaced) sent to the caller as a remote error when the handler returns non-zero. A
/// second call replaces the first.
///
/// Errors: `IPC_ERR_NULL_ARG` (`reply`, `msg`).
///
/// Thread safety: only inside the handler call that received `reply`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rpc_reply_error(
    reply: *mut ipc_rpc_reply,
    msg: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_rpc_reply_error(reply, msg) {
        // SAFETY: `msg` is NUL-terminated and `reply` is the live handler argument (caller
        // contract, NULL checked).
        unsafe {
            let msg = message_arg(msg, "msg")?;
            borrow_mut(reply, "reply")?.error = Some(msg);
        }
        Ok(())
    })
}

/// Stop answering calls and wait up to `deadline_ms` milliseconds for running handlers to
/// return; the server is removed from the service's registry. Calls pushed meanwhile wait
/// in the service's queue for another server (or time out). Stopping again waits again;
/// stopping a stopped server returns `IPC_OK` at once. Free it with `ipc_server_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if handlers were still running at the
/// deadline (they finish on their own); `IPC_ERR_INVALID_ARGUMENT` when called from one of
/// the server's own handlers (it would wait for itself).
///
/// Thread safety: any thread except the server's own handlers; see `ipc_server`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_server_stop(
    server: *const ipc_server,
    deadline_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_server_stop(server, deadline_ms) {
        // SAFETY: `server` is a live handle (caller contract, NULL checked).
        unsafe { borrow(server, "server") }?.run.stop(Duration::from_millis(deadline_ms))
    })
}

/// The counters of a server (as a worker's): `handled` counts calls answered (with a reply
/// or a remote error) and requests dropped unrun because their deadline had passed.
///
/// Output: on `IPC_OK`, `*out` holds the counters. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, also from a handler; see `ipc_server`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_server_stats(
    server: *const ipc_server,
    out: *mut ipc_worker_counts,
) -> ipc_result {
    ffi_boundary!(ipc_server_stats(server, out) {
        // SAFETY: `server` is a live handle (caller contract, NULL checked).
        let stats = unsafe { borrow(server, "server") }?.run.with(|s| s.stats());
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, stats.into(), "out") }
    })
}

/// Stop the server (waiting up to 10 s for running handlers, as `ipc_server_stop()`) and
/// free it. NULL is a no-op. `userdata_free` runs here once the handlers returned; if some
/// still run after 10 s, they finish on their own threads and `userdata_free` runs after
/// the last of them (see `ipc_serve()`).
///
/// Called from one of the server's own handlers, it returns at once: no new call is taken,
/// and `userdata_free` runs on a library thread after the handlers (that one included)
/// returned.
///
/// Thread safety: every other call on `server` must have returned; the handle must not be
/// used afterwards. Any thread, including the server's own handlers. Handlers still running
/// after this returns may still use the client: free the client only after
/// `userdata_free` ran (or after an `ipc_server_stop()` that returned `IPC_OK`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_server_free(server: *mut ipc_server) {
    ffi_boundary!(ipc_server_free(#[nullable] server) {
        if server.is_null() {
            return Ok(());
        }
        // SAFETY: a handle from ipc_serve, freed once with no other call running on it
        // (caller contract).
        let s = unsafe { Box::from_raw(server) };
        s.run.free();
        Ok(())
    })
}

//! Request/reply RPC: `ipc_call()` (caller), `ipc_serve()` (an `ipc_server` answering with
//! a C handler) and `ipc_serve_methods()` (one C handler per method), on redipc's wire or
//! on the JSON wire of redis-ipc fleets (`ipc_protocol`).
//!
//! Ownership: an `ipc_server` owns a `redipc::RpcServer` (a queue worker underneath, whose
//! threads own the handler closure made here); `userdata_free` hangs on the core's
//! `RpcServer::on_stopped`.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::client::ipc_client;
use crate::convert::{UserData, c_slice, into_buf, ipc_userdata_free_cb, millis, present};
use crate::error::{Error, ipc_result};
use crate::handle::{as_handle, to_boxed};
use crate::handler::{handler_result, ipc_error_out, ipc_worker_counts};
use crate::options::{ipc_call_options, ipc_worker_options, or_default};

/// One call as an `ipc_rpc_cb` sees it.
///
/// Lifetime: the struct and what it points to are valid only during the handler call; copy
/// what you need to keep. `method` and `payload` are never NULL (empty: a valid pointer with
/// length 0) and not NUL-terminated.
#[repr(C)]
#[derive(Debug)]
pub struct ipc_call_info {
    /// The method name given by the caller; empty (length 0) when none.
    pub method: *const c_char,
    /// Length of `method` in bytes.
    pub method_len: usize,
    /// The request payload.
    pub payload: *const c_char,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
    /// When the caller stops waiting, in milliseconds since the Unix epoch (wall clock).
    /// Work finished after it is wasted: the reply is dropped by the caller.
    pub deadline_ms: u64,
}

/// Where an RPC handler puts its reply bytes, with `ipc_rpc_reply_set()`.
///
/// Borrowed from the library for one handler call; valid only during that call, on its
/// thread; never free it.
///
/// Thread safety: used only by the handler call it was given to.
pub struct ipc_rpc_reply {
    _private: [u8; 0],
}
ref_castable!(ipc_rpc_reply => Vec<u8>);

/// An RPC handler: `userdata` as given to `ipc_serve()`, the call, where to put the reply,
/// and where to say why it failed.
///
/// Return 0 to send the bytes set with `ipc_rpc_reply_set()` (0 bytes if none were set), or
/// any other number to send a remote error with the text set by `ipc_error_set(err, ...)`
/// (without it: `"the handler returned N"`); the caller's `ipc_call()` returns
/// `IPC_ERR_REMOTE` with that text in its last error message.
///
/// Methods: a handler given to `ipc_serve()` serves every method of the service; switch on
/// `call->method` (a `memcmp` against each name) and answer unknown ones with an error (on
/// the redis-ipc wire a fleet's text is `ipc_error_set(err, "unknown method: <m>")`). Or
/// give one handler per method to `ipc_serve_methods()`, which answers unknown ones itself.
///
/// On the redis-ipc wire (`IPC_PROTOCOL_REDIS_IPC`) `call->payload` is the request's JSON
/// text (`null` when the envelope had none), and the reply must be JSON text: none at all
/// (0 bytes) is sent as `null`, other bytes that are not JSON go back to the caller as an
/// error reply.
///
/// Thread: one of the server's own threads, never the thread that called `ipc_serve()`;
/// with a concurrency above 1, calls run in parallel with the same `userdata`. `call`,
/// `reply`, `err` and what they point to are valid only during the call. The handler may use
/// the library, including its client (also `ipc_call()` of another service) and
/// `ipc_server_stop()` / `ipc_server_free()` of its own server (they only ask for the stop
/// from here). It must not unwind or `longjmp` out.
pub type ipc_rpc_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        call: *const ipc_call_info,
        reply: *mut ipc_rpc_reply,
        err: *mut ipc_error_out,
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
/// Thread safety: as `ipc_worker`.
pub struct ipc_server {
    _private: [u8; 0],
}
box_castable!(ipc_server => redipc::RpcServer);

/// Call a service: push the request (with a call id, this client's reply channel and the
/// deadline) into the service's queue and wait for the reply of a server (`ipc_serve()`, or
/// a Rust or Python server). `service`, `method` (length 0 for none) and `payload` are byte
/// strings. `opts` may be NULL for the defaults (timeout 5000 ms, no fail-fast, redipc's
/// protocol); it is copied.
///
/// The first call of a client subscribes its reply channel (`{prefix}rpc:reply:<random>`,
/// one per client, shared by all its calls); a call leaves no key and no subscription
/// behind.
///
/// On the redis-ipc wire (`ipc_call_options_set_protocol()` with `IPC_PROTOCOL_REDIS_IPC`,
/// see `ipc_protocol`) `service` is the list a fleet's server pops, `method` is UTF-8 (left
/// out of the envelope when empty), `payload` must be JSON text and the reply is the JSON
/// text of the server's `payload` (`null` when it sent none). The client subscribes once
/// per list to a pattern matching its own reply channels (confirmed before the first
/// request is pushed); a call that times out takes its request back if no server popped it.
///
/// Output: on `IPC_OK`, `*reply` holds a copy of the reply of `*reply_len` bytes, owned by
/// the caller and freed with `ipc_buf_free(*reply, *reply_len)` (never NULL, even when
/// empty).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` (an empty service name or one with
/// `{`/`}`, a method name over 65535 bytes, a timeout of 0, a payload over the size limit;
/// on the redis-ipc wire a payload that is not JSON, a method or list name that is not
/// UTF-8, fail-fast); `IPC_ERR_REMOTE` when the handler reported an error:
/// `ipc_last_error_message()` ends with its text; `IPC_ERR_TIMEOUT` when no reply came in
/// time although a server is registered (on the redis-ipc wire, which has no registry:
/// whenever no reply came in time); `IPC_ERR_NO_SERVER` when no server of the service is
/// registered (after the timeout, or at once with fail-fast); `IPC_ERR_PROTOCOL` when a
/// redis-ipc reply is not JSON of the fleet's form; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client (each call waits
/// for its own reply); also from a handler of a worker or server.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_call(
    client: *const ipc_client,
    service: *const c_char,
    service_len: usize,
    method: *const c_char,
    method_len: usize,
    payload: *const c_char,
    payload_len: usize,
    opts: *const ipc_call_options,
    reply: *mut *mut c_char,
    reply_len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_call(client, service, service_len, method, method_len, payload, payload_len, #[nullable] opts, reply, reply_len) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let answer = try_ref!(client).call_with(bytes!(service, service_len), bytes!(method, method_len), bytes!(payload, payload_len), opts)?;
        let (p, n) = into_buf(answer.to_vec());
        put!(reply, p);
        put!(reply_len, n);
        Ok(())
    })
}

/// Answer calls to `service` (a byte string: not empty, without `{` or `}`) with `cb` (see
/// `ipc_rpc_cb`). `opts` may be NULL for the defaults; of the worker options, concurrency
/// (calls in parallel, each loop on a thread and a connection of its own), block timeout,
/// protocol and report callback apply (RPC is at-most-once, one call at a time per loop).
/// Requests whose deadline already passed are dropped without running the handler (and
/// without a reply). Several servers (in any process and language) may serve one service:
/// each call is answered by one of them. Returns once the server is announced, so a
/// fail-fast call made right after finds it.
///
/// On the redis-ipc wire (`ipc_worker_options_set_protocol()` with
/// `IPC_PROTOCOL_REDIS_IPC`, see `ipc_protocol`) `service` is the Redis list a fleet's
/// callers push to (`{` and `}` allowed); the handler gets the envelope's method and JSON
/// payload, and its reply (JSON text) or error text is published on the envelope's reply
/// channel as `{"ok":true,"payload":..}` / `{"ok":false,"error":".."}`. Nothing is
/// announced (the fleet has no registry).
///
/// `userdata` (may be NULL) is passed to every handler call. `userdata_free` (may be NULL)
/// runs exactly once, after the last handler call returned, when the server has stopped
/// (as for `ipc_worker_new()`). If this call fails, it never runs and the caller keeps
/// `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the running server, owned by the caller; free it with
/// `ipc_server_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `service`, `cb`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty service name, one with `{` or `}`, or an option
/// out of range; `IPC_ERR_CLOSED`; `IPC_ERR_UNSUPPORTED` if a thread cannot be started;
/// `IPC_ERR_TIMEOUT` / `IPC_ERR_CONNECTION` when the announcement fails.
///
/// Thread safety: any thread, concurrently with other calls on the client. The server keeps
/// using the client: free the server before the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_serve(
    client: *const ipc_client,
    service: *const c_char,
    service_len: usize,
    opts: *const ipc_worker_options,
    cb: ipc_rpc_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_server,
) -> ipc_result {
    ffi_boundary!(ipc_serve(client, service, service_len, #[nullable] opts, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let userdata = UserData(userdata);
        let handler = rpc_handler(callback!(cb), userdata);
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let server = try_ref!(client).serve_with(bytes!(service, service_len), handler, opts)?;
        server.on_stopped(userdata.release(userdata_free));
        put!(out, to_boxed(server));
        Ok(())
    })
}

/// One method of `ipc_serve_methods()`: its name and its handler.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ipc_rpc_method {
    /// The method name (UTF-8; not NUL-terminated).
    pub name: *const c_char,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// The handler of calls to this method (see `ipc_rpc_cb`); never NULL.
    pub cb: ipc_rpc_cb,
}

/// Answer calls to `service` (a byte string) by method: a call whose method is the `name`
/// of one of the `n` entries of `methods` (copied; `methods` may be NULL when `n` is 0) runs
/// that entry's `cb`; any other call is answered with an error without running a handler:
/// `unknown method: <m>` on the redis-ipc wire (`ipc_worker_options_set_protocol()`: the
/// fleet's words), `unknown method "<m>"` on redipc's. Everything else is as for `ipc_serve()`: the options
/// that apply, the threads, the deadline, `userdata` (passed to every handler call, of
/// every method) and `userdata_free` (exactly once, after the last handler call returned,
/// when the server has stopped; never if this call fails). When a name appears twice, the
/// later entry is used.
///
/// A server that routes methods itself uses `ipc_serve()` and switches on `call->method`;
/// to answer an unknown method as a fleet does it sets the same text with
/// `ipc_error_set(err, "unknown method: <m>")` and returns non-zero.
///
/// Output: on `IPC_OK`, `*out` is the running server, owned by the caller; free it with
/// `ipc_server_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `service`, `methods` when `n > 0`, any `name` or
/// `cb` of an entry, `out`); `IPC_ERR_INVALID_ARGUMENT` for a method name that is not
/// UTF-8, and as for `ipc_serve()`; `IPC_ERR_CLOSED`; `IPC_ERR_UNSUPPORTED`;
/// `IPC_ERR_TIMEOUT` / `IPC_ERR_CONNECTION` when the announcement fails.
///
/// Thread safety: any thread, concurrently with other calls on the client. The server keeps
/// using the client: free the server before the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_serve_methods(
    client: *const ipc_client,
    service: *const c_char,
    service_len: usize,
    methods: *const ipc_rpc_method,
    n: usize,
    opts: *const ipc_worker_options,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_server,
) -> ipc_result {
    ffi_boundary!(ipc_serve_methods(client, service, service_len, #[nullable] methods, n, #[nullable] opts, #[nullable] userdata, #[nullable] userdata_free, out) {
        let userdata = UserData(userdata);
        // SAFETY: `methods` holds `n` entries (C's contract).
        let methods = unsafe { methods_arg(methods, n, userdata) }?;
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let server = try_ref!(client).serve_methods_with(bytes!(service, service_len), methods, opts)?;
        server.on_stopped(userdata.release(userdata_free));
        put!(out, to_boxed(server));
        Ok(())
    })
}

/// The core's handler calling the C handler `cb` with `userdata`.
fn rpc_handler(
    cb: unsafe extern "C" fn(
        *mut c_void,
        *const ipc_call_info,
        *mut ipc_rpc_reply,
        *mut ipc_error_out,
    ) -> c_int,
    userdata: UserData,
) -> impl Fn(&redipc::Call) -> redipc::Result<Vec<u8>> + Send + Sync + 'static {
    move |c: &redipc::Call| {
        let (method, method_len) = present(&c.method);
        let (payload, payload_len) = present(&c.payload);
        let deadline_ms = c
            .deadline
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let info = ipc_call_info {
            method,
            method_len,
            payload,
            payload_len,
            deadline_ms,
        };
        let mut answer = Vec::new();
        // SAFETY: the caller gave `cb` to be called with `userdata` on the server's
        // threads; `info`, `answer` and `err` outlive the call.
        handler_result(|err| unsafe { cb(userdata.ptr(), &info, as_handle(&mut answer), err) })?;
        Ok(answer)
    }
}

/// The `n` methods at `methods` as the core's method table, each calling its C handler with
/// `userdata`.
///
/// # Safety
/// `methods` is NULL or holds `n` entries whose names are readable for their lengths.
unsafe fn methods_arg(
    methods: *const ipc_rpc_method,
    n: usize,
    userdata: UserData,
) -> Result<HashMap<String, redipc::RpcHandler>, Error> {
    // SAFETY: NULL or `n` entries (caller contract).
    let list = unsafe { c_slice(methods, n, "methods", "n") }?;
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let (name, name_len) = (m.name, m.name_len);
            let name = std::str::from_utf8(bytes!(name, name_len))
                .map_err(|e| Error::invalid(format!("`methods[{i}].name` is not UTF-8: {e}")))?;
            let cb = m.cb.ok_or_else(|| {
                Error::new(
                    ipc_result::IPC_ERR_NULL_ARG,
                    format!("argument `methods[{i}].cb` is NULL"),
                )
            })?;
            let handler: redipc::RpcHandler = Arc::new(rpc_handler(cb, userdata));
            Ok((name.to_string(), handler))
        })
        .collect()
}

/// Inside an `ipc_rpc_cb`: set the reply bytes (a byte string, copied). A second call
/// replaces the first. Sent when the handler returns 0.
///
/// Errors: `IPC_ERR_NULL_ARG` (`reply`, `data`).
///
/// Thread safety: only inside the handler call that received `reply`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rpc_reply_set(
    reply: *mut ipc_rpc_reply,
    data: *const c_char,
    data_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_rpc_reply_set(reply, data, data_len) {
        *try_mut!(reply) = bytes!(data, data_len).to_vec();
        Ok(())
    })
}

/// Stop answering calls and wait up to `timeout_ms` milliseconds for running handlers to
/// return; the server is withdrawn from the service's registry. Calls pushed meanwhile wait
/// in the service's queue for another server (or time out). Stopping again waits again;
/// stopping a stopped server returns `IPC_OK` at once. Free it with `ipc_server_free()`.
///
/// On `IPC_OK` no handler runs or will run, and `userdata_free` has run. From one of the
/// server's own handlers it returns `IPC_OK` at once (the stop is asked for).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if handlers were still running at the
/// deadline (they finish on their own; `userdata_free` runs after the last of them).
///
/// Thread safety: any thread, also the server's own handlers; see `ipc_server`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_server_stop(server: *const ipc_server, timeout_ms: u64) -> ipc_result {
    ffi_boundary!(ipc_server_stop(server, timeout_ms) {
        try_ref!(server).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// The counters of a server (as a worker's): `handled` counts calls answered (with a reply
/// or a remote error) and calls dropped unrun because their deadline had passed.
///
/// Output: on `IPC_OK`, `*out` holds the counters.
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
        put!(out, try_ref!(server).stats().into());
        Ok(())
    })
}

/// Stop the server (waiting up to 10 s for running handlers, as `ipc_server_stop()`) and
/// free it. NULL is a no-op. `userdata_free` runs as for `ipc_worker_free()`. Called from one
/// of the server's own handlers, it returns at once.
///
/// Thread safety: every other call on `server` must have returned; the handle must not be
/// used afterwards. Any thread, including the server's own handlers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_server_free(server: *mut ipc_server) {
    ffi_boundary!(ipc_server_free(#[nullable] server) { free_box!(server) })
}

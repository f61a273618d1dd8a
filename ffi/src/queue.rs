//! Request queues: `ipc_send_request()` (producer), `ipc_worker` (consumer loops running a C
//! handler), and queue introspection.
//!
//! Ownership: an `ipc_worker` owns a `redipc::Worker`; its threads own the handler closure
//! made here, and `userdata_free` hangs on the core's `Worker::on_stopped`.

use std::ffi::{c_char, c_int, c_void};
use std::time::UNIX_EPOCH;

use crate::client::ipc_client;
use crate::convert::{UserData, ipc_userdata_free_cb, millis, present};
use crate::error::{Error, ipc_result};
use crate::handle::to_boxed;
use crate::handler::{handler_result, ipc_error_out, ipc_worker_counts};
use crate::options::{ipc_worker_options, or_default};

/// One request handed to an `ipc_request_cb`.
///
/// Lifetime: the struct and what it points to are valid only during the handler call; copy
/// what you need to keep. `queue` and `payload` are never NULL (an empty payload is a valid
/// pointer with length 0) and not NUL-terminated.
#[repr(C)]
#[derive(Debug)]
pub struct ipc_request {
    /// The name of the queue it came from (as given to `ipc_worker_new()`; for a bare
    /// worker, the list).
    pub queue: *const c_char,
    /// Length of `queue` in bytes.
    pub queue_len: usize,
    /// The payload as sent by `ipc_send_request()` (or pushed with `LPUSH` to a bare list).
    pub payload: *const c_char,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
    /// How many times it was handed to a handler before: 0 the first time; in reliable mode
    /// 1, 2, ... for the retries after failures.
    pub attempt: u32,
}

/// A request handler: `userdata` as given to `ipc_worker_new()`, the request, and where to
/// say why it failed.
///
/// Return 0 when the request is done (in reliable mode it is acknowledged and removed), or
/// any other number for a failure, after `ipc_error_set(err, "why")`. A failure is
/// reported (`IPC_REPORT_HANDLER_FAILED`); in plain mode the request is gone, in reliable
/// mode it is retried until `max_attempts`, then moved to the queue's dead-letter list
/// with the text of the last failure.
///
/// Thread: one of the worker's own threads, never the thread that made the worker. With a
/// concurrency above 1, calls run in parallel on several threads with the same `userdata`.
/// `req`, `err` and what they point to are valid only during the call. The handler may use
/// the library, including its worker's client and `ipc_worker_stop()` / `ipc_worker_free()`
/// of its own worker (they only ask for the stop from here); it must not free the client
/// while the worker runs, unwind (C++ exceptions) or `longjmp` out.
pub type ipc_request_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        req: *const ipc_request,
        err: *mut ipc_error_out,
    ) -> c_int,
>;

/// Counters of one queue, from the server (`ipc_queue_stats()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ipc_queue_counts {
    /// Requests waiting.
    pub pending: u64,
    /// Requests being handled by reliable workers now.
    pub inflight: u64,
    /// Dead letters (reliable mode: requests that failed `max_attempts` times).
    pub dead: u64,
    /// Delayed requests (`ipc_send_request_delayed()`, `ipc_send_request_at()`) not due yet,
    /// or due and not yet moved into the queue by a worker.
    pub delayed: u64,
}

/// A running worker: `concurrency` loops, each on a thread and a connection of its own,
/// popping requests from its queues and calling the handler.
///
/// Owns a `redipc::Worker` (its threads, connections, and the handler with `userdata`) and
/// keeps the client's core alive. Made by `ipc_worker_new()`, stopped by
/// `ipc_worker_stop()`, freed by `ipc_worker_free()`.
///
/// Thread safety: `ipc_worker_stop()` and `ipc_worker_stats()` may be called from any
/// thread, concurrently, also from the worker's own handlers; `ipc_worker_free()` must come
/// after every other call on it has returned (a handler of the worker may free it).
pub struct ipc_worker {
    _private: [u8; 0],
}
box_castable!(ipc_worker => redipc::Worker);

/// Send a request: `LPUSH` the payload into the queue (key `{prefix}{q:NAME}:pending`). Any
/// size the client allows, including 0 bytes.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty queue name, a name
/// with `{` or `}`, or a payload over the size limit; `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_send_request(
    client: *const ipc_client,
    queue: *const c_char,
    queue_len: usize,
    payload: *const c_char,
    payload_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_send_request(client, queue, queue_len, payload, payload_len) {
        try_ref!(client).send_request(bytes!(queue, queue_len), bytes!(payload, payload_len))?;
        Ok(())
    })
}

/// Send a request that becomes due `delay_ms` milliseconds from now (on the server's
/// clock): it waits in the queue's delayed set (key `{prefix}{q:NAME}:delayed`, counted as
/// `delayed` by `ipc_queue_stats()`) and a worker of the queue moves it into the queue when
/// it is due, then handles it like any request (an idle worker is woken for it, not
/// polling). A delay of 0 is due at once. Any payload size the client allows, including 0
/// bytes. Only for redipc's own queues (not bare lists): a worker running on the queue moves
/// it; with none running it waits in the delayed set.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty queue name, a name
/// with `{` or `}`, or a payload over the size limit; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_send_request_delayed(
    client: *const ipc_client,
    queue: *const c_char,
    queue_len: usize,
    payload: *const c_char,
    payload_len: usize,
    delay_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_send_request_delayed(client, queue, queue_len, payload, payload_len, delay_ms) {
        try_ref!(client).send_request_delayed(bytes!(queue, queue_len), bytes!(payload, payload_len), millis(delay_ms))?;
        Ok(())
    })
}

/// Send a request that becomes due at `unix_ms`, a wall-clock time in milliseconds since
/// the Unix epoch (compared with the server's clock: mind the skew between the hosts); a
/// time in the past is due at once. Otherwise as `ipc_send_request_delayed()`.
///
/// Errors: as `ipc_send_request_delayed()`; `IPC_ERR_INVALID_ARGUMENT` for a time the
/// system clock cannot represent.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_send_request_at(
    client: *const ipc_client,
    queue: *const c_char,
    queue_len: usize,
    payload: *const c_char,
    payload_len: usize,
    unix_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_send_request_at(client, queue, queue_len, payload, payload_len, unix_ms) {
        let at = UNIX_EPOCH
            .checked_add(millis(unix_ms))
            .ok_or_else(|| Error::invalid(format!("`unix_ms` {unix_ms} is beyond what the system clock can represent")))?;
        try_ref!(client).send_request_at(bytes!(queue, queue_len), bytes!(payload, payload_len), at)?;
        Ok(())
    })
}

/// Send a request to the Redis list `list` itself (a byte string, not empty): `LPUSH list
/// payload`, what a redis-ipc fleet's consumer (`BRPOP list`) and a worker with
/// `ipc_worker_options_set_bare()` take. No key of redipc's is involved; any size the
/// client allows, including 0 bytes.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty list name or a
/// payload over the size limit; `IPC_ERR_SERVER` (`WRONGTYPE` when the key is not a list);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_send_request_bare(
    client: *const ipc_client,
    list: *const c_char,
    list_len: usize,
    payload: *const c_char,
    payload_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_send_request_bare(client, list, list_len, payload, payload_len) {
        try_ref!(client).send_request_bare(bytes!(list, list_len), bytes!(payload, payload_len))?;
        Ok(())
    })
}

/// Start a worker on `n` queues (an array of byte strings, `lens` NULL for NUL-terminated
/// names): `concurrency` loops (see `ipc_worker_options`), each on a thread and a Redis
/// connection of its own, pop requests (one `BRPOP` over all the queues, in rotating order
/// so that a busy queue does not starve the others) and call `cb` for each (see
/// `ipc_request_cb`). `opts` may be NULL for the defaults (plain mode, at-most-once); it is
/// copied and checked here. With `ipc_worker_options_set_bare()` the names are the Redis
/// lists themselves (a redis-ipc fleet's `scooter:state`, fed by `LPUSH` from any client):
/// one `BRPOP` over all of them, FIFO per list, at-most-once.
///
/// `userdata` (may be NULL) is passed to every handler call. `userdata_free` (may be NULL)
/// runs exactly once, after the last handler call returned, when the worker has stopped:
/// in `ipc_worker_stop()` / `ipc_worker_free()` on that thread, or on the thread of the last
/// handler when handlers outlived the stop's deadline or the worker was stopped from one of
/// its own handlers. If this call fails, it never runs and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the running worker, owned by the caller; free it with
/// `ipc_worker_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `queues`, any `queues[i]`, `cb`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for no queue, an empty queue name, a name with `{` or `}` (not
/// refused for bare queues), an option out of range (the message names it), or a bare
/// reliable worker; `IPC_ERR_CLOSED`; `IPC_ERR_UNSUPPORTED` if a thread cannot be started.
///
/// Thread safety: any thread, concurrently with other calls on the client. The worker keeps
/// using the client: free the worker before the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_new(
    client: *const ipc_client,
    queues: *const *const c_char,
    lens: *const usize,
    n: usize,
    opts: *const ipc_worker_options,
    cb: ipc_request_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_worker,
) -> ipc_result {
    ffi_boundary!(ipc_worker_new(client, #[nullable] queues, #[nullable] lens, n, #[nullable] opts, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let cb = callback!(cb);
        let userdata = UserData(userdata);
        let handler = move |req: &redipc::Request| {
            let (queue, queue_len) = present(&req.queue);
            let (payload, payload_len) = present(&req.payload);
            let r = ipc_request { queue, queue_len, payload, payload_len, attempt: req.attempt };
            // SAFETY: the caller gave `cb` to be called with `userdata` on the worker's
            // threads; `r` and `err` outlive the call.
            handler_result(|err| unsafe { cb(userdata.ptr(), &r, err) })
        };
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let worker = try_ref!(client).handle_requests(&byte_list!(queues, lens, n), handler, opts)?;
        worker.on_stopped(userdata.release(userdata_free));
        put!(out, to_boxed(worker));
        Ok(())
    })
}

/// Stop taking requests and wait up to `timeout_ms` milliseconds for running handlers to
/// return. In reliable mode, requests of the worker still in flight are put back into their
/// queue. Stopping again (for example after a timeout) waits again; stopping a stopped
/// worker returns `IPC_OK` at once. The worker stays allocated: free it with
/// `ipc_worker_free()`. An idle loop blocked in its pop is woken at once.
///
/// On `IPC_OK` no handler runs or will run, and `userdata_free` has run. From one of the
/// worker's own handlers it returns `IPC_OK` at once: the stop is asked for, no new request
/// is taken, and the worker stops (running `userdata_free`) when the handlers return.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if handlers were still running at the
/// deadline (they finish on their own; no new request is taken; `userdata_free` runs after
/// the last of them).
///
/// Thread safety: any thread, also the worker's own handlers; see `ipc_worker`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_stop(worker: *const ipc_worker, timeout_ms: u64) -> ipc_result {
    ffi_boundary!(ipc_worker_stop(worker, timeout_ms) {
        try_ref!(worker).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// The counters of a worker: requests handled, failures, dead letters made, requests of
/// dead workers recovered.
///
/// Output: on `IPC_OK`, `*out` holds the counters.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, also from a handler; see `ipc_worker`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_stats(
    worker: *const ipc_worker,
    out: *mut ipc_worker_counts,
) -> ipc_result {
    ffi_boundary!(ipc_worker_stats(worker, out) {
        put!(out, try_ref!(worker).stats().into());
        Ok(())
    })
}

/// Stop the worker (waiting up to 10 s for running handlers, as `ipc_worker_stop()`) and
/// free it. NULL is a no-op. `userdata_free` runs once the handlers returned: here, or, when
/// some still run after 10 s, after the last of them on its thread. Called from one of the
/// worker's own handlers, it returns at once: no new request is taken, and `userdata_free`
/// runs after the handlers (that one included) returned.
///
/// Thread safety: every other call on `worker` must have returned; the handle must not be
/// used afterwards. Any thread, including the worker's own handlers. Handlers still running
/// after this returns may still use the client: free the client only after `userdata_free`
/// ran (or after an `ipc_worker_stop()` that returned `IPC_OK`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_free(worker: *mut ipc_worker) {
    ffi_boundary!(ipc_worker_free(#[nullable] worker) { free_box!(worker) })
}

/// The pending, in-flight, dead-letter and delayed counts of a queue (a byte string), read from the
/// server.
///
/// Output: on `IPC_OK`, `*out` holds the counts.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty queue name or one
/// with `{` or `}`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_queue_stats(
    client: *const ipc_client,
    queue: *const c_char,
    queue_len: usize,
    out: *mut ipc_queue_counts,
) -> ipc_result {
    ffi_boundary!(ipc_queue_stats(client, queue, queue_len, out) {
        let c = try_ref!(client).queue_stats(bytes!(queue, queue_len))?;
        put!(out, ipc_queue_counts { pending: c.pending, inflight: c.inflight, dead: c.dead, delayed: c.delayed });
        Ok(())
    })
}

/// Put every dead letter of a queue (a byte string) back into it (their attempts start
/// over), atomically.
///
/// The dead-letter list is the Redis list `{prefix}{q:NAME}:dead` (default prefix
/// `"ipc:"`), newest first. Each item is `"\0ipd\x01"`, the attempts as a 4-byte
/// big-endian number, the error text's length as a 4-byte big-endian number, the error
/// text (UTF-8), then the payload: readable with `ipc_command()` (`LRANGE`).
///
/// Output: on `IPC_OK`, `*moved` is how many were put back.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty queue name or one
/// with `{` or `}`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_queue_requeue_dead(
    client: *const ipc_client,
    queue: *const c_char,
    queue_len: usize,
    moved: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_queue_requeue_dead(client, queue, queue_len, moved) {
        put!(moved, try_ref!(client).requeue_dead_letters(bytes!(queue, queue_len))?);
        Ok(())
    })
}

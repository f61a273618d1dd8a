//! Request queues: `ipc_send_request()` (producer), `ipc_worker` (consumer loops running a
//! C handler), worker options and counters, and queue introspection.
//!
//! Ownership: an `ipc_worker` owns a `redipc::Worker` (its threads hold the handler closure
//! made here) and an [`Owner`] of the caller's `(userdata, userdata_free)`. `userdata_free`
//! is not tied to the closure's drop (the core may drop it later, on a runtime thread): it
//! is called explicitly, once, by whoever sees the worker stopped for good — the thread in
//! `ipc_worker_free()`, or a reaper thread when handlers outlived its deadline. The same
//! machinery ([`Running`]) serves `ipc_server` in `rpc.rs`.

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::handler::{ErrorOut, ipc_error_out};
use crate::pubsub::ipc_userdata_free_cb;
use crate::userdata::{UserData, present};
use crate::{borrow, borrow_mut, bytes_arg, free_handle, to_handle, write_out};

/// How long `ipc_worker_free()` and `ipc_server_free()` wait for running handlers.
pub(crate) const FREE_DEADLINE: Duration = Duration::from_secs(10);

// ---- shared by workers and RPC servers ------------------------------------------------

thread_local! {
    /// The [`Owner`] whose handler runs on this thread now (0: none).
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The caller's `(userdata, userdata_free)` of a worker or server, shared by its handle and
/// its handler closure.
pub(crate) struct Owner {
    pub(crate) userdata: UserData,
    free: ipc_userdata_free_cb,
    released: AtomicBool,
}

impl Owner {
    pub(crate) fn new(userdata: *mut c_void, free: ipc_userdata_free_cb) -> Arc<Owner> {
        Arc::new(Owner {
            userdata: UserData(userdata),
            free,
            released: AtomicBool::new(false),
        })
    }

    fn id(&self) -> usize {
        self as *const Owner as usize
    }

    /// Whether this thread is inside one of this owner's handler calls.
    fn is_current(&self) -> bool {
        CURRENT.with(|c| c.get() == self.id())
    }

    /// Run `f` (a handler call) marked as this owner's handler on this thread.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(usize);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(self.id())));
        f()
    }

    /// Call `userdata_free` (once, ever).
    fn release(&self) {
        if !self.released.swap(true, Ordering::SeqCst)
            && let Some(free) = self.free
        {
            // SAFETY: the caller of ipc_worker_new/ipc_serve promised that `free` may be
            // called once with `userdata` from any thread; `released` makes it once.
            unsafe { free(self.userdata.0) };
        }
    }
}

/// Something with handler threads that stops: a worker or an RPC server.
pub(crate) trait Stop: Send + 'static {
    /// Stop taking work and wait up to `deadline` for running handlers; a timeout error if
    /// they still ran. Calling it again waits again.
    fn stop(&mut self, deadline: Duration) -> redipc::Result<()>;
}

impl Stop for redipc::Worker {
    fn stop(&mut self, deadline: Duration) -> redipc::Result<()> {
        redipc::Worker::stop(self, deadline)
    }
}

impl Stop for redipc::RpcServer {
    fn stop(&mut self, deadline: Duration) -> redipc::Result<()> {
        redipc::RpcServer::stop(self, deadline)
    }
}

/// A running worker or server and the owner of its `userdata`.
pub(crate) struct Running<T: Stop> {
    inner: Mutex<T>,
    owner: Arc<Owner>,
}

impl<T: Stop> Running<T> {
    pub(crate) fn new(inner: T, owner: Arc<Owner>) -> Self {
        Running {
            inner: Mutex::new(inner),
            owner,
        }
    }

    /// Use the value (waits for a `stop` running on another thread).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// `ipc_worker_stop()` / `ipc_server_stop()`.
    pub(crate) fn stop(&self, deadline: Duration) -> Result<(), Error> {
        if self.owner.is_current() {
            return Err(Error::invalid(
                "called from inside one of its own handlers, it would wait for itself: \
                 stop it from another thread (or free it from the handler)",
            ));
        }
        self.with(|t| t.stop(deadline))?;
        Ok(())
    }

    /// `ipc_worker_free()` / `ipc_server_free()`: stop (waiting up to [`FREE_DEADLINE`]),
    /// then release `userdata`; if handlers still run, a reaper thread finishes both after
    /// them.
    pub(crate) fn free(self) {
        let owner = self.owner;
        let mut t = self.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        if owner.is_current() {
            // A handler of this very worker frees it: it has to return first. Stop taking
            // work now, and let a thread of its own wait for the handlers.
            let _ = t.stop(Duration::ZERO);
            reap(t, owner);
            return;
        }
        match t.stop(FREE_DEADLINE) {
            Ok(()) => {
                drop(t);
                owner.release();
            }
            Err(_) => reap(t, owner),
        }
    }
}

/// Wait (on a thread of its own) until every handler of `t` returned, then drop `t` and
/// release `userdata`.
fn reap<T: Stop>(mut t: T, owner: Arc<Owner>) {
    let spawned = std::thread::Builder::new()
        .name("redipc-reaper".into())
        .spawn(move || {
            while let Err(e) = t.stop(Duration::from_secs(1)) {
                if !e.is_timeout() {
                    break;
                }
            }
            drop(t);
            owner.release();
        });
    // Without a thread (out of resources) the value is dropped here: the core's own drop
    // still stops it, but `userdata_free` is not called (the caller's data leaks rather
    // than being freed under a running handler).
    drop(spawned);
}

/// A NUL-terminated message set by a handler, as text (invalid UTF-8 is replaced).
///
/// # Safety
/// `msg` is NULL or a NUL-terminated string.
pub(crate) unsafe fn message_arg(msg: *const c_char, what: &'static str) -> Result<String, Error> {
    if msg.is_null() {
        return Err(Error::null_arg(what));
    }
    // SAFETY: `msg` is not NULL and the caller promises a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned())
}

// ---- queues ----------------------------------------------------------------------------

/// One request handed to an `ipc_request_cb`.
///
/// Lifetime: the struct and what it points to are valid only during the handler call;
/// copy what you need to keep. The library owns all of it. `queue` and `payload` are never
/// NULL (an empty payload is a valid pointer with length 0) and not NUL-terminated.
#[repr(C)]
#[derive(Debug)]
pub struct ipc_request {
    /// The name of the queue it came from (as given to `ipc_worker_new()`).
    pub queue: *const u8,
    /// Length of `queue` in bytes.
    pub queue_len: usize,
    /// The payload as sent by `ipc_send_request()`.
    pub payload: *const u8,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
    /// How many times it was handed to a handler before: 0 the first time; in reliable mode
    /// 1, 2, ... for the retries after failures.
    pub attempt: u32,
}

/// A request handler: `userdata` as given to `ipc_worker_new()`, the request, and where to
/// report a failure.
///
/// Return 0 when the request is done (in reliable mode it is acknowledged and removed), or
/// any other number for a failure: set its text with `ipc_error_set(err, "...")` (without
/// it the text is `"the handler returned N"`). A failure in plain mode is only reported (the
/// request is gone); in reliable mode the request is retried until `max_attempts`, then moved
/// to the queue's dead-letter list with the text of the last failure.
///
/// Thread: one of the worker's own threads (`redipc-worker-N`), never the thread that
/// made the worker. With a concurrency above 1, calls run in parallel on several threads
/// with the same `userdata`. `req`, `err` and everything they point to are valid only
/// during the call. The handler may use the library, including the client of its worker
/// (`ipc_command()`, `ipc_send_request()`, `ipc_call()`, ...) and `ipc_worker_free()` on its
/// own worker; not `ipc_worker_stop()` on it (refused: it would wait for itself), and it
/// must not free the client while the worker runs. It must not unwind (C++ exceptions) or
/// `longjmp` out.
pub type ipc_request_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        req: *const ipc_request,
        err: *mut ipc_error_out,
    ) -> c_int,
>;

/// Counters of one worker (`ipc_worker_stats()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ipc_worker_counts {
    /// Requests handled successfully (handler returned 0).
    pub handled: u64,
    /// Handler failures (each failed attempt counts).
    pub failed: u64,
    /// Requests this worker moved to the dead-letter list (reliable mode).
    pub dead_lettered: u64,
    /// Requests of dead workers (expired leases) this worker put back into the queue.
    pub recovered: u64,
}

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
}

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

/// Options of a worker: concurrency, blocking timeout, reliable mode and its settings.
///
/// Owns a `redipc::WorkerOptions` (plain values). Made by `ipc_worker_options_new()` with
/// the defaults, changed by the `ipc_worker_options_set_*` functions (values are checked by
/// `ipc_worker_new()`), read by `ipc_worker_new()` (which copies them), freed by
/// `ipc_worker_options_free()`.
///
/// Thread safety: not synchronized; use one from one thread at a time (reading it in
/// `ipc_worker_new()` from several threads at once is fine).
pub struct ipc_worker_options {
    inner: redipc::WorkerOptions,
    log_errors: bool,
}

impl Default for ipc_worker_options {
    fn default() -> Self {
        ipc_worker_options {
            inner: redipc::WorkerOptions::default(),
            log_errors: true,
        }
    }
}

/// A running worker: `concurrency` loops, each on a thread and a connection of its own,
/// popping requests from its queues and calling the handler.
///
/// Owns a `redipc::Worker` (its threads, connections and the handler with `userdata`) and
/// keeps the client's core alive. Made by `ipc_worker_new()`, stopped by
/// `ipc_worker_stop()`, freed by `ipc_worker_free()`.
///
/// Thread safety: `ipc_worker_stop()` and `ipc_worker_stats()` may be called from any
/// thread (a stats call waits while a stop runs on another thread);
/// `ipc_worker_free()` must come after every other call on it has returned (a handler of
/// the worker may free it, see there).
pub struct ipc_worker {
    run: Running<redipc::Worker>,
}

/// Send a request: `LPUSH` the payload into the queue (key `{prefix}{q:NAME}:pending`). Any
/// size the client allows, including 0 bytes.
///
/// `queue` is `qlen` bytes (binary-safe, not empty, without `{` or `}`); `payload` is
/// `len` bytes (a pointer must be given even for 0 bytes: pass `""`).
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
    qlen: usize,
    payload: *const u8,
    len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_send_request(client, queue, qlen, payload, len) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let client = borrow(client, "client")?;
            let queue = bytes_arg(queue.cast(), qlen, "queue")?;
            let payload = bytes_arg(payload, len, "payload")?;
            client.inner.send_request(queue, payload)?;
        }
        Ok(())
    })
}

/// Queue names passed by C: `n` NUL-terminated strings.
///
/// # Safety
/// `names` is NULL or holds `n` pointers, each NULL or NUL-terminated.
unsafe fn queue_names<'a>(names: *const *const c_char, n: usize) -> Result<Vec<&'a [u8]>, Error> {
    if names.is_null() {
        return Err(Error::null_arg("queues"));
    }
    if n > isize::MAX as usize / size_of::<*const c_char>() {
        return Err(Error::invalid(format!("count {n} is too large")));
    }
    // SAFETY: `names` is not NULL and holds `n` pointers (caller contract).
    let ptrs = unsafe { std::slice::from_raw_parts(names, n) };
    let mut out = Vec::with_capacity(n);
    for (i, &p) in ptrs.iter().enumerate() {
        if p.is_null() {
            return Err(Error::new(
                ipc_result::IPC_ERR_NULL_ARG,
                format!("argument `queues[{i}]` is NULL"),
            ));
        }
        // SAFETY: `p` is a NUL-terminated string (caller contract, NULL checked).
        out.push(unsafe { CStr::from_ptr(p) }.to_bytes());
    }
    Ok(out)
}

/// Start a worker on `n` queues (NUL-terminated names): `concurrency` loops (default 1),
/// each on a thread and a Redis connection of its own, pop requests — one `BRPOP` over all
/// the queues, in rotating order so that a busy queue does not starve the others — and call
/// `handler` for each (see `ipc_request_cb`). With `opts` (NULL for the defaults, copied):
/// plain mode (at-most-once: a request taken by a worker that dies is lost) or reliable mode
/// (at-least-once: in-flight lists with leases, retries, dead letters).
///
/// `userdata` (may be NULL) is passed to every handler call. `userdata_free` (may be NULL)
/// runs exactly once, after no handler can run any more: inside `ipc_worker_free()` on its
/// thread, or — when handlers outlive its deadline, or a handler freed its own worker — on
/// a library thread (`redipc-reaper`) right after the last of them returned. If this call
/// fails, it never runs and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the running worker, owned by the caller; stop it with
/// `ipc_worker_stop()` and free it with `ipc_worker_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `queues`, any `queues[i]`, `handler`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for `n == 0`, an empty queue name, a name with `{` or `}`, or
/// invalid options (concurrency outside 1..1024, block timeout under 10 ms, `max_attempts`
/// 0 or lease under 100 ms in reliable mode); `IPC_ERR_UNSUPPORTED` if a thread cannot be
/// started.
///
/// Thread safety: any thread, concurrently with other calls on the client. The worker keeps
/// using the client: free the worker before the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_new(
    client: *const ipc_client,
    queues: *const *const c_char,
    n: usize,
    handler: ipc_request_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    opts: *const ipc_worker_options,
    out: *mut *mut ipc_worker,
) -> ipc_result {
    ffi_boundary!(ipc_worker_new(client, queues, n, handler, #[nullable] userdata, #[nullable] userdata_free, #[nullable] opts, out) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let client = unsafe { borrow(client, "client") }?;
        let Some(cb) = handler else { return Err(Error::null_arg("handler")) };
        // SAFETY: `queues` holds `n` NUL-terminated strings (caller contract).
        let names = unsafe { queue_names(queues, n) }?;
        let defaults = ipc_worker_options::default();
        let opts = if opts.is_null() {
            &defaults
        } else {
            // SAFETY: `opts` is a live handle (caller contract).
            unsafe { borrow(opts, "opts") }?
        };
        let mut wopts = opts.inner.clone();
        if !opts.log_errors {
            wopts = wopts.error_hook(|_| {});
        }
        let owner = Owner::new(userdata, userdata_free);
        let o = owner.clone();
        let handler = move |req: &redipc::Request| -> redipc::Result<()> {
            let (q, ql) = present(&req.queue);
            let (p, pl) = present(&req.payload);
            let r = ipc_request { queue: q, queue_len: ql, payload: p, payload_len: pl, attempt: req.attempt };
            let mut err = ErrorOut::new();
            // SAFETY: the caller of ipc_worker_new promised that `cb` may be called with
            // `userdata` on the worker's threads; `r` and `err` outlive the call.
            let rc = o.enter(|| unsafe { cb(o.userdata.0, &r, err.as_ptr()) });
            if rc == 0 {
                Ok(())
            } else {
                Err(err.into_message().unwrap_or_else(|| format!("the handler returned {rc}")).into())
            }
        };
        let worker = client.inner.handle_requests(&names, handler, wopts)?;
        let handle = to_handle(ipc_worker { run: Running::new(worker, owner) });
        // SAFETY: `out` is writable (caller contract, NULL checked by the boundary).
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Stop taking requests and wait up to `deadline_ms` milliseconds for running handlers to
/// return. In reliable mode, requests of the worker still in flight are put back into their
/// queue. Stopping again (for example after a timeout) waits again; stopping a stopped
/// worker returns `IPC_OK` at once. The worker stays allocated: free it with
/// `ipc_worker_free()`.
///
/// An idle loop blocked in its pop is woken at once (`CLIENT UNBLOCK` on its connection;
/// where ACLs forbid `CLIENT ID`/`CLIENT UNBLOCK` it notices within its block timeout).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if handlers were still running at the
/// deadline (they finish on their own; no new request is taken);
/// `IPC_ERR_INVALID_ARGUMENT` when called from one of the worker's own handlers (it would
/// wait for itself).
///
/// Thread safety: any thread except the worker's own handlers; see `ipc_worker`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_stop(
    worker: *const ipc_worker,
    deadline_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_worker_stop(worker, deadline_ms) {
        // SAFETY: `worker` is a live handle (caller contract, NULL checked).
        unsafe { borrow(worker, "worker") }?.run.stop(Duration::from_millis(deadline_ms))
    })
}

/// The counters of a worker: requests handled, failures, dead letters made, requests of
/// dead workers recovered.
///
/// Output: on `IPC_OK`, `*out` holds the counters. Untouched otherwise.
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
        // SAFETY: `worker` is a live handle (caller contract, NULL checked).
        let stats = unsafe { borrow(worker, "worker") }?.run.with(|w| w.stats());
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, stats.into(), "out") }
    })
}

/// Stop the worker (waiting up to 10 s for running handlers, as `ipc_worker_stop()`) and
/// free it. NULL is a no-op. `userdata_free` runs here once the handlers returned; if some
/// still run after 10 s, they finish on their own threads and `userdata_free` runs after
/// the last of them (see `ipc_worker_new()`).
///
/// Called from one of the worker's own handlers, it returns at once: no new request is
/// taken, and `userdata_free` runs on a library thread after the handlers (that one
/// included) returned.
///
/// Thread safety: every other call on `worker` must have returned; the handle must not be
/// used afterwards. Any thread, including the worker's own handlers. Handlers still running
/// after this returns may still use the client: free the client only after
/// `userdata_free` ran (or after an `ipc_worker_stop()` that returned `IPC_OK`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_free(worker: *mut ipc_worker) {
    ffi_boundary!(ipc_worker_free(#[nullable] worker) {
        if worker.is_null() {
            return Ok(());
        }
        // SAFETY: a handle from ipc_worker_new, freed once with no other call running on it
        // (caller contract).
        let w = unsafe { Box::from_raw(worker) };
        w.run.free();
        Ok(())
    })
}

/// The pending, in-flight and dead-letter counts of a queue (`qlen` bytes at `queue`),
/// read from the server.
///
/// Output: on `IPC_OK`, `*out` holds the counts. Untouched otherwise.
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
    qlen: usize,
    out: *mut ipc_queue_counts,
) -> ipc_result {
    ffi_boundary!(ipc_queue_stats(client, queue, qlen, out) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let client = borrow(client, "client")?;
            let queue = bytes_arg(queue.cast(), qlen, "queue")?;
            let c = client.inner.queue_stats(queue)?;
            write_out(out, ipc_queue_counts { pending: c.pending, inflight: c.inflight, dead: c.dead }, "out")
        }
    })
}

/// Put every dead letter of a queue back into it (their attempts start over), atomically.
///
/// The dead-letter list is the Redis list `{prefix}{q:NAME}:dead` (default prefix
/// `"ipc:"`), newest first. Each item is `"\0ipd\x01"`, the attempts as a 4-byte
/// big-endian number, the error text's length as a 4-byte big-endian number, the error
/// text (UTF-8), then the payload: readable with `ipc_command()` (`LRANGE`).
///
/// Output: on `IPC_OK`, `*moved` is how many were put back. Untouched otherwise.
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
    qlen: usize,
    moved: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_queue_requeue_dead(client, queue, qlen, moved) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let client = borrow(client, "client")?;
            let queue = bytes_arg(queue.cast(), qlen, "queue")?;
            let n = client.inner.requeue_dead_letters(queue)?;
            write_out(moved, n, "moved")
        }
    })
}

/// Make worker options with the defaults: concurrency 1, block timeout 1000 ms, plain mode
/// (not reliable), 3 attempts, lease 30000 ms, prefetch 16, errors logged to stderr.
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_worker_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` if `out` is NULL.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_new(out: *mut *mut ipc_worker_options) -> ipc_result {
    ffi_boundary!(ipc_worker_options_new(out) {
        let opts = to_handle(ipc_worker_options::default());
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, opts, "out") }
    })
}

/// Free worker options. NULL is a no-op. Workers made with them keep their own copy.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_free(opts: *mut ipc_worker_options) {
    ffi_boundary!(ipc_worker_options_free(#[nullable] opts) {
        // SAFETY: NULL or a handle from ipc_worker_options_new, freed once.
        unsafe { free_handle(opts) };
        Ok(())
    })
}

/// Apply `f` to the options behind `opts`.
///
/// # Safety
/// `opts` is NULL or a live handle from `ipc_worker_options_new` used by this thread only.
unsafe fn update(
    opts: *mut ipc_worker_options,
    f: impl FnOnce(&mut ipc_worker_options),
) -> Result<(), Error> {
    // SAFETY: forwarded from the caller.
    f(unsafe { borrow_mut(opts, "opts") }?);
    Ok(())
}

/// Set how many handlers run in parallel (default 1; 1 to 1024, checked by
/// `ipc_worker_new()`): each is a loop with a thread and a connection of its own.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_concurrency(
    opts: *mut ipc_worker_options,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_concurrency(opts, n) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.inner.concurrency = n) }
    })
}

/// Set how long one blocking pop waits on the server, in milliseconds (default 1000; at
/// least 10, checked by `ipc_worker_new()`). `ipc_worker_stop()` wakes a blocked pop at
/// once (with `CLIENT UNBLOCK`; where ACLs forbid it, within this time).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_block_timeout_ms(
    opts: *mut ipc_worker_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_block_timeout_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.inner.block_timeout = Duration::from_millis(ms)) }
    })
}

/// Turn reliable mode on or off (default off). Reliable: each request is moved atomically
/// into the loop's in-flight list under a lease kept alive by a heartbeat; acknowledged when
/// the handler returns 0; on failure re-queued with its attempt raised, and after
/// `max_attempts` moved to the dead-letter list with the failure's text; the requests of a
/// worker that died go back to the queue when its lease expired, the death counting as an
/// attempt (a request that crashes every worker that takes it ends in the dead letters after
/// `max_attempts` deaths). At-least-once: a request can be handled twice (a worker dying
/// after the handler, before the ack).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_reliable(
    opts: *mut ipc_worker_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_reliable(opts, on) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.inner.reliable = on) }
    })
}

/// Reliable mode: set how many times a request is handed to a handler before it becomes a
/// dead letter (default 3; at least 1, checked by `ipc_worker_new()`). A handler failure and
/// a worker that died while handling it each count as one.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_max_attempts(
    opts: *mut ipc_worker_options,
    n: u32,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_max_attempts(opts, n) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.inner.max_attempts = n) }
    })
}

/// Reliable mode: set the lease in milliseconds (default 30000; at least 100, checked by
/// `ipc_worker_new()`): how long the requests of a worker that died stay claimed before a
/// live worker of the queue puts them back.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_lease_ms(
    opts: *mut ipc_worker_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_lease_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.inner.lease = Duration::from_millis(ms)) }
    })
}

/// Plain mode: set how many requests one loop takes per round trip when the queue is busy
/// (default 16; 0 or 1 takes one at a time). A worker that dies loses at most these.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_prefetch(
    opts: *mut ipc_worker_options,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_prefetch(opts, n) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.inner.prefetch = n) }
    })
}

/// Set whether handler failures and worker errors (lost connections, ...) are written to
/// stderr, one line each (default true). False keeps them quiet; the counters of
/// `ipc_worker_stats()` still count them.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_worker_options_set_log_errors(
    opts: *mut ipc_worker_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_log_errors(opts, on) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| o.log_errors = on) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    struct Fake {
        busy_for: u32,
    }

    impl Stop for Fake {
        fn stop(&mut self, _deadline: Duration) -> redipc::Result<()> {
            if self.busy_for == 0 {
                return Ok(());
            }
            self.busy_for -= 1;
            Err(redipc::Error::new(redipc::ErrorKind::Timeout, "busy"))
        }
    }

    #[test]
    fn userdata_is_released_once_after_a_stop_and_stop_is_refused_inside_a_handler() {
        // (No C `userdata_free` here: tests/boundary.rs reads every `extern "C"` function
        // of the sources as an export; `released` shows whether it would have run.)
        let owner = Owner::new(std::ptr::null_mut(), None);
        let run = Running::new(Fake { busy_for: 0 }, owner.clone());
        assert!(!owner.is_current());
        owner.enter(|| {
            assert!(owner.is_current());
            assert_eq!(
                run.stop(Duration::ZERO).unwrap_err().code(),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
        });
        assert!(!owner.is_current());
        assert!(!owner.released.load(Ordering::SeqCst));
        run.free();
        assert!(owner.released.load(Ordering::SeqCst));
        owner.release(); // a second release does nothing
    }

    #[test]
    fn handlers_outliving_the_deadline_are_reaped_on_a_thread_of_their_own() {
        let owner = Owner::new(std::ptr::null_mut(), None);
        let run = Running::new(Fake { busy_for: 3 }, owner.clone());
        // The first stop times out: `free` returns, and the reaper keeps stopping.
        run.free();
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !owner.released.load(Ordering::SeqCst) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(owner.released.load(Ordering::SeqCst));
    }

    #[test]
    fn options_setters_store_their_values() {
        let mut o: *mut ipc_worker_options = std::ptr::null_mut();
        // SAFETY: valid out pointer; the handle is used and freed here only.
        unsafe {
            assert_eq!(ipc_worker_options_new(&mut o), ipc_result::IPC_OK);
            assert_eq!(ipc_worker_options_set_concurrency(o, 4), ipc_result::IPC_OK);
            assert_eq!(
                ipc_worker_options_set_block_timeout_ms(o, 50),
                ipc_result::IPC_OK
            );
            assert_eq!(ipc_worker_options_set_reliable(o, true), ipc_result::IPC_OK);
            assert_eq!(
                ipc_worker_options_set_max_attempts(o, 2),
                ipc_result::IPC_OK
            );
            assert_eq!(ipc_worker_options_set_lease_ms(o, 500), ipc_result::IPC_OK);
            assert_eq!(ipc_worker_options_set_prefetch(o, 1), ipc_result::IPC_OK);
            assert_eq!(
                ipc_worker_options_set_log_errors(o, false),
                ipc_result::IPC_OK
            );
            let v = &*o;
            assert_eq!(v.inner.concurrency, 4);
            assert_eq!(v.inner.block_timeout, Duration::from_millis(50));
            assert!(v.inner.reliable);
            assert_eq!(v.inner.max_attempts, 2);
            assert_eq!(v.inner.lease, Duration::from_millis(500));
            assert_eq!(v.inner.prefetch, 1);
            assert!(!v.log_errors);
            assert_eq!(
                ipc_worker_options_set_prefetch(std::ptr::null_mut(), 1),
                ipc_result::IPC_ERR_NULL_ARG
            );
            ipc_worker_options_free(o);
            ipc_worker_options_free(std::ptr::null_mut());
        }
    }
}

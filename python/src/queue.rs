//! Request queues for Python: `send_request`, `handle_requests` (a `Worker` running Python
//! handlers on its own Rust threads), introspection and dead letters.
//!
//! # Threads and the GIL
//!
//! The core runs each handler on one of the worker's threads. The handler given to the core
//! enters [`Busy`] (so the `atexit` hook waits for it and no handler starts once the
//! interpreter exits), takes the GIL for that one call, and turns an exception into the
//! failure text `"TypeName: message"`. Stopping waits for running handlers, which may need
//! the GIL: every stop runs with the GIL released, and a `Worker` dropped without `stop()`
//! is stopped on a helper thread. [`Running`] holds that logic for `Worker` and `RpcServer`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use redipc::{WorkerOptions, WorkerStats as CoreStats};

use crate::client::Client;
use crate::convert::{self, Arg, arg, duration};
use crate::errors::{invalid_argument, to_pyerr};
use crate::pubsub::Busy;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `f` with the GIL, on a handler thread of the core, inside [`Busy`].
///
/// Once the interpreter exits no handler starts: the thread waits for the process to end
/// instead, so its request is treated as if the process had died (a reliable queue
/// recovers it after the lease). Failing it instead would let the worker pop and fail
/// (and dead-letter) request after request while the interpreter finalizes.
pub(crate) fn in_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    if let Some(_busy) = Busy::enter()
        && let Some(r) = Python::try_attach(f)
    {
        return r;
    }
    loop {
        std::thread::park();
    }
}

// ---------------------------------------------------------------------------------------
// Running handlers: shared by Worker and RpcServer

thread_local! {
    /// The id of the `Worker`/`RpcServer` whose handler runs on this thread now (0: none).
    static IN_HANDLER: Cell<u64> = const { Cell::new(0) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a `Worker`/`RpcServer`.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Marks this thread as running a handler of `id` while it lives.
pub(crate) struct HandlerScope {
    outer: u64,
}

impl HandlerScope {
    pub(crate) fn enter(id: u64) -> Self {
        HandlerScope {
            outer: IN_HANDLER.with(|c| c.replace(id)),
        }
    }
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        IN_HANDLER.with(|c| c.set(self.outer));
    }
}

/// `"TypeName: message"` of an exception (just the type name when its text is empty).
pub(crate) fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_string());
    let text = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if text.is_empty() {
        name
    } else {
        format!("{name}: {text}")
    }
}

/// Check that `f` is callable; `what` names it in the `TypeError`.
pub(crate) fn callable(f: &Bound<'_, PyAny>, what: &str) -> PyResult<Py<PyAny>> {
    if !f.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be callable, not {}",
            convert::type_name(f)
        )));
    }
    Ok(f.clone().unbind())
}

/// What `Running` stops: a core worker or RPC server.
pub(crate) trait Stoppable: Send + 'static {
    fn stop(&mut self, deadline: Duration) -> redipc::Result<()>;
    fn stats(&self) -> CoreStats;
}

impl Stoppable for redipc::Worker {
    fn stop(&mut self, deadline: Duration) -> redipc::Result<()> {
        redipc::Worker::stop(self, deadline)
    }
    fn stats(&self) -> CoreStats {
        redipc::Worker::stats(self)
    }
}

impl Stoppable for redipc::RpcServer {
    fn stop(&mut self, deadline: Duration) -> redipc::Result<()> {
        redipc::RpcServer::stop(self, deadline)
    }
    fn stats(&self) -> CoreStats {
        redipc::RpcServer::stats(self)
    }
}

/// The core worker or server; `None` once stopped. Held (with the GIL released) for the
/// whole of a stop, so `stop()` from another thread waits for a stop in progress.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// A running core worker or server, stopped with the GIL released.
pub(crate) struct Running<T: Stoppable> {
    id: u64,
    inner: Slot<T>,
    /// The counters as last read (what `stats()` shows during and after a stop).
    last: Arc<Mutex<CoreStats>>,
}

impl<T: Stoppable> Running<T> {
    pub(crate) fn new(id: u64, inner: T) -> Self {
        Running {
            id,
            inner: Arc::new(Mutex::new(Some(inner))),
            last: Arc::default(),
        }
    }

    pub(crate) fn stats(&self) -> CoreStats {
        match self.inner.try_lock() {
            Ok(g) => {
                if let Some(w) = g.as_ref() {
                    *lock(&self.last) = w.stats();
                }
            }
            Err(TryLockError::Poisoned(p)) => {
                if let Some(w) = p.into_inner().as_ref() {
                    *lock(&self.last) = w.stats();
                }
            }
            // Being stopped: the counters read when the stop began.
            Err(TryLockError::WouldBlock) => {}
        }
        *lock(&self.last)
    }

    /// Whether it runs or is being stopped.
    pub(crate) fn running(&self) -> bool {
        match self.inner.try_lock() {
            Ok(g) => g.is_some(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().is_some(),
            Err(TryLockError::WouldBlock) => true,
        }
    }

    /// Stop and wait up to `deadline` for running handlers; `TimeoutError` if some still
    /// ran (then it can be stopped again). From inside one of its own handlers: only ask it
    /// to stop (a helper thread waits), since waiting for itself could not end.
    pub(crate) fn stop(&self, py: Python<'_>, deadline: Duration) -> PyResult<()> {
        if IN_HANDLER.with(Cell::get) == self.id {
            return stop_later(&self.inner, &self.last)
                .map_err(|e| PyOSError::new_err(format!("cannot stop in the background: {e}")));
        }
        let inner = &self.inner;
        let last = &self.last;
        let _busy = Busy::enter();
        py.detach(|| stop_now(inner, last, deadline))
            .map_err(|e| to_pyerr(py, e))
    }
}

/// Stop what `slot` holds, waiting up to `deadline`; it stays in the slot if handlers
/// still ran (so a later stop can wait for them again). Call without the GIL.
fn stop_now<T: Stoppable>(
    slot: &Mutex<Option<T>>,
    last: &Mutex<CoreStats>,
    deadline: Duration,
) -> redipc::Result<()> {
    let mut guard = lock(slot);
    let Some(w) = guard.as_mut() else {
        return Ok(());
    };
    *lock(last) = w.stats();
    let r = w.stop(deadline);
    *lock(last) = w.stats();
    if r.is_ok() {
        // Dropping a stopped worker does not wait.
        guard.take();
    }
    r
}

/// Stop what `slot` holds on a helper thread (it waits up to [`DEFAULT_STOP`] for running
/// handlers, then lets them finish on their own).
fn stop_later<T: Stoppable>(slot: &Slot<T>, last: &Arc<Mutex<CoreStats>>) -> std::io::Result<()> {
    let (slot, last) = (slot.clone(), last.clone());
    std::thread::Builder::new()
        .name("redipc-stop".into())
        .spawn(move || {
            if stop_now(&slot, &last, DEFAULT_STOP).is_err() {
                // Handlers still run: they end by themselves; the core's drop waits again.
                lock(&slot).take();
            }
        })
        .map(drop)
}

impl<T: Stoppable> Drop for Running<T> {
    fn drop(&mut self) {
        // Dropped with the GIL held (maybe while the interpreter exits), and stopping waits
        // for handlers that may need the GIL: stop on a helper thread instead. Without a
        // thread, the core's own drop stops it when the last reference goes.
        if self.running() {
            let _ = stop_later(&self.inner, &self.last);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Request, counters, dead letters

/// One request handed to a handler.
#[pyclass(frozen, module = "redipc._native", name = "Request")]
pub(crate) struct Request {
    /// The queue it came from.
    #[pyo3(get)]
    queue: Py<PyBytes>,
    /// The payload as sent.
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// How many times it was handed to a handler before (0 the first time).
    #[pyo3(get)]
    attempt: u32,
}

#[pymethods]
impl Request {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Request(queue={}, payload={}, attempt={})",
            short_repr(py, &self.queue),
            short_repr(py, &self.payload),
            self.attempt
        )
    }
}

/// `repr()` of bytes, shortened after 64 bytes.
pub(crate) fn short_repr(py: Python<'_>, b: &Py<PyBytes>) -> String {
    const MAX: usize = 64;
    let data = b.as_bytes(py);
    let shown = if data.len() > MAX {
        PyBytes::new(py, &data[..MAX]).into_any()
    } else {
        b.bind(py).clone().into_any()
    };
    let text = shown
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "b'?'".to_string());
    if data.len() > MAX {
        format!("{text}...({} bytes)", data.len())
    } else {
        text
    }
}

/// Counters of a queue, read from the server.
#[pyclass(frozen, module = "redipc._native", name = "QueueCounts")]
pub(crate) struct QueueCounts {
    /// Requests waiting.
    #[pyo3(get)]
    pending: u64,
    /// Requests being handled by reliable workers.
    #[pyo3(get)]
    inflight: u64,
    /// Dead letters.
    #[pyo3(get)]
    dead: u64,
}

#[pymethods]
impl QueueCounts {
    fn __repr__(&self) -> String {
        format!(
            "QueueCounts(pending={}, inflight={}, dead={})",
            self.pending, self.inflight, self.dead
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<QueueCounts>().is_ok_and(|o| {
            let o = o.get();
            (o.pending, o.inflight, o.dead) == (self.pending, self.inflight, self.dead)
        })
    }

    /// The counters as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("pending", self.pending)?;
        d.set_item("inflight", self.inflight)?;
        d.set_item("dead", self.dead)?;
        Ok(d)
    }
}

/// Counters of a `Worker` or `RpcServer`.
#[pyclass(frozen, module = "redipc._native", name = "WorkerStats")]
pub(crate) struct WorkerStats {
    /// Requests handled successfully (for a server: calls answered or expired).
    #[pyo3(get)]
    handled: u64,
    /// Handler failures (each retry counts).
    #[pyo3(get)]
    failed: u64,
    /// Requests this worker moved to the dead letters.
    #[pyo3(get)]
    dead_lettered: u64,
    /// Requests of dead workers this worker put back into their queue.
    #[pyo3(get)]
    recovered: u64,
}

impl From<CoreStats> for WorkerStats {
    fn from(s: CoreStats) -> Self {
        WorkerStats {
            handled: s.handled,
            failed: s.failed,
            dead_lettered: s.dead_lettered,
            recovered: s.recovered,
        }
    }
}

#[pymethods]
impl WorkerStats {
    fn __repr__(&self) -> String {
        format!(
            "WorkerStats(handled={}, failed={}, dead_lettered={}, recovered={})",
            self.handled, self.failed, self.dead_lettered, self.recovered
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<WorkerStats>().is_ok_and(|o| {
            let o = o.get();
            (o.handled, o.failed, o.dead_lettered, o.recovered)
                == (
                    self.handled,
                    self.failed,
                    self.dead_lettered,
                    self.recovered,
                )
        })
    }

    /// The counters as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("handled", self.handled)?;
        d.set_item("failed", self.failed)?;
        d.set_item("dead_lettered", self.dead_lettered)?;
        d.set_item("recovered", self.recovered)?;
        Ok(d)
    }
}

/// A request that failed `max_attempts` times.
#[pyclass(frozen, module = "redipc._native", name = "DeadLetter")]
pub(crate) struct DeadLetter {
    /// The payload as sent.
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// How many times it was tried.
    #[pyo3(get)]
    attempts: u32,
    /// The last error (`"TypeName: message"` for a Python handler).
    #[pyo3(get)]
    error: String,
}

#[pymethods]
impl DeadLetter {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "DeadLetter(payload={}, attempts={}, error={:?})",
            short_repr(py, &self.payload),
            self.attempts,
            self.error
        )
    }
}

// ---------------------------------------------------------------------------------------
// Worker

/// A running worker; see the stubs.
#[pyclass(frozen, module = "redipc._native", name = "Worker")]
pub(crate) struct Worker {
    run: Running<redipc::Worker>,
    queues: Vec<Vec<u8>>,
    reliable: bool,
    concurrency: usize,
}

#[pymethods]
impl Worker {
    /// Stop taking requests and wait up to `timeout` seconds for running handlers.
    #[pyo3(signature = (timeout = None), text_signature = "($self, timeout=10.0)")]
    fn stop(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let deadline = stop_deadline(timeout)?;
        self.run.stop(py, deadline)
    }

    /// The worker's counters.
    fn stats(&self) -> WorkerStats {
        self.run.stats().into()
    }

    /// Whether it runs (not stopped yet).
    #[getter]
    fn running(&self) -> bool {
        self.run.running()
    }

    /// The queue names.
    #[getter]
    fn queues<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.queues.iter().map(|q| PyBytes::new(py, q)))
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.run.stop(py, DEFAULT_STOP)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let names: Vec<String> = self
            .queues
            .iter()
            .map(|q| format!("{:?}", String::from_utf8_lossy(q)))
            .collect();
        format!(
            "<redipc.Worker [{}] {}concurrency={}{}>",
            names.join(", "),
            if self.reliable { "reliable " } else { "" },
            self.concurrency,
            if self.run.running() { "" } else { " stopped" }
        )
    }
}

/// How long `stop()` waits by default.
pub(crate) const DEFAULT_STOP: Duration = Duration::from_secs(10);

pub(crate) fn stop_deadline(timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
    match timeout {
        Some(t) if !t.is_none() => duration(t, "stop(): timeout"),
        _ => Ok(DEFAULT_STOP),
    }
}

/// A positive count from Python; `what` names it.
pub(crate) fn count(py: Python<'_>, n: i64, what: &str) -> PyResult<usize> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid_argument(py, format!("{what} must be >= 1, not {n}")))
}

/// The queue names: one name (`str`, `bytes` ...), or a list/tuple of them.
fn queue_names(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Arg>> {
    let what = |i: usize| format!("handle_requests(): queue {i}");
    if let Ok(list) = obj.cast::<PyList>() {
        return convert::args(&list.to_tuple(), &what);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return convert::args(tuple, &what);
    }
    Ok(vec![arg(obj, &|| {
        "handle_requests(): argument 'queues'".to_string()
    })?])
}

#[pymethods]
impl Client {
    /// `LPUSH` a request into `queue`.
    fn send_request(
        &self,
        py: Python<'_>,
        queue: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let queue = arg(queue, &|| "send_request(): argument 'queue'".to_string())?;
        let payload = arg(payload, &|| {
            "send_request(): argument 'payload'".to_string()
        })?;
        self.run(py, |c| c.send_request(&queue, &payload))
    }

    /// Start a worker running `handler(request)` for the requests of `queues`.
    #[pyo3(signature = (
        queues,
        handler,
        *,
        concurrency = 1,
        reliable = false,
        max_attempts = 3,
        lease = None,
        block_timeout = None,
        prefetch = 16,
        on_error = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn handle_requests(
        &self,
        py: Python<'_>,
        queues: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
        concurrency: i64,
        reliable: bool,
        max_attempts: i64,
        lease: Option<&Bound<'_, PyAny>>,
        block_timeout: Option<&Bound<'_, PyAny>>,
        prefetch: i64,
        on_error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Worker> {
        let names = queue_names(queues)?;
        let handler = callable(handler, "handle_requests(): handler")?;
        let on_error = match on_error {
            Some(f) if !f.is_none() => Some(callable(f, "handle_requests(): on_error")?),
            _ => None,
        };
        let concurrency = count(py, concurrency, "handle_requests(): concurrency")?;
        let prefetch = count(py, prefetch, "handle_requests(): prefetch")?;
        let max_attempts = u32::try_from(max_attempts)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                invalid_argument(
                    py,
                    format!("handle_requests(): max_attempts must be >= 1, not {max_attempts}"),
                )
            })?;
        let mut opts = WorkerOptions::default()
            .concurrency(concurrency)
            .reliable(reliable)
            .max_attempts(max_attempts)
            .prefetch(prefetch);
        if let Some(t) = lease {
            opts = opts.lease(duration(t, "handle_requests(): lease")?);
        }
        if let Some(t) = block_timeout {
            opts = opts.block_timeout(duration(t, "handle_requests(): block_timeout")?);
        }
        if on_error.is_some() {
            opts = opts.error_hook(|r: &redipc::Report| {
                if !matches!(
                    r.kind,
                    redipc::ReportKind::HandlerFailed | redipc::ReportKind::DeadLettered
                ) {
                    eprintln!("{r}");
                }
            });
        }
        let id = next_id();
        let run0 = move |req: &redipc::Request| -> Result<(), String> {
            in_python(|py| {
                let _scope = HandlerScope::enter(id);
                let r = Bound::new(
                    py,
                    Request {
                        queue: PyBytes::new(py, &req.queue).unbind(),
                        payload: PyBytes::new(py, &req.payload).unbind(),
                        attempt: req.attempt,
                    },
                )
                .and_then(|r| handler.bind(py).call1((r,)));
                match r {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let text = describe(py, &e);
                        if let Some(hook) = &on_error {
                            let hook = hook.bind(py);
                            if let Err(e2) = hook.call1((e.into_value(py),)) {
                                e2.write_unraisable(py, Some(hook));
                            }
                        }
                        Err(text)
                    }
                }
            })
        };
        let run = move |req: &redipc::Request| run0(req).map_err(redipc::Error::from);
        let worker = self.run(py, |c| c.handle_requests(&names, run, opts))?;
        Ok(Worker {
            run: Running::new(id, worker),
            queues: names.iter().map(|n| n.as_ref().to_vec()).collect(),
            reliable,
            concurrency,
        })
    }

    /// Pending, in-flight and dead-letter counts of a queue.
    fn queue_stats(&self, py: Python<'_>, queue: &Bound<'_, PyAny>) -> PyResult<QueueCounts> {
        let queue = arg(queue, &|| "queue_stats(): argument 'queue'".to_string())?;
        let c = self.run(py, |c| c.queue_stats(&queue))?;
        Ok(QueueCounts {
            pending: c.pending,
            inflight: c.inflight,
            dead: c.dead,
        })
    }

    /// The dead letters of a queue, oldest first (they stay in the queue's dead-letter list).
    fn dead_letters<'py>(
        &self,
        py: Python<'py>,
        queue: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<DeadLetter>> {
        let queue = arg(queue, &|| "dead_letters(): argument 'queue'".to_string())?;
        let letters = self.run(py, |c| c.dead_letters(&queue))?;
        Ok(letters
            .into_iter()
            .map(|d| DeadLetter {
                payload: PyBytes::new(py, &d.payload).unbind(),
                attempts: d.attempts,
                error: d.error,
            })
            .collect())
    }

    /// Put every dead letter of a queue back into it; how many.
    fn requeue_dead_letters(&self, py: Python<'_>, queue: &Bound<'_, PyAny>) -> PyResult<u64> {
        let queue = arg(queue, &|| {
            "requeue_dead_letters(): argument 'queue'".to_string()
        })?;
        self.run(py, |c| c.requeue_dead_letters(&queue))
    }
}

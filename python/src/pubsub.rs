//! Pub/sub for Python: `Message`, `Subscription`, `SubscriptionGroup` and the callback
//! plumbing between the core's dispatcher and Python.
//!
//! # Threads, the GIL and closing
//!
//! A callback runs on the core's dispatcher thread (or, in poll mode, inside
//! `Client.poll()` on the caller's thread). The core hands over events in batches; the
//! batch handler here attaches to the interpreter once per batch and calls the Python
//! callback once per event.
//!
//! The core's close waits for a running handler to return, and a running handler may be
//! waiting for the GIL. So every close that can wait runs with the GIL released
//! (`py.detach`), and a subscription whose Python object dies without `close()` (its
//! `Drop` runs with the GIL held, possibly during interpreter shutdown when other threads
//! can no longer take the GIL) is closed on a helper thread instead of inline.
//!
//! On top of the core's guarantee ("no handler call after close returns") a `closed` flag,
//! set with the GIL held and checked before each callback, stops the rest of a batch as
//! soon as `close()` is called.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyList, PyString, PyTuple};
use redipc::{Event, Overflow, QueueStats, SubscribeOptions, SubscriptionKind, blocking};

use crate::convert::{Arg, args};
use crate::errors::{closed_error, invalid_argument, to_pyerr};

/// How long one wait of `get()`/iteration/`poll()` lasts with the GIL released before
/// signals (Ctrl-C) are checked and `close()` from another thread gets its turn.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn kind_name(kind: SubscriptionKind) -> &'static str {
    match kind {
        SubscriptionKind::Channel => "channel",
        SubscriptionKind::Pattern => "pattern",
        SubscriptionKind::Shard => "shard",
        _ => "unknown",
    }
}

// ---------------------------------------------------------------------------------------
// Message

/// What a `Message` reports.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum MessageKind {
    Message,
    Activated,
    Disconnected,
    Reactivated,
}

impl MessageKind {
    fn name(self) -> &'static str {
        match self {
            MessageKind::Message => "message",
            MessageKind::Activated => "activated",
            MessageKind::Disconnected => "disconnected",
            MessageKind::Reactivated => "reactivated",
        }
    }
}

/// One event of a subscription: a published message, or a change of the connection.
#[pyclass(frozen, module = "redipc._native", name = "Message")]
pub(crate) struct Message {
    kind: MessageKind,
    sub_kind: SubscriptionKind,
    /// The channel (for `activated`/`reactivated`: the channel or pattern name).
    #[pyo3(get)]
    channel: Py<PyBytes>,
    /// The matching pattern (pattern subscriptions).
    #[pyo3(get)]
    pattern: Option<Py<PyBytes>>,
    /// The payload (`b""` for connection events).
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// Why the connection broke (`disconnected`).
    #[pyo3(get)]
    error: Option<String>,
}

impl Message {
    fn fields<'a>(&'a self, py: Python<'a>) -> impl Hash + PartialEq + 'a {
        (
            self.kind,
            kind_name(self.sub_kind),
            self.channel.as_bytes(py),
            self.pattern.as_ref().map(|p| p.as_bytes(py)),
            self.payload.as_bytes(py),
            self.error.as_deref(),
        )
    }
}

/// `repr()` of bytes, shortened after `max` bytes.
fn short_repr(py: Python<'_>, b: &Py<PyBytes>, max: usize) -> String {
    let data = b.as_bytes(py);
    let shown = if data.len() > max {
        PyBytes::new(py, &data[..max]).into_any()
    } else {
        b.bind(py).clone().into_any()
    };
    let text = shown
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "b'?'".to_string());
    if data.len() > max {
        format!("{text}...({} bytes)", data.len())
    } else {
        text
    }
}

#[pymethods]
impl Message {
    /// `"message"`, `"activated"`, `"disconnected"` or `"reactivated"`.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> &Bound<'py, PyString> {
        match self.kind {
            MessageKind::Message => pyo3::intern!(py, "message"),
            MessageKind::Activated => pyo3::intern!(py, "activated"),
            MessageKind::Disconnected => pyo3::intern!(py, "disconnected"),
            MessageKind::Reactivated => pyo3::intern!(py, "reactivated"),
        }
    }

    /// `"channel"`, `"pattern"` or `"shard"`: the kind of the subscription.
    #[getter]
    fn sub_kind<'py>(&self, py: Python<'py>) -> &Bound<'py, PyString> {
        match self.sub_kind {
            SubscriptionKind::Channel => pyo3::intern!(py, "channel"),
            SubscriptionKind::Pattern => pyo3::intern!(py, "pattern"),
            SubscriptionKind::Shard => pyo3::intern!(py, "shard"),
            _ => pyo3::intern!(py, "unknown"),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let mut out = format!("Message(kind='{}'", self.kind.name());
        if self.sub_kind != SubscriptionKind::Channel {
            out.push_str(&format!(", sub_kind='{}'", kind_name(self.sub_kind)));
        }
        if self.kind != MessageKind::Disconnected {
            out.push_str(&format!(", channel={}", short_repr(py, &self.channel, 200)));
        }
        if let Some(p) = &self.pattern {
            out.push_str(&format!(", pattern={}", short_repr(py, p, 200)));
        }
        if self.kind == MessageKind::Message {
            out.push_str(&format!(", payload={}", short_repr(py, &self.payload, 64)));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!(", error={e:?}"));
        }
        out.push(')');
        out
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<Message>() else {
            return Ok(py.NotImplemented());
        };
        let equal = self.fields(py) == other.get().fields(py);
        let result = match op {
            CompareOp::Eq => equal,
            CompareOp::Ne => !equal,
            _ => return Ok(py.NotImplemented()),
        };
        Ok(result.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> u64 {
        let mut h = DefaultHasher::new();
        self.fields(py).hash(&mut h);
        h.finish()
    }
}

/// Turns core events into `Message` objects; reuses the `bytes` of a repeated channel.
struct Converter<'py, 'e> {
    py: Python<'py>,
    /// The subscription's kind (for `disconnected`, which does not carry one).
    kind: SubscriptionKind,
    last_channel: Option<(&'e [u8], Py<PyBytes>)>,
    empty: Option<Py<PyBytes>>,
}

impl<'py, 'e> Converter<'py, 'e> {
    fn new(py: Python<'py>, kind: SubscriptionKind) -> Self {
        Converter {
            py,
            kind,
            last_channel: None,
            empty: None,
        }
    }

    fn channel(&mut self, name: &'e [u8]) -> Py<PyBytes> {
        if let Some((b, obj)) = &self.last_channel
            && *b == name
        {
            return obj.clone_ref(self.py);
        }
        let obj = PyBytes::new(self.py, name).unbind();
        self.last_channel = Some((name, obj.clone_ref(self.py)));
        obj
    }

    fn empty(&mut self) -> Py<PyBytes> {
        self.empty
            .get_or_insert_with(|| PyBytes::new(self.py, b"").unbind())
            .clone_ref(self.py)
    }

    /// The message for `event`; `None` for an event kind this binding does not know.
    fn message(&mut self, event: &'e Event) -> PyResult<Option<Bound<'py, Message>>> {
        let msg = match event {
            Event::Message(m) => Message {
                kind: MessageKind::Message,
                sub_kind: m.kind,
                channel: self.channel(&m.channel),
                pattern: m
                    .pattern
                    .as_ref()
                    .map(|p| PyBytes::new(self.py, p).unbind()),
                payload: PyBytes::new(self.py, &m.payload).unbind(),
                error: None,
            },
            Event::Activated { kind, name } | Event::Reactivated { kind, name } => {
                let what = if matches!(event, Event::Activated { .. }) {
                    MessageKind::Activated
                } else {
                    MessageKind::Reactivated
                };
                let channel = self.channel(name);
                let pattern =
                    (*kind == SubscriptionKind::Pattern).then(|| channel.clone_ref(self.py));
                Message {
                    kind: what,
                    sub_kind: *kind,
                    channel,
                    pattern,
                    payload: self.empty(),
                    error: None,
                }
            }
            Event::Disconnected { error } => Message {
                kind: MessageKind::Disconnected,
                sub_kind: self.kind,
                channel: self.empty(),
                pattern: None,
                payload: self.empty(),
                error: Some(error.text()),
            },
            _ => return Ok(None),
        };
        Bound::new(self.py, msg).map(Some)
    }
}

// ---------------------------------------------------------------------------------------
// Stats

/// Counters of a subscription's queue.
#[pyclass(frozen, module = "redipc._native", name = "SubscriptionStats")]
pub(crate) struct SubscriptionStats {
    /// Events handed to the callback or taken with `get()`/iteration.
    #[pyo3(get)]
    delivered: u64,
    /// Messages dropped by the overflow policy.
    #[pyo3(get)]
    dropped: u64,
    /// Events waiting in the queue now.
    #[pyo3(get)]
    queued: u64,
    /// The queue's capacity.
    #[pyo3(get)]
    capacity: u64,
}

impl From<QueueStats> for SubscriptionStats {
    fn from(s: QueueStats) -> Self {
        SubscriptionStats {
            delivered: s.delivered,
            dropped: s.dropped,
            queued: s.queued,
            capacity: s.capacity,
        }
    }
}

#[pymethods]
impl SubscriptionStats {
    fn __repr__(&self) -> String {
        format!(
            "SubscriptionStats(delivered={}, dropped={}, queued={}, capacity={})",
            self.delivered, self.dropped, self.queued, self.capacity
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<SubscriptionStats>().is_ok_and(|o| {
            let o = o.get();
            (o.delivered, o.dropped, o.queued, o.capacity)
                == (self.delivered, self.dropped, self.queued, self.capacity)
        })
    }

    /// The counters as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("delivered", self.delivered)?;
        d.set_item("dropped", self.dropped)?;
        d.set_item("queued", self.queued)?;
        d.set_item("capacity", self.capacity)?;
        Ok(d)
    }
}

// ---------------------------------------------------------------------------------------
// Calling Python from the dispatcher

thread_local! {
    /// Set while this thread is inside `Client.poll()`.
    static IN_POLL: Cell<bool> = const { Cell::new(false) };
    /// A `KeyboardInterrupt`/`SystemExit` raised by a callback inside `poll()`, raised
    /// again by `poll()` when it returns.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Marks the current thread as inside `poll()` while it lives.
pub(crate) struct PollScope {
    /// Whether it was inside already (`poll()` called from a callback run by `poll()`).
    outer: bool,
}

impl PollScope {
    pub(crate) fn enter() -> Self {
        PollScope {
            outer: IN_POLL.with(|f| f.replace(true)),
        }
    }

    /// The exception a callback raised that must stop the host's loop, if any.
    pub(crate) fn take_pending() -> Option<PyErr> {
        PENDING.with(|p| p.borrow_mut().take())
    }
}

impl Drop for PollScope {
    fn drop(&mut self) {
        IN_POLL.with(|f| f.set(self.outer));
    }
}

/// Report an exception raised by a callback (`source`): to `on_error`, else to
/// `sys.unraisablehook`. Inside `poll()`, a `KeyboardInterrupt` or `SystemExit` (anything
/// that is not an `Exception`) is kept and raised again by `poll()`.
pub(crate) fn report(
    py: Python<'_>,
    err: PyErr,
    source: &Bound<'_, PyAny>,
    on_error: Option<&Py<PyAny>>,
) {
    if IN_POLL.with(Cell::get) && !err.is_instance_of::<PyException>(py) {
        let err = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            if p.is_none() {
                *p = Some(err);
                None
            } else {
                Some(err)
            }
        });
        let Some(err) = err else { return };
        err.write_unraisable(py, Some(source));
        return;
    }
    match on_error {
        Some(hook) => {
            let hook = hook.bind(py);
            if let Err(e) = hook.call1((err.into_value(py),)) {
                e.write_unraisable(py, Some(hook));
            }
        }
        None => err.write_unraisable(py, Some(source)),
    }
}

/// Set by an `atexit` hook when the interpreter exits: from then on no callback starts
/// and no pub/sub wait begins.
///
/// Once the interpreter finalizes, a thread that takes the GIL back (a dispatcher thread
/// calling a callback, or a daemon thread returning from a wait with the GIL released) is
/// ended by CPython with `pthread_exit`, whose unwinding through Rust frames aborts the
/// process. So the hook also waits (up to [`EXIT_WAIT`]) until no thread is [`Busy`].
static EXITING: AtomicBool = AtomicBool::new(false);

/// Threads inside a callback batch or a pub/sub wait that will take the GIL back.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// How long the exit hook waits for running callbacks and waits to finish.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// Counts a thread in [`BUSY`] while it lives.
pub(crate) struct Busy(());

impl Busy {
    /// `None` once the interpreter exits.
    pub(crate) fn enter() -> Option<Busy> {
        BUSY.fetch_add(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            BUSY.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Busy(()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the interpreter exits (the `atexit` hook ran).
pub(crate) fn exiting() -> bool {
    EXITING.load(Ordering::SeqCst)
}

/// Register the `atexit` hook that sets [`EXITING`] and waits for [`BUSY`] threads.
pub(crate) fn register_exit_hook(py: Python<'_>) -> PyResult<()> {
    let hook = PyCFunction::new_closure(
        py,
        Some(c"_redipc_exiting"),
        Some(c"Stop calling redipc subscription callbacks: the interpreter exits."),
        |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| {
            EXITING.store(true, Ordering::SeqCst);
            args.py().detach(|| {
                let deadline = Instant::now() + EXIT_WAIT;
                while BUSY.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        },
    )?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

/// A subscription group's callbacks by channel.
type Routes = HashMap<Vec<u8>, Py<PyAny>>;

/// Where a batch's messages go.
enum Route {
    /// One callback for everything.
    One(Py<PyAny>),
    /// A subscription group: a callback per channel.
    Group(Arc<Mutex<Routes>>),
}

/// When a batch handler stops calling callbacks.
struct Stop {
    /// Set by the Python object's `close()`, with the GIL held.
    ours: Arc<AtomicBool>,
    /// Set by the core when it closes the subscription (also when the client is closed).
    core: Arc<AtomicBool>,
}

impl Stop {
    fn now(&self) -> bool {
        self.ours.load(Ordering::Acquire) || self.core.load(Ordering::Acquire) || exiting()
    }
}

/// The batch handler given to the core: takes the GIL once per batch and calls the
/// callback(s) once per event, until the subscription is closed.
fn batch_handler(
    kind: SubscriptionKind,
    route: Route,
    on_error: Option<Py<PyAny>>,
    stop: Stop,
) -> impl FnMut(&[Event]) + Send + 'static {
    move |events: &[Event]| {
        // The interpreter exits (or cannot be attached to): nobody is left to tell.
        let Some(_busy) = Busy::enter() else { return };
        let _ = Python::try_attach(|py| {
            let mut conv = Converter::new(py, kind);
            for event in events {
                if stop.now() {
                    return;
                }
                let msg = match conv.message(event) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        e.write_unraisable(py, None);
                        continue;
                    }
                };
                match &route {
                    Route::One(cb) => {
                        let cb = cb.bind(py);
                        if let Err(e) = cb.call1((&msg,)) {
                            report(py, e, cb, on_error.as_ref());
                        }
                    }
                    Route::Group(routes) => {
                        // Take the callbacks out of the lock: a callback may change routes.
                        let targets: Vec<Py<PyAny>> = {
                            let routes = lock(routes);
                            match event {
                                Event::Message(m) => routes
                                    .get(&m.channel[..])
                                    .map(|f| f.clone_ref(py))
                                    .into_iter()
                                    .collect(),
                                Event::Activated { name, .. } | Event::Reactivated { name, .. } => {
                                    routes
                                        .get(&name[..])
                                        .map(|f| f.clone_ref(py))
                                        .into_iter()
                                        .collect()
                                }
                                _ => routes.values().map(|f| f.clone_ref(py)).collect(),
                            }
                        };
                        for cb in targets {
                            if stop.now() {
                                return;
                            }
                            let cb = cb.bind(py);
                            if let Err(e) = cb.call1((&msg,)) {
                                report(py, e, cb, on_error.as_ref());
                            }
                        }
                    }
                }
            }
        });
    }
}

/// Something to drop on the helper thread.
pub(crate) type Garbage = Box<dyn Send>;

/// Close what a dead Python object left open without holding up the thread that drops it:
/// on a helper thread (a close may wait for a running callback, which needs the GIL).
pub(crate) fn release_later(item: Garbage) {
    static RELEASER: OnceLock<Option<mpsc::Sender<Garbage>>> = OnceLock::new();
    let tx = RELEASER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Garbage>();
        std::thread::Builder::new()
            .name("redipc-release".into())
            .spawn(move || {
                for item in rx {
                    drop(item);
                }
            })
            .ok()
            .map(|_| tx)
    });
    let item = match tx {
        Some(tx) => match tx.send(item) {
            Ok(()) => return,
            Err(mpsc::SendError(item)) => item,
        },
        None => item,
    };
    // No helper thread: close here, with the GIL released if this thread holds it.
    let _ = Python::try_attach(move |py| py.detach(move || drop(item)));
}

fn overflow_of(py: Python<'_>, name: &str) -> PyResult<Overflow> {
    match name {
        "block" => Ok(Overflow::Block),
        "drop_oldest" => Ok(Overflow::DropOldest),
        "drop_newest" => Ok(Overflow::DropNewest),
        other => Err(invalid_argument(
            py,
            format!("overflow must be 'block', 'drop_oldest' or 'drop_newest', not {other:?}"),
        )),
    }
}

/// The options shared by `subscribe*()` and `subscribe_group()`.
pub(crate) struct Common {
    capacity: usize,
    overflow: Overflow,
    on_error: Option<Py<PyAny>>,
}

impl Common {
    pub(crate) fn new(
        py: Python<'_>,
        method: &str,
        capacity: i64,
        overflow: &str,
        on_error: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let capacity = usize::try_from(capacity)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                invalid_argument(
                    py,
                    format!("{method}(): capacity must be >= 1, not {capacity}"),
                )
            })?;
        let overflow = overflow_of(py, overflow)?;
        let on_error = match on_error {
            Some(f) if f.is_none() => None,
            Some(f) if !f.is_callable() => {
                return Err(PyTypeError::new_err(format!(
                    "{method}(): on_error must be callable, not {}",
                    crate::convert::type_name(&f)
                )));
            }
            f => f.map(Bound::unbind),
        };
        Ok(Common {
            capacity,
            overflow,
            on_error,
        })
    }

    fn options(&self) -> SubscribeOptions {
        SubscribeOptions::default()
            .capacity(self.capacity)
            .overflow(self.overflow)
    }
}

// ---------------------------------------------------------------------------------------
// Subscription

/// An open core subscription and the client it keeps alive (dropped in this order).
struct Open {
    sub: blocking::Subscription,
    _client: blocking::Client,
}

/// Where a Python object keeps its open core subscription.
///
/// A call borrows it (an `Arc` clone, taken and returned under a mutex that is held only
/// for that instant, never while waiting); `close()` takes it out and waits until every
/// borrowed clone is back, then closes the core subscription with no lock held. So a
/// callback may call `names`/`stats()`/`close()` of its own subscription while another
/// thread closes it: nothing waits for the closer while the closer waits for the callback.
struct Slot {
    open: Mutex<Option<Arc<Open>>>,
    returned: Condvar,
}

/// A borrowed open subscription; given back when dropped.
struct Loan<'a> {
    slot: &'a Slot,
    open: Option<Arc<Open>>,
}

impl std::ops::Deref for Loan<'_> {
    type Target = blocking::Subscription;

    fn deref(&self) -> &blocking::Subscription {
        // Set from construction until drop.
        &self
            .open
            .as_ref()
            .expect("a loan holds its subscription")
            .sub
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        // Drop the clone under the lock, so that `take` never misses the wake-up.
        let guard = lock(&self.slot.open);
        self.open = None;
        drop(guard);
        self.slot.returned.notify_all();
    }
}

impl Slot {
    fn new(open: Open) -> Self {
        Slot {
            open: Mutex::new(Some(Arc::new(open))),
            returned: Condvar::new(),
        }
    }

    /// The open subscription for the length of a call; `None` once closed.
    fn borrow(&self) -> Option<Loan<'_>> {
        let open = lock(&self.open).clone()?;
        Some(Loan {
            slot: self,
            open: Some(open),
        })
    }

    /// Take the subscription out (later borrows get `None`) and wait until no call uses
    /// it; `None` if it was taken already. Call it with the GIL released.
    fn take(&self) -> Option<Open> {
        let mut guard = lock(&self.open);
        let mut open = guard.take()?;
        loop {
            match Arc::try_unwrap(open) {
                Ok(o) => return Some(o),
                Err(shared) => {
                    open = shared;
                    guard = self.returned.wait(guard).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// Take it out when the owner is being destroyed (nobody can be borrowing it).
    fn take_now(&mut self) -> Option<Arc<Open>> {
        self.open
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// A subscription to channels, patterns or shard channels of one kind.
#[pyclass(frozen, module = "redipc._native", name = "Subscription")]
pub(crate) struct Subscription {
    slot: Slot,
    kind: SubscriptionKind,
    has_callback: bool,
    /// Set by `close()` (with the GIL held); the batch handler checks it per event.
    closed: Arc<AtomicBool>,
    /// The counters as they were when it was closed.
    final_stats: Mutex<Option<QueueStats>>,
}

/// `subscribe()`, `psubscribe()` or `ssubscribe()`.
pub(crate) fn subscribe(
    py: Python<'_>,
    client: &blocking::Client,
    kind: SubscriptionKind,
    names: &Bound<'_, PyTuple>,
    callback: Option<Bound<'_, PyAny>>,
    common: Common,
) -> PyResult<Subscription> {
    let method = match kind {
        SubscriptionKind::Pattern => "psubscribe",
        SubscriptionKind::Shard => "ssubscribe",
        _ => "subscribe",
    };
    let names = args(names, &|i| format!("{method}(): name {i}"))?;
    let callback = match callback {
        Some(f) if f.is_none() => None,
        Some(f) if !f.is_callable() => {
            return Err(PyTypeError::new_err(format!(
                "{method}(): callback must be callable, not {}",
                crate::convert::type_name(&f)
            )));
        }
        f => f.map(Bound::unbind),
    };
    if callback.is_none() && common.on_error.is_some() {
        return Err(invalid_argument(
            py,
            format!("{method}(): on_error needs a callback"),
        ));
    }
    let closed = Arc::new(AtomicBool::new(false));
    let has_callback = callback.is_some();
    let mut opts = common.options();
    if let Some(cb) = callback {
        let stop = Stop {
            ours: closed.clone(),
            core: opts.closed_flag(),
        };
        opts = opts.batch_handler(batch_handler(kind, Route::One(cb), common.on_error, stop));
    }
    let Some(_busy) = Busy::enter() else {
        return Err(closed_error(py, "the interpreter is exiting"));
    };
    let sub = py
        .detach(|| match kind {
            SubscriptionKind::Pattern => client.psubscribe(&names, opts),
            SubscriptionKind::Shard => client.ssubscribe(&names, opts),
            _ => client.subscribe(&names, opts),
        })
        .map_err(|e| to_pyerr(py, e))?;
    Ok(Subscription {
        slot: Slot::new(Open {
            sub,
            _client: client.clone(),
        }),
        kind,
        has_callback,
        closed,
        final_stats: Mutex::new(None),
    })
}

/// How a pull ended.
enum Pulled {
    Event(Event),
    TimedOut,
    Closed,
}

impl Subscription {
    /// Run `f` on the open subscription with the GIL released.
    fn with_open<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&blocking::Subscription) -> redipc::Result<T> + Send,
    ) -> PyResult<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error(py, "the subscription is closed"));
        }
        let Some(sub) = self.slot.borrow() else {
            return Err(closed_error(py, "the subscription is closed"));
        };
        let Some(_busy) = Busy::enter() else {
            return Err(closed_error(py, "the interpreter is exiting"));
        };
        py.detach(|| f(&sub)).map_err(|e| to_pyerr(py, e))
    }

    fn check_pull(&self, py: Python<'_>) -> PyResult<()> {
        if self.has_callback {
            return Err(invalid_argument(
                py,
                "this subscription has a callback: its messages go to the callback, \
                 not to get() or iteration",
            ));
        }
        Ok(())
    }

    /// The next event within `timeout` (`None`: no limit), waiting in slices with the GIL
    /// released and checking signals between them.
    fn pull(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Pulled> {
        self.check_pull(py)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut first = true;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Ok(Pulled::Closed);
            }
            let Some(sub) = self.slot.borrow() else {
                return Ok(Pulled::Closed);
            };
            let got = if first {
                // An event already waiting is taken without releasing the GIL.
                first = false;
                match sub.try_next() {
                    Ok(None) => continue,
                    other => other,
                }
            } else {
                let slice = match deadline {
                    None => SLICE,
                    Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                };
                // The interpreter exits: end the wait (iteration ends) rather than risk
                // being inside it when finalization starts.
                let Some(_busy) = Busy::enter() else {
                    return Ok(Pulled::Closed);
                };
                py.detach(|| sub.next(Some(slice)))
            };
            drop(sub);
            match got {
                Ok(Some(e)) => return Ok(Pulled::Event(e)),
                Ok(None) => {}
                Err(e) if e.is_closed() => return Ok(Pulled::Closed),
                Err(e) => return Err(to_pyerr(py, e)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Pulled::TimedOut);
            }
            py.check_signals()?;
        }
    }

    fn message<'py>(
        &self,
        py: Python<'py>,
        event: &Event,
    ) -> PyResult<Option<Bound<'py, Message>>> {
        Converter::new(py, self.kind).message(event)
    }

    /// Close: mark closed (no further callback starts), then close the core subscription
    /// with the GIL released (it waits for a running callback).
    fn close_inner(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let slot = &self.slot;
        let final_stats = &self.final_stats;
        let _busy = Busy::enter();
        py.detach(|| {
            if let Some(o) = slot.take() {
                let mut stats = o.sub.stats();
                drop(o);
                stats.queued = 0;
                *lock(final_stats) = Some(stats);
            }
        });
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Some(o) = self.slot.take_now() {
            if self.has_callback {
                release_later(Box::new(o));
            } else {
                // Nothing to wait for without a callback.
                drop(o);
            }
        }
    }
}

#[pymethods]
impl Subscription {
    /// `"channel"`, `"pattern"` or `"shard"`.
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.kind)
    }

    /// Whether a callback receives this subscription's messages.
    #[getter]
    fn has_callback(&self) -> bool {
        self.has_callback
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The names subscribed to now, sorted (empty once closed).
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut names = match self.slot.borrow() {
            Some(sub) => sub.names(),
            None => Vec::new(),
        };
        names.sort();
        PyList::new(py, names.iter().map(|n| PyBytes::new(py, n)))
    }

    /// Subscribe to more names; returns once the server confirmed them.
    #[pyo3(signature = (*names))]
    fn add(&self, py: Python<'_>, names: &Bound<'_, PyTuple>) -> PyResult<()> {
        let names: Vec<Arg> = args(names, &|i| format!("add(): name {i}"))?;
        self.with_open(py, |s| s.add(&names))
    }

    /// Stop receiving these names (Redis is unsubscribed when no other subscription of
    /// the client has them). Unknown names are ignored.
    #[pyo3(signature = (*names))]
    fn remove(&self, py: Python<'_>, names: &Bound<'_, PyTuple>) -> PyResult<()> {
        let names: Vec<Arg> = args(names, &|i| format!("remove(): name {i}"))?;
        self.with_open(py, |s| {
            s.remove(&names);
            Ok(())
        })
    }

    /// Remove every name; the subscription stays open for `add()`.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        self.with_open(py, |s| {
            s.clear();
            Ok(())
        })
    }

    /// The queue's counters (after `close()`: as they were when it closed).
    fn stats(&self) -> SubscriptionStats {
        match self.slot.borrow() {
            Some(sub) => sub.stats(),
            None => lock(&self.final_stats).unwrap_or_default(),
        }
        .into()
    }

    /// The next event within `timeout` seconds (`None`: wait without limit); `None` when
    /// the time passed.
    #[pyo3(signature = (timeout = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, Message>>> {
        let timeout = match timeout {
            Some(t) if !t.is_none() => Some(crate::convert::duration(t, "get(): timeout")?),
            _ => None,
        };
        loop {
            match self.pull(py, timeout)? {
                Pulled::Event(e) => match self.message(py, &e)? {
                    Some(m) => return Ok(Some(m)),
                    // An event kind this binding does not know: skip it.
                    None => continue,
                },
                Pulled::TimedOut => return Ok(None),
                Pulled::Closed => return Err(closed_error(py, "the subscription is closed")),
            }
        }
    }

    fn __iter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().check_pull(slf.py())?;
        Ok(slf)
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, Message>>> {
        loop {
            match self.pull(py, None)? {
                Pulled::Event(e) => {
                    if let Some(m) = self.message(py, &e)? {
                        return Ok(Some(m));
                    }
                }
                Pulled::TimedOut => {}
                Pulled::Closed => return Ok(None),
            }
        }
    }

    /// Unsubscribe and close. After it returns no callback of this subscription runs
    /// (called from inside its own callback: none after that callback returns).
    fn close(&self, py: Python<'_>) {
        self.close_inner(py);
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
    ) -> bool {
        self.close_inner(py);
        false
    }

    fn __repr__(&self) -> String {
        let n = self.slot.borrow().map(|sub| sub.names().len());
        let how = if self.has_callback {
            "callback"
        } else {
            "pull"
        };
        match n {
            Some(n) if !self.closed.load(Ordering::Acquire) => format!(
                "<redipc.Subscription {} {how}, {n} name{}>",
                kind_name(self.kind),
                if n == 1 { "" } else { "s" }
            ),
            _ => format!(
                "<redipc.Subscription {} {how} closed>",
                kind_name(self.kind)
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// SubscriptionGroup

/// One channel subscription whose channels each have their own callback.
#[pyclass(frozen, module = "redipc._native", name = "SubscriptionGroup")]
pub(crate) struct SubscriptionGroup {
    name: String,
    slot: Slot,
    routes: Arc<Mutex<Routes>>,
    closed: Arc<AtomicBool>,
}

pub(crate) fn subscribe_group(
    py: Python<'_>,
    client: &blocking::Client,
    name: String,
    common: Common,
) -> PyResult<SubscriptionGroup> {
    let closed = Arc::new(AtomicBool::new(false));
    let routes: Arc<Mutex<Routes>> = Arc::default();
    let opts = common.options();
    let stop = Stop {
        ours: closed.clone(),
        core: opts.closed_flag(),
    };
    let opts = opts.batch_handler(batch_handler(
        SubscriptionKind::Channel,
        Route::Group(routes.clone()),
        common.on_error,
        stop,
    ));
    let no_names: [&[u8]; 0] = [];
    let Some(_busy) = Busy::enter() else {
        return Err(closed_error(py, "the interpreter is exiting"));
    };
    let sub = py
        .detach(|| client.subscribe(&no_names, opts))
        .map_err(|e| to_pyerr(py, e))?;
    Ok(SubscriptionGroup {
        name,
        slot: Slot::new(Open {
            sub,
            _client: client.clone(),
        }),
        routes,
        closed,
    })
}

impl SubscriptionGroup {
    fn with_open<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&blocking::Subscription) -> redipc::Result<T> + Send,
    ) -> PyResult<T> {
        let sub = match self.slot.borrow() {
            Some(sub) if !self.closed.load(Ordering::Acquire) => sub,
            _ => return Err(closed_error(py, "the subscription group is closed")),
        };
        let Some(_busy) = Busy::enter() else {
            return Err(closed_error(py, "the interpreter is exiting"));
        };
        py.detach(|| f(&sub)).map_err(|e| to_pyerr(py, e))
    }

    /// Route `channel` to `callback` and subscribe to it.
    fn register(&self, py: Python<'_>, channel: Arg, callback: &Bound<'_, PyAny>) -> PyResult<()> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "handle(): the handler must be callable, not {}",
                crate::convert::type_name(callback)
            )));
        }
        let name = channel.as_ref().to_vec();
        if name.is_empty() {
            return Err(invalid_argument(
                py,
                "handle(): the channel name must not be empty",
            ));
        }
        let old = lock(&self.routes).insert(name.clone(), callback.clone().unbind());
        drop(old);
        let result = self.with_open(py, |s| s.add(&[&name[..]]));
        if result.is_err() {
            // Not subscribed: forget the route unless another handle() replaced it.
            let mut routes = lock(&self.routes);
            if routes.get(&name).is_some_and(|f| f.is(callback)) {
                let removed = routes.remove(&name);
                drop(routes);
                drop(removed);
            }
        }
        result
    }

    fn close_inner(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let slot = &self.slot;
        let _busy = Busy::enter();
        py.detach(|| drop(slot.take()));
        let routes = std::mem::take(&mut *lock(&self.routes));
        drop(routes);
    }
}

impl Drop for SubscriptionGroup {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Some(o) = self.slot.take_now() {
            release_later(Box::new(o));
        }
    }
}

#[pymethods]
impl SubscriptionGroup {
    /// The name given to `subscribe_group()`.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The channels handled now, sorted.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut names = match self.slot.borrow() {
            Some(sub) => sub.names(),
            None => Vec::new(),
        };
        names.sort();
        PyList::new(py, names.iter().map(|n| PyBytes::new(py, n)))
    }

    /// Handle `channel` with `callback` (replacing an earlier handler of it) and subscribe
    /// to it. Without `callback`, returns a decorator.
    #[pyo3(signature = (channel, callback = None))]
    fn handle<'py>(
        slf: &Bound<'py, Self>,
        channel: &Bound<'py, PyAny>,
        callback: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let name = crate::convert::arg(channel, &|| "handle(): argument 'channel'".to_string())?;
        match callback {
            Some(cb) if !cb.is_none() => {
                slf.get().register(py, name, cb)?;
                Ok(cb.clone())
            }
            _ => {
                let group = slf.clone().unbind();
                let name = name.as_ref().to_vec();
                let decorator = PyCFunction::new_closure(
                    py,
                    Some(c"handle_decorator"),
                    Some(c"Register the decorated function as the channel's handler."),
                    move |a: &Bound<'_, PyTuple>,
                          kw: Option<&Bound<'_, PyDict>>|
                          -> PyResult<Py<PyAny>> {
                        let py = a.py();
                        if kw.is_some_and(|k| !k.is_empty()) || a.len() != 1 {
                            return Err(PyTypeError::new_err(
                                "the handle() decorator takes exactly one function",
                            ));
                        }
                        let f = a.get_item(0)?;
                        group.get().register(py, Arg::Owned(name.clone()), &f)?;
                        Ok(f.unbind())
                    },
                )?;
                Ok(decorator.into_any())
            }
        }
    }

    /// Stop handling `channel` and unsubscribe from it.
    fn unhandle(&self, py: Python<'_>, channel: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = crate::convert::arg(channel, &|| "unhandle(): argument 'channel'".to_string())?;
        self.with_open(py, |s| {
            s.remove(&[&name]);
            Ok(())
        })?;
        let removed = lock(&self.routes).remove(name.as_ref());
        drop(removed);
        Ok(())
    }

    /// The queue's counters.
    fn stats(&self) -> SubscriptionStats {
        match self.slot.borrow() {
            Some(sub) => sub.stats(),
            None => QueueStats::default(),
        }
        .into()
    }

    /// Unsubscribe every channel and close. After it returns no handler runs.
    fn close(&self, py: Python<'_>) {
        self.close_inner(py);
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
    ) -> bool {
        self.close_inner(py);
        false
    }

    fn __repr__(&self) -> String {
        let n = lock(&self.routes).len();
        let state = if self.closed.load(Ordering::Acquire) {
            " closed"
        } else {
            ""
        };
        format!(
            "<redipc.SubscriptionGroup {:?}, {n} handler{}{state}>",
            self.name,
            if n == 1 { "" } else { "s" }
        )
    }
}

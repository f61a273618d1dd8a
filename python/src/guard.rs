//! What the interpreter itself forces on the binding, and nothing else:
//!
//! - **The exit guard.** Once the interpreter finalizes, a thread that takes the GIL back
//!   (a core thread calling a handler, or a thread returning from a wait with the GIL
//!   released) is ended by CPython with `pthread_exit`, whose unwinding through Rust frames
//!   aborts the process. An `atexit` hook therefore sets [`EXITING`] and waits (up to
//!   [`EXIT_WAIT`]) for the threads that are inside Python or inside such a wait
//!   ([`Busy`]); from then on no handler is called and no wait begins.
//! - **Waits that see signals.** A wait with the GIL released cannot be interrupted by
//!   Ctrl-C: [`wait`] waits in slices and checks signals between them.
//! - **Drops that may wait for the GIL.** Dropping a core handle waits for its running
//!   handlers, which need the GIL: [`Detached`] drops it with the GIL released.
//! - **Calls a core thread must not wait for.** A core thread that waited for the GIL to
//!   hand over a log record could deadlock with a Python thread holding the GIL while it
//!   waits on the core: a [`Relay`] takes such items in a bounded queue, without waiting,
//!   and one thread of its own hands them to Python (with [`attach`]'s rules).
//! - **Thread states.** A core thread keeps the Python thread state it makes the first
//!   time it calls into Python; when it ends, the next thread holding the GIL for redipc
//!   deletes it ([`keep_thread_state`], [`reap`]), in a forked child too.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

use crate::errors::to_pyerr;

/// Set by the `atexit` hook: the interpreter exits.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Threads inside a call into Python from a core thread, or inside a [`wait`].
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// How long the exit hook waits for [`BUSY`] threads.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// The longest stretch one [`wait`] spends with the GIL released without checking signals.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// Counts a thread in [`BUSY`] while it lives; `None` once the interpreter exits.
struct Busy(());

impl Busy {
    fn enter() -> Option<Busy> {
        BUSY.fetch_add(1, Ordering::SeqCst);
        let busy = Busy(());
        (!EXITING.load(Ordering::SeqCst)).then_some(busy)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Run `f` with the GIL on a thread of the core; `None` once the interpreter exits.
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    let _busy = Busy::enter()?;
    keep_thread_state();
    Python::try_attach(|py| {
        reap(py);
        f(py)
    })
}

/// The Python thread state a core thread made for itself ([`keep_thread_state`]): `None`
/// until it first calls into Python, then the state, or null where the thread had one of
/// its own (a Python thread). When the thread ends, its state is handed to [`reap`].
struct Kept(std::cell::Cell<Option<*mut pyo3::ffi::PyThreadState>>);

impl Drop for Kept {
    fn drop(&mut self) {
        if let Some(state) = self.0.get().filter(|s| !s.is_null()) {
            retire(state);
        }
    }
}

thread_local!(static KEPT: Kept = const { Kept(std::cell::Cell::new(None)) });

/// Give a core thread one Python thread state for its whole life, made the first time it
/// calls into Python. Without it, each call makes one and deletes it again
/// (`PyGILState_Ensure`/`Release` on a thread without one), which takes the interpreter's
/// thread-list lock twice per call: a `fork()` while one of these threads held it left the
/// child hanging in CPython's own `PyOS_AfterFork_Child` (3.11: 3 in 700 forks with
/// callbacks running), and it costs an allocation per call. The state is made with
/// `PyGILState_Ensure`, and the GIL let go again with `PyEval_SaveThread`: later calls
/// find the state and only take the GIL. When the thread ends (a stopped worker's handler
/// threads, a dispatcher thread idle for 10 s) its state goes to [`retire`], and the next
/// thread that holds the GIL for redipc deletes it ([`reap`]). After the interpreter exits
/// no core thread calls into Python (the exit guard), and finalization clears the states.
fn keep_thread_state() {
    // (a thread ending while it is asked, with its thread-locals gone: no state is kept)
    let _ = KEPT.try_with(|kept| {
        if kept.0.get().is_some() {
            return;
        }
        // SAFETY: both calls may be made without the GIL; a thread that has a state already
        // (a Python thread, or one of the interpreter's) is left alone, so the GIL let go
        // here is the one `PyGILState_Ensure` just took.
        let state = unsafe {
            if pyo3::ffi::Py_IsInitialized() != 0
                && pyo3::ffi::PyGILState_GetThisThreadState().is_null()
            {
                pyo3::ffi::PyGILState_Ensure();
                pyo3::ffi::PyEval_SaveThread()
            } else {
                std::ptr::null_mut()
            }
        };
        kept.0.set(Some(state));
    });
}

/// A kept state of a core thread that ended, queued for [`reap`] in a lock-free list (a
/// lock held by one of the parent's threads at a `fork()` would stay held in the child),
/// with the process it belongs to (its `fork()` generation).
struct Retired {
    state: *mut pyo3::ffi::PyThreadState,
    generation: u64,
    next: *mut Retired,
}

static RETIRED: AtomicPtr<Retired> = AtomicPtr::new(std::ptr::null_mut());

/// From an ending core thread (its thread-local destructor): queue its state for deletion.
/// It cannot delete the state itself: that needs the GIL, and the thread that holds it may
/// be the one waiting for this thread to end. Never waits.
fn retire(state: *mut pyo3::ffi::PyThreadState) {
    if EXITING.load(Ordering::SeqCst) {
        return;
    }
    let node = Box::into_raw(Box::new(Retired {
        state,
        generation: redipc::fork_generation(),
        next: std::ptr::null_mut(),
    }));
    let mut head = RETIRED.load(Ordering::Acquire);
    loop {
        // SAFETY: `node` is ours until the exchange below publishes it.
        unsafe { (*node).next = head };
        match RETIRED.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// With the GIL: delete the states of core threads that ended since the last time (one
/// atomic load when there are none). Called where redipc holds the GIL anyway: a core
/// thread's call into Python, the end of a call from Python into the core, a handle's drop.
/// States queued in a parent before a `fork()` are only forgotten in the child: CPython's
/// `PyOS_AfterFork_Child` deleted every thread state but the forking thread's.
pub(crate) fn reap(_py: Python<'_>) {
    if RETIRED.load(Ordering::Relaxed).is_null() || EXITING.load(Ordering::SeqCst) {
        return;
    }
    let me = redipc::fork_generation();
    let mut node = RETIRED.swap(std::ptr::null_mut(), Ordering::AcqRel);
    while !node.is_null() {
        // SAFETY: the list was taken whole by the swap: its nodes are this thread's now,
        // each made by `Box::into_raw` in `retire` and freed here once.
        let retired = unsafe { Box::from_raw(node) };
        node = retired.next;
        if retired.generation == me {
            // SAFETY: the GIL is held (`_py`); the state belonged to a core thread of this
            // process that has ended (queued by its last destructor, after its last use), is
            // current nowhere, and is deleted once, before the interpreter exits.
            unsafe {
                pyo3::ffi::PyThreadState_Clear(retired.state);
                pyo3::ffi::PyThreadState_Delete(retired.state);
            }
        }
    }
}

/// What a handler whose outcome the core waits for does once the interpreter exits: it
/// never returns, as if the process had died in it (a reliable request stays in flight and
/// is recovered after its lease, instead of being failed and retried into the dead letters
/// while the interpreter finalizes). The process ends it.
pub(crate) fn park() -> ! {
    loop {
        std::thread::park();
    }
}

/// Run `step(slice)` with the GIL released until it gives `Some` or `timeout` (`None`: no
/// limit) has passed (`Ok(None)`). Each call gets at most [`SLICE`] (zero for a zero
/// timeout, so it runs at least once); signals are checked between calls.
pub(crate) fn wait<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> redipc::Result<Option<T>> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let slice = left.map_or(SLICE, |l| l.min(SLICE));
        let got = match Busy::enter() {
            Some(_busy) => py.detach(|| step(slice)),
            None => return Err(py_err!(Closed, "the interpreter is exiting")),
        };
        match got.map_err(|e| to_pyerr(py, e))? {
            Some(v) => return Ok(Some(v)),
            None if left.is_some_and(|l| l <= slice) => return Ok(None),
            None => py.check_signals()?,
        }
    }
}

/// For the core's checked waits (`acquire_checked`, ...): take the GIL and check signals; a
/// `KeyboardInterrupt` (or whatever a signal handler raised) travels through the core as
/// the source of an `Aborted` error and is raised again as itself.
pub(crate) fn signals() -> redipc::Result<()> {
    Python::attach(|py| py.check_signals()).map_err(|err| {
        let text = err.to_string();
        redipc::Error::aborted(&text).with_source(crate::errors::Raised {
            err,
            text,
            told: false,
        })
    })
}

/// Register the `atexit` hook (see the [module docs](self)).
pub(crate) fn register(py: Python<'_>) -> PyResult<()> {
    let hook = PyCFunction::new_closure(
        py,
        Some(c"_redipc_exiting"),
        Some(c"Stop calling into Python from redipc's threads: the interpreter exits."),
        |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| {
            EXITING.store(true, Ordering::SeqCst);
            let until = Instant::now() + EXIT_WAIT;
            args.py().detach(|| {
                while BUSY.load(Ordering::SeqCst) > 0 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        },
    )?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

/// A core handle held by a Python object: dropped with the GIL released (its drop may
/// wait for handlers that need the GIL); once the interpreter exits, left for the process's
/// end instead (a handler parked by [`park`] would keep the drop waiting).
pub(crate) struct Detached<T: Send>(ManuallyDrop<T>);

impl<T: Send> Detached<T> {
    pub(crate) fn new(inner: T) -> Self {
        Detached(ManuallyDrop::new(inner))
    }

    /// The handle, to be consumed by a call (on a thread with the GIL released).
    pub(crate) fn into_inner(self) -> T {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the handle is taken exactly once.
        unsafe { ManuallyDrop::take(&mut me.0) }
    }
}

impl<T: Send> std::ops::Deref for Detached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Send> Drop for Detached<T> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; `self.0` is not used afterwards.
        let inner = unsafe { ManuallyDrop::take(&mut self.0) };
        if EXITING.load(Ordering::SeqCst) {
            std::mem::forget(inner);
        } else {
            // Not attachable (not possible for an object Python drops): dropped right here.
            let _ = Python::try_attach(move |py| {
                py.detach(move || drop(inner));
                reap(py);
            });
        }
    }
}

/// A bounded queue from any thread to Python (see the [module docs](self)): [`push`]
/// never waits for the GIL, only for the queue's lock, which is held just to add or take
/// items. Past its capacity items are counted, not kept; the thread started by [`start`]
/// hands each batch, with the count of items dropped since the last one (all newer than
/// the batch's), to its `deliver` with the GIL, and ends once the interpreter exits (later
/// items are dropped).
///
/// [`push`]: Relay::push
/// [`start`]: Relay::start
pub(crate) struct Relay<T> {
    state: Mutex<Pending<T>>,
    ready: Condvar,
    capacity: usize,
}

struct Pending<T> {
    items: Vec<T>,
    dropped: u64,
    ended: bool,
}

impl<T: Send + 'static> Relay<T> {
    pub(crate) const fn new(capacity: usize) -> Self {
        Relay {
            state: Mutex::new(Pending {
                items: Vec::new(),
                dropped: 0,
                ended: false,
            }),
            ready: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `item` for Python, or count it as dropped when the queue is full.
    pub(crate) fn push(&self, item: T) {
        let mut st = self.lock();
        if st.ended {
            return;
        }
        if st.items.len() < self.capacity {
            st.items.push(item);
        } else {
            st.dropped += 1;
        }
        drop(st);
        self.ready.notify_one();
    }

    /// Start the thread `name` that calls `deliver(py, dropped, batch)` with the GIL for
    /// each batch of queued items.
    pub(crate) fn start(
        &'static self,
        name: &str,
        deliver: impl Fn(Python<'_>, u64, Vec<T>) + Send + 'static,
    ) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                loop {
                    let (dropped, batch) = {
                        let mut st = self.lock();
                        while st.items.is_empty() && st.dropped == 0 {
                            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                        (
                            std::mem::take(&mut st.dropped),
                            std::mem::take(&mut st.items),
                        )
                    };
                    if attach(|py| deliver(py, dropped, batch)).is_none() {
                        let mut st = self.lock();
                        st.ended = true;
                        st.items = Vec::new();
                        return;
                    }
                }
            })
            .map(drop)
    }
}

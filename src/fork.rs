//! Processes made by `fork()`.
//!
//! A child process inherits the parent's memory, so its clients, but not the parent's
//! threads: the runtime's driver and the dispatcher threads are not there, and its sockets
//! and the runtime's epoll set are the parent's own, shared with it. Using them from the
//! child would take the parent's replies (a call of the child reading what the parent's
//! call was waiting for), and a runtime driven from the child would add its sockets to the
//! parent's epoll set (the parent's driver then reads events it knows nothing of: a crash).
//!
//! So a child never touches what it inherited: a call of a client made before the fork is
//! a `Closed` error that says so, at once (`Rt::block_on`, `Rt::poll_inline`, the asyncio
//! paths), and dropping such a client leaks it instead of closing its connections (closing
//! shuts sockets down, which the parent would see). A client made in the child gets a
//! runtime of its own (`runtime::rt`): a `fork()` after the clients are made, as
//! `multiprocessing`, gunicorn's preload or a daemon's double fork do, leaves the parent's
//! clients working and lets the child make its own.
//!
//! The generation counts the forks between the process that first loaded the library and
//! this one (`pthread_atfork`'s child handler, registered when the first runtime is made).

use std::any::Any;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::error::{Error, ErrorKind};

static FORKS: AtomicU64 = AtomicU64::new(0);
static WATCH: Once = Once::new();

/// In the child of a `fork()`, on its only thread: async-signal-safe work only.
extern "C" fn in_child() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

/// This process's generation (see the module docs); starts watching for forks.
pub(crate) fn generation() -> u64 {
    WATCH.call_once(|| {
        // SAFETY: registers a plain function with no captured state; it only touches
        // atomics.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    FORKS.load(Ordering::Relaxed)
}

/// How many `fork()`s separate this process from the one that first made a redipc runtime
/// (0 there, 1 in its child, ...): what a binding compares to tell what a child inherited
/// from what it made itself (a process id can come back, a generation along one line of
/// processes cannot).
pub fn fork_generation() -> u64 {
    generation()
}

/// Whether something made in process generation `generation` was inherited through
/// `fork()` (this process is a later one).
pub(crate) fn from_parent(generation: u64) -> bool {
    self::generation() != generation
}

/// What a call of a client inherited through `fork()` fails with.
pub(crate) fn inherited() -> Error {
    Error::new(
        ErrorKind::Closed,
        "this client was made in the parent process, before fork(): its connections are the parent's; make a new client in this process",
    )
}

/// What a child keeps of its inherited clients instead of dropping it: a list from a static,
/// so that leak checkers (valgrind, LeakSanitizer) see it reachable, not lost. Lock-free:
/// a lock held by one of the parent's threads at the fork would stay held here.
struct Kept {
    _value: Box<dyn Any + Send>,
    next: *mut Kept,
}

static KEPT: AtomicPtr<Kept> = AtomicPtr::new(std::ptr::null_mut());

/// Keep `value` for the rest of this process, never dropped (an inherited client's
/// connections, which closing would shut down under the parent).
pub(crate) fn keep(value: impl Any + Send) {
    let node = Box::into_raw(Box::new(Kept {
        _value: Box::new(value),
        next: std::ptr::null_mut(),
    }));
    let mut head = KEPT.load(Ordering::Acquire);
    loop {
        // SAFETY: `node` is ours until it is published by the exchange below.
        unsafe { (*node).next = head };
        match KEPT.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

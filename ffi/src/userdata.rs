//! The caller's `(userdata, userdata_free)` for the handle-owning callbacks of streams,
//! hash watchers and keyspace watches.
//!
//! A callback closure given to the core owns an [`Owner`] guard; the core drops the
//! closure exactly once, and the guard's drop runs `userdata_free` — but only if the call
//! that made the handle succeeded (on failure the caller keeps `userdata`). The [`Claim`]
//! settles the order of "the call succeeded" and "the closure was dropped", which may come
//! either way round (a client closed by another thread may end a watcher before the call
//! that started it has returned).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::pubsub::ipc_userdata_free_cb;

/// The caller's `userdata`, handed across threads on the caller's word (every function
/// taking one documents that its callbacks run on other threads).
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the C caller promises that `userdata` may be used from the library's threads
// (documented on each function taking one); the library never dereferences it.
unsafe impl Send for UserData {}
// SAFETY: as above; the library only copies the pointer.
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer. (A method, so that closures capture the whole `Send` wrapper rather
    /// than the raw pointer field.)
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

/// Who will call `userdata_free`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// The call making the handle is still running.
    Pending,
    /// It succeeded: dropping the closure runs `userdata_free`.
    Armed,
    /// The closure was dropped while pending: the call runs `userdata_free` if it succeeds.
    DroppedWhilePending,
    /// It failed (the caller keeps `userdata`), or `userdata_free` already ran.
    Settled,
}

/// One transition of a [`Claim`]: the next claim, and whether `userdata_free` must run now.
type Step = fn(Claim) -> (Claim, bool);

impl Claim {
    /// The call making the handle succeeded; whether `userdata_free` must run now.
    fn on_success(self) -> (Claim, bool) {
        match self {
            Claim::Pending => (Claim::Armed, false),
            Claim::DroppedWhilePending => (Claim::Settled, true),
            other => (other, false),
        }
    }

    /// The call failed: the caller keeps `userdata`.
    fn on_failure(self) -> (Claim, bool) {
        (Claim::Settled, false)
    }

    /// The closure owning the guard was dropped.
    fn on_drop(self) -> (Claim, bool) {
        match self {
            Claim::Armed => (Claim::Settled, true),
            Claim::Pending => (Claim::DroppedWhilePending, false),
            other => (other, false),
        }
    }
}

/// `(userdata, userdata_free)` and the claim on them.
pub(crate) struct Finalizer {
    userdata: UserData,
    free: ipc_userdata_free_cb,
    claim: Mutex<Claim>,
}

impl Finalizer {
    /// A pending finalizer, and the guard for the closure to own.
    pub(crate) fn new(userdata: UserData, free: ipc_userdata_free_cb) -> (Arc<Finalizer>, Owner) {
        let f = Arc::new(Finalizer {
            userdata,
            free,
            claim: Mutex::new(Claim::Pending),
        });
        let owner = Owner(f.clone());
        (f, owner)
    }

    fn step(&self, f: Step) {
        let run = {
            let mut claim = self.claim.lock().unwrap_or_else(|p| p.into_inner());
            let (next, run) = f(*claim);
            *claim = next;
            run
        };
        if run && let Some(free) = self.free {
            // SAFETY: the caller gave `free` to be called once with `userdata`, from any
            // thread; the claim makes it once.
            unsafe { free(self.userdata.0) };
        }
    }

    /// The call succeeded.
    pub(crate) fn succeeded(&self) {
        self.step(Claim::on_success);
    }

    /// The call failed: the caller keeps `userdata`.
    pub(crate) fn failed(&self) {
        self.step(Claim::on_failure);
    }
}

/// Owned by a callback closure; dropping it (exactly once, by the core) releases
/// `userdata`.
pub(crate) struct Owner(Arc<Finalizer>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.step(Claim::on_drop);
    }
}

/// Set when a handle is freed: its callback wrapper calls C no more, even for the rest of
/// a batch the core is delivering (a free from inside the callback takes effect at once).
#[derive(Clone, Default)]
pub(crate) struct Stopped(Arc<AtomicBool>);

impl Stopped {
    pub(crate) fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `(ptr, len)` of bytes that are present: never NULL, even when empty.
pub(crate) fn present(b: &[u8]) -> (*const u8, usize) {
    if b.is_empty() {
        (b"".as_ptr(), 0)
    } else {
        (b.as_ptr(), b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the steps from `Pending`; how many times `userdata_free` would run.
    fn frees(steps: &[Step]) -> usize {
        let mut claim = Claim::Pending;
        let mut n = 0;
        for step in steps {
            let (next, run) = step(claim);
            claim = next;
            n += usize::from(run);
        }
        n
    }

    #[test]
    fn userdata_free_runs_once_after_success_and_never_after_failure() {
        assert_eq!(frees(&[Claim::on_success, Claim::on_drop]), 1);
        assert_eq!(frees(&[Claim::on_drop, Claim::on_success]), 1);
        assert_eq!(frees(&[Claim::on_drop, Claim::on_failure]), 0);
        assert_eq!(frees(&[Claim::on_failure, Claim::on_drop]), 0);
        assert_eq!(
            frees(&[Claim::on_success, Claim::on_drop, Claim::on_drop]),
            1
        );
    }
}

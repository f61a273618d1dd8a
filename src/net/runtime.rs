//! The one small tokio runtime of the process, created lazily by the first blocking client,
//! and [`Rt`], the handle every client keeps to it.
//!
//! **Callers drive their own I/O.** By default the runtime is a *current-thread* runtime:
//! whichever thread is inside [`Rt::block_on`] holds the runtime's core and runs the
//! connection tasks itself, so a lone caller sends its command and reads the reply on its
//! own thread, with no hop to an I/O thread and back. Several callers at once take turns:
//! one drives, the others sleep until their reply is in (tokio hands the core over when the
//! driver's own call finishes). When no caller has been inside for [`IDLE_GRACE`], a
//! background thread takes the core and drives (pub/sub messages, reconnects, heartbeats);
//! it lets go as soon as a caller arrives.
//!
//! With `io_threads > 1` the runtime is a multi-thread runtime with that many I/O threads
//! instead, and callers wait on it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Error, Result};

/// How long the runtime is left undriven after the last caller left, before the background
/// thread takes over. Back-to-back calls of one thread never hand the core over.
pub(crate) const IDLE_GRACE: Duration = Duration::from_millis(2);

/// A current-thread runtime shared by the callers and one background driver.
pub(crate) struct Driven {
    rt: tokio::runtime::Runtime,
    /// Callers inside `block_on` now.
    callers: AtomicUsize,
    /// When the last caller left, in ns since `epoch`.
    last_exit: AtomicU64,
    epoch: Instant,
    /// Tells the background driver to let go of the core.
    release: Notify,
    /// The background driver sleeps on `quiet` while callers are inside (flagged by
    /// `bg_waiting`, so that only the caller that leaves it undriven pays for a wake-up).
    bg_waiting: AtomicBool,
    bg_lock: Mutex<()>,
    quiet: Condvar,
}

impl Driven {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.callers.fetch_add(1, Ordering::SeqCst);
        // If the background thread drives now, it lets go; otherwise this leaves a permit
        // it consumes harmlessly later.
        self.release.notify_one();
        struct Leave<'a>(&'a Driven);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let d = self.0;
                d.last_exit.store(d.now_ns(), Ordering::SeqCst);
                if d.callers.fetch_sub(1, Ordering::SeqCst) == 1
                    && d.bg_waiting.load(Ordering::SeqCst)
                {
                    let _g = d.bg_lock.lock().unwrap_or_else(|p| p.into_inner());
                    d.quiet.notify_one();
                }
            }
        }
        let _leave = Leave(self);
        self.rt.block_on(fut)
    }

    /// The background driver: drive while no caller does.
    ///
    /// While callers come and go it checks every [`IDLE_GRACE`]; once a caller has stayed
    /// inside for a while (a long blocking call, such as a worker's `BLMOVE`) it sleeps on a
    /// condition variable that the leaving caller signals, so a process parked in such a call
    /// costs no periodic wake-ups. After [`IDLE_GRACE`] without callers it takes the core.
    fn background(&'static self) {
        const LONG_CALL: Duration = Duration::from_millis(10);
        loop {
            let since = Duration::from_nanos(
                self.now_ns()
                    .saturating_sub(self.last_exit.load(Ordering::SeqCst)),
            );
            if self.callers.load(Ordering::SeqCst) > 0 {
                if since < LONG_CALL {
                    std::thread::sleep(IDLE_GRACE);
                    continue;
                }
                let g = self.bg_lock.lock().unwrap_or_else(|p| p.into_inner());
                self.bg_waiting.store(true, Ordering::SeqCst);
                if self.callers.load(Ordering::SeqCst) > 0 {
                    // The timeout is only a safety net: the leaving caller notifies.
                    drop(
                        self.quiet
                            .wait_timeout(g, Duration::from_millis(250))
                            .unwrap_or_else(|p| p.into_inner()),
                    );
                }
                self.bg_waiting.store(false, Ordering::SeqCst);
                continue;
            }
            if since < IDLE_GRACE {
                std::thread::sleep(IDLE_GRACE - since);
                continue;
            }
            self.rt.block_on(async {
                loop {
                    let released = self.release.notified();
                    tokio::pin!(released);
                    released.as_mut().enable();
                    if self.callers.load(Ordering::SeqCst) > 0 {
                        return;
                    }
                    released.await;
                }
            });
        }
    }
}

enum Global {
    Driven(&'static Driven),
    Multi(tokio::runtime::Runtime, usize),
}

/// A process generation's runtime (see `crate::fork`), or why it could not be made.
struct Made {
    generation: u64,
    global: std::result::Result<Global, String>,
}

/// The runtime of the latest process generation that made one. One inherited through
/// `fork()` is left as it is (leaked): its threads are not in the child, and its epoll set
/// is the parent's.
static RUNTIME: AtomicPtr<Made> = AtomicPtr::new(std::ptr::null_mut());
/// The process generation + 1 of the thread making a runtime now, 0 when none is. A mark
/// of an earlier generation is stale: its thread was the parent's, not in this process.
static MAKING: AtomicU64 = AtomicU64::new(0);

/// This process generation's runtime, made by `make` if there is none yet.
fn made(make: impl FnOnce() -> std::result::Result<Global, String>) -> &'static Made {
    let generation = crate::fork::generation();
    let current = || {
        let p = RUNTIME.load(Ordering::Acquire);
        // SAFETY: a non-null pointer is a leaked `Made`, never freed.
        (!p.is_null())
            .then(|| unsafe { &*p })
            .filter(|m| m.generation == generation)
    };
    loop {
        if let Some(m) = current() {
            return m;
        }
        let mark = MAKING.load(Ordering::Acquire);
        let free = mark == 0 || mark - 1 < generation;
        if free
            && MAKING
                .compare_exchange(mark, generation + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let m = match current() {
                Some(m) => m,
                None => {
                    let m: &'static Made = Box::leak(Box::new(Made {
                        generation,
                        global: make(),
                    }));
                    RUNTIME.store(std::ptr::from_ref(m).cast_mut(), Ordering::Release);
                    m
                }
            };
            MAKING.store(0, Ordering::Release);
            return m;
        }
        // Another thread makes it (once per process: a short wait).
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The runtime a client's tasks run on, and how its blocking calls wait.
#[derive(Clone)]
pub(crate) struct Rt {
    handle: tokio::runtime::Handle,
    driven: Option<&'static Driven>,
    /// The process generation it belongs to (`crate::fork`).
    generation: u64,
}

impl std::fmt::Debug for Rt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rt")
            .field("driven", &self.driven.is_some())
            .finish()
    }
}

impl Rt {
    /// A user's own runtime (the async client): its blocking calls use `Handle::block_on`.
    pub(crate) fn foreign(handle: tokio::runtime::Handle) -> Rt {
        Rt {
            handle,
            driven: None,
            generation: crate::fork::generation(),
        }
    }

    /// Whether this runtime was inherited through `fork()` (its clients must not be used
    /// here: `crate::fork`).
    pub(crate) fn inherited(&self) -> bool {
        crate::fork::from_parent(self.generation)
    }

    /// The tokio handle, for spawning.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Spawn a task.
    pub(crate) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::net::spawn::Spawn::spawn_task(&self.handle, fut)
    }

    /// Run `fut` to completion from a thread outside any runtime, blocking that thread.
    /// Called from inside a runtime (an async task), this would deadlock; it returns a
    /// clear error instead.
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        if self.inherited() {
            return Err(crate::fork::inherited());
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::invalid(
                "a blocking redipc call was made from inside an async runtime; use the async Client there",
            ));
        }
        // The runtime's own `block_on` (its scheduler loop, the context guards) is
        // instantiated once, for a type-erased future, rather than once per call's future
        // type (a few hundred in the C library: a large share of its size, docs/SIZE.md).
        let fut: std::pin::Pin<&mut dyn Future<Output = F::Output>> = std::pin::pin!(fut);
        Ok(self.block_on_output(fut))
    }

    /// [`block_on`](Self::block_on) once per output type: the call's future is polled
    /// through its `dyn` pointer, never inlined here.
    fn block_on_output<T>(&self, fut: std::pin::Pin<&mut dyn Future<Output = T>>) -> T {
        let mut out = None;
        {
            let fut = std::pin::pin!(async {
                out = Some(fut.await);
            });
            self.block_on_erased(fut);
        }
        out.expect("a future run to completion has an output")
    }

    #[inline(never)]
    fn block_on_erased(&self, fut: std::pin::Pin<&mut dyn Future<Output = ()>>) {
        match self.driven {
            Some(d) => d.block_on(fut),
            None => self.handle.block_on(fut),
        }
    }
}

impl Rt {
    /// When `inline` and the caller is outside any runtime, poll `fut` once on the calling
    /// thread outside the runtime (see `net/direct.rs`): its output if it finished there
    /// (the runtime not entered at all); `None` otherwise (wait for it with
    /// [`block_on`](Rt::block_on)).
    pub(crate) fn poll_inline<F: Future + ?Sized>(
        &self,
        fut: std::pin::Pin<&mut F>,
        inline: bool,
    ) -> Option<F::Output> {
        if !inline || self.inherited() || tokio::runtime::Handle::try_current().is_ok() {
            return None;
        }
        crate::net::direct::inline(&self.handle, fut)
    }
}

/// The process runtime, creating it if it does not exist yet: with `io_threads` 0 or 1 the
/// caller-driven current-thread runtime, with more a multi-thread runtime of that many I/O
/// threads. Asking for an explicit, different thread count once it exists is an error, so
/// that a setting is never silently ignored.
pub(crate) fn rt(io_threads: usize) -> Result<Rt> {
    let made = made(|| {
        let built = if io_threads > 1 {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(io_threads)
                .thread_name("redipc-io")
                .enable_all()
                .build()
                .map(|rt| Global::Multi(rt, io_threads))
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| {
                    let d: &'static Driven = Box::leak(Box::new(Driven {
                        rt,
                        callers: AtomicUsize::new(0),
                        last_exit: AtomicU64::new(0),
                        epoch: Instant::now(),
                        release: Notify::new(),
                        bg_waiting: AtomicBool::new(false),
                        bg_lock: Mutex::new(()),
                        quiet: Condvar::new(),
                    }));
                    Global::Driven(d)
                })
        };
        let global = built.map_err(|e| e.to_string())?;
        if let Global::Driven(d) = global {
            let d: &'static Driven = d;
            std::thread::Builder::new()
                .name("redipc-io".into())
                .spawn(move || d.background())
                .map_err(|e| e.to_string())?;
        }
        Ok(global)
    });
    let generation = made.generation;
    let global = made.global.as_ref().map_err(|e| {
        Error::new(
            crate::ErrorKind::Unsupported,
            format!("cannot start the I/O runtime: {e}"),
        )
    })?;
    let (rt, running) = match global {
        Global::Driven(d) => (
            Rt {
                handle: d.rt.handle().clone(),
                driven: Some(d),
                generation,
            },
            1,
        ),
        Global::Multi(r, n) => (
            Rt {
                handle: r.handle().clone(),
                driven: None,
                generation,
            },
            *n,
        ),
    };
    if io_threads != 0 && running != io_threads {
        return Err(Error::invalid(format!(
            "io_threads={io_threads} asked for, but the process runtime already runs with {running}"
        )));
    }
    Ok(rt)
}

/// [`Rt::block_on`] as a function.
pub(crate) fn block_on<F: Future>(rt: &Rt, fut: F) -> Result<F::Output> {
    rt.block_on(fut)
}

impl Rt {
    /// Clean-up work that must not block an async caller: from a thread outside any
    /// runtime, run `fut` now and wait for it; from inside one, spawn it.
    pub(crate) fn run_or_spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.spawn(fut);
        } else {
            let _ = self.block_on(fut);
        }
    }
}

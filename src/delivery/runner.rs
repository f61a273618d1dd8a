//! [`Runner`]: the one lifecycle of every handle that runs user handlers on threads of its
//! own — request workers, RPC servers, stream consumers, hash watchers, keyspace watches.
//!
//! - Each loop runs on a thread of its own ([`Runner::spawn`]) and gets a [`Loop`]: the stop
//!   flag, a sleep that `stop` cuts short, and reports of its operations' failures and
//!   recoveries.
//! - [`Runner::stop`] sets the flag, wakes loops that wait on the server (the handle's
//!   wakers: `CLIENT UNBLOCK` of a blocking pop, closing a watcher's subscription; again
//!   every 100 ms for a loop that was about to block) and waits up to its deadline for the
//!   loops to return: a [`ErrorKind::Timeout`] error if a handler still runs then. Called
//!   from one of the handle's own handlers, it only asks for the stop and returns `Ok` at
//!   once (waiting would wait for itself): the handle stops when that handler returns.
//! - Exit actions ([`Runner::on_stopped`]) run once, in order, on the thread of the loop that
//!   returned last, after every handler returned: the handle's own cleanup (ending a
//!   heartbeat, withdrawing an RPC server's presence) and the user's "stopped" callback
//!   (what C's `userdata_free` and Python's release hang on). Registered after that point,
//!   an action runs at once on the registering thread.
//! - While a handle is being made, a start token keeps it from finishing; a handle whose
//!   creation failed part-way (dropped before [`Runner::started`]) stops its loops and runs
//!   the exit actions registered so far.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::report::{Report, ReportKind, ReportSource, Reporter};

/// An action run once when a handle has stopped for good.
pub(crate) type ExitAction = Box<dyn FnOnce() + Send>;

/// Something that wakes a loop waiting on the server (called repeatedly while stopping).
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

/// How long `Drop` of a handle waits for its running handlers.
pub(crate) const DROP_DEADLINE: Duration = crate::DEFAULT_STOP_TIMEOUT;

/// How often `stop` wakes loops again while it waits.
const REWAKE: Duration = Duration::from_millis(100);

struct State {
    /// Loops running, plus one while the handle is being made.
    live: usize,
    /// The threads of the loops (a `stop` from one of them only asks).
    threads: Vec<ThreadId>,
    /// Every loop returned and every exit action ran.
    finished: bool,
    exit: Vec<ExitAction>,
    wakers: Vec<Waker>,
}

struct Shared {
    source: ReportSource,
    name: Bytes,
    group: Option<Bytes>,
    reporter: Reporter,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Signalled when the handle finished.
    done: Condvar,
    /// Signalled when the stop flag is set (cuts [`Loop::sleep`] short).
    stopping: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // No user code runs under this lock; the state stays consistent across a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// A loop returned (or the start token was given back): the last one runs the exit
    /// actions and marks the handle finished.
    fn leave(&self) {
        let mut st = lock(&self.state);
        st.live -= 1;
        if st.live > 0 {
            return;
        }
        st.wakers.clear();
        // Actions registered while these run (not finished yet) are run in the next round.
        while !st.exit.is_empty() {
            let actions = std::mem::take(&mut st.exit);
            drop(st);
            for action in actions {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));
            }
            st = lock(&self.state);
        }
        st.finished = true;
        drop(st);
        self.done.notify_all();
    }

    fn report(&self, kind: ReportKind) -> Report {
        let r = Report::new(kind, self.source, self.name.clone());
        match &self.group {
            Some(g) => r.group(g.clone()),
            None => r,
        }
    }
}

/// The lifecycle of one handle: see the [module docs](self).
pub(crate) struct Runner {
    shared: Arc<Shared>,
    started: bool,
    /// The process generation it was made in (`crate::fork`): in a forked child its loops
    /// are not there, and nothing of it is waited for.
    generation: u64,
}

impl Runner {
    /// A runner for a handle of kind `source` on `name` (its queue, stream, hash, ...),
    /// reporting to `reporter`.
    pub(crate) fn new(source: ReportSource, name: Bytes, reporter: Reporter) -> Runner {
        Runner {
            shared: Arc::new(Shared {
                source,
                name,
                group: None,
                reporter,
                stop: AtomicBool::new(false),
                state: Mutex::new(State {
                    live: 1,
                    threads: Vec::new(),
                    finished: false,
                    exit: Vec::new(),
                    wakers: Vec::new(),
                }),
                done: Condvar::new(),
                stopping: Condvar::new(),
            }),
            started: false,
            generation: crate::fork::generation(),
        }
    }

    /// Name the consumer group in reports (stream consumers).
    pub(crate) fn with_group(mut self, group: Bytes) -> Runner {
        if let Some(s) = Arc::get_mut(&mut self.shared) {
            s.group = Some(group);
        }
        self
    }

    /// A [`Loop`] context for work outside the loops (creation, heartbeats).
    pub(crate) fn context(&self) -> Loop {
        Loop {
            shared: self.shared.clone(),
            failing: None,
            backoff: Backoff::new(),
        }
    }

    /// Start a loop named `name` on a thread of its own.
    pub(crate) fn spawn(
        &self,
        name: String,
        body: impl FnOnce(&mut Loop) + Send + 'static,
    ) -> Result<()> {
        lock(&self.shared.state).live += 1;
        let mut lp = self.context();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            struct Leave(Arc<Shared>);
            impl Drop for Leave {
                fn drop(&mut self) {
                    self.0.leave();
                }
            }
            let _leave = Leave(lp.shared.clone());
            lock(&lp.shared.state)
                .threads
                .push(std::thread::current().id());
            body(&mut lp);
        });
        spawned.map(drop).map_err(|e| {
            self.shared.leave();
            Error::new(
                ErrorKind::Unsupported,
                format!("cannot start a thread: {e}"),
            )
        })
    }

    /// Run `f` when the handle has stopped for good (see the [module docs](self)).
    pub(crate) fn on_stopped(&self, f: impl FnOnce() + Send + 'static) {
        let mut st = lock(&self.shared.state);
        if st.finished {
            drop(st);
            f();
        } else {
            st.exit.push(Box::new(f));
        }
    }

    /// A hold on the handle for handlers that run elsewhere (a subscription's, on the
    /// dispatcher or in poll mode): the handle finishes only once every hold is dropped.
    /// Owned by the handler closure, whose drop (after its last call) releases it.
    pub(crate) fn hold(&self) -> Hold {
        lock(&self.shared.state).live += 1;
        Hold { lp: self.context() }
    }

    /// Call `waker` when stopping, to end a wait of a loop on the server.
    pub(crate) fn waker(&self, waker: Waker) {
        lock(&self.shared.state).wakers.push(waker);
    }

    /// The handle is made: from now on it finishes when its last loop returns.
    pub(crate) fn started(&mut self) {
        if !self.started {
            self.started = true;
            self.shared.leave();
        }
    }

    /// Whether every loop returned and every exit action ran.
    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.shared.state).finished
    }

    fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let _guard = lock(&self.shared.state);
        self.shared.stopping.notify_all();
    }

    fn wake(&self) {
        let wakers = lock(&self.shared.state).wakers.clone();
        for w in wakers {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w()));
        }
    }

    /// Whether the calling thread is one of the handle's loops (inside one of its handlers).
    pub(crate) fn on_own_thread(&self) -> bool {
        let me = std::thread::current().id();
        lock(&self.shared.state).threads.contains(&me)
    }

    /// Whether it was made in the parent of a `fork()` (`crate::fork`).
    fn inherited(&self) -> bool {
        crate::fork::from_parent(self.generation)
    }

    /// Stop: see the [module docs](self). `Ok` once every loop returned and the exit
    /// actions ran; from one of the handle's own handlers, `Ok` at once (the stop is asked
    /// for and happens when that handler returns); a [`ErrorKind::Timeout`] error when a
    /// handler still runs at the deadline (the handle then stops when it returns); a
    /// `Closed` error at once in the child of a `fork()` (its loops are the parent's).
    pub(crate) fn stop(&self, deadline: Duration) -> Result<()> {
        if self.inherited() {
            return Err(crate::fork::inherited());
        }
        self.request_stop();
        if self.on_own_thread() {
            self.wake();
            return Ok(());
        }
        let until = Instant::now() + deadline;
        let mut last_wake: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if last_wake.is_none_or(|t| now.duration_since(t) >= REWAKE) {
                last_wake = Some(now);
                self.wake();
            }
            let st = lock(&self.shared.state);
            if st.finished {
                return Ok(());
            }
            let now = Instant::now();
            if now >= until {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the {}'s handlers were still running after {deadline:?}; it stops when they return",
                        self.shared.source
                    ),
                ));
            }
            let wait = (until - now).min(REWAKE);
            drop(self.shared.done.wait_timeout(st, wait));
        }
    }
}

impl Drop for Runner {
    /// Not started (its creation failed): stop the loops, run the exit actions so far.
    /// Started: stop, waiting up to [`DROP_DEADLINE`] for running handlers (from one of
    /// its own handlers: only ask).
    fn drop(&mut self) {
        if self.inherited() {
            // Made before a fork(): its loops are the parent's (`crate::fork`).
            return;
        }
        if !self.started {
            self.request_stop();
            self.wake();
            self.started();
            return;
        }
        let _ = self.stop(DROP_DEADLINE);
    }
}

/// See [`Runner::hold`].
pub(crate) struct Hold {
    lp: Loop,
}

impl Hold {
    /// Run one handler call: marked as the handle's own (a `stop` from inside it only
    /// asks), with the handle's reports at hand.
    pub(crate) fn enter<R>(&self, f: impl FnOnce(&Loop) -> R) -> R {
        struct Exit<'a>(&'a Shared);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                let me = std::thread::current().id();
                let mut st = lock(&self.0.state);
                if let Some(i) = st.threads.iter().position(|t| *t == me) {
                    st.threads.swap_remove(i);
                }
            }
        }
        lock(&self.lp.shared.state)
            .threads
            .push(std::thread::current().id());
        let _exit = Exit(&self.lp.shared);
        f(&self.lp)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.lp.shared.leave();
    }
}

/// Capped exponential backoff between failed operations of a loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The delay to wait now (doubling the next one, up to a second).
    pub(crate) fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// What a loop of a [`Runner`] sees: the stop flag, reports, and a sleep `stop` cuts short.
pub(crate) struct Loop {
    shared: Arc<Shared>,
    /// The error of the failure reported last, while operations keep failing.
    failing: Option<(ErrorKind, String)>,
    backoff: Backoff,
}

impl Loop {
    /// Whether the handle is stopping.
    pub(crate) fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Sleep up to `d`, less if the handle starts stopping.
    pub(crate) fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut st = lock(&self.shared.state);
        while !self.stopped() {
            let now = Instant::now();
            if now >= until {
                return;
            }
            st = self
                .shared
                .stopping
                .wait_timeout(st, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// A report of `kind` about this handle (its source, name and group filled in).
    pub(crate) fn report_of(&self, kind: ReportKind) -> Report {
        self.shared.report(kind)
    }

    /// Hand `report` to the handle's hook.
    pub(crate) fn report(&self, report: Report) {
        self.shared.reporter.report(report);
    }

    /// An operation of the loop failed while `during`: report it (once per different
    /// error while they keep failing: [`ReportKind::ConnectionLost`]) and sleep the backoff.
    pub(crate) fn failed(&mut self, during: &'static str, e: Error) {
        let key = (e.kind(), e.message().to_string());
        if self.failing.as_ref() != Some(&key) {
            self.failing = Some(key);
            self.report(
                self.report_of(ReportKind::ConnectionLost)
                    .during(during)
                    .error(e),
            );
        }
        let d = self.backoff.step();
        self.sleep(d);
    }

    /// An operation of the loop succeeded: after failures, report
    /// [`ReportKind::ConnectionRestored`].
    pub(crate) fn succeeded(&mut self) {
        self.backoff.reset();
        if self.failing.take().is_some() {
            self.report(self.report_of(ReportKind::ConnectionRestored));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn runner() -> Runner {
        Runner::new(
            ReportSource::Worker,
            Bytes::from_static(b"q"),
            Reporter::default(),
        )
    }

    #[test]
    fn exit_actions_run_once_after_the_last_loop_and_stop_waits_for_them() {
        let mut r = runner();
        let ran = Arc::new(AtomicUsize::new(0));
        for i in 0..3 {
            r.spawn(format!("t{i}"), |lp| {
                while !lp.stopped() {
                    lp.sleep(Duration::from_secs(5));
                }
            })
            .unwrap();
        }
        let n = ran.clone();
        r.on_stopped(move || {
            n.fetch_add(1, Ordering::SeqCst);
        });
        r.started();
        assert!(!r.is_finished());
        r.stop(Duration::from_secs(5)).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        // Registered afterwards: runs at once.
        let n = ran.clone();
        r.on_stopped(move || {
            n.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        drop(r);
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn stop_from_a_loop_only_asks_and_a_busy_loop_times_out() {
        let mut r = runner();
        let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
        let shared = Arc::new(Mutex::new(None::<Arc<Runner>>));
        let s = shared.clone();
        let release = Arc::new(AtomicBool::new(false));
        let rel = release.clone();
        r.spawn("own".into(), move |lp| {
            // Wait for the runner to be shared, then stop it from "inside a handler".
            loop {
                if let Some(r) = s.lock().unwrap().clone() {
                    tx.send(r.stop(Duration::from_secs(5))).unwrap();
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            while !rel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(lp.stopped());
        })
        .unwrap();
        r.started();
        let r = Arc::new(r);
        *shared.lock().unwrap() = Some(r.clone());
        let t = Instant::now();
        rx.recv().unwrap().unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
        // The loop still runs: a stop from outside times out.
        let e = r.stop(Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        release.store(true, Ordering::SeqCst);
        r.stop(Duration::from_secs(5)).unwrap();
        *shared.lock().unwrap() = None;
    }

    #[test]
    fn a_handle_whose_creation_failed_stops_its_loops_and_runs_what_was_registered() {
        let r = runner();
        let ran = Arc::new(AtomicUsize::new(0));
        r.spawn("l".into(), |lp| {
            while !lp.stopped() {
                lp.sleep(Duration::from_secs(5));
            }
        })
        .unwrap();
        let n = ran.clone();
        r.on_stopped(move || {
            n.fetch_add(1, Ordering::SeqCst);
        });
        let ctx = r.context();
        drop(r);
        let until = Instant::now() + Duration::from_secs(5);
        while ran.load(Ordering::SeqCst) == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(ctx.stopped());
    }
}

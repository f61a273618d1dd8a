//! Delivery of events to user code: a bounded, ordered queue per consumer with an overflow
//! policy and counters, and the three ways its events reach the user:
//!
//! - **callback, threaded** (default): a handler runs on a library dispatcher thread (the
//!   runtime's blocking pool), one batch at a time per consumer, so a slow handler holds only
//!   its own thread and never delays other consumers;
//! - **callback, poll mode**: handlers run only inside [`PollQueue::poll`] on the host's
//!   thread; a file descriptor is readable whenever work is waiting;
//! - **pull**: no handler; the user takes events with `next`/`try_next`.
//!
//! Closing guarantees that no handler call of the consumer runs after `close` returns
//! (except when `close` is called from inside that handler: then it takes effect when the
//! handler returns), and that the handler (with whatever it owns) is dropped exactly once.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Error, ErrorKind, Result};

/// What happens when a consumer's queue is full and another message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for room: the reader of the connection pauses (nothing is lost, but every
    /// consumer on that connection waits while this queue is full).
    #[default]
    Block,
    /// Drop the oldest queued message to make room (counted).
    DropOldest,
    /// Drop the arriving message (counted).
    DropNewest,
}

/// Counters of one consumer's queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Events handed to the user (handler called, or taken with `next`).
    pub delivered: u64,
    /// Messages dropped by the overflow policy.
    pub dropped: u64,
    /// Events waiting in the queue now.
    pub queued: u64,
    /// The queue's capacity.
    pub capacity: u64,
}

/// A handler: called with a batch of events, in order. Bindings that must take a lock per
/// call (Python's GIL) take it once per batch.
pub type Handler<T> = Box<dyn FnMut(&[T]) + Send>;

/// Reports a panic of a handler (default: printed to stderr).
pub type ErrorHook = Arc<dyn Fn(&str) + Send + Sync>;

/// The text of a caught panic (`panic!("...")` payloads are `&str` or `String`).
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Report `text` to the user's hook (a panicking hook is contained), or to stderr.
pub(crate) fn report(hook: Option<&ErrorHook>, text: &str) {
    match hook {
        Some(h) => {
            let _ = catch_unwind(AssertUnwindSafe(|| h(text)));
        }
        None => eprintln!("{text}"),
    }
}

thread_local! {
    static IN_HANDLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is running a subscription handler now (then waiting for the
/// connection task could deadlock: it may itself wait for room in this handler's queue).
pub(crate) fn in_handler() -> bool {
    IN_HANDLER.with(|c| c.get())
}

/// How many events one handler call gets at most.
const BATCH: usize = 256;

/// An event with a flag: control events (connection state) are never dropped.
pub(crate) trait Droppable {
    fn droppable(&self) -> bool;
}

struct QState<T> {
    items: VecDeque<T>,
    closed: bool,
}

struct HState<T> {
    handler: Option<Handler<T>>,
    running: Option<ThreadId>,
    closed: bool,
}

/// Where a consumer with a handler runs it.
#[derive(Clone)]
pub(crate) enum Mode {
    /// On the library's dispatcher threads ([`Dispatcher`]).
    Threaded,
    /// On the host's thread inside `poll`.
    Poll(Arc<PollQueue>),
    /// At once, on the thread that delivers (the connection task): only for the library's
    /// own short, non-blocking handlers (RPC replies).
    Inline,
}

/// One consumer: its queue, and its handler if it has one.
pub(crate) struct Delivery<T> {
    queue: Mutex<QState<T>>,
    capacity: usize,
    overflow: Overflow,
    /// Pull consumers wait here (blocking) ...
    not_empty: Condvar,
    /// ... or here (async).
    not_empty_async: Notify,
    /// The producer waits here when the queue is full under [`Overflow::Block`].
    not_full: Notify,
    delivered: AtomicU64,
    dropped: AtomicU64,
    /// Handler state, if this is a callback consumer.
    hstate: Mutex<HState<T>>,
    idle: Condvar,
    has_handler: bool,
    scheduled: AtomicBool,
    mode: Option<Mode>,
    error_hook: Option<ErrorHook>,
    /// Set first thing in `close`, for handlers that loop over a batch.
    closed_flag: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent across a panic (single assignments), and
    // user code never runs while they are held.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Droppable + Send + 'static> Delivery<T> {
    /// A new consumer; with `handler`, `mode` says where it runs.
    pub(crate) fn new(
        capacity: usize,
        overflow: Overflow,
        handler: Option<Handler<T>>,
        mode: Mode,
        error_hook: Option<ErrorHook>,
        closed_flag: Arc<AtomicBool>,
    ) -> Arc<Self> {
        let has_handler = handler.is_some();
        Arc::new(Delivery {
            closed_flag,
            queue: Mutex::new(QState {
                items: VecDeque::new(),
                closed: false,
            }),
            capacity: capacity.max(1),
            overflow,
            not_empty: Condvar::new(),
            not_empty_async: Notify::new(),
            not_full: Notify::new(),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            hstate: Mutex::new(HState {
                handler,
                running: None,
                closed: false,
            }),
            idle: Condvar::new(),
            has_handler,
            scheduled: AtomicBool::new(false),
            mode: has_handler.then_some(mode),
            error_hook,
        })
    }

    /// Queue the events of `items` in order (leaving it empty), applying the overflow policy
    /// to droppable ones; waits for room under [`Overflow::Block`]. Returns false once the
    /// consumer is closed. What fits goes in under one lock. The consumer is not woken here
    /// (only before waiting for room): the producer queues everything one read of the socket
    /// brought, then calls [`flush`](Delivery::flush), so a fast consumer is woken once per
    /// burst instead of once per message.
    pub(crate) async fn push_all(self: &Arc<Self>, items: &mut Vec<T>) -> bool {
        loop {
            let notified = self.not_full.notified();
            {
                let mut q = lock(&self.queue);
                if q.closed {
                    items.clear();
                    return false;
                }
                // What fits (control events always do) goes in at once ...
                let mut len = q.items.len();
                let fits = items
                    .iter()
                    .take_while(|it| {
                        let ok = len < self.capacity || !it.droppable();
                        len += usize::from(ok);
                        ok
                    })
                    .count();
                q.items.extend(items.drain(..fits));
                // ... the rest meets the overflow policy, which waits only under `Block`.
                if self.overflow != Overflow::Block {
                    for it in items.drain(..) {
                        let left = self.offer(&mut q, it);
                        debug_assert!(left.is_none());
                    }
                }
                if items.is_empty() {
                    return true;
                }
            }
            self.wake();
            notified.await;
        }
    }

    /// Queue `it` under the overflow policy; gives it back when it must wait for room.
    fn offer(&self, q: &mut QState<T>, it: T) -> Option<T> {
        if q.items.len() < self.capacity || !it.droppable() {
            q.items.push_back(it);
            return None;
        }
        match self.overflow {
            Overflow::DropNewest => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Overflow::DropOldest => match q.items.iter().position(|e| e.droppable()) {
                Some(i) => {
                    q.items.remove(i);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    q.items.push_back(it);
                }
                // Only control events queued: drop the arriving message.
                None => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            },
            Overflow::Block => return Some(it),
        }
        None
    }

    /// Wake the consumer for what [`push_all`](Delivery::push_all) queued.
    pub(crate) fn flush(self: &Arc<Self>) {
        self.wake();
    }

    /// Queue an event that is never dropped and never waits (connection-state events).
    pub(crate) fn push_control(self: &Arc<Self>, item: T) {
        {
            let mut q = lock(&self.queue);
            if q.closed {
                return;
            }
            q.items.push_back(item);
        }
        self.wake();
    }

    fn wake(self: &Arc<Self>) {
        if !self.has_handler {
            self.not_empty.notify_one();
            self.not_empty_async.notify_one();
            return;
        }
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return; // a drain is queued or running and will see the new event
        }
        self.dispatch();
    }

    /// Hand this (scheduled) consumer to whoever runs its handler.
    fn dispatch(self: &Arc<Self>) {
        match &self.mode {
            Some(Mode::Threaded) => {
                let me = self.clone();
                Dispatcher::global().submit(Box::new(move || {
                    me.drain(usize::MAX);
                }));
            }
            Some(Mode::Poll(pq)) => pq.schedule(self.clone()),
            Some(Mode::Inline) => {
                self.drain(usize::MAX);
            }
            None => {}
        }
    }

    fn take_batch(&self, max: usize) -> Vec<T> {
        let mut q = lock(&self.queue);
        let n = q.items.len().min(max);
        let was_full = q.items.len() >= self.capacity;
        let batch: Vec<T> = q.items.drain(..n).collect();
        drop(q);
        if was_full && n > 0 {
            self.not_full.notify_one();
        }
        batch
    }

    /// Run the handler over queued events, at most `max_batches` batches; then unschedule
    /// (or, if more came in meanwhile, reschedule). Returns how many events were handled.
    fn drain(self: &Arc<Self>, max_batches: usize) -> usize {
        let mut handled = 0;
        let mut batches = 0;
        loop {
            if batches == max_batches {
                // Poll mode: give other consumers their turn; come back on a later poll.
                self.scheduled.store(false, Ordering::Release);
                let pending = !lock(&self.queue).items.is_empty();
                if pending && !self.scheduled.swap(true, Ordering::AcqRel) {
                    self.dispatch();
                }
                return handled;
            }
            let batch = self.take_batch(BATCH);
            if batch.is_empty() {
                self.scheduled.store(false, Ordering::Release);
                // An event may have arrived between the empty take and the store.
                let pending = !lock(&self.queue).items.is_empty();
                if pending && !self.scheduled.swap(true, Ordering::AcqRel) {
                    continue;
                }
                return handled;
            }
            batches += 1;
            let mut handler = {
                let mut h = lock(&self.hstate);
                if h.closed {
                    return handled;
                }
                let Some(handler) = h.handler.take() else {
                    return handled;
                };
                h.running = Some(std::thread::current().id());
                handler
            };
            let n = batch.len();
            let was_in = IN_HANDLER.with(|c| c.replace(true));
            let result = catch_unwind(AssertUnwindSafe(|| handler(&batch)));
            IN_HANDLER.with(|c| c.set(was_in));
            self.delivered.fetch_add(n as u64, Ordering::Relaxed);
            handled += n;
            if let Err(panic) = result {
                report(
                    self.error_hook.as_ref(),
                    &format!(
                        "redipc: a subscription handler panicked: {}",
                        panic_text(&*panic)
                    ),
                );
            }
            let leftover = {
                let mut h = lock(&self.hstate);
                if h.closed {
                    Some(handler)
                } else {
                    h.handler = Some(handler);
                    h.running = None;
                    None
                }
            };
            if let Some(handler) = leftover {
                // Closed meanwhile (from inside the handler, or by another thread that now
                // waits for us): drop the handler and what it owns here, exactly once, and
                // only then let `close` return.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(handler)));
                lock(&self.hstate).running = None;
                self.idle.notify_all();
                return handled;
            }
            self.idle.notify_all();
        }
    }

    /// Close: no handler call starts after this returns, and a running one (on another
    /// thread) has finished. Called from inside the handler itself, it returns at once and
    /// takes effect when the handler returns. Queued events are discarded.
    pub(crate) fn close(&self) {
        self.closed_flag.store(true, Ordering::Release);
        {
            let mut q = lock(&self.queue);
            q.closed = true;
            q.items.clear();
        }
        self.not_full.notify_one();
        self.not_empty.notify_all();
        self.not_empty_async.notify_waiters();
        let handler = {
            let mut h = lock(&self.hstate);
            h.closed = true;
            if h.running == Some(std::thread::current().id()) {
                return;
            }
            while h.running.is_some() {
                h = self.idle.wait(h).unwrap_or_else(|p| p.into_inner());
            }
            h.handler.take()
        };
        drop(handler);
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    /// The counters.
    pub(crate) fn stats(&self) -> QueueStats {
        QueueStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            queued: lock(&self.queue).items.len() as u64,
            capacity: self.capacity as u64,
        }
    }

    fn pop(&self) -> Option<T> {
        let mut q = lock(&self.queue);
        let was_full = q.items.len() >= self.capacity;
        let item = q.items.pop_front();
        drop(q);
        if item.is_some() {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            if was_full {
                self.not_full.notify_one();
            }
        }
        item
    }

    fn check_pull(&self) -> Result<()> {
        if self.has_handler {
            return Err(Error::invalid(
                "this subscription has a handler; its events go to the handler, not to next()",
            ));
        }
        Ok(())
    }

    /// Take the next event without waiting.
    pub(crate) fn try_next(&self) -> Result<Option<T>> {
        self.check_pull()?;
        if self.is_closed() {
            return Err(Error::closed());
        }
        Ok(self.pop())
    }

    /// Take the next event, waiting up to `timeout` (`None`: without limit). `Ok(None)`
    /// when the time passed with no event.
    pub(crate) fn next_blocking(&self, timeout: Option<Duration>) -> Result<Option<T>> {
        self.check_pull()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut q = lock(&self.queue);
        loop {
            if q.closed {
                return Err(Error::closed());
            }
            if !q.items.is_empty() {
                drop(q);
                return Ok(self.pop());
            }
            q = match deadline {
                None => self.not_empty.wait(q).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    self.not_empty
                        .wait_timeout(q, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Take the next event (async).
    pub(crate) async fn next_async(&self) -> Result<T> {
        self.check_pull()?;
        loop {
            let notified = self.not_empty_async.notified();
            {
                let q = lock(&self.queue);
                if q.closed {
                    return Err(Error::closed());
                }
            }
            if let Some(item) = self.pop() {
                return Ok(item);
            }
            notified.await;
        }
    }
}

/// Something the poll queue can run.
pub(crate) trait Drainable: Send + Sync {
    /// Run at most one batch; returns how many events were handled.
    fn drain_some(self: Arc<Self>) -> usize;
}

impl<T: Droppable + Send + 'static> Drainable for Delivery<T> {
    fn drain_some(self: Arc<Self>) -> usize {
        self.drain(1)
    }
}

/// Poll mode: consumers with work wait here until the host calls [`PollQueue::poll`].
/// A socket pair signals readiness: its read end is readable exactly while work waits.
pub(crate) struct PollQueue {
    closed: AtomicBool,
    ready: Mutex<VecDeque<Arc<dyn Drainable>>>,
    cond: Condvar,
    rx: UnixStream,
    tx: UnixStream,
}

impl PollQueue {
    pub(crate) fn new() -> Result<Arc<PollQueue>> {
        let io = |e: std::io::Error| Error::new(ErrorKind::Unsupported, format!("poll mode: {e}"));
        let (rx, tx) = UnixStream::pair().map_err(io)?;
        rx.set_nonblocking(true).map_err(io)?;
        tx.set_nonblocking(true).map_err(io)?;
        Ok(Arc::new(PollQueue {
            closed: AtomicBool::new(false),
            ready: Mutex::new(VecDeque::new()),
            cond: Condvar::new(),
            rx,
            tx,
        }))
    }

    /// The descriptor to watch for readability.
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    fn schedule(&self, d: Arc<dyn Drainable>) {
        let mut ready = lock(&self.ready);
        if ready.is_empty() {
            // One byte is enough: readable means "something waits". A full buffer (it
            // cannot be, with one byte per empty→non-empty edge) would also mean readable.
            let _ = (&self.tx).write(&[1]);
        }
        ready.push_back(d);
        drop(ready);
        self.cond.notify_all();
    }

    /// Wake and end every `poll` waiting now or later (the client was closed).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _guard = lock(&self.ready);
        self.cond.notify_all();
    }

    /// Run waiting handlers on this thread; wait up to `timeout` (`None`: without limit) for
    /// work if there is none (`Some(ZERO)`: do not wait). Returns how many events were
    /// handled; a `Closed` error once the client is closed.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut ready = lock(&self.ready);
        while ready.is_empty() {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::closed());
            }
            let now = Instant::now();
            let Some(deadline) = deadline else {
                ready = self.cond.wait(ready).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            if now >= deadline {
                return Ok(0);
            }
            ready = self
                .cond
                .wait_timeout(ready, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let work: Vec<Arc<dyn Drainable>> = ready.drain(..).collect();
        self.clear_signal();
        drop(ready);
        let mut handled = 0;
        for d in work {
            handled += d.drain_some();
        }
        Ok(handled)
    }

    fn clear_signal(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.rx).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The process's dispatcher threads: an elastic pool that starts a thread when every
/// thread is busy (up to a cap) and lets idle threads go after a while. Handlers run here,
/// outside the I/O runtime, so they may call the blocking client; a slow handler occupies
/// only its own thread.
pub(crate) struct Dispatcher {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

/// At most this many dispatcher threads; beyond it jobs wait for a free thread.
const MAX_DISPATCH_THREADS: usize = 256;
/// An idle dispatcher thread exits after this long.
const DISPATCH_IDLE: Duration = Duration::from_secs(10);

impl Dispatcher {
    pub(crate) fn global() -> &'static Dispatcher {
        static POOL: std::sync::OnceLock<Dispatcher> = std::sync::OnceLock::new();
        POOL.get_or_init(|| Dispatcher {
            state: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                idle: 0,
                threads: 0,
            }),
            work: Condvar::new(),
        })
    }

    pub(crate) fn submit(&'static self, job: Job) {
        let mut st = lock(&self.state);
        st.jobs.push_back(job);
        if st.idle >= st.jobs.len() || st.threads >= MAX_DISPATCH_THREADS {
            drop(st);
            self.work.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let spawned = std::thread::Builder::new()
            .name("redipc-dispatch".into())
            .spawn(move || self.run());
        if spawned.is_err() {
            let mut st = lock(&self.state);
            st.threads -= 1;
            if st.threads > 0 {
                // An existing thread will take it.
                drop(st);
                self.work.notify_one();
            } else if let Some(job) = st.jobs.pop_back() {
                // No thread at all and none can be made: run it here rather than never.
                drop(st);
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
        }
    }

    fn run(&self) {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                // A job is a drain, which already contains handler panics.
                let _ = catch_unwind(AssertUnwindSafe(job));
                st = lock(&self.state);
                continue;
            }
            st.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(st, DISPATCH_IDLE)
                .unwrap_or_else(|p| p.into_inner());
            st = next;
            st.idle -= 1;
            if timeout.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

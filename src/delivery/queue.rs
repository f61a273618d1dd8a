//! [`Delivery`]: one consumer's bounded, ordered queue, its overflow policy and counters,
//! and its handler's state (scheduling, the close guarantee).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::pool::Dispatcher;
use super::{BATCH, Droppable, Handler, IN_HANDLER, Mode, Overflow, QueueStats, lock};
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Report, ReportKind, ReportSource, Reporter, panic_text};

struct QState<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Batches lent out ([`Delivery::lend_async`]) and not settled yet: the next one waits
    /// for them, since what they hold may come back to the head of the queue.
    lent: usize,
}

struct HState<T> {
    handler: Option<Handler<T>>,
    running: Option<ThreadId>,
    closed: bool,
    /// The handler is dropped for good (after its last call), and `on_gone` ran.
    gone: bool,
    on_gone: Vec<Box<dyn FnOnce() + Send>>,
    /// Threads waiting on `idle` (in `close`): a drain notifies only when there are some
    /// (std's `Condvar` makes a futex call on every notify, waiter or not: one system call
    /// per batch on the dispatcher thread otherwise).
    waiting: usize,
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
    reporter: Reporter,
    /// Set first thing in `close`, for handlers that loop over a batch.
    closed_flag: Arc<AtomicBool>,
    /// The process generation it was made in (`crate::fork`): in a child of that process
    /// its locks may be held by the parent's threads, which are not there; it is not
    /// touched then (pulls fail with a `Closed` error, closing does nothing).
    generation: u64,
}

impl<T: Droppable + Send + 'static> Delivery<T> {
    /// A new consumer; with `handler`, `mode` says where it runs.
    pub(crate) fn new(
        capacity: usize,
        overflow: Overflow,
        handler: Option<Handler<T>>,
        mode: Mode,
        reporter: Reporter,
        closed_flag: Arc<AtomicBool>,
    ) -> Arc<Self> {
        let has_handler = handler.is_some();
        Arc::new(Delivery {
            closed_flag,
            queue: Mutex::new(QState {
                items: VecDeque::new(),
                closed: false,
                lent: 0,
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
                gone: false,
                on_gone: Vec::new(),
                waiting: 0,
            }),
            idle: Condvar::new(),
            has_handler,
            scheduled: AtomicBool::new(false),
            mode: has_handler.then_some(mode),
            reporter,
            generation: crate::fork::generation(),
        })
    }

    /// Made before a `fork()` of this process (see `generation`).
    fn inherited(&self) -> bool {
        crate::fork::from_parent(self.generation)
    }

    /// A pull from an inherited consumer: a `Closed` error.
    fn check_process(&self) -> Result<()> {
        match self.inherited() {
            true => Err(crate::fork::inherited()),
            false => Ok(()),
        }
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

    /// Lend up to `max` events (at least one; waits for the first) to a consumer that may
    /// be cancelled before it hands them out: it [`settle`](Delivery::settle)s the batch,
    /// returning what it did not hand out. One batch is out at a time: the next waits until
    /// the last is settled, so what comes back is still taken first, in order.
    pub(crate) async fn lend_async(&self, max: usize) -> Result<Vec<T>> {
        self.check_process()?;
        self.check_pull()?;
        loop {
            let notified = self.not_empty_async.notified();
            {
                let mut q = lock(&self.queue);
                if q.closed {
                    return Err(Error::closed());
                }
                if q.lent == 0 && !q.items.is_empty() {
                    let was_full = q.items.len() >= self.capacity;
                    let n = q.items.len().min(max.max(1));
                    let out: Vec<T> = q.items.drain(..n).collect();
                    q.lent += 1;
                    drop(q);
                    self.delivered.fetch_add(n as u64, Ordering::Relaxed);
                    if was_full {
                        self.not_full.notify_one();
                    }
                    return Ok(out);
                }
            }
            notified.await;
        }
    }

    /// Settle a batch [`lend_async`](Delivery::lend_async) lent: `back` (what the consumer
    /// did not hand out) goes to the head of the queue in its order, past the capacity if
    /// need be (it was queued a moment ago), unless the consumer is closed.
    pub(crate) fn settle(self: &Arc<Self>, back: Vec<T>) {
        if self.inherited() {
            return;
        }
        let n = back.len() as u64;
        {
            let mut q = lock(&self.queue);
            q.lent = q.lent.saturating_sub(1);
            if !q.closed {
                for item in back.into_iter().rev() {
                    q.items.push_front(item);
                }
                self.delivered.fetch_sub(n, Ordering::Relaxed);
            }
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
            self.run_handler(&mut handler, &batch);
            IN_HANDLER.with(|c| c.set(was_in));
            self.delivered.fetch_add(n as u64, Ordering::Relaxed);
            handled += n;
            let (leftover, waiting) = {
                let mut h = lock(&self.hstate);
                if h.closed {
                    (Some(handler), h.waiting > 0)
                } else {
                    h.handler = Some(handler);
                    h.running = None;
                    (None, h.waiting > 0)
                }
            };
            if let Some(handler) = leftover {
                // Closed meanwhile (from inside the handler, or by another thread that now
                // waits for us): drop the handler and what it owns here, exactly once, and
                // only then let `close` return.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(handler)));
                self.handler_gone();
                lock(&self.hstate).running = None;
                self.idle.notify_all();
                return handled;
            }
            if waiting {
                self.idle.notify_all();
            }
        }
    }

    /// Run `handler` over `batch`, reporting panics.
    fn run_handler(&self, handler: &mut Handler<T>, batch: &[T]) {
        let failed = |panic: Box<dyn std::any::Any + Send>, name: Bytes| {
            self.reporter.report(
                Report::new(ReportKind::HandlerFailed, ReportSource::Subscription, name).error(
                    Error::handler(format!("handler panicked: {}", panic_text(&*panic))),
                ),
            );
        };
        match handler {
            Handler::Batch(f) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(batch))) {
                    failed(p, Bytes::new());
                }
            }
            Handler::Each(f) => {
                for e in batch {
                    // Closed from inside the handler: not one more event of this batch.
                    if self.closed_flag.load(Ordering::Acquire) {
                        return;
                    }
                    if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(e))) {
                        failed(p, e.report_name());
                    }
                }
            }
        }
    }

    /// Close: no handler call starts after this returns, and a running one (on another
    /// thread) has finished. Called from inside the handler itself, it returns at once and
    /// takes effect when the handler returns. Queued events are discarded.
    pub(crate) fn close(&self) {
        self.close_with(true)
    }

    /// [`close`](Self::close), except that a handler running on another thread is not
    /// waited for: it drops the handler itself when it returns.
    pub(crate) fn close_nowait(&self) {
        self.close_with(false)
    }

    fn close_with(&self, wait: bool) {
        if self.inherited() {
            return;
        }
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
            if h.running == Some(std::thread::current().id()) || (!wait && h.running.is_some()) {
                return;
            }
            h.waiting += 1;
            while h.running.is_some() {
                h = self.idle.wait(h).unwrap_or_else(|p| p.into_inner());
            }
            h.waiting -= 1;
            h.handler.take()
        };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(handler)));
        self.handler_gone();
    }

    /// The handler is dropped for good: run the `on_gone` actions (once).
    fn handler_gone(&self) {
        let actions = {
            let mut h = lock(&self.hstate);
            if h.gone {
                return;
            }
            h.gone = true;
            std::mem::take(&mut h.on_gone)
        };
        for f in actions {
            let _ = catch_unwind(AssertUnwindSafe(f));
        }
    }

    /// Run `f` once the consumer is closed and its handler dropped for good (after its
    /// last call); at once if that has happened already.
    pub(crate) fn on_gone(&self, f: impl FnOnce() + Send + 'static) {
        if self.inherited() {
            return;
        }
        let mut h = lock(&self.hstate);
        if h.gone {
            drop(h);
            f();
        } else {
            h.on_gone.push(Box::new(f));
        }
    }

    /// After a close: wait up to `deadline` until the handler is dropped for good (its
    /// last call returned); a [`ErrorKind::Timeout`] error if a call still runs then.
    /// From inside the handler itself: `Ok` at once (waiting would wait for itself).
    pub(crate) fn wait_gone(&self, deadline: Duration) -> Result<()> {
        if self.inherited() {
            return Ok(());
        }
        if lock(&self.hstate).running == Some(std::thread::current().id()) {
            return Ok(());
        }
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let d = done.clone();
        self.on_gone(move || {
            *lock(&d.0) = true;
            d.1.notify_all();
        });
        let until = Instant::now() + deadline;
        let mut gone = lock(&done.0);
        while !*gone {
            let now = Instant::now();
            if now >= until {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the handler was still running after {deadline:?}; it is dropped when it returns"
                    ),
                ));
            }
            gone = done
                .1
                .wait_timeout(gone, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.inherited() || lock(&self.queue).closed
    }

    /// The counters.
    pub(crate) fn stats(&self) -> QueueStats {
        QueueStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            queued: match self.inherited() {
                true => 0,
                false => lock(&self.queue).items.len() as u64,
            },
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
        self.check_process()?;
        self.check_pull()?;
        if self.is_closed() {
            return Err(Error::closed());
        }
        Ok(self.pop())
    }

    /// Take the next event, waiting up to `timeout` (`None`: without limit). `Ok(None)`
    /// when the time passed with no event.
    pub(crate) fn next_blocking(&self, timeout: Option<Duration>) -> Result<Option<T>> {
        self.check_process()?;
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
        self.check_process()?;
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
pub(super) trait Drainable: Send + Sync {
    /// Run at most one batch; returns how many events were handled.
    fn drain_some(self: Arc<Self>) -> usize;
}

impl<T: Droppable + Send + 'static> Drainable for Delivery<T> {
    fn drain_some(self: Arc<Self>) -> usize {
        self.drain(1)
    }
}

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
//!
//! Files: `queue` holds [`Delivery`], the consumer queue with its handler state; `poll` the
//! poll-mode queue of waiting consumers; `pool` the dispatcher threads; `runner` the
//! lifecycle of handles that run handlers on threads of their own (workers, consumers,
//! watchers).

pub(crate) mod completions;
mod poll;
mod pool;
mod queue;
pub(crate) mod runner;

use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use poll::PollQueue;
pub(crate) use queue::Delivery;

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

/// A handler of a batch of events.
pub type BatchFn<T> = Box<dyn FnMut(&[T]) + Send>;

/// A consumer's handler.
#[non_exhaustive]
pub enum Handler<T> {
    /// Called with a batch of events, in order. Bindings that must take a lock per call
    /// (Python's GIL) take it once per batch. A panic is reported and ends the batch.
    Batch(BatchFn<T>),
    /// Called once per event, in order. A panic is reported (naming the event's channel)
    /// and the next event is still delivered.
    Each(Box<dyn FnMut(&T) + Send>),
}

thread_local! {
    static IN_HANDLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is running a subscription handler now (then waiting for the
/// connection task could deadlock: it may itself wait for room in this handler's queue).
pub(crate) fn in_handler() -> bool {
    IN_HANDLER.with(|c| c.get())
}

/// Lock a mutex of this module: the data behind them stays consistent across a panic
/// (single assignments), and user code never runs while they are held.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many events one handler call gets at most.
const BATCH: usize = 256;

/// What a queue holds: events with a flag (control events, such as connection state, are
/// never dropped) and the name a report of a handler failure on them gives.
pub(crate) trait Droppable {
    fn droppable(&self) -> bool;
    fn report_name(&self) -> bytes::Bytes;
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

//! Completions for an event loop that is not the library's (Python's asyncio): calls run on
//! the library's runtime ([`crate::blocking::Client::spawn`]) and put what they produced in
//! a [`Completions`] queue, whose descriptor is readable exactly while something waits; the
//! loop watches it (`loop.add_reader`) and drains the queue on its own thread. The runtime's
//! threads never take the loop's locks (Python's GIL): they only push and, on the
//! empty → non-empty edge, write one byte.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind, Result};

/// A queue of finished work for another event loop; see the module docs. It also counts
/// the calls in flight, so that a closed queue can say when everything was delivered and
/// its reader may go.
pub struct Completions<T> {
    items: Mutex<Vec<T>>,
    rx: UnixStream,
    tx: UnixStream,
    in_flight: AtomicUsize,
    closed: AtomicBool,
}

impl<T> std::fmt::Debug for Completions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completions")
            .field("fd", &self.fd())
            .finish_non_exhaustive()
    }
}

impl<T> Completions<T> {
    /// A new, empty queue with its descriptor.
    pub fn new() -> Result<Completions<T>> {
        let io =
            |e: std::io::Error| Error::new(ErrorKind::Unsupported, format!("completions: {e}"));
        let (rx, tx) = UnixStream::pair().map_err(io)?;
        rx.set_nonblocking(true).map_err(io)?;
        tx.set_nonblocking(true).map_err(io)?;
        Ok(Completions {
            items: Mutex::new(Vec::new()),
            rx,
            tx,
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// No more calls: [`crate::blocking::Client::spawn_into`] refuses them from now on.
    /// The calls in flight still complete; [`drain`](Self::drain) says when all did.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Calls started and not completed (nor cancelled) yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn all_done(&self) -> bool {
        self.is_closed() && self.in_flight() == 0
    }

    /// Hand every waiting item to `deliver`, oldest first. `true` once the queue is closed
    /// and every call has been delivered: the reader may stop watching the descriptor.
    pub fn drain(&self, mut deliver: impl FnMut(T)) -> bool {
        loop {
            // Looked at before taking: when nothing is in flight, everything was pushed.
            let finished = self.all_done();
            for item in self.take() {
                deliver(item);
            }
            // The last call may have finished while this drained (and its wake-up byte
            // been read here): look again rather than wait for a wake-up that came already.
            if finished || !self.all_done() {
                return finished;
            }
        }
    }

    /// Count a call in flight until the returned guard is dropped (after its push, or
    /// when the call is cancelled); `None` once closed.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<InFlight<T>> {
        if self.is_closed() {
            return None;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(InFlight(self.clone()))
    }

    /// The descriptor to watch for readability: readable while items wait.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if items.is_empty() {
            // One byte per empty → non-empty edge: readable means "something waits".
            let _ = (&self.tx).write(&[1]);
        }
        items.push(item);
    }

    /// Make the descriptor readable without an item (the reader then runs and looks).
    fn wake(&self) {
        let _guard = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let _ = (&self.tx).write(&[1]);
    }

    fn take(&self) -> Vec<T> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if items.is_empty() && !self.is_closed() {
            // No item, so no wake-up byte either (one is written only on the empty →
            // non-empty edge, or by `close`): spare the read (a reader that shares a
            // wake-up with other descriptors, such as `LocalWire`'s, looks often).
            return Vec::new();
        }
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.rx).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        std::mem::take(&mut *items)
    }
}

/// A call in flight (see [`Completions::enter`]); the last one of a closed queue wakes its
/// reader, which then finds that everything was delivered.
pub(crate) struct InFlight<T>(Arc<Completions<T>>);

impl<T> InFlight<T> {
    pub(crate) fn push(&self, item: T) {
        self.0.push(item);
    }
}

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        let q = &self.0;
        if q.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 && q.is_closed() {
            q.wake();
        }
    }
}

/// Cancels a call started with [`crate::blocking::Client::spawn_into`]: what it waited for is
/// dropped (a cancelled command may or may not have run, as after a connection error), and
/// its completion never comes.
#[derive(Debug, Clone)]
pub struct Abort(pub(crate) tokio::task::AbortHandle);

impl Abort {
    /// Cancel the call (nothing happens if it has finished).
    pub fn abort(&self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a byte waits on the descriptor (without reading it).
    fn readable(q: &Completions<u32>) -> bool {
        let mut buf = [0u8; 1];
        // SAFETY: a 1-byte buffer of ours, the queue's open descriptor.
        let n = unsafe {
            libc::recv(
                q.fd(),
                buf.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n > 0
    }

    fn all(q: &Completions<u32>) -> (Vec<u32>, bool) {
        let mut got = Vec::new();
        let done = q.drain(|i| got.push(i));
        (got, done)
    }

    #[test]
    #[cfg_attr(miri, ignore = "a socketpair: Miri cannot ioctl it")]
    fn readable_exactly_while_items_wait_and_done_once_closed_and_delivered() {
        let q = Arc::new(Completions::<u32>::new().unwrap());
        assert!(!readable(&q));
        let (a, b) = (q.enter().unwrap(), q.enter().unwrap());
        a.push(1);
        a.push(2);
        drop(a);
        assert!(readable(&q));
        assert_eq!(all(&q), (vec![1, 2], false));
        assert!(!readable(&q));
        q.close();
        assert!(q.enter().is_none(), "closed: no more calls");
        assert_eq!(all(&q), (vec![], false), "one still in flight");
        b.push(3);
        assert!(readable(&q));
        drop(b);
        assert_eq!(all(&q), (vec![3], true));
        assert!(!readable(&q));
    }

    #[test]
    #[cfg_attr(miri, ignore = "a socketpair: Miri cannot ioctl it")]
    fn the_last_call_of_a_closed_queue_wakes_the_reader() {
        let q = Arc::new(Completions::<u32>::new().unwrap());
        let a = q.enter().unwrap();
        q.close();
        assert_eq!(all(&q), (vec![], false));
        drop(a); // cancelled: nothing pushed
        assert!(readable(&q));
        assert_eq!(all(&q), (vec![], true));
    }
}

//! Poll mode: consumers with work wait in a [`PollQueue`] until the host calls `poll`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::lock;
use super::queue::Drainable;
use crate::error::{Error, ErrorKind, Result};

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

    pub(super) fn schedule(&self, d: Arc<dyn Drainable>) {
        let mut ready = lock(&self.ready);
        if self.closed.load(Ordering::Acquire) {
            return; // see `close`
        }
        if ready.is_empty() {
            // One byte is enough: readable means "something waits". A full buffer (it
            // cannot be, with one byte per empty→non-empty edge) would also mean readable.
            let _ = (&self.tx).write(&[1]);
        }
        ready.push_back(d);
        drop(ready);
        self.cond.notify_all();
    }

    /// Wake and end every `poll` waiting now or later (the client was closed or dropped).
    /// Work still waiting is dropped: a scheduled queue holds this queue (to schedule
    /// itself), so keeping it would keep both alive for ever.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let waiting: Vec<Arc<dyn Drainable>> = lock(&self.ready).drain(..).collect();
        self.clear_signal();
        self.cond.notify_all();
        // Dropped outside the lock: a queue's last reference may drop a user's handler.
        drop(waiting);
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

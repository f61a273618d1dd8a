//! The process's dispatcher threads, where threaded handlers run.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::lock;

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

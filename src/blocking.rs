//! The blocking facade: the same client for synchronous code (and for the C and Python
//! bindings). Each call runs the async call on the process runtime and waits for it.
//!
//! The client's methods are written once, async, and their blocking twins here are
//! derived from them (`client_methods!` in each pattern's file). Handles with async
//! methods come back wrapped in [`Blocking`], which adds the blocking twins of those
//! methods and reaches everything else of the handle through `Deref`.

use std::time::Duration;

use crate::config::Options;
use crate::error::Result;
use crate::net::runtime::{self, Rt};
use crate::patterns::batch::Attempts;
use crate::pubsub::Event;
use crate::reply::Reply;

/// A blocking redipc client: safe to share between threads (`&Client` is enough; it is
/// also cheap to clone), every thread's calls share one auto-pipelined connection.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    handle: Rt,
}

impl Client {
    /// Connect to `url`; see [`crate::Client::connect`]. Starts the process runtime with
    /// `opts.io_threads` if it is not running yet.
    pub fn connect(url: &str, opts: Options) -> Result<Client> {
        let handle = runtime::rt(opts.io_threads)?;
        let inner = runtime::block_on(
            &handle,
            crate::Client::connect_on(url, opts, handle.clone()),
        )??;
        Ok(Client { inner, handle })
    }

    /// The async client underneath (for use inside async code).
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Wait for `fut` on the calling thread; closing the client (from another thread) ends
    /// the wait at once with a `Closed` error, whatever it waits for (an RPC reply, a lock,
    /// a cache entry), as it does a call in flight on a connection.
    pub(crate) fn wait<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        // Polled through a `dyn` pointer: the select below and the runtime's wait are made
        // once per output type, not once per call's future (docs/SIZE.md).
        let fut: std::pin::Pin<&mut dyn std::future::Future<Output = Result<T>>> =
            std::pin::pin!(fut);
        self.wait_erased(fut)
    }

    fn wait_erased<T>(
        &self,
        fut: std::pin::Pin<&mut dyn std::future::Future<Output = Result<T>>>,
    ) -> Result<T> {
        let closed = self.inner.closed();
        runtime::block_on(&self.handle, async move {
            tokio::select! {
                biased;
                r = fut => r,
                () = closed => Err(crate::Error::closed()),
            }
        })?
    }

    /// [`wait`](Self::wait) for one command of the client's command methods (no deadline
    /// of its own besides the response timeout): a lone caller sends it and reads its
    /// reply on its own thread when it can (see `net/direct.rs`); what is left to wait
    /// for, the runtime drives.
    pub(crate) fn wait_command<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut fut: std::pin::Pin<&mut dyn std::future::Future<Output = Result<T>>> =
            std::pin::pin!(fut);
        // On the caller's thread first (closing the client shuts a direct connection down
        // under a waiting caller, so no watch on the close is needed there) ...
        if let Some(out) = self
            .handle
            .poll_inline(fut.as_mut(), self.inner.conn().direct_ready())
        {
            return out;
        }
        // ... and what is left on the runtime, where closing the client ends the wait.
        self.wait_erased(fut)
    }

    /// [`command`](Self::command), calling `check` every `slice` while a blocking command
    /// (`BLPOP`, `XREAD ... BLOCK`, `WAIT`, ...) waits: an error from it (a binding's "the
    /// user pressed Ctrl-C") ends the wait, the server's too (`CLIENT UNBLOCK`), puts back
    /// what a pop took meanwhile ([`crate::Taken`]), and is returned. Other commands are
    /// sent as [`command`](Self::command) sends them.
    pub fn command_checked(
        &self,
        args: &[impl AsRef<[u8]>],
        slice: Duration,
        mut check: impl FnMut() -> Result<()>,
    ) -> Result<Reply> {
        if args.is_empty() || self.inner.shared_route(args) {
            return self.command(args);
        }
        let mut fut = std::pin::pin!(self.inner.command(args));
        let slice = slice.max(Duration::from_millis(1));
        loop {
            // The timer is made inside the runtime (an async block), not here.
            let step = async { Ok(tokio::time::timeout(slice, fut.as_mut()).await) };
            match self.wait(step)? {
                Ok(r) => return r,
                Err(_) => check()?,
            }
        }
    }

    /// A handle of the async client (e.g. a [`crate::Subscription`] made by an async call
    /// of [`as_async`](Self::as_async)) as this client's blocking one.
    pub fn adopt<T>(&self, inner: T) -> Blocking<T> {
        self.wrap(inner)
    }

    pub(crate) fn wrap<T>(&self, inner: T) -> Blocking<T> {
        Blocking {
            inner,
            rt: self.handle.clone(),
        }
    }

    /// Run `fut` on the library's runtime without waiting for it, and push `wrap` of its
    /// output into `queue` (on a runtime thread): what an event loop of another language
    /// (Python's asyncio) builds its awaitables on. The [`Abort`](crate::Abort) cancels it
    /// (nothing is pushed then). A `Closed` error once the queue is closed. Closing the
    /// client ends the call at once with a `Closed` error, whatever it waits for (a lock,
    /// an RPC reply, a cache entry, a subscription's confirmation).
    pub fn spawn_into<F, U, T>(
        &self,
        queue: &std::sync::Arc<crate::Completions<T>>,
        fut: F,
        wrap: impl FnOnce(Result<U>) -> T + Send + 'static,
    ) -> Result<crate::Abort>
    where
        F: std::future::Future<Output = Result<U>> + Send + 'static,
        U: Send + 'static,
        T: Send + 'static,
    {
        if self.handle.inherited() {
            return Err(crate::fork::inherited());
        }
        let Some(call) = queue.enter() else {
            return Err(crate::Error::closed());
        };
        let closed = self.inner.closed();
        let task = self.handle.spawn(async move {
            let out = tokio::select! {
                biased;
                out = fut => out,
                () = closed => Err(crate::Error::closed()),
            };
            call.push(wrap(out));
        });
        Ok(crate::Abort(task.abort_handle()))
    }

    /// Run `fut` on the library's runtime without waiting for it.
    pub(crate) fn spawn_detached<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        // Not on a runtime inherited through fork() (`crate::fork`).
        if !self.handle.inherited() {
            drop(self.handle.spawn(fut));
        }
    }

    /// Whether this client was made in the parent of a `fork()` (`crate::fork`): its
    /// calls here fail with a `Closed` error.
    pub(crate) fn inherited(&self) -> bool {
        self.handle.inherited()
    }

    /// A `Closed` error when this client was made in the parent of a `fork()`: its
    /// connections are the parent's and its calls here fail (a new client works). For a
    /// binding's own paths that wait without the client (an event loop's futures).
    pub fn check_process(&self) -> Result<()> {
        if self.inherited() {
            return Err(crate::fork::inherited());
        }
        Ok(())
    }

    /// The options this client was made with.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }
    /// See [`crate::Client::url`].
    pub fn url(&self) -> &str {
        self.inner.url()
    }
    /// See [`crate::Client::is_connected`].
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }
    /// See [`crate::Client::stats`].
    pub fn stats(&self) -> crate::ClientStats {
        self.inner.stats()
    }
    /// See [`crate::Client::node_stats`].
    pub fn node_stats(&self) -> Vec<crate::NodeStats> {
        self.inner.node_stats()
    }
    /// See [`crate::Client::hash_tag_for_node`].
    pub fn hash_tag_for_node(&self, addr: &str) -> Result<String> {
        self.inner.hash_tag_for_node(addr)
    }
    /// See [`crate::Client::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
    /// See [`crate::Client::close`].
    pub fn close(&self) {
        self.inner.close()
    }
    /// See [`crate::Client::poll`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize> {
        self.inner.poll(timeout)
    }
    /// See [`crate::Client::poll_fd`].
    pub fn poll_fd(&self) -> Result<std::os::fd::RawFd> {
        self.inner.poll_fd()
    }
    /// A new, empty pipeline: a non-atomic [`crate::Batch`].
    pub fn pipeline(&self) -> Batch {
        self.wrap(self.inner.pipeline())
    }
    /// A new, empty `MULTI`/`EXEC` transaction: an atomic [`crate::Batch`].
    pub fn tx(&self) -> Batch {
        self.wrap(self.inner.tx())
    }
    /// A new, empty [`crate::Batch`], atomic or not.
    pub fn batch(&self, atomic: bool) -> Batch {
        self.wrap(self.inner.batch(atomic))
    }
    /// An optimistic transaction; see [`crate::Client::transaction`] (the same retry rule;
    /// `f` runs on the calling thread).
    pub fn transaction<K, F>(&self, keys: &[K], max_retries: usize, mut f: F) -> Result<Vec<Reply>>
    where
        K: AsRef<[u8]>,
        F: FnMut(&mut WatchSession) -> Result<()>,
    {
        let mut attempts = Attempts::new(max_retries);
        while attempts.next() {
            let mut session = self.wrap(self.wait(self.inner.watch(keys))?);
            f(&mut session)?;
            if let Some(replies) = self.wait(session.inner.exec())? {
                return Ok(replies);
            }
        }
        Err(attempts.gave_up())
    }
    /// Start a worker; see [`crate::Client::handle_requests`].
    pub fn handle_requests<Q: AsRef<[u8]>>(
        &self,
        queues: &[Q],
        handler: impl Fn(&crate::Request) -> Result<()> + Send + Sync + 'static,
        opts: crate::WorkerOptions,
    ) -> Result<crate::Worker> {
        self.inner.handle_requests(queues, handler, opts)
    }
    /// Consume a group; see [`crate::Client::stream_consume`].
    pub fn stream_consume(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
        handler: impl Fn(&crate::StreamEntry) -> Result<()> + Send + Sync + 'static,
        opts: crate::ConsumerOptions,
    ) -> Result<crate::StreamConsumer> {
        self.inner
            .stream_consume(stream, group, consumer, handler, opts)
    }
}

/// A handle of the async core used from synchronous code: the blocking twins of its async
/// methods are defined below for each handle; everything else of it is reached through
/// `Deref` (`stats`, `names`, `close`, ...).
pub struct Blocking<T> {
    inner: T,
    rt: Rt,
}

impl<T> std::ops::Deref for Blocking<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Blocking<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: Clone> Clone for Blocking<T> {
    fn clone(&self) -> Self {
        Blocking {
            inner: self.inner.clone(),
            rt: self.rt.clone(),
        }
    }
}

impl<T> Blocking<T> {
    /// The async handle underneath.
    pub fn as_async(&self) -> &T {
        &self.inner
    }

    /// The async handle, unwrapped.
    pub fn into_async(self) -> T {
        self.inner
    }

    fn wait<R>(&self, fut: impl std::future::Future<Output = Result<R>>) -> Result<R> {
        runtime::block_on(&self.rt, fut)?
    }

    /// Wait for `fut` in slices of `slice`, calling `check` between them: an error from
    /// `check` (a binding's "the user pressed Ctrl-C") drops the future, which cancels what
    /// it waited for, and is returned. The wait itself goes on undisturbed between checks
    /// (a semaphore waiter keeps its place in the queue).
    fn wait_checked<R>(
        &self,
        fut: impl std::future::Future<Output = Result<R>>,
        slice: Duration,
        mut check: impl FnMut() -> Result<()>,
    ) -> Result<R> {
        let mut fut = std::pin::pin!(fut);
        let slice = slice.max(Duration::from_millis(1));
        loop {
            // The timer is made inside the runtime (an async block), not here.
            let step = async { tokio::time::timeout(slice, fut.as_mut()).await };
            match runtime::block_on(&self.rt, step)? {
                Ok(r) => return r,
                Err(_) => check()?,
            }
        }
    }
}

/// A subscription of the blocking client; see [`crate::Subscription`].
pub type Subscription = Blocking<crate::Subscription>;

impl Subscription {
    /// See [`crate::Subscription::add`].
    pub fn add<N: AsRef<[u8]>>(&self, names: &[N]) -> Result<()> {
        self.wait(self.inner.add(names))
    }
    /// The next event, waiting up to `timeout` (`None`: no limit); `Ok(None)` on timeout.
    pub fn next(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        if self.rt.inherited() {
            return Err(crate::fork::inherited());
        }
        self.inner.next_blocking(timeout)
    }
}

/// A subscription group of the blocking client; see [`crate::SubscriptionGroup`].
pub type SubscriptionGroup = Blocking<crate::SubscriptionGroup>;

impl SubscriptionGroup {
    /// See [`crate::SubscriptionGroup::handle`].
    pub fn handle(
        &self,
        channel: impl AsRef<[u8]>,
        f: impl FnMut(&Event) + Send + 'static,
    ) -> Result<()> {
        self.wait(self.inner.handle(channel, f))
    }
    /// See [`crate::SubscriptionGroup::handle_with`].
    pub fn handle_with(
        &self,
        channel: impl AsRef<[u8]>,
        f: impl FnMut(&Event) + Send + 'static,
        on_removed: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        self.wait(self.inner.handle_with(channel, f, on_removed))
    }
}

/// A pipeline or transaction of the blocking client; see [`crate::Batch`].
pub type Batch = Blocking<crate::Batch>;

impl Batch {
    /// See [`crate::Batch::add`].
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<&mut Self> {
        self.inner.add(args)?;
        Ok(self)
    }
    /// See [`crate::Batch::exec`].
    pub fn exec(&self) -> Result<Vec<Reply>> {
        self.wait(self.inner.exec())
    }
}

/// The watching side of [`Client::transaction`]; see [`crate::WatchSession`].
pub type WatchSession = Blocking<crate::WatchSession>;

impl WatchSession {
    /// Run a command now on the watching connection (reads) and return its reply.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply> {
        runtime::block_on(&self.rt, self.inner.command(args))?
    }
}

/// A stream follower of the blocking client; see [`crate::StreamFollower`].
pub type StreamFollower = Blocking<crate::StreamFollower>;

impl StreamFollower {
    /// The next entry, waiting up to `timeout`; `Ok(None)` when none came.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<crate::StreamEntry>> {
        runtime::block_on(&self.rt, self.inner.next(timeout))?
    }
}

/// A held lock of the blocking client (see [`crate::Client::lock`]); dropping it releases
/// it before `drop` returns.
pub type LockGuard = Blocking<crate::LockGuard>;

impl LockGuard {
    /// Release; `false` if it was no longer ours. See [`crate::LockGuard::release`].
    pub fn release(self) -> Result<bool> {
        let rt = self.rt.clone();
        runtime::block_on(&rt, self.inner.release())?
    }
    /// Extend to `ttl` from now; `false` if it was no longer ours.
    pub fn extend(&self, ttl: Duration) -> Result<bool> {
        self.wait(self.inner.extend(ttl))
    }
}

impl Client {
    /// See [`crate::Client::rate_limiter`].
    pub fn rate_limiter(
        &self,
        name: impl AsRef<[u8]>,
        rate: f64,
        per: Duration,
        burst: Option<u64>,
    ) -> Result<RateLimiter> {
        Ok(self.wrap(self.inner.rate_limiter(name, rate, per, burst)?))
    }

    /// See [`crate::Client::semaphore`].
    pub fn semaphore(
        &self,
        name: impl AsRef<[u8]>,
        permits: u64,
        lease: Duration,
    ) -> Result<Semaphore> {
        Ok(self.wrap(self.inner.semaphore(name, permits, lease)?))
    }
}

impl Batch {
    /// See [`crate::Batch::add_script`].
    pub fn add_script(
        &mut self,
        script: &crate::Script,
        keys: &[impl AsRef<[u8]>],
        args: &[impl AsRef<[u8]>],
    ) -> Result<&mut Self> {
        self.inner.add_script(script, keys, args)?;
        Ok(self)
    }
}

/// A rate limiter of the blocking client; see [`crate::RateLimiter`].
pub type RateLimiter = Blocking<crate::RateLimiter>;

impl RateLimiter {
    /// See [`crate::RateLimiter::acquire`]: `None` when taken, else how long to wait.
    pub fn acquire(&self, n: u64) -> Result<Option<Duration>> {
        self.wait(self.inner.acquire(n))
    }
    /// See [`crate::RateLimiter::acquire_wait`].
    pub fn acquire_wait(&self, n: u64, timeout: Option<Duration>) -> Result<bool> {
        self.wait(self.inner.acquire_wait(n, timeout))
    }
    /// [`acquire_wait`](Self::acquire_wait), calling `check` every `slice` while it waits:
    /// an error from it ends the wait (nothing taken) and is returned.
    pub fn acquire_wait_checked(
        &self,
        n: u64,
        timeout: Option<Duration>,
        slice: Duration,
        check: impl FnMut() -> Result<()>,
    ) -> Result<bool> {
        self.wait_checked(self.inner.acquire_wait(n, timeout), slice, check)
    }
}

/// A semaphore of the blocking client; see [`crate::Semaphore`].
pub type Semaphore = Blocking<crate::Semaphore>;

impl Semaphore {
    /// See [`crate::Semaphore::acquire`]; the permit comes back as a blocking one
    /// (dropping it releases it before `drop` returns).
    pub fn acquire(&self, wait: Option<Duration>) -> Result<Permit> {
        let p = self.wait(self.inner.acquire(wait))?;
        Ok(Blocking {
            inner: p,
            rt: self.rt.clone(),
        })
    }
    /// [`acquire`](Self::acquire), calling `check` every `slice` while it waits (keeping
    /// its place in the queue): an error from it ends the wait (the waiter leaves the
    /// queue) and is returned.
    pub fn acquire_checked(
        &self,
        wait: Option<Duration>,
        slice: Duration,
        check: impl FnMut() -> Result<()>,
    ) -> Result<Permit> {
        let p = self.wait_checked(self.inner.acquire(wait), slice, check)?;
        Ok(Blocking {
            inner: p,
            rt: self.rt.clone(),
        })
    }
    /// See [`crate::Semaphore::held`].
    pub fn held(&self) -> Result<u64> {
        self.wait(self.inner.held())
    }
}

/// A held permit of the blocking client; see [`crate::Permit`].
pub type Permit = Blocking<crate::Permit>;

impl Permit {
    /// See [`crate::Permit::release`].
    pub fn release(self) -> Result<bool> {
        let rt = self.rt.clone();
        runtime::block_on(&rt, self.inner.release())?
    }
    /// See [`crate::Permit::extend`].
    pub fn extend(&self, lease: Duration) -> Result<bool> {
        self.wait(self.inner.extend(lease))
    }
}

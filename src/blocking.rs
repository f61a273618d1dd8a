//! The blocking facade: the same client for synchronous code (and for the C and Python
//! bindings). Each call runs the async call on the process runtime and waits for it.

use std::time::Duration;

use crate::client::SetOptions;
use crate::config::Options;
use crate::delivery::QueueStats;
use crate::error::Result;
use crate::net::runtime;
use crate::pubsub::{Event, SubscribeOptions, SubscriptionKind};
use crate::reply::Reply;

/// A blocking redipc client: safe to share between threads (`&Client` is enough; it is
/// also cheap to clone), every thread's calls share one auto-pipelined connection.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    handle: crate::net::runtime::Rt,
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

    fn wait<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        runtime::block_on(&self.handle, fut)?
    }

    /// The options this client was made with.
    pub fn options(&self) -> &Options {
        self.inner.options()
    }
    /// See [`crate::Client::is_connected`].
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }
    /// See [`crate::Client::close`].
    pub fn close(&self) {
        self.inner.close()
    }
    /// See [`crate::Client::command`].
    pub fn command<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Reply> {
        self.wait(self.inner.command(args))
    }
    /// See [`crate::Client::pipeline_raw`].
    pub fn pipeline_raw<A: AsRef<[u8]>>(&self, cmds: &[Vec<A>]) -> Result<Vec<Reply>> {
        self.wait(self.inner.pipeline_raw(cmds))
    }
    /// See [`crate::Client::get`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.wait(self.inner.get(key))
    }
    /// See [`crate::Client::set`].
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.wait(self.inner.set(key, value))
    }
    /// See [`crate::Client::set_with`].
    pub fn set_with(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: SetOptions,
    ) -> Result<bool> {
        self.wait(self.inner.set_with(key, value, opts))
    }
    /// See [`crate::Client::del`].
    pub fn del<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<i64> {
        self.wait(self.inner.del(keys))
    }
    /// See [`crate::Client::exists`].
    pub fn exists<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<i64> {
        self.wait(self.inner.exists(keys))
    }
    /// See [`crate::Client::expire`].
    pub fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        self.wait(self.inner.expire(key, ttl))
    }
    /// See [`crate::Client::incr`].
    pub fn incr(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        self.wait(self.inner.incr(key))
    }
    /// See [`crate::Client::incr_by`].
    pub fn incr_by(&self, key: impl AsRef<[u8]>, by: i64) -> Result<i64> {
        self.wait(self.inner.incr_by(key, by))
    }
    /// See [`crate::Client::decr`].
    pub fn decr(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        self.wait(self.inner.decr(key))
    }
    /// See [`crate::Client::hget`].
    pub fn hget(&self, key: impl AsRef<[u8]>, field: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.wait(self.inner.hget(key, field))
    }
    /// See [`crate::Client::hset`].
    pub fn hset<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: impl AsRef<[u8]>,
        fields: &[(F, V)],
    ) -> Result<i64> {
        self.wait(self.inner.hset(key, fields))
    }
    /// See [`crate::Client::hgetall`].
    pub fn hgetall(&self, key: impl AsRef<[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.wait(self.inner.hgetall(key))
    }
    /// See [`crate::Client::hdel`].
    pub fn hdel<F: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, fields: &[F]) -> Result<i64> {
        self.wait(self.inner.hdel(key, fields))
    }
    /// See [`crate::Client::lpush`].
    pub fn lpush<V: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, values: &[V]) -> Result<i64> {
        self.wait(self.inner.lpush(key, values))
    }
    /// See [`crate::Client::rpush`].
    pub fn rpush<V: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, values: &[V]) -> Result<i64> {
        self.wait(self.inner.rpush(key, values))
    }
    /// See [`crate::Client::lpop`].
    pub fn lpop(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.wait(self.inner.lpop(key))
    }
    /// See [`crate::Client::rpop`].
    pub fn rpop(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.wait(self.inner.rpop(key))
    }
    /// See [`crate::Client::llen`].
    pub fn llen(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        self.wait(self.inner.llen(key))
    }
    /// See [`crate::Client::publish`].
    pub fn publish(&self, channel: impl AsRef<[u8]>, message: impl AsRef<[u8]>) -> Result<i64> {
        self.wait(self.inner.publish(channel, message))
    }
    /// See [`crate::Client::ping`].
    pub fn ping(&self) -> Result<()> {
        self.wait(self.inner.ping())
    }
    /// See [`crate::Client::spublish`].
    pub fn spublish(&self, channel: impl AsRef<[u8]>, message: impl AsRef<[u8]>) -> Result<i64> {
        self.wait(self.inner.spublish(channel, message))
    }
    /// See [`crate::Client::subscribe`].
    pub fn subscribe<N: AsRef<[u8]>>(
        &self,
        channels: &[N],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        let inner = self.wait(self.inner.subscribe(channels, opts))?;
        Ok(Subscription {
            inner,
            handle: self.handle.clone(),
        })
    }
    /// See [`crate::Client::psubscribe`].
    pub fn psubscribe<N: AsRef<[u8]>>(
        &self,
        patterns: &[N],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        let inner = self.wait(self.inner.psubscribe(patterns, opts))?;
        Ok(Subscription {
            inner,
            handle: self.handle.clone(),
        })
    }
    /// See [`crate::Client::ssubscribe`].
    pub fn ssubscribe<N: AsRef<[u8]>>(
        &self,
        channels: &[N],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        let inner = self.wait(self.inner.ssubscribe(channels, opts))?;
        Ok(Subscription {
            inner,
            handle: self.handle.clone(),
        })
    }
    /// See [`crate::Client::subscribe_group`].
    pub fn subscribe_group(&self, opts: SubscribeOptions) -> Result<SubscriptionGroup> {
        let inner = self.wait(self.inner.subscribe_group(opts))?;
        Ok(SubscriptionGroup {
            inner,
            handle: self.handle.clone(),
        })
    }
    /// A new, empty pipeline (non-atomic; see [`crate::Pipeline`]).
    pub fn pipeline(&self) -> Pipeline {
        Pipeline {
            inner: self.inner.pipeline(),
            handle: self.handle.clone(),
        }
    }
    /// A new, empty `MULTI`/`EXEC` transaction (see [`crate::Transaction`]).
    pub fn tx(&self) -> Transaction {
        Transaction {
            inner: self.inner.tx(),
            handle: self.handle.clone(),
        }
    }
    /// An optimistic transaction: `WATCH keys` on a connection of its own, call `f` to read
    /// (with [`WatchSession::command`]) and queue writes ([`WatchSession::queue`]), then
    /// `EXEC`. When a watched key changed meanwhile, all of it runs again, up to
    /// `max_retries` more times; then a [`crate::ErrorKind::Watch`] error. An error from `f`
    /// aborts (nothing queued runs) and is returned.
    pub fn transaction<K, F>(&self, keys: &[K], max_retries: usize, mut f: F) -> Result<Vec<Reply>>
    where
        K: AsRef<[u8]>,
        F: FnMut(&mut WatchSession) -> Result<()>,
    {
        for _ in 0..=max_retries {
            let inner = self.wait(self.inner.watch(keys))?;
            let mut session = WatchSession {
                inner,
                handle: self.handle.clone(),
            };
            f(&mut session)?;
            if let Some(replies) = self.wait(session.inner.exec())? {
                return Ok(replies);
            }
        }
        Err(crate::Error::new(
            crate::ErrorKind::Watch,
            format!(
                "a watched key kept changing: gave up after {} attempts",
                max_retries + 1
            ),
        ))
    }
    /// See [`crate::Client::send_request`].
    pub fn send_request(&self, queue: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<()> {
        self.wait(self.inner.send_request(queue, payload))
    }
    /// Start a worker; see [`crate::Client::handle_requests`]. `handler` returns `Ok(())`
    /// to ack or `Err(message)` for a failure; it runs on the worker's own threads.
    pub fn handle_requests<Q, F>(
        &self,
        queues: &[Q],
        handler: F,
        opts: crate::WorkerOptions,
    ) -> Result<crate::Worker>
    where
        Q: AsRef<[u8]>,
        F: Fn(&crate::Request) -> Result<()> + Send + Sync + 'static,
    {
        self.inner
            .handle_requests(queues, std::sync::Arc::new(handler), opts)
    }
    /// See [`crate::Client::queue_stats`].
    pub fn queue_stats(&self, queue: impl AsRef<[u8]>) -> Result<crate::QueueCounts> {
        self.wait(self.inner.queue_stats(queue))
    }
    /// See [`crate::Client::dead_letters`].
    pub fn dead_letters(&self, queue: impl AsRef<[u8]>) -> Result<Vec<crate::DeadLetter>> {
        self.wait(self.inner.dead_letters(queue))
    }
    /// See [`crate::Client::requeue_dead_letters`].
    pub fn requeue_dead_letters(&self, queue: impl AsRef<[u8]>) -> Result<u64> {
        self.wait(self.inner.requeue_dead_letters(queue))
    }
    /// See [`crate::Client::call`].
    pub fn call(
        &self,
        service: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        timeout: Duration,
    ) -> Result<bytes::Bytes> {
        self.wait(self.inner.call(service, payload, timeout))
    }
    /// See [`crate::Client::call_with`].
    pub fn call_with(
        &self,
        service: impl AsRef<[u8]>,
        method: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        opts: crate::CallOptions,
    ) -> Result<bytes::Bytes> {
        self.wait(self.inner.call_with(service, method, payload, opts))
    }
    /// Answer calls to `service`; see [`crate::Client::serve`].
    pub fn serve<F>(
        &self,
        service: impl AsRef<[u8]>,
        handler: F,
        concurrency: usize,
    ) -> Result<crate::RpcServer>
    where
        F: Fn(&crate::Call) -> Result<Vec<u8>> + Send + Sync + 'static,
    {
        self.wait(
            self.inner
                .serve(service, std::sync::Arc::new(handler), concurrency),
        )
    }
    /// See [`crate::Client::serve_methods`].
    pub fn serve_methods(
        &self,
        service: impl AsRef<[u8]>,
        methods: std::collections::HashMap<String, crate::RpcHandler>,
        concurrency: usize,
    ) -> Result<crate::RpcServer> {
        self.wait(self.inner.serve_methods(service, methods, concurrency))
    }
    /// See [`crate::Client::stream_publish`].
    pub fn stream_publish<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        stream: impl AsRef<[u8]>,
        fields: &[(F, V)],
        maxlen: Option<usize>,
    ) -> Result<String> {
        self.wait(self.inner.stream_publish(stream, fields, maxlen))
    }
    /// See [`crate::Client::stream_read`].
    pub fn stream_read(
        &self,
        stream: impl AsRef<[u8]>,
        from_id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<crate::StreamEntry>> {
        self.wait(self.inner.stream_read(stream, from_id, count, block))
    }
    /// Follow a stream; see [`crate::Client::stream_follow`].
    pub fn stream_follow(&self, stream: impl AsRef<[u8]>, from_id: &str) -> Result<StreamFollower> {
        Ok(StreamFollower {
            inner: self.wait(self.inner.stream_follow(stream, from_id))?,
            handle: self.handle.clone(),
        })
    }
    /// See [`crate::Client::stream_last`].
    pub fn stream_last(&self, stream: impl AsRef<[u8]>) -> Result<Option<crate::StreamEntry>> {
        self.wait(self.inner.stream_last(stream))
    }
    /// See [`crate::Client::stream_len`].
    pub fn stream_len(&self, stream: impl AsRef<[u8]>) -> Result<u64> {
        self.wait(self.inner.stream_len(stream))
    }
    /// See [`crate::Client::stream_group_create`].
    pub fn stream_group_create(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        from_id: &str,
    ) -> Result<bool> {
        self.wait(self.inner.stream_group_create(stream, group, from_id))
    }
    /// See [`crate::Client::stream_pending`].
    pub fn stream_pending(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
    ) -> Result<crate::PendingInfo> {
        self.wait(self.inner.stream_pending(stream, group))
    }
    /// Consume a group; see [`crate::Client::stream_consume`].
    pub fn stream_consume<F>(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
        handler: F,
        opts: crate::ConsumerOptions,
    ) -> Result<crate::StreamConsumer>
    where
        F: Fn(&crate::StreamEntry) -> Result<()> + Send + Sync + 'static,
    {
        self.inner
            .stream_consume(stream, group, consumer, std::sync::Arc::new(handler), opts)
    }
    /// See [`crate::Client::stream_dead_letters`].
    pub fn stream_dead_letters(
        &self,
        stream: impl AsRef<[u8]>,
        count: usize,
    ) -> Result<Vec<crate::StreamEntry>> {
        self.wait(self.inner.stream_dead_letters(stream, count))
    }
    /// See [`crate::Client::cache_set`].
    pub fn cache_set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.wait(self.inner.cache_set(key, value, ttl))
    }
    /// See [`crate::Client::cache_get`].
    pub fn cache_get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.wait(self.inner.cache_get(key))
    }
    /// See [`crate::Client::cache_delete`].
    pub fn cache_delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.wait(self.inner.cache_delete(key))
    }
    /// See [`crate::Client::cache_exists`].
    pub fn cache_exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.wait(self.inner.cache_exists(key))
    }
    /// See [`crate::Client::cache_wait`].
    pub fn cache_wait(&self, key: impl AsRef<[u8]>, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.wait(self.inner.cache_wait(key, timeout))
    }
    /// See [`crate::Client::hash_set`].
    pub fn hash_set(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        self.wait(self.inner.hash_set(hash, field, value))
    }
    /// See [`crate::Client::hash_set_if_changed`].
    pub fn hash_set_if_changed(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool> {
        self.wait(self.inner.hash_set_if_changed(hash, field, value))
    }
    /// See [`crate::Client::hash_set_many`].
    pub fn hash_set_many<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(F, V)],
        summary: bool,
    ) -> Result<()> {
        self.wait(self.inner.hash_set_many(hash, fields, summary))
    }
    /// See [`crate::Client::hash_delete`].
    pub fn hash_delete(&self, hash: impl AsRef<[u8]>, field: impl AsRef<[u8]>) -> Result<bool> {
        self.wait(self.inner.hash_delete(hash, field))
    }
    /// See [`crate::Client::hash_replace_all`].
    pub fn hash_replace_all<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(F, V)],
    ) -> Result<()> {
        self.wait(self.inner.hash_replace_all(hash, fields))
    }
    /// See [`crate::Client::hash_watch`].
    pub fn hash_watch(
        &self,
        hash: impl AsRef<[u8]>,
        opts: crate::WatchOptions,
    ) -> Result<crate::HashWatcher> {
        self.wait(self.inner.hash_watch(hash, opts))
    }
    /// Acquire a lock; see [`crate::Client::lock`].
    pub fn lock(&self, name: impl AsRef<[u8]>, opts: crate::LockOptions) -> Result<LockGuard> {
        let inner = self.wait(self.inner.lock(name, opts))?;
        Ok(LockGuard {
            inner: Some(inner),
            handle: self.handle.clone(),
        })
    }
    /// See [`crate::Client::watch_keys`].
    pub fn watch_keys(
        &self,
        pattern: impl AsRef<[u8]>,
        events: &[&str],
        configure_server: bool,
        handler: impl FnMut(&[u8], &str) + Send + 'static,
    ) -> Result<crate::KeyspaceWatch> {
        self.wait(
            self.inner
                .watch_keys(pattern, events, configure_server, Box::new(handler)),
        )
    }
    /// See [`crate::Client::poll`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize> {
        self.inner.poll(timeout)
    }
    /// See [`crate::Client::poll_fd`].
    pub fn poll_fd(&self) -> Result<std::os::fd::RawFd> {
        self.inner.poll_fd()
    }
}

/// A subscription of the blocking client; see [`crate::Subscription`].
#[derive(Debug)]
pub struct Subscription {
    inner: crate::Subscription,
    handle: crate::net::runtime::Rt,
}

impl Subscription {
    /// See [`crate::Subscription::kind`].
    pub fn kind(&self) -> SubscriptionKind {
        self.inner.kind()
    }
    /// See [`crate::Subscription::add`].
    pub fn add<N: AsRef<[u8]>>(&self, names: &[N]) -> Result<()> {
        runtime::block_on(&self.handle, self.inner.add(names))?
    }
    /// See [`crate::Subscription::remove`].
    pub fn remove<N: AsRef<[u8]>>(&self, names: &[N]) {
        self.inner.remove(names)
    }
    /// See [`crate::Subscription::clear`].
    pub fn clear(&self) {
        self.inner.clear()
    }
    /// See [`crate::Subscription::names`].
    pub fn names(&self) -> Vec<bytes::Bytes> {
        self.inner.names()
    }
    /// See [`crate::Subscription::stats`].
    pub fn stats(&self) -> QueueStats {
        self.inner.stats()
    }
    /// See [`crate::Subscription::try_next`].
    pub fn try_next(&self) -> Result<Option<Event>> {
        self.inner.try_next()
    }
    /// The next event, waiting up to `timeout` (`None`: no limit); `Ok(None)` on timeout.
    pub fn next(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        self.inner.next_blocking(timeout)
    }
    /// See [`crate::Subscription::close`].
    pub fn close(&self) {
        self.inner.close()
    }
    /// The async subscription underneath.
    pub fn as_async(&self) -> &crate::Subscription {
        &self.inner
    }
}

/// A subscription group of the blocking client; see [`crate::SubscriptionGroup`].
#[derive(Debug)]
pub struct SubscriptionGroup {
    inner: crate::SubscriptionGroup,
    handle: crate::net::runtime::Rt,
}

impl SubscriptionGroup {
    /// See [`crate::SubscriptionGroup::handle`].
    pub fn handle(
        &self,
        channel: impl AsRef<[u8]>,
        f: impl FnMut(&Event) + Send + 'static,
    ) -> Result<()> {
        runtime::block_on(&self.handle, self.inner.handle(channel, f))?
    }
    /// See [`crate::SubscriptionGroup::unhandle`].
    pub fn unhandle(&self, channel: impl AsRef<[u8]>) {
        self.inner.unhandle(channel)
    }
    /// See [`crate::SubscriptionGroup::subscription`].
    pub fn subscription(&self) -> &crate::Subscription {
        self.inner.subscription()
    }
}

/// A pipeline of the blocking client; see [`crate::Pipeline`].
#[derive(Debug, Clone)]
pub struct Pipeline {
    inner: crate::Pipeline,
    handle: crate::net::runtime::Rt,
}

impl Pipeline {
    /// See [`crate::Pipeline::add`].
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<&mut Self> {
        self.inner.add(args)?;
        Ok(self)
    }
    /// See [`crate::Pipeline::len`].
    pub fn len(&self) -> usize {
        self.inner.len()
    }
    /// See [`crate::Pipeline::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// See [`crate::Pipeline::clear`].
    pub fn clear(&mut self) {
        self.inner.clear()
    }
    /// See [`crate::Pipeline::exec`].
    pub fn exec(&self) -> Result<Vec<Reply>> {
        runtime::block_on(&self.handle, self.inner.exec())?
    }
}

/// A `MULTI`/`EXEC` transaction of the blocking client; see [`crate::Transaction`].
#[derive(Debug, Clone)]
pub struct Transaction {
    inner: crate::Transaction,
    handle: crate::net::runtime::Rt,
}

impl Transaction {
    /// See [`crate::Transaction::add`].
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<&mut Self> {
        self.inner.add(args)?;
        Ok(self)
    }
    /// See [`crate::Transaction::len`].
    pub fn len(&self) -> usize {
        self.inner.len()
    }
    /// See [`crate::Transaction::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// See [`crate::Transaction::clear`].
    pub fn clear(&mut self) {
        self.inner.clear()
    }
    /// See [`crate::Transaction::exec`].
    pub fn exec(&self) -> Result<Vec<Reply>> {
        runtime::block_on(&self.handle, self.inner.exec())?
    }
}

/// The watching side of [`Client::transaction`]; see [`crate::WatchSession`].
#[derive(Debug)]
pub struct WatchSession {
    inner: crate::WatchSession,
    handle: crate::net::runtime::Rt,
}

impl WatchSession {
    /// Run a command now on the watching connection (reads) and return its reply.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply> {
        runtime::block_on(&self.handle, self.inner.command(args))?
    }
    /// Queue a command to run atomically at the end.
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        self.inner.queue(args)
    }
}

/// A stream follower of the blocking client; see [`crate::StreamFollower`].
#[derive(Debug)]
pub struct StreamFollower {
    inner: crate::StreamFollower,
    handle: crate::net::runtime::Rt,
}

impl StreamFollower {
    /// The next entry, waiting up to `timeout`; `Ok(None)` when none came.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<crate::StreamEntry>> {
        runtime::block_on(&self.handle, self.inner.next(timeout))?
    }
    /// The id of the last entry returned (or the starting position).
    pub fn position(&self) -> &str {
        self.inner.position()
    }
}

/// A held lock of the blocking client; dropping it releases it before `drop` returns.
#[derive(Debug)]
pub struct LockGuard {
    inner: Option<crate::LockGuard>,
    handle: crate::net::runtime::Rt,
}

impl LockGuard {
    /// The fencing token; see [`crate::LockGuard::token`].
    pub fn token(&self) -> u64 {
        self.inner.as_ref().map(|g| g.token()).unwrap_or(0)
    }
    /// Release; `false` if it was no longer ours. See [`crate::LockGuard::release`].
    pub fn release(mut self) -> Result<bool> {
        match self.inner.take() {
            Some(g) => runtime::block_on(&self.handle, g.release())?,
            None => Ok(false),
        }
    }
    /// Extend to `ttl` from now; `false` if it was no longer ours.
    pub fn extend(&self, ttl: Duration) -> Result<bool> {
        match &self.inner {
            Some(g) => runtime::block_on(&self.handle, g.extend(ttl))?,
            None => Ok(false),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(g) = self.inner.take() {
            // Release now. Inside a runtime this cannot block: then the future (and the
            // guard in it) is dropped unrun, and the guard's own drop releases it later.
            let _ = runtime::block_on(&self.handle, g.release());
        }
    }
}

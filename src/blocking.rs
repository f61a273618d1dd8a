//! The blocking facade: the same client for synchronous code (and for the C and Python
//! bindings). Each call runs the async call on the process runtime and waits for it.

use std::time::Duration;

use crate::client::SetOptions;
use crate::config::Options;
use crate::error::Result;
use crate::reply::Reply;
use crate::runtime;

/// A blocking redipc client: safe to share between threads (`&Client` is enough; it is
/// also cheap to clone), every thread's calls share one auto-pipelined connection.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    handle: tokio::runtime::Handle,
}

impl Client {
    /// Connect to `url`; see [`crate::Client::connect`]. Starts the process runtime with
    /// `opts.io_threads` if it is not running yet.
    pub fn connect(url: &str, opts: Options) -> Result<Client> {
        let handle = runtime::handle(opts.io_threads)?;
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
}

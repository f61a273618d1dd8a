//! [`Client`]: the async client, direct commands and typed helpers.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::OnceLock;

use crate::config::{Options, parse_url};
use crate::delivery::{Mode, PollQueue};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::net::conn::Conn;
use crate::net::wire::Expect;
use crate::pubsub::{self, PubSub, SubscribeOptions, Subscription, SubscriptionKind};
use crate::reply::Reply;
use crate::taken::Taken;

/// Conditions of [`Client::set_with`]: TTL and `NX`/`XX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetOptions {
    /// Expire after this long (`PX`), rounded down to milliseconds; must be at least 1 ms.
    pub ttl: Option<Duration>,
    /// Only set if the key does not exist (`NX`).
    pub only_if_absent: bool,
    /// Only set if the key exists (`XX`).
    pub only_if_present: bool,
}

impl SetOptions {
    /// Set with a TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// Add `NX`.
    pub fn nx(mut self) -> Self {
        self.only_if_absent = true;
        self
    }
    /// Add `XX`.
    pub fn xx(mut self) -> Self {
        self.only_if_present = true;
        self
    }
}

/// An async redipc client: cheap to clone, safe to share between tasks and threads; every
/// clone uses the same auto-pipelined connection.
///
/// Create it inside a tokio runtime with [`Client::connect`]; from synchronous code use
/// [`crate::blocking::Client`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Arc<Conn>,
    opts: Options,
    handle: crate::net::runtime::Rt,
    /// Where the pub/sub connection goes (kept for its lazy start).
    target: crate::config::Target,
    /// The pub/sub multiplexer, started by the first subscription.
    pubsub: OnceLock<Arc<PubSub>>,
    /// Poll mode's queue of waiting handlers.
    poll: Option<Arc<PollQueue>>,
    /// State of the patterns built on the client (the RPC caller, the notifier), by type.
    extensions: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
    /// Statistics, shared with the connections.
    counters: Arc<crate::stats::Counters>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.handle.inherited() {
            // Made in the parent of a fork(): its connections are the parent's (closing
            // them would shut the parent's sockets down) and its threads are not here.
            // What it holds is kept as it is, never dropped (`crate::fork`).
            crate::fork::keep((
                self.conn.clone(),
                self.pubsub.get().cloned(),
                self.poll.clone(),
                std::mem::take(self.extensions.get_mut().unwrap_or_else(|p| p.into_inner())),
            ));
            return;
        }
        self.conn.close();
        if let Some(ps) = self.pubsub.get() {
            ps.close();
        }
        if let Some(pq) = &self.poll {
            pq.close();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.target.url)
            .field("server", &self.inner.conn.display())
            .finish_non_exhaustive()
    }
}

/// The arguments of `SET key value [PX ms] [NX|XX]`.
pub(crate) fn set_args(key: &[u8], value: &[u8], opts: &SetOptions) -> Result<Vec<Vec<u8>>> {
    if opts.only_if_absent && opts.only_if_present {
        return Err(Error::invalid("SET: NX and XX exclude each other"));
    }
    let mut args: Vec<Vec<u8>> = vec![b"SET".to_vec(), key.to_vec(), value.to_vec()];
    if let Some(ttl) = opts.ttl {
        let ms = ttl.as_millis();
        if ms == 0 {
            return Err(Error::invalid("SET: a TTL must be at least 1 ms"));
        }
        args.push(b"PX".to_vec());
        args.push(ms.to_string().into_bytes());
    }
    if opts.only_if_absent {
        args.push(b"NX".to_vec());
    }
    if opts.only_if_present {
        args.push(b"XX".to_vec());
    }
    Ok(args)
}

/// Where `command()` sends a command.
enum Route {
    /// The shared multiplexed connection.
    Shared,
    /// A dedicated connection with this client-side limit (`None`: none).
    Dedicated(Option<Duration>),
    /// Not through `command()`.
    Refuse(&'static str),
}

/// Classify a command by its name (and, for blocking ones, find its block time).
fn route<A: AsRef<[u8]>>(args: &[A], response_timeout: Duration) -> Route {
    let mut buf = [0u8; 12];
    let Some(upper) = crate::cluster::upper_in(args[0].as_ref(), &mut buf) else {
        return Route::Shared;
    };
    let arg = |i: usize| args.get(i).map(|a| a.as_ref());
    // A block time in seconds (or milliseconds) -> the limit for the whole call.
    let limit = |value: Option<&[u8]>, millis: bool| -> Route {
        let secs = value
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| if millis { v / 1000.0 } else { v });
        match secs {
            Some(0.0) => Route::Dedicated(None),
            Some(s) if s > 0.0 && s.is_finite() => {
                Route::Dedicated(Some(Duration::from_secs_f64(s) + response_timeout))
            }
            // Malformed: the server will say so.
            _ => Route::Dedicated(Some(response_timeout)),
        }
    };
    match upper {
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" | b"BLMOVE" | b"BRPOPLPUSH" => {
            limit(args.last().map(|a| a.as_ref()), false)
        }
        b"BLMPOP" | b"BZMPOP" => limit(arg(1), false),
        b"WAIT" => limit(arg(2), true),
        b"WAITAOF" => limit(arg(3), true),
        b"XREAD" | b"XREADGROUP" => {
            match args
                .iter()
                .position(|a| a.as_ref().eq_ignore_ascii_case(b"BLOCK"))
            {
                Some(i) => limit(arg(i + 1), true),
                None => Route::Shared,
            }
        }
        b"SUBSCRIBE" | b"PSUBSCRIBE" | b"SSUBSCRIBE" | b"UNSUBSCRIBE" | b"PUNSUBSCRIBE"
        | b"SUNSUBSCRIBE" => Route::Refuse(
            "subscribing through command() would take over the shared connection: use subscribe(), psubscribe() or ssubscribe()",
        ),
        b"MULTI" | b"EXEC" | b"DISCARD" | b"WATCH" | b"UNWATCH" => Route::Refuse(
            "on the shared connection other threads' commands would mix into the transaction: use tx() for MULTI/EXEC or transaction() for WATCH",
        ),
        b"SELECT" | b"HELLO" | b"RESET" | b"QUIT" | b"MONITOR" | b"AUTH" => Route::Refuse(
            "this would change the shared connection for every user of it: set the database, credentials and protocol in the URL or the Options",
        ),
        _ => Route::Shared,
    }
}

/// Why `args` may not be queued in a batch (a pipeline; a transaction when `atomic`):
/// what `command()` refuses, and in a pipeline a blocking command, which would hold up
/// every call on the shared connection (inside `MULTI` it does not block). `None`: it may.
pub(crate) fn batch_refusal<A: AsRef<[u8]>>(args: &[A], atomic: bool) -> Option<&'static str> {
    if args.is_empty() {
        return None;
    }
    match route(args, Duration::ZERO) {
        Route::Refuse(why) => Some(why),
        Route::Dedicated(_) if !atomic => Some(
            "a blocking command in a pipeline would hold up every call on the shared connection until it returns: send it with command(), which gives it a connection of its own (in a transaction it does not block)",
        ),
        _ => None,
    }
}

/// `name key item...` (`LPUSH`, `RPUSH`, `HDEL`): at least one item, `what` naming it in
/// the error.
pub(crate) fn key_items_args<'a, V: AsRef<[u8]>>(
    name: &'a str,
    key: &'a [u8],
    items: &'a [V],
    what: &str,
) -> Result<Vec<&'a [u8]>> {
    if items.is_empty() {
        return Err(Error::invalid(format!("{name}: give at least one {what}")));
    }
    let mut args: Vec<&[u8]> = vec![name.as_bytes(), key];
    args.extend(items.iter().map(|v| v.as_ref()));
    Ok(args)
}

/// `HSET key field value [field value ...]` (at least one field).
pub(crate) fn hset_args<'a, F: AsRef<[u8]>, V: AsRef<[u8]>>(
    key: &'a [u8],
    fields: &'a [(F, V)],
) -> Result<Vec<&'a [u8]>> {
    if fields.is_empty() {
        return Err(Error::invalid("HSET: give at least one field"));
    }
    let mut args: Vec<&[u8]> = vec![b"HSET", key];
    for (f, v) in fields {
        args.push(f.as_ref());
        args.push(v.as_ref());
    }
    Ok(args)
}

pub(crate) use crate::error::describe;

impl Client {
    /// Connect to `url` (`redis://[user:pass@]host[:port][/db]` or `unix:///path?db=N`) from
    /// inside a tokio runtime; the connection is driven by that runtime.
    ///
    /// A `redis://` or `rediss://` URL may list several nodes
    /// (`redis://10.0.0.1:7000,10.0.0.2:7000/`): the first that answers is used. Whether it
    /// is a Redis Cluster node is asked unless [`Options::cluster`] says; on a cluster every
    /// command is routed by its keys (docs/CLUSTER.md).
    pub async fn connect(url: &str, opts: Options) -> Result<Client> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "Client::connect needs a tokio runtime; use blocking::Client outside one",
            )
        })?;
        Self::connect_on(url, opts, crate::net::runtime::Rt::foreign(handle)).await
    }

    pub(crate) async fn connect_on(
        url: &str,
        opts: Options,
        handle: crate::net::runtime::Rt,
    ) -> Result<Client> {
        let target = parse_url(url, &opts)?;
        let info = target.clone();
        let poll = if opts.poll_mode {
            Some(PollQueue::new()?)
        } else {
            None
        };
        let counters = Arc::new(crate::stats::Counters::default());
        let conn = Conn::connect(target, &opts, handle.handle().clone(), counters.clone()).await?;
        Ok(Client {
            inner: Arc::new(Inner {
                conn,
                opts,
                handle,
                target: info,
                pubsub: OnceLock::new(),
                poll,
                extensions: Mutex::new(Vec::new()),
                counters,
            }),
        })
    }

    /// The URL this client was made with, its password hidden (`redis://user:***@host`,
    /// `?pass=***`): safe to log or show.
    pub fn url(&self) -> &str {
        &self.inner.target.url
    }

    /// The options the client was made with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Whether the command connection is up now (it is re-established in the background
    /// after it breaks).
    pub fn is_connected(&self) -> bool {
        self.inner.conn.is_connected()
    }

    /// Statistics since the client was made: commands and failures by kind, reconnects,
    /// bytes, calls in flight, pub/sub messages received and dropped, and a latency
    /// histogram of successful calls. Always on; cheap (relaxed atomic counters).
    pub fn stats(&self) -> crate::ClientStats {
        let dropped = self.inner.pubsub.get().map_or(0, |ps| ps.dropped());
        self.inner.counters.snapshot(dropped)
    }

    /// Each server's share of the client's traffic: on a cluster every node of the slot map
    /// (primaries by their first slot, each followed by its replicas) with the slots it
    /// serves, whether its connection is up, and its counters; standalone, the one server.
    /// Cheap (atomic reads and a copy of the slot map's ranges).
    pub fn node_stats(&self) -> Vec<crate::NodeStats> {
        self.inner.conn.node_stats()
    }

    /// A short hash tag (without braces) whose keys land on the cluster's primary at
    /// `addr` (`"host:port"`, as [`node_stats`](Self::node_stats) names it) with the slot map
    /// the client has now: `format!("{{{tag}}}:jobs")` is served by that node. To place
    /// queues or shard channels on chosen nodes (one tag per primary spreads them over
    /// every shard); a later slot migration moves the keys with their slot. An
    /// [`Unsupported`](ErrorKind::Unsupported) error on a standalone server, an
    /// [`InvalidArgument`](ErrorKind::InvalidArgument) one for an address that is not a
    /// primary (the message lists the primaries).
    pub fn hash_tag_for_node(&self, addr: &str) -> Result<String> {
        self.inner.conn.hash_tag_for_node(addr)
    }

    pub(crate) fn counters(&self) -> &crate::stats::Counters {
        &self.inner.counters
    }

    /// Whether [`close`](Client::close) was called (on this client or a clone of it).
    pub fn is_closed(&self) -> bool {
        self.inner.conn.is_closed()
    }

    /// Close the client: later calls on it (and on its clones) fail with
    /// [`ErrorKind::Closed`]; its subscriptions are closed; calls in flight on other threads
    /// or tasks (a `BLPOP` waiting forever included) end at once with a
    /// [`ErrorKind::Closed`] error (whether such a command ran on the server is unknown, as
    /// after a connection error).
    pub fn close(&self) {
        if self.inner.handle.inherited() {
            // Made in the parent of a fork(): its connections are the parent's, left alone
            // (`crate::fork`); its calls here fail already.
            return;
        }
        self.inner.conn.close();
        if let Some(ps) = self.inner.pubsub.get() {
            ps.close();
        }
        if let Some(pq) = &self.inner.poll {
            pq.close();
        }
    }

    /// A future that completes once the client is closed ([`close`](Client::close) on it
    /// or a clone; at once if it was), owning what it needs: what a binding's event loop
    /// ends its own waits on the client's handles with (Python's asyncio).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.inner.conn.closed()
    }

    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.inner.conn
    }

    /// The client's one `T` (made with `T::default()` on first use): state a pattern keeps
    /// per client, such as the RPC caller's reply channel, without the client knowing the
    /// patterns built on it.
    pub(crate) fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut exts = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(t) = exts.iter().find_map(|e| e.clone().downcast::<T>().ok()) {
            return t;
        }
        let t = Arc::new(T::default());
        exts.push(t.clone());
        t
    }

    /// Where a handle's reports go: its `own` hook, else the client's, and the log.
    pub(crate) fn reporter(
        &self,
        own: Option<&crate::report::ErrorHook>,
    ) -> crate::report::Reporter {
        crate::report::Reporter::new(own, self.inner.opts.error_hook.as_ref())
    }

    /// The database number of the connection.
    pub(crate) fn target_db(&self) -> i64 {
        self.inner.target.info.redis_settings().db()
    }

    pub(crate) fn runtime_handle(&self) -> &crate::net::runtime::Rt {
        &self.inner.handle
    }

    fn pubsub(&self) -> &Arc<PubSub> {
        self.inner.pubsub.get_or_init(|| {
            let mut settings = pubsub::Settings::new(
                &self.inner.target,
                &self.inner.opts,
                self.inner.counters.clone(),
            );
            // The server the command connection found (a URL's list: the first that
            // answered); on a cluster, that node first, then any primary.
            match &*self.inner.conn {
                Conn::One(node) => {
                    settings.endpoint = node.wire_settings().endpoint.clone();
                    settings.display = node.display.clone();
                }
                Conn::Cluster(r) => settings.cluster = Some(r.clone()),
            }
            let mode = match &self.inner.poll {
                Some(pq) => Mode::Poll(pq.clone()),
                None => Mode::Threaded,
            };
            pubsub::start(settings, mode, self.inner.handle.handle())
        })
    }

    /// Poll mode: run waiting handlers on this thread, waiting up to `timeout` for work
    /// when there is none (`None`: until there is work or the client is closed). Returns how
    /// many events were handled; an error if the client is not in poll mode, a `Closed`
    /// error once it is closed.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize> {
        match &self.inner.poll {
            Some(pq) => pq.poll(timeout),
            None => Err(Error::invalid(
                "poll() needs a client made with Options::poll_mode(true)",
            )),
        }
    }

    /// Poll mode: a file descriptor that is readable whenever [`Client::poll`] has work.
    /// Owned by the client; do not close it.
    pub fn poll_fd(&self) -> Result<std::os::fd::RawFd> {
        match &self.inner.poll {
            Some(pq) => Ok(pq.fd()),
            None => Err(Error::invalid(
                "poll_fd() needs a client made with Options::poll_mode(true)",
            )),
        }
    }

    /// Check the arguments of a command and build it.
    pub(crate) fn build<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<redis::Cmd> {
        let Some(first) = args.first() else {
            return Err(Error::invalid(
                "empty command: give at least the command name",
            ));
        };
        if first.as_ref().is_empty() {
            return Err(Error::invalid("empty command name"));
        }
        let limit = self.inner.conn.max_value_size();
        let size = args.iter().map(|a| a.as_ref().len()).sum();
        let mut cmd = redis::Cmd::with_capacity(args.len(), size);
        for (i, a) in args.iter().enumerate() {
            let a = a.as_ref();
            if a.len() > limit {
                return Err(Error::invalid(format!(
                    "{}: argument {} is {} bytes, over the limit of {} bytes (the server's proto-max-bulk-len or the max_value_size option)",
                    describe(args),
                    i,
                    a.len(),
                    limit
                )));
            }
            cmd.arg(a);
        }
        Ok(cmd)
    }

    /// Send a blocking command on a dedicated connection, with `limit` (`None`: no limit):
    /// a caller that stops waiting leaves what the command took to be put back
    /// (`crate::taken`).
    async fn send_dedicated<A: AsRef<[u8]>>(
        &self,
        args: &[A],
        cmd: &redis::Cmd,
        limit: Option<Duration>,
    ) -> Result<Taken> {
        let conn = self.inner.conn.dedicated(Some(cmd)).await?;
        let args = args.iter().map(|a| a.as_ref().to_vec()).collect();
        crate::taken::run(&self.inner.conn, &self.inner.handle, conn, cmd, args, limit).await
    }

    /// As [`command`](Client::command), for a caller that may drop the reply unread (an
    /// event loop whose task was cancelled after the reply came): a blocking pop's reply
    /// comes as a [`Taken`] that, dropped without [`Taken::into_reply`], puts back what the
    /// pop took (`crate::taken`); other commands' replies hold nothing to put back.
    pub async fn command_taken(&self, args: &[impl AsRef<[u8]>]) -> Result<Taken> {
        // (No arguments: `command` says so; `route` needs a name.)
        let Some(Route::Dedicated(limit)) = args
            .first()
            .map(|_| route(args, self.inner.conn.response_timeout()))
        else {
            return self.command(args).await.map(Taken::plain);
        };
        let cmd = self.build(args)?;
        let timer = self.inner.counters.start();
        let result = match self.send_dedicated(args, &cmd, limit).await {
            Ok(t) => match t.reply() {
                Reply::Error(e) => Err(Error::from(e.clone())),
                _ => Ok(t),
            },
            Err(e) => Err(e),
        };
        timer.finish(&result);
        result.map_err(|e| e.context(describe(args)))
    }

    /// Whether `command()` sends `args` on the shared connection (not a blocking command
    /// on a dedicated one, not a refused one).
    pub(crate) fn shared_route<A: AsRef<[u8]>>(&self, args: &[A]) -> bool {
        matches!(
            route(args, self.inner.conn.response_timeout()),
            Route::Shared
        )
    }

    /// Send one packed command on the shared connection (with its retries); an error reply
    /// becomes an error.
    pub(crate) async fn send_packed(&self, bytes: bytes::Bytes) -> Result<Reply> {
        let timer = self.inner.counters.start();
        let result = match self.inner.conn.request(bytes, Expect::One).await {
            Ok(Reply::Error(e)) => Err(Error::from(e)),
            other => other,
        };
        timer.finish(&result);
        result
    }

    /// Send a prepared command on the shared connection; an error reply becomes an error.
    pub(crate) async fn run_cmd(&self, cmd: &redis::Cmd) -> Result<Reply> {
        let timer = self.inner.counters.start();
        let result = match self.inner.conn.send(cmd).await {
            Ok(Reply::Error(e)) => Err(Error::from(e)),
            other => other,
        };
        timer.finish(&result);
        result
    }

    async fn typed<A: AsRef<[u8]>, T>(
        &self,
        args: &[A],
        convert: impl FnOnce(Reply) -> Result<T>,
    ) -> Result<T> {
        let r = self.command(args).await?;
        convert(r).map_err(|e| e.context(describe(args)))
    }

    async fn keys_cmd<K: AsRef<[u8]>>(&self, name: &str, keys: &[K]) -> Result<i64> {
        if keys.is_empty() {
            return Err(Error::invalid(format!("{name}: give at least one key")));
        }
        let mut args: Vec<&[u8]> = vec![name.as_bytes()];
        args.extend(keys.iter().map(|k| k.as_ref()));
        self.typed(&args, Reply::into_int).await
    }

    async fn push_cmd<V: AsRef<[u8]>>(&self, name: &str, key: &[u8], values: &[V]) -> Result<i64> {
        let args = key_items_args(name, key, values, "value")?;
        self.typed(&args, Reply::into_int).await
    }
}

// Single commands: a lone blocking caller sends them on its own thread (`wait_command`).
client_methods! {
    @wait wait_command;
    /// Send any command (`["SET", "k", "v"]`) and return its reply; an error reply of the
    /// server is returned as an [`Error`] of kind [`ErrorKind::Server`].
    ///
    /// Blocking commands (`BLPOP`, `BRPOP`, `BLMOVE`, `BZPOPMIN`, `XREAD ... BLOCK`, `WAIT`,
    /// ...) run on a connection of their own, so they never hold up other calls, with a
    /// client-side limit of their own block time plus the response timeout (none for a
    /// block time of 0, which asks to wait forever). A pop whose caller stops waiting (a
    /// dropped future, the limit passed) ends the server's wait at once (`CLIENT UNBLOCK`)
    /// and puts back an item it had already taken ([`Taken`]). Commands that would change the shared
    /// connection's state for every user of it (`SUBSCRIBE`, `MULTI`, `WATCH`, `SELECT`,
    /// `MONITOR`, ...) are refused with an error naming the API to use instead.
    pub async fn command(&self, args: &[impl AsRef<[u8]>]) -> Result<Reply> {
        let cmd = self.build(args)?;
        let timer = self.inner.counters.start();
        let result = match route(args, self.inner.conn.response_timeout()) {
            Route::Shared => self.inner.conn.send(&cmd).await,
            Route::Refuse(why) => Err(Error::invalid(why)),
            Route::Dedicated(limit) => self
                .send_dedicated(args, &cmd, limit)
                .await
                .map(Taken::into_reply),
        };
        let result = match result {
            Ok(Reply::Error(e)) => Err(Error::from(e)),
            other => other,
        };
        timer.finish(&result);
        result.map_err(|e| e.context(describe(args)))
    }

    /// Send several commands in one write and return one entry per command, in order; a
    /// command's server error sits in its own slot (non-atomic: see transactions).
    pub async fn pipeline_raw(&self, cmds: &[Vec<impl AsRef<[u8]>>]) -> Result<Vec<Reply>> {
        let mut batch = self.pipeline();
        for c in cmds {
            batch.add(c)?;
        }
        batch.exec().await
    }

    /// `GET key`: the value, or `None` when the key does not exist.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.typed(&[b"GET".as_slice(), key.as_ref()], Reply::into_opt_bytes)
            .await
    }

    /// `SET key value`.
    pub async fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_with(key, value, SetOptions::default())
            .await
            .map(|_| ())
    }

    /// `SET key value [PX ms] [NX|XX]`: `true` if the value was set, `false` if an
    /// `NX`/`XX` condition kept it from being set.
    pub async fn set_with(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: SetOptions,
    ) -> Result<bool> {
        let args = set_args(key.as_ref(), value.as_ref(), &opts)?;
        self.typed(&args, |r| Ok(!r.is_nil())).await
    }

    /// `DEL key...`: how many keys were removed.
    pub async fn del(&self, keys: &[impl AsRef<[u8]>]) -> Result<i64> {
        self.keys_cmd("DEL", keys).await
    }

    /// `EXISTS key...`: how many of the keys exist.
    pub async fn exists(&self, keys: &[impl AsRef<[u8]>]) -> Result<i64> {
        self.keys_cmd("EXISTS", keys).await
    }

    /// `PEXPIRE key ms`: `true` if the timeout was set (the key exists).
    pub async fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let ms = ttl.as_millis().to_string();
        self.typed(
            &[b"PEXPIRE".as_slice(), key.as_ref(), ms.as_bytes()],
            Reply::into_flag,
        )
        .await
    }

    /// `INCR key`: the new value.
    pub async fn incr(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        self.typed(&[b"INCR".as_slice(), key.as_ref()], Reply::into_int)
            .await
    }

    /// `INCRBY key by`: the new value.
    pub async fn incr_by(&self, key: impl AsRef<[u8]>, by: i64) -> Result<i64> {
        let by = by.to_string();
        self.typed(
            &[b"INCRBY".as_slice(), key.as_ref(), by.as_bytes()],
            Reply::into_int,
        )
        .await
    }

    /// `DECR key`: the new value.
    pub async fn decr(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        self.typed(&[b"DECR".as_slice(), key.as_ref()], Reply::into_int)
            .await
    }

    /// `HGET key field`: the value, or `None`.
    pub async fn hget(
        &self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        self.typed(
            &[b"HGET".as_slice(), key.as_ref(), field.as_ref()],
            Reply::into_opt_bytes,
        )
        .await
    }

    /// `HSET key field value [field value ...]`: how many fields were added (not updated).
    pub async fn hset(
        &self,
        key: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
    ) -> Result<i64> {
        self.typed(&hset_args(key.as_ref(), fields)?, Reply::into_int)
            .await
    }

    /// `HGETALL key`: every (field, value) pair; empty when the key does not exist.
    pub async fn hgetall(&self, key: impl AsRef<[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.typed(&[b"HGETALL".as_slice(), key.as_ref()], Reply::into_pairs)
            .await
    }

    /// `HDEL key field...`: how many fields were removed.
    pub async fn hdel(&self, key: impl AsRef<[u8]>, fields: &[impl AsRef<[u8]>]) -> Result<i64> {
        let args = key_items_args("HDEL", key.as_ref(), fields, "field")?;
        self.typed(&args, Reply::into_int).await
    }

    /// `LPUSH key value...`: the new length.
    pub async fn lpush(&self, key: impl AsRef<[u8]>, values: &[impl AsRef<[u8]>]) -> Result<i64> {
        self.push_cmd("LPUSH", key.as_ref(), values).await
    }

    /// `RPUSH key value...`: the new length.
    pub async fn rpush(&self, key: impl AsRef<[u8]>, values: &[impl AsRef<[u8]>]) -> Result<i64> {
        self.push_cmd("RPUSH", key.as_ref(), values).await
    }

    /// `LPOP key`: the first element, or `None` when the list is empty.
    pub async fn lpop(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.typed(&[b"LPOP".as_slice(), key.as_ref()], Reply::into_opt_bytes)
            .await
    }

    /// `RPOP key`: the last element, or `None` when the list is empty.
    pub async fn rpop(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.typed(&[b"RPOP".as_slice(), key.as_ref()], Reply::into_opt_bytes)
            .await
    }

    /// `LLEN key`.
    pub async fn llen(&self, key: impl AsRef<[u8]>) -> Result<i64> {
        self.typed(&[b"LLEN".as_slice(), key.as_ref()], Reply::into_int)
            .await
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    pub async fn publish(
        &self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
    ) -> Result<i64> {
        self.typed(
            &[b"PUBLISH".as_slice(), channel.as_ref(), message.as_ref()],
            Reply::into_int,
        )
        .await
    }

    /// `SPUBLISH channel message` (shard channels): how many subscribers received it.
    pub async fn spublish(
        &self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
    ) -> Result<i64> {
        self.typed(
            &[b"SPUBLISH".as_slice(), channel.as_ref(), message.as_ref()],
            Reply::into_int,
        )
        .await
    }

    /// `PING`: succeeds when the server answers.
    pub async fn ping(&self) -> Result<()> {
        self.typed(&[b"PING".as_slice()], Reply::into_pong).await
    }
}

client_handles! {
    /// Subscribe to channels (`SUBSCRIBE`). Returns once the server confirmed them; their
    /// events go to `opts`' handler, or are taken with [`Subscription::next`].
    pub async fn subscribe(
        &self,
        channels: &[impl AsRef<[u8]>],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        self.subscribe_kind(SubscriptionKind::Channel, channels, opts)
            .await
    }

    /// Subscribe to glob patterns (`PSUBSCRIBE`); messages carry the matching pattern.
    pub async fn psubscribe(
        &self,
        patterns: &[impl AsRef<[u8]>],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        self.subscribe_kind(SubscriptionKind::Pattern, patterns, opts)
            .await
    }

    /// Subscribe to shard channels (`SSUBSCRIBE`; publish with [`Client::spublish`]).
    pub async fn ssubscribe(
        &self,
        channels: &[impl AsRef<[u8]>],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        self.subscribe_kind(SubscriptionKind::Shard, channels, opts)
            .await
    }

    /// Subscribe to `names` of `kind`: channels, patterns or shard channels (what
    /// [`subscribe`](Client::subscribe), [`psubscribe`](Client::psubscribe) and
    /// [`ssubscribe`](Client::ssubscribe) do).
    pub async fn subscribe_kind(
        &self,
        kind: SubscriptionKind,
        names: &[impl AsRef<[u8]>],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        if self.inner.conn.is_closed() {
            return Err(Error::closed());
        }
        self.pubsub().subscribe(kind, names, opts).await
    }
}

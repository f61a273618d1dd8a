//! Request queues: producers `LPUSH` requests, workers pop them and run a handler.
//!
//! - **Plain** (at-most-once): `BRPOP` (or `RPOP key N` to take a few at once); a request
//!   popped by a worker that dies is lost.
//! - **Reliable** (at-least-once): `BLMOVE` moves each request atomically into the worker
//!   loop's own in-flight list, guarded by a lease key that a heartbeat keeps alive. On
//!   success the request is removed (ack); on failure it is re-queued with its attempt count
//!   raised, and after `max_attempts` moved to the dead-letter list with the error. When a
//!   worker dies its lease expires, and any live worker of the queue moves its in-flight
//!   requests back to the queue. A death counts as an attempt: a request that kills every
//!   worker that takes it (a "poison pill") ends in the dead-letter list after
//!   `max_attempts` deaths instead of taking down worker after worker forever.
//!
//! Keys (one hash tag per queue, so a queue's keys share a cluster slot):
//! `{prefix}{q:NAME}:pending`, `...:inflight:<consumer>`, `...:lease:<consumer>`,
//! `...:consumers` (set), `...:dead`.
//!
//! Items are the raw payload as sent (so any Redis client can produce); a request that was
//! retried carries a small binary envelope (magic `\0ipq\x01`, attempt, payload), and a
//! dead letter another one (magic `\0ipd\x01`, attempts, error, payload).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::Client;
use crate::delivery::runner::{Loop, Runner};
use crate::error::{Error, Result};
use crate::net::conn::{LoopConn, Unblock};
use crate::net::runtime;
use crate::patterns::script::Script;
use crate::pubsub::{Event, SubscribeOptions, Subscription};
use crate::reply::Reply;
use crate::report::{ErrorHook, Report, ReportKind, ReportSource, call_handler};
use crate::stats::{self, WorkerCounters};

const RETRY_MAGIC: &[u8] = b"\0ipq\x01";
const DEAD_MAGIC: &[u8] = b"\0ipd\x01";

/// One request handed to a handler.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request {
    /// The queue it came from.
    pub queue: Bytes,
    /// The payload as sent.
    pub payload: Bytes,
    /// How many times it was handed to a handler before (0 the first time).
    pub attempt: u32,
}

/// A request handler: `Ok(())` acks; an error is a failure (retried in reliable mode; make
/// one with [`Error::handler`], or pass on an error of the client with `?`). A panic
/// counts as a failure.
pub type RequestHandler = Arc<dyn Fn(&Request) -> Result<()> + Send + Sync>;

/// Options of a worker ([`Client::handle_requests`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Handlers running in parallel (each its own loop and connection); default 1.
    pub concurrency: usize,
    /// How long one blocking pop waits on the server (default 1 s). `stop` wakes a
    /// blocked pop at once (`CLIENT UNBLOCK`; where ACLs forbid it, within this time).
    pub block_timeout: Duration,
    /// At-least-once delivery with leases, retries and dead letters (default false).
    pub reliable: bool,
    /// Reliable mode: attempts before a request becomes a dead letter (default 3). A worker
    /// that died while handling it counts as an attempt.
    pub max_attempts: u32,
    /// Reliable mode: how long a dead worker's requests stay claimed (default 30 s).
    pub lease: Duration,
    /// Plain mode: requests taken per round trip when the queue is busy (default 16; a
    /// worker that dies loses at most these).
    pub prefetch: usize,
    /// Where the worker's [`Report`]s go (handler failures, dead letters, lost
    /// connections; default: the client's hook, and the log).
    pub error_hook: Option<ErrorHook>,
    /// The queue names are the Redis lists themselves (`BRPOP scooter:state`), as in
    /// redis-ipc fleets and for any producer that `LPUSH`es to a plain key; default false
    /// (redipc's own keys: `{prefix}{q:NAME}:pending`). Plain mode only: a reliable worker
    /// needs redipc's own keys next to the queue.
    pub bare: bool,
    /// RPC servers ([`Client::serve_with`](crate::Client::serve_with)): the wire protocol
    /// (default [`Protocol::Redipc`]).
    pub protocol: Protocol,
    /// RPC servers: the version they announce in the service registry
    /// ([`Client::instances`](crate::Client::instances); default empty).
    pub version: String,
    /// RPC servers: fields of the user's own they announce in the service registry.
    pub metadata: Vec<(String, String)>,
}

/// The wire protocol of an RPC service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// redipc's own: binary envelopes on `{prefix}{rpc:SERVICE}:pending`, servers announce
    /// themselves (so a call fails with `NoServer` when none runs).
    #[default]
    Redipc,
    /// The JSON wire of the Go library redis-ipc (librescoot): the service name is the
    /// Redis list itself, requests are `{"id","method","reply_channel","deadline","payload"}`
    /// and replies `{"ok":true,"payload":...}` / `{"ok":false,"error":"..."}` published on
    /// the per-call reply channel `<list>:reply:<id>`. Payloads are JSON text. See
    /// `docs/FLEET.md`.
    RedisIpc,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            block_timeout: Duration::from_secs(1),
            reliable: false,
            max_attempts: 3,
            lease: Duration::from_secs(30),
            prefetch: 16,
            error_hook: None,
            bare: false,
            protocol: Protocol::Redipc,
            version: String::new(),
            metadata: Vec::new(),
        }
    }
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("concurrency", &self.concurrency)
            .field("block_timeout", &self.block_timeout)
            .field("reliable", &self.reliable)
            .field("max_attempts", &self.max_attempts)
            .field("lease", &self.lease)
            .field("prefetch", &self.prefetch)
            .field("bare", &self.bare)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl WorkerOptions {
    /// Set the concurrency.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Set the blocking pop timeout.
    pub fn block_timeout(mut self, t: Duration) -> Self {
        self.block_timeout = t;
        self
    }
    /// Turn reliable mode on or off.
    pub fn reliable(mut self, on: bool) -> Self {
        self.reliable = on;
        self
    }
    /// Set the attempts before a dead letter.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    /// Set the lease.
    pub fn lease(mut self, t: Duration) -> Self {
        self.lease = t;
        self
    }
    /// Set the prefetch.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }
    /// Send the worker's reports to `hook` instead of the client's hook (they are logged either way).
    pub fn error_hook(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }
    /// Use the queue names as the Redis lists themselves (see [`WorkerOptions::bare`]).
    pub fn bare(mut self, on: bool) -> Self {
        self.bare = on;
        self
    }
    /// Set an RPC server's wire protocol (see [`Protocol`]).
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }

    /// Set the version an RPC server announces.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }
    /// Add a field an RPC server announces.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }
    fn validate(&self) -> Result<()> {
        if self.concurrency == 0 || self.concurrency > 1024 {
            return Err(Error::invalid("concurrency must be between 1 and 1024"));
        }
        if self.block_timeout < Duration::from_millis(10) {
            return Err(Error::invalid("block_timeout must be at least 10 ms"));
        }
        if self.reliable && self.max_attempts == 0 {
            return Err(Error::invalid("max_attempts must be at least 1"));
        }
        if self.reliable && self.lease < Duration::from_millis(100) {
            return Err(Error::invalid("lease must be at least 100 ms"));
        }
        if self.reliable && self.bare {
            return Err(Error::invalid(
                "a bare queue is plain (at-most-once, like BRPOP on the list): reliable mode needs redipc's own keys next to the queue",
            ));
        }
        Ok(())
    }
}

/// Counters of a queue, from the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueCounts {
    /// Requests waiting.
    pub pending: u64,
    /// Requests being handled by reliable workers.
    pub inflight: u64,
    /// Dead letters.
    pub dead: u64,
    /// Delayed requests not due yet (or due, and not moved into the queue yet).
    pub delayed: u64,
}

/// A dead letter: a request that failed `max_attempts` times.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The payload as sent.
    pub payload: Bytes,
    /// How many times it was tried.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

pub use crate::stats::WorkerStats;

/// The keys of one queue.
#[derive(Clone, Debug)]
pub(crate) struct QueueKeys {
    pub name: Bytes,
    base: Vec<u8>,
    /// The name is the list itself (see [`WorkerOptions::bare`]).
    bare: bool,
}

impl QueueKeys {
    pub(crate) fn new(prefix: &str, kind: &str, name: &[u8]) -> Result<QueueKeys> {
        if name.is_empty() {
            return Err(Error::invalid("a queue name must not be empty"));
        }
        if name.iter().any(|b| *b == b'{' || *b == b'}') {
            return Err(Error::invalid("a queue name must not contain '{' or '}'"));
        }
        let mut base = prefix.as_bytes().to_vec();
        base.push(b'{');
        base.extend_from_slice(kind.as_bytes());
        base.push(b':');
        base.extend_from_slice(name);
        base.push(b'}');
        Ok(QueueKeys {
            name: Bytes::copy_from_slice(name),
            base,
            bare: false,
        })
    }

    /// The keys of a queue whose list is `name` itself (`LPUSH name`, `BRPOP name`).
    pub(crate) fn bare(name: &[u8]) -> Result<QueueKeys> {
        if name.is_empty() {
            return Err(Error::invalid("a queue name must not be empty"));
        }
        Ok(QueueKeys {
            name: Bytes::copy_from_slice(name),
            base: Vec::new(),
            bare: true,
        })
    }
    /// `{prefix}{kind:NAME}`: what every key of the queue starts with.
    pub(crate) fn base(&self) -> &[u8] {
        &self.base
    }
    fn key(&self, suffix: &str) -> Vec<u8> {
        let mut k = self.base.clone();
        k.push(b':');
        k.extend_from_slice(suffix.as_bytes());
        k
    }
    pub(crate) fn pending(&self) -> Vec<u8> {
        if self.bare {
            return self.name.to_vec();
        }
        self.key("pending")
    }
    fn inflight(&self, cid: &str) -> Vec<u8> {
        self.key(&format!("inflight:{cid}"))
    }
    fn lease(&self, cid: &str) -> Vec<u8> {
        self.key(&format!("lease:{cid}"))
    }
    fn consumers(&self) -> Vec<u8> {
        self.key("consumers")
    }
    fn dead(&self) -> Vec<u8> {
        self.key("dead")
    }
    fn delayed(&self) -> Vec<u8> {
        self.key("delayed")
    }
}

/// The channel a delayed send publishes on when its request is the next one due, so an
/// idle worker of the queue looks again at once.
fn delayed_channel(prefix: &str, name: &[u8]) -> Vec<u8> {
    let mut c = format!("{prefix}q-delayed:").into_bytes();
    c.extend_from_slice(name);
    c
}

/// Decode an item: (attempts so far, payload).
fn decode_item(item: &[u8]) -> (u32, &[u8]) {
    if let Some(rest) = item.strip_prefix(RETRY_MAGIC)
        && rest.len() >= 4
    {
        let attempt = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        return (attempt, &rest[4..]);
    }
    if let Some(d) = decode_dead(item) {
        // A requeued dead letter starts over.
        return (0, d.2);
    }
    (0, item)
}

fn encode_retry(attempt: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(RETRY_MAGIC.len() + 4 + payload.len());
    v.extend_from_slice(RETRY_MAGIC);
    v.extend_from_slice(&attempt.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn encode_dead(attempts: u32, error: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(DEAD_MAGIC.len() + 8 + error.len() + payload.len());
    v.extend_from_slice(DEAD_MAGIC);
    v.extend_from_slice(&attempts.to_be_bytes());
    v.extend_from_slice(&(error.len() as u32).to_be_bytes());
    v.extend_from_slice(error.as_bytes());
    v.extend_from_slice(payload);
    v
}

fn decode_dead(item: &[u8]) -> Option<(u32, &str, &[u8])> {
    let rest = item.strip_prefix(DEAD_MAGIC)?;
    if rest.len() < 8 {
        return None;
    }
    let attempts = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let elen = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    let rest = &rest[8..];
    if rest.len() < elen {
        return None;
    }
    let error = std::str::from_utf8(&rest[..elen]).unwrap_or("(invalid UTF-8)");
    Some((attempts, error, &rest[elen..]))
}

/// Nack: remove from in-flight, then re-queue with the attempt raised, or dead-letter; a
/// request no longer in flight (nacked already, or recovered by another worker) is left
/// alone (returns 0).
/// KEYS: inflight, pending, dead. ARGV: item, requeued item, dead item, 1 if dead.
static NACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
if ARGV[4] == '1' then
  redis.call('LPUSH', KEYS[3], ARGV[3])
else
  redis.call('LPUSH', KEYS[2], ARGV[2])
end
return 1",
    )
});

/// Recover the in-flight requests of consumers whose lease expired. Each counts the death
/// as an attempt: re-queued with its attempt raised, or, at `max_attempts`, dead-lettered.
/// KEYS: consumers set, pending, dead. ARGV: the key base (`{prefix}{q:NAME}:`), the retry
/// magic, the dead-letter magic, max attempts, the error text for a dead letter.
/// Returns {requeued, dead-lettered}.
static RECOVER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local RM, DM, max, err = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 256) % 256, n % 256)
end
local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local moved, dead = 0, 0
for _, cid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'lease:' .. cid) == 0 then
    local inflight = ARGV[1] .. 'inflight:' .. cid
    while true do
      local item = redis.call('RPOP', inflight)
      if not item then break end
      local attempt, payload = 0, item
      if #item >= #RM + 4 and string.sub(item, 1, #RM) == RM then
        attempt = u32(item, #RM + 1)
        payload = string.sub(item, #RM + 5)
      elseif #item >= #DM + 8 and string.sub(item, 1, #DM) == DM then
        local elen = u32(item, #DM + 5)
        if #item >= #DM + 8 + elen then payload = string.sub(item, #DM + 9 + elen) end
      end
      attempt = attempt + 1
      if attempt >= max then
        redis.call('LPUSH', KEYS[3], DM .. be32(attempt) .. be32(#err) .. err .. payload)
        dead = dead + 1
      else
        redis.call('RPUSH', KEYS[2], RM .. be32(attempt) .. payload)
        moved = moved + 1
      end
    end
    redis.call('SREM', KEYS[1], cid)
  end
end
return {moved, dead}",
    )
});

/// Schedule a request. KEYS: delayed. ARGV: member (8 random bytes, then the payload),
/// delay ms (or, with ARGV[3] = 'at', a Unix time in ms), mode, channel. Publishes the due
/// time when this request is now the first due. Returns the due time (server ms).
static SCHEDULE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = tonumber(ARGV[2])
if ARGV[3] ~= 'at' then due = now + due end
redis.call('ZADD', KEYS[1], due, ARGV[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if first[1] == ARGV[1] then redis.call('PUBLISH', ARGV[4], due) end
return due",
    )
});

/// Move due delayed requests into the queue, atomically (never twice, never lost).
/// KEYS: delayed, pending. ARGV: most to move. Returns {moved, ms until the next is due
/// (-1: none)}.
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('LPUSH', KEYS[2], string.sub(m, 9))
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return {#due, math.max(tonumber(nxt[2]) - now, 0)} end
return {#due, -1}",
    )
});

/// Delayed requests moved per script run (a worker runs it again at once while more are due).
const PROMOTE_BATCH: usize = 100;
/// However quiet the notifications, an idle worker looks at the delayed set this often.
const DELAYED_BACKSTOP: Duration = Duration::from_secs(5);

/// The error a request dead-lettered by recovery carries.
const DIED: &str = "the worker handling it died (its lease expired) on every attempt";

/// A consumer leaving cleanly. KEYS: inflight, pending, lease, consumers. ARGV: its id.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'RIGHT') do end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return 1",
    )
});

/// Put every dead letter back into the queue. KEYS: dead, pending. Returns how many.
static REQUEUE_DEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do
  n = n + 1
end
return n",
    )
});

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

struct Shared {
    client: Client,
    queues: Vec<QueueKeys>,
    handler: RequestHandler,
    opts: WorkerOptions,
    counts: WorkerCounters,
    /// Reliable mode: the consumer ids of the loops (their leases are kept alive).
    consumers: Mutex<Vec<String>>,
    /// The loops' blocking connections, so that `stop` can end their pops at once.
    unblock: Unblock,
    /// Request workers on redipc's own keys: moving delayed requests that are due.
    delayed: Option<Delayed>,
}

/// A worker's part in delayed requests: the loops move due ones into the queue before they
/// pop, and block no longer than until the next is due. A send that makes its request the
/// first due publishes on the queue's channel; the worker's subscription then ends the
/// loops' blocking pops (`CLIENT UNBLOCK`) so they look again.
struct Delayed {
    /// Set by a notification (or a reconnect of the subscription, or the timer of the
    /// next due time): look now.
    look: Arc<AtomicBool>,
    /// Sets `look` and ends the loops' blocking pops.
    poke: Arc<Poke>,
    /// Pokes the loops when the next delayed request is due (the server's own timeouts of
    /// blocking pops are only as fine as its `hz`: up to 100 ms late).
    timer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// When the next delayed request is due, as far as the last look knows, and when that
    /// look was.
    next: Mutex<(Option<Instant>, Option<Instant>)>,
    /// The notification subscription, made by the first loop (closed when the worker
    /// stops), and when to try again after it could not be made.
    sub: Mutex<(Option<Subscription>, Option<Instant>)>,
}

impl Shared {
    /// Count `n` on this worker and on its client's sum.
    fn count(&self, field: fn(&WorkerCounters) -> &AtomicU64, n: u64) {
        stats::add(&self.counts, &self.client.counters().workers, field, n);
    }

    /// Run the handler; a panic is a failure.
    fn run_handler(&self, req: &Request) -> Result<()> {
        call_handler(|| (self.handler)(req))
    }
}

/// A report of `kind` about queue `q`.
fn report_on(lp: &Loop, kind: ReportKind, q: &QueueKeys) -> Report {
    let mut r = lp.report_of(kind);
    r.name = q.name.clone();
    r
}

/// A running worker: loops popping requests and running the handler, on threads of their
/// own. Stop it with [`Worker::stop`]; dropping it stops it too (waiting up to 10 s for
/// running handlers).
pub struct Worker {
    shared: Arc<Shared>,
    runner: Runner,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field(
                "queues",
                &self
                    .shared
                    .queues
                    .iter()
                    .map(|q| &q.name)
                    .collect::<Vec<_>>(),
            )
            .field("opts", &self.shared.opts)
            .finish()
    }
}

impl Worker {
    pub(crate) fn start(
        client: Client,
        queues: Vec<QueueKeys>,
        handler: RequestHandler,
        opts: WorkerOptions,
        source: ReportSource,
    ) -> Result<Worker> {
        opts.validate()?;
        if client.conn().is_closed() {
            return Err(Error::closed());
        }
        let Some(first) = queues.first() else {
            return Err(Error::invalid("give at least one queue"));
        };
        let delays = source == ReportSource::Worker && !queues.iter().any(|q| q.bare);
        let mut runner = Runner::new(
            source,
            first.name.clone(),
            client.reporter(opts.error_hook.as_ref()),
        );
        let shared = Arc::new(Shared {
            client,
            queues,
            handler,
            opts,
            counts: WorkerCounters::default(),
            consumers: Mutex::new(Vec::new()),
            unblock: Unblock::default(),
            delayed: None,
        });
        let shared = match delays {
            false => shared,
            true => {
                let mut s = Arc::into_inner(shared).expect("not shared yet");
                let look = Arc::new(AtomicBool::new(true));
                s.delayed = Some(Delayed {
                    poke: Arc::new(Poke {
                        look: look.clone(),
                        unblock: s.unblock.clone(),
                        conn: s.client.conn().clone(),
                        rt: s.client.runtime_handle().clone(),
                        block: s.opts.block_timeout,
                    }),
                    look,
                    timer: Mutex::new(None),
                    next: Mutex::new((None, None)),
                    sub: Mutex::new((None, None)),
                });
                Arc::new(s)
            }
        };
        if shared.delayed.is_some() {
            let s = shared.clone();
            runner.on_stopped(move || {
                if let Some(d) = &s.delayed {
                    d.sub.lock().unwrap_or_else(|p| p.into_inner()).0.take();
                    if let Some(t) = d.timer.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        t.abort();
                    }
                }
            });
        }
        // Idle loops sit in a blocking pop: `stop` ends it at once.
        let s = shared.clone();
        runner.waker(Arc::new(move || {
            let c = &s.client;
            let _ = runtime::block_on(c.runtime_handle(), s.unblock.unblock(c.conn()));
        }));
        if shared.opts.reliable {
            let ids: Vec<String> = (0..shared.opts.concurrency).map(|_| random_id()).collect();
            *shared.consumers.lock().unwrap_or_else(|p| p.into_inner()) = ids;
            let beat = shared
                .client
                .runtime_handle()
                .spawn(heartbeat(shared.clone(), runner.context()));
            runner.on_stopped(move || beat.abort());
        }
        for i in 0..shared.opts.concurrency {
            let s = shared.clone();
            runner.spawn(format!("redipc-worker-{i}"), move |lp| {
                consumer_loop(s, lp, i)
            })?;
        }
        runner.started();
        Ok(Worker { shared, runner })
    }

    /// Counters so far.
    pub fn stats(&self) -> WorkerStats {
        self.shared.counts.snapshot()
    }

    runner_methods!(
        [runner],
        "worker",
        "no more requests are taken, and the worker's keys are released once its handlers returned (in reliable mode the request of a handler still running stays in flight, and is recovered after the lease if the worker never comes back)."
    );

    pub(crate) fn runner(&self) -> &Runner {
        &self.runner
    }
}

async fn renew_leases(shared: &Shared, ids: &[String], register: bool) -> Result<()> {
    let ms = shared.opts.lease.as_millis().to_string();
    let mut pipe = shared.client.pipeline();
    for q in &shared.queues {
        for cid in ids {
            pipe.add(&[b"SET".as_slice(), &q.lease(cid), b"1", b"PX", ms.as_bytes()])?;
            if register {
                pipe.add(&[b"SADD".as_slice(), &q.consumers(), cid.as_bytes()])?;
            }
        }
    }
    for r in pipe.exec().await? {
        if let Reply::Error(e) = r {
            return Err(Error::from(e).context("renew leases"));
        }
    }
    Ok(())
}

async fn heartbeat(shared: Arc<Shared>, lp: Loop) {
    // Runs until the worker's exit actions abort it, after every loop released its lease:
    // a handler still running after `stop` keeps its request claimed.
    let every = shared.opts.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let ids = shared
            .consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Err(e) = renew_leases(&shared, &ids, false).await {
            lp.report(
                lp.report_of(ReportKind::ConnectionLost)
                    .during("renewing the leases")
                    .error(e),
            );
        }
    }
}

fn consumer_loop(shared: Arc<Shared>, lp: &mut Loop, index: usize) {
    let handle = shared.client.runtime_handle().clone();
    let mut conn = LoopConn::new(&shared.unblock);
    let mut rotation = index;
    let mut last_recover: Option<Instant> = None;
    let cid = shared
        .consumers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(index)
        .cloned();
    // Reliable mode: claim the lease before the first pop so nobody recovers from us.
    if let Some(cid) = &cid {
        while let Err(e) = runtime::block_on(
            &handle,
            renew_leases(&shared, std::slice::from_ref(cid), true),
        )
        .and_then(|r| r)
        {
            if e.is_closed() || lp.stopped() {
                return;
            }
            lp.failed("claiming the lease", e);
        }
    }
    while !lp.stopped() {
        let block = match delayed_round(&shared, &handle) {
            Ok(b) => b,
            Err(e) if e.is_closed() => return,
            Err(e) => {
                lp.failed("moving delayed requests that are due", e);
                continue;
            }
        };
        // Handlers run here, outside the runtime: they may use the blocking client.
        let result = match &cid {
            None => runtime::block_on(&handle, plain_pop(&shared, &mut conn, rotation, block))
                .and_then(|r| r)
                .and_then(|items| {
                    let mut items = items.into_iter();
                    for (q, item) in items.by_ref() {
                        handle_plain(&shared, lp, &shared.queues[q], &item);
                        if lp.stopped() {
                            break;
                        }
                    }
                    // Stopping: what was taken but not handled goes back, in order.
                    let rest: Vec<(usize, Vec<u8>)> = items.collect();
                    if rest.is_empty() {
                        return Ok(());
                    }
                    runtime::block_on(&handle, give_back(&shared, rest)).and_then(|r| r)
                }),
            Some(cid) => {
                if last_recover.is_none_or(|t| t.elapsed() >= shared.opts.lease / 2) {
                    last_recover = Some(Instant::now());
                    if let Err(e) = runtime::block_on(&handle, recover(&shared, lp)).and_then(|r| r)
                    {
                        lp.failed("recovering expired leases", e);
                    }
                }
                match runtime::block_on(
                    &handle,
                    reliable_pop(&shared, &mut conn, cid, rotation, block),
                )
                .and_then(|r| r)
                {
                    Ok(Some((q, item))) => {
                        let q = &shared.queues[q];
                        let (attempt, payload) = decode_item(&item);
                        let req = Request {
                            queue: q.name.clone(),
                            payload: Bytes::copy_from_slice(payload),
                            attempt,
                        };
                        let outcome = shared.run_handler(&req);
                        settle_until_done(&shared, lp, &handle, q, cid, &item, &outcome)
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        };
        rotation = rotation.wrapping_add(1);
        match result {
            Ok(()) => lp.succeeded(),
            Err(e) if e.is_closed() => return,
            Err(e) => lp.failed("taking requests", e),
        }
    }
    if let Some(cid) = &cid
        && let Err(e) = runtime::block_on(&handle, release(&shared, cid)).and_then(|r| r)
    {
        lp.report(
            lp.report_of(ReportKind::ConnectionLost)
                .during("releasing its requests on stop")
                .error(e),
        );
    }
}

/// Tells a worker's loops to look at the delayed set now.
struct Poke {
    look: Arc<AtomicBool>,
    unblock: Unblock,
    conn: Arc<crate::net::conn::Conn>,
    rt: runtime::Rt,
    block: Duration,
}

impl Poke {
    fn poke(&self) {
        if self.look.swap(true, Ordering::AcqRel) {
            return; // a poke is under way
        }
        // Until a loop took the hint: an unblock that reached the server just before a
        // loop's pop did would be lost, so it is repeated, more and more slowly.
        let (unblock, conn, look, block) = (
            self.unblock.clone(),
            self.conn.clone(),
            self.look.clone(),
            self.block,
        );
        self.rt.spawn(async move {
            let mut pause = Duration::from_millis(5);
            let t = tokio::time::Instant::now();
            while look.load(Ordering::Acquire) && t.elapsed() < block {
                unblock.unblock(&conn).await;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        });
    }
}

/// Before a pop: subscribe to the send notifications (once), move the delayed requests
/// that are due into their queues (when a notification came, the next one known is due, or
/// the backstop time passed), and say how long the pop may block: until the next is due.
fn delayed_round(shared: &Shared, handle: &runtime::Rt) -> Result<Duration> {
    let max = shared.opts.block_timeout;
    let Some(d) = &shared.delayed else {
        return Ok(max);
    };
    let now = Instant::now();
    {
        let mut sub = d.sub.lock().unwrap_or_else(|p| p.into_inner());
        if sub.0.is_none() && sub.1.is_none_or(|t| now >= t) {
            // Before the next look, so that no send after that look goes unnoticed. Without
            // it (ACLs may forbid the channel) the worker still takes delayed requests, at
            // the backstop's pace, and tries again later.
            match runtime::block_on(handle, delayed_subscription(shared)).and_then(|r| r) {
                Ok(s) => *sub = (Some(s), None),
                Err(e) if e.is_closed() => return Err(e),
                Err(e) => {
                    log::warn!(
                        "worker of {:?}: no notifications of delayed requests ({e}); looking every {DELAYED_BACKSTOP:?}",
                        String::from_utf8_lossy(&shared.queues[0].name)
                    );
                    sub.1 = Some(now + DELAYED_BACKSTOP * 12);
                }
            }
            d.look.store(true, Ordering::Release);
        }
    }
    let (next, last) = *d.next.lock().unwrap_or_else(|p| p.into_inner());
    let look = d.look.swap(false, Ordering::AcqRel)
        || next.is_some_and(|t| t <= now)
        || last.is_none_or(|t| now.duration_since(t) >= DELAYED_BACKSTOP);
    let next = if look {
        match runtime::block_on(handle, promote(shared)).and_then(|r| r) {
            Ok(wait) => {
                let next = wait.map(|w| now + w);
                *d.next.lock().unwrap_or_else(|p| p.into_inner()) = (next, Some(now));
                let mut timer = d.timer.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(t) = timer.take() {
                    t.abort();
                }
                if let Some(w) = wait.filter(|w| *w < max) {
                    let poke = d.poke.clone();
                    *timer = Some(shared.client.runtime_handle().spawn(async move {
                        tokio::time::sleep(w).await;
                        poke.poke();
                    }));
                }
                next
            }
            Err(e) => {
                d.look.store(true, Ordering::Release);
                return Err(e);
            }
        }
    } else {
        next
    };
    Ok(match next {
        Some(t) => t.saturating_duration_since(Instant::now()).clamp(
            Duration::from_millis(10),
            max.max(Duration::from_millis(10)),
        ),
        None => max,
    })
}

/// Move what is due in every queue of the worker; the time until the next is due.
async fn promote(shared: &Shared) -> Result<Option<Duration>> {
    let mut next: Option<Duration> = None;
    let batch = PROMOTE_BATCH.to_string();
    for q in &shared.queues {
        loop {
            let r = shared
                .client
                .run_script(&PROMOTE, &[q.delayed(), q.pending()], &[batch.as_bytes()])
                .await
                .map_err(|e| e.context("moving delayed requests"))?;
            let parts = r.as_slice().unwrap_or(&[]);
            let moved = parts.first().and_then(Reply::as_int).unwrap_or(0);
            let wait = parts.get(1).and_then(Reply::as_int).unwrap_or(-1);
            if moved >= PROMOTE_BATCH as i64 {
                continue;
            }
            if wait >= 0 {
                let w = Duration::from_millis(wait as u64);
                next = Some(next.map_or(w, |n| n.min(w)));
            }
            break;
        }
    }
    Ok(next)
}

/// The worker's subscription to its queues' delayed-send channels: a notification (or a
/// reconnect, after which one may have been missed) makes the loops look again, and ends
/// their blocking pops so that they do it now.
async fn delayed_subscription(shared: &Shared) -> Result<Subscription> {
    let Some(d) = &shared.delayed else {
        return Err(Error::invalid("this worker takes no delayed requests"));
    };
    let prefix = &shared.client.options().key_prefix;
    let channels: Vec<Vec<u8>> = shared
        .queues
        .iter()
        .map(|q| delayed_channel(prefix, &q.name))
        .collect();
    let poke = d.poke.clone();
    let mut opts = SubscribeOptions::default().batch_handler(move |events| {
        let wake = events
            .iter()
            .any(|e| matches!(e, Event::Message(_) | Event::Reactivated { .. }));
        if wake {
            poke.poke();
        }
    });
    opts.inline = true;
    shared.client.subscribe(&channels, opts).await
}

/// The queues in this round's order (rotating, for fairness).
/// Whether every key is in one cluster slot.
fn same_slot(mut keys: impl Iterator<Item = Vec<u8>>) -> bool {
    let Some(first) = keys.next() else {
        return true;
    };
    let slot = crate::cluster::keyslot(&first);
    keys.all(|k| crate::cluster::keyslot(&k) == slot)
}

fn rotated(shared: &Shared, rotation: usize) -> Vec<usize> {
    let n = shared.queues.len();
    (0..n).map(|i| (rotation + i) % n).collect()
}

/// Plain mode: take up to `prefetch` requests without blocking, else block on all queues.
async fn plain_pop(
    shared: &Shared,
    conn: &mut LoopConn,
    rotation: usize,
    block: Duration,
) -> Result<Vec<(usize, Vec<u8>)>> {
    let rt = shared.client.conn().response_timeout();
    let order = rotated(shared, rotation);
    if shared.opts.prefetch > 1 {
        let q = order[0];
        let mut cmd = redis::cmd("RPOP");
        cmd.arg(shared.queues[q].pending())
            .arg(shared.opts.prefetch);
        if let Reply::Array(items) = conn.call(shared.client.conn(), &cmd, rt).await? {
            return Ok(items
                .into_iter()
                .filter_map(|i| i.into_opt_bytes().ok().flatten())
                .map(|i| (q, i))
                .collect());
        }
    }
    // On a cluster, queues of several slots cannot share one BRPOP: each is tried without
    // blocking in turn, then the first blocks for its share of the block time.
    let spread = shared.queues.len() > 1
        && shared.client.conn().cluster().is_some()
        && !same_slot(shared.queues.iter().map(|q| q.pending()));
    if spread {
        for q in &order {
            let mut cmd = redis::cmd("RPOP");
            cmd.arg(shared.queues[*q].pending());
            if let Some(item) = conn
                .call(shared.client.conn(), &cmd, rt)
                .await?
                .into_opt_bytes()?
            {
                return Ok(vec![(*q, item)]);
            }
        }
    }
    let block = match spread {
        true => (block / shared.queues.len() as u32).max(Duration::from_millis(10)),
        false => block,
    };
    let mut cmd = redis::cmd("BRPOP");
    for q in if spread { &order[..1] } else { &order[..] } {
        cmd.arg(shared.queues[*q].pending());
    }
    cmd.arg(block.as_secs_f64());
    let reply = conn.call(shared.client.conn(), &cmd, block + rt).await?;
    let mut out = Vec::new();
    if let Some([key, item]) = reply.as_slice().and_then(|s| s.get(..2)) {
        let q = order
            .iter()
            .copied()
            .find(|q| Some(&shared.queues[*q].pending()[..]) == key.as_bytes())
            .unwrap_or(order[0]);
        if let Some(p) = item.as_bytes() {
            out.push((q, p.to_vec()));
        }
    }
    Ok(out)
}

fn handle_plain(shared: &Shared, lp: &Loop, q: &QueueKeys, item: &[u8]) {
    let (attempt, payload) = decode_item(item);
    let req = Request {
        queue: q.name.clone(),
        payload: Bytes::copy_from_slice(payload),
        attempt,
    };
    match shared.run_handler(&req) {
        Ok(()) => {
            shared.count(|c| &c.handled, 1);
        }
        Err(e) => {
            shared.count(|c| &c.failed, 1);
            lp.report(
                report_on(lp, ReportKind::HandlerFailed, q)
                    .attempts(attempt + 1, 0)
                    .error(e),
            );
        }
    }
}

/// Plain mode, stopping: put requests taken with a prefetch but not handled back at the
/// consumer end of their queues, in their order.
async fn give_back(shared: &Shared, rest: Vec<(usize, Vec<u8>)>) -> Result<()> {
    let mut pipe = shared.client.pipeline();
    for (q, item) in rest.iter().rev() {
        pipe.add(&[b"RPUSH".as_slice(), &shared.queues[*q].pending(), item])?;
    }
    pipe.exec().await.map(|_| ())
}

/// Reliable mode: move one request into our in-flight list.
async fn reliable_pop(
    shared: &Shared,
    conn: &mut LoopConn,
    cid: &str,
    rotation: usize,
    block: Duration,
) -> Result<Option<(usize, Vec<u8>)>> {
    let rt = shared.client.conn().response_timeout();
    let order = rotated(shared, rotation);
    // Without blocking, over every queue in turn ...
    for q in &order {
        let k = &shared.queues[*q];
        let mut cmd = redis::cmd("LMOVE");
        cmd.arg(k.pending())
            .arg(k.inflight(cid))
            .arg("RIGHT")
            .arg("LEFT");
        if let Some(item) = conn
            .call(shared.client.conn(), &cmd, rt)
            .await?
            .into_opt_bytes()?
        {
            return Ok(Some((*q, item)));
        }
    }
    // ... then block on one (each queue gets a share of the block time).
    let q = order[0];
    let k = &shared.queues[q];
    let block = (block / shared.queues.len() as u32).max(Duration::from_millis(10));
    let mut cmd = redis::cmd("BLMOVE");
    cmd.arg(k.pending())
        .arg(k.inflight(cid))
        .arg("RIGHT")
        .arg("LEFT")
        .arg(block.as_secs_f64());
    Ok(conn
        .call(shared.client.conn(), &cmd, block + rt)
        .await?
        .into_opt_bytes()?
        .map(|item| (q, item)))
}

/// Reliable mode: settle a handled request, again and again (with the loop's backoff, its
/// failure reported once) until it is settled, the client is closed or the worker stops. A
/// request whose ack or nack failed (the connection broke under it) would otherwise stay in
/// this worker's in-flight list for as long as the worker lives, since a live worker's
/// lease never expires (found by the soak). Stopping leaves it there for `release`, which
/// puts it back in the queue.
fn settle_until_done(
    shared: &Shared,
    lp: &mut Loop,
    handle: &runtime::Rt,
    q: &QueueKeys,
    cid: &str,
    item: &[u8],
    outcome: &Result<()>,
) -> Result<()> {
    loop {
        match runtime::block_on(handle, settle(shared, lp, q, cid, item, outcome)).and_then(|r| r) {
            Err(e) if !e.is_closed() && !lp.stopped() => lp.failed("settling a request", e),
            Err(e) if e.is_closed() => return Err(e),
            _ => return Ok(()),
        }
    }
}

/// Reliable mode: ack (remove from in-flight) or nack (re-queue, or dead-letter). Both may
/// run again after a failure that hid whether they ran: a request no longer in flight
/// (settled already, or recovered by another worker) is left alone.
async fn settle(
    shared: &Shared,
    lp: &Loop,
    q: &QueueKeys,
    cid: &str,
    item: &[u8],
    outcome: &Result<()>,
) -> Result<()> {
    match outcome {
        Ok(()) => {
            let mut cmd = redis::cmd("LREM");
            cmd.arg(q.inflight(cid)).arg(1).arg(item);
            shared
                .client
                .run_cmd(&cmd)
                .await
                .map_err(|e| e.context("ack"))?;
            shared.count(|c| &c.handled, 1);
        }
        Err(err) => {
            let (attempt, payload) = decode_item(item);
            let attempts = attempt + 1;
            let max = shared.opts.max_attempts;
            let dead = attempts >= max;
            shared
                .client
                .run_script(
                    &NACK,
                    &[q.inflight(cid), q.pending(), q.dead()],
                    &[
                        item.to_vec(),
                        encode_retry(attempts, payload),
                        encode_dead(attempts, err.message(), payload),
                        if dead { b"1".to_vec() } else { b"0".to_vec() },
                    ],
                )
                .await
                .map_err(|e| e.context("nack"))?;
            shared.count(|c| &c.failed, 1);
            let report = if dead {
                shared.count(|c| &c.dead_lettered, 1);
                report_on(lp, ReportKind::DeadLettered, q).count(1)
            } else {
                report_on(lp, ReportKind::HandlerFailed, q)
            };
            lp.report(report.attempts(attempts, max).error(err.clone()));
        }
    }
    Ok(())
}

async fn recover(shared: &Shared, lp: &Loop) -> Result<()> {
    for q in &shared.queues {
        let mut base = q.base.clone();
        base.push(b':');
        let max = shared.opts.max_attempts.to_string();
        let counts = shared
            .client
            .run_script(
                &RECOVER,
                &[q.consumers(), q.pending(), q.dead()],
                &[
                    &base[..],
                    RETRY_MAGIC,
                    DEAD_MAGIC,
                    max.as_bytes(),
                    DIED.as_bytes(),
                ],
            )
            .await?;
        let count = |i: usize| {
            counts
                .as_slice()
                .and_then(|c| c.get(i))
                .and_then(Reply::as_int)
                .unwrap_or(0)
                .max(0) as u64
        };
        let (moved, dead) = (count(0), count(1));
        shared.count(|c| &c.recovered, moved + dead);
        if moved > 0 {
            lp.report(report_on(lp, ReportKind::Recovered, q).count(moved));
        }
        if dead > 0 {
            shared.count(|c| &c.dead_lettered, dead);
            let max = shared.opts.max_attempts;
            lp.report(
                report_on(lp, ReportKind::DeadLettered, q)
                    .count(dead)
                    .attempts(max, max)
                    .error(Error::handler(DIED)),
            );
        }
    }
    Ok(())
}

/// A clean stop: give back anything still in flight, drop the lease, leave the set.
async fn release(shared: &Shared, cid: &str) -> Result<()> {
    for q in &shared.queues {
        shared
            .client
            .run_script(
                &RELEASE,
                &[q.inflight(cid), q.pending(), q.lease(cid), q.consumers()],
                &[cid],
            )
            .await?;
    }
    Ok(())
}

impl Client {
    async fn schedule(&self, queue: &[u8], payload: &[u8], when: &str, mode: &[u8]) -> Result<()> {
        let prefix = &self.options().key_prefix;
        let q = QueueKeys::new(prefix, "q", queue)?;
        let mut member = rand::random::<u64>().to_be_bytes().to_vec();
        member.extend_from_slice(payload);
        self.run_script(
            &SCHEDULE,
            &[q.delayed()],
            &[
                &member[..],
                when.as_bytes(),
                mode,
                &delayed_channel(prefix, queue),
            ],
        )
        .await
        .map(|_| ())
    }

    /// Start a worker on `queues` (one `BRPOP` over all of them, in rotating order for
    /// fairness) running `handler` for every request; see [`WorkerOptions`].
    pub fn handle_requests<Q: AsRef<[u8]>>(
        &self,
        queues: &[Q],
        handler: impl Fn(&Request) -> Result<()> + Send + Sync + 'static,
        opts: WorkerOptions,
    ) -> Result<Worker> {
        let keys = queues
            .iter()
            .map(|q| match opts.bare {
                true => QueueKeys::bare(q.as_ref()),
                false => QueueKeys::new(&self.options().key_prefix, "q", q.as_ref()),
            })
            .collect::<Result<Vec<_>>>()?;
        Worker::start(
            self.clone(),
            keys,
            Arc::new(handler),
            opts,
            ReportSource::Worker,
        )
    }
}

client_methods! {
    /// Send a request: `LPUSH` the payload into the queue (any size, including empty).
    pub async fn send_request(
        &self,
        queue: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
    ) -> Result<()> {
        let q = QueueKeys::new(&self.options().key_prefix, "q", queue.as_ref())?;
        self.command(&[b"LPUSH".as_slice(), &q.pending(), payload.as_ref()])
            .await
            .map(|_| ())
    }

    /// Send a request that a worker of `queue` takes no earlier than `delay` from now (the
    /// server's clock). It waits in the queue's delayed set, and whichever worker of the
    /// queue runs moves it into the queue when due (atomically: never twice, never lost),
    /// then it is handled like any request; an idle worker is told at once. No worker
    /// running: it waits, and goes into the queue when one starts.
    pub async fn send_request_delayed(
        &self,
        queue: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        delay: Duration,
    ) -> Result<()> {
        let ms = delay.as_millis().to_string();
        self.schedule(queue.as_ref(), payload.as_ref(), &ms, b"in").await
    }

    /// [`send_request_delayed`](Client::send_request_delayed) due at the time `at` (a
    /// wall-clock time, compared with the server's clock: mind the skew).
    pub async fn send_request_at(
        &self,
        queue: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        at: std::time::SystemTime,
    ) -> Result<()> {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Error::invalid("a due time before 1970"))?
            .as_millis()
            .to_string();
        self.schedule(queue.as_ref(), payload.as_ref(), &ms, b"at").await
    }

    /// Send a request to the list `list` itself: `LPUSH list payload`, what a redis-ipc
    /// fleet's consumer (`BRPOP list`) and a worker with [`WorkerOptions::bare`] take.
    pub async fn send_request_bare(
        &self,
        list: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
    ) -> Result<()> {
        let q = QueueKeys::bare(list.as_ref())?;
        self.command(&[b"LPUSH".as_slice(), &q.pending(), payload.as_ref()])
            .await
            .map(|_| ())
    }

    /// Pending, in-flight and dead-letter counts of a queue.
    pub async fn queue_stats(&self, queue: impl AsRef<[u8]>) -> Result<QueueCounts> {
        let q = QueueKeys::new(&self.options().key_prefix, "q", queue.as_ref())?;
        let consumers = self
            .command(&[b"SMEMBERS".as_slice(), &q.consumers()])
            .await?;
        let mut pipe = self.pipeline();
        pipe.add(&[b"LLEN".as_slice(), &q.pending()])?;
        pipe.add(&[b"LLEN".as_slice(), &q.dead()])?;
        pipe.add(&[b"ZCARD".as_slice(), &q.delayed()])?;
        for c in consumers.as_slice().unwrap_or(&[]) {
            if let Some(cid) = c.as_bytes() {
                pipe.add(&[
                    b"LLEN".as_slice(),
                    &q.inflight(&String::from_utf8_lossy(cid)),
                ])?;
            }
        }
        let r = pipe.exec().await?;
        let n = |r: &Reply| r.as_int().unwrap_or(0).max(0) as u64;
        Ok(QueueCounts {
            pending: r.first().map(n).unwrap_or(0),
            dead: r.get(1).map(n).unwrap_or(0),
            delayed: r.get(2).map(n).unwrap_or(0),
            inflight: r.iter().skip(3).map(n).sum(),
        })
    }

    /// The dead letters of a queue (oldest first), without removing them.
    pub async fn dead_letters(&self, queue: impl AsRef<[u8]>) -> Result<Vec<DeadLetter>> {
        let q = QueueKeys::new(&self.options().key_prefix, "q", queue.as_ref())?;
        let r = self
            .command(&[b"LRANGE".as_slice(), &q.dead(), b"0", b"-1"])
            .await?;
        let mut out = Vec::new();
        for item in r.as_slice().unwrap_or(&[]).iter().rev() {
            if let Some((attempts, error, payload)) = item.as_bytes().and_then(decode_dead) {
                out.push(DeadLetter {
                    payload: Bytes::copy_from_slice(payload),
                    attempts,
                    error: error.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Put every dead letter of a queue back into it (attempts start over); returns how
    /// many.
    pub async fn requeue_dead_letters(&self, queue: impl AsRef<[u8]>) -> Result<u64> {
        let q = QueueKeys::new(&self.options().key_prefix, "q", queue.as_ref())?;
        let none: &[&[u8]] = &[];
        Ok(self
            .run_script(&REQUEUE_DEAD, &[q.dead(), q.pending()], none)
            .await?
            .into_int()?
            .max(0) as u64)
    }
}

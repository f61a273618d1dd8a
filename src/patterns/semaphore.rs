//! Counting semaphores with leases, shared by every process that uses the same name.
//!
//! Keys (one hash tag: one slot): `{prefix}{sem:NAME}:holders`, a sorted set of permit ids
//! scored by lease expiry (server time, ms): a permit whose holder died without releasing
//! it frees itself when its lease runs out; `...:queue`, the waiters in arrival order
//! (scored by a ticket from `...:seq`), and `...:alive`, each waiter's own expiry (a waiter
//! refreshes it while it waits, so one that died leaves the queue). A permit goes only to a
//! waiter with fewer waiters ahead of it than free permits: first come, first served, so no
//! waiter starves. A release publishes on `{prefix}sem-released:NAME`, which wakes the
//! waiters at once (the client's notifier); they also look again when the oldest lease runs
//! out. All of it is Lua on the server's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::patterns::script::Script;

/// How long a waiter stays in the queue without refreshing, and how often it refreshes.
const WAITER_TTL_MS: u64 = 6_000;
const WAITER_REFRESH: Duration = Duration::from_secs(2);

/// Prune expired holders and waiters, then make every key live as long as its longest
/// entry (plus a minute), so an idle semaphore leaves nothing behind. Defines `now` (ms).
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, w in ipairs(gone) do redis.call('ZREM', KEYS[2], w) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local function keep()
  local last = now
  for _, k in ipairs({KEYS[1], KEYS[3]}) do
    local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
    if top[2] and tonumber(top[2]) > last then last = tonumber(top[2]) end
  end
  for _, k in ipairs(KEYS) do redis.call('PEXPIREAT', k, last + 60000) end
end
local function oldest()
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then return tonumber(first[2]) - now end
  return -1
end
";

/// KEYS: holders, queue, alive, seq. ARGV: permits, lease ms, permit id, waiter id, waiter
/// ttl ms, wait (1: join the queue when refused). Returns {1, lease ms} when acquired,
/// {0, ms until the oldest lease ends (-1: none)} when not.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{PRELUDE}
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], ARGV[4])
local ahead = rank or redis.call('ZCARD', KEYS[2])
if free > 0 and ahead < free then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
  keep()
  return {{1, tonumber(ARGV[2])}}
end
if ARGV[6] == '1' then
  if not rank then
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[4])
  end
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
end
keep()
return {{0, oldest()}}"
    ))
});

/// KEYS: holders, queue, alive, seq. ARGV: permit id, channel. Returns 1 if it was held.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{PRELUDE}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], '1')
  return 1
end
return 0"
    ))
});

/// KEYS: holders, queue, alive, seq. ARGV: permit id, lease ms. Returns 1 if still held.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{PRELUDE}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  keep()
  return 1
end
return 0"
    ))
});

/// KEYS: holders, queue, alive, seq. ARGV: waiter id, channel. Leaves the queue and wakes
/// the others (the one that left may have been ahead of them).
static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], '0')
end
return 1",
    )
});

/// KEYS: holders, queue, alive, seq. Returns the number of live holders.
static HOLDERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{PRELUDE}
return redis.call('ZCARD', KEYS[1])"
    ))
});

#[derive(Debug)]
struct Keys {
    keys: [Vec<u8>; 4],
    channel: Vec<u8>,
    name: Bytes,
}

/// A counting semaphore (see the module docs); made by [`Client::semaphore`].
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    keys: Arc<Keys>,
    permits: u64,
    lease: Duration,
}

fn random_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

impl Semaphore {
    /// The lease the bindings use when none is given: 30 s.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// Take a permit, waiting up to `wait` (`None`: as long as it takes; zero: try once):
    /// a [`ErrorKind::Timeout`] error when none came. Waiters are served in arrival order.
    pub async fn acquire(&self, wait: Option<Duration>) -> Result<Permit> {
        let permit = random_id();
        let waiter = random_id();
        let deadline = wait.map(|w| Instant::now() + w);
        let lease = self.lease.as_millis().to_string();
        let permits = self.permits.to_string();
        let ttl = WAITER_TTL_MS.to_string();
        let attempt = |join: bool| {
            let args = [
                permits.as_bytes(),
                lease.as_bytes(),
                permit.as_bytes(),
                waiter.as_bytes(),
                ttl.as_bytes(),
                if join { b"1" } else { b"0" },
            ];
            async move {
                let r = self
                    .client
                    .run_script(&ACQUIRE, &self.keys.keys, &args)
                    .await
                    .map_err(|e| e.context(self.what()))?;
                let parts = r.as_slice().unwrap_or(&[]);
                let ok = parts.first().and_then(|r| r.as_int()) == Some(1);
                Ok::<_, Error>((ok, parts.get(1).and_then(|r| r.as_int()).unwrap_or(-1)))
            }
        };
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{}: no permit free within {:?}",
                    self.what(),
                    wait.unwrap_or_default()
                ),
            )
        };
        let waits = deadline.is_none_or(|d| d > Instant::now());
        let (ok, _) = attempt(false).await?;
        if ok {
            return Ok(self.permit(permit));
        }
        if !waits {
            return Err(timed_out());
        }
        // Listen for releases before joining the queue, so none is missed.
        let notifier = self.client.notifier().await?;
        let interest = notifier
            .interest(Bytes::from(self.keys.channel.clone()))
            .await?;
        // Leave the queue however this ends (an error, a timeout, a cancelled future).
        let leave = Leave {
            sem: self,
            waiter: &waiter,
            armed: true,
        };
        loop {
            let notified = interest.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (ok, oldest) = attempt(true).await?;
            if ok {
                leave.disarm();
                return Ok(self.permit(permit));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                drop(leave);
                return Err(timed_out());
            }
            // Wake on a release, when the oldest lease runs out, or to stay in the queue.
            let mut sleep = WAITER_REFRESH;
            if oldest >= 0 {
                sleep = sleep.min(Duration::from_millis(oldest as u64 + 2));
            }
            let mut until = now + sleep;
            if let Some(d) = deadline {
                until = until.min(d);
            }
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// How many permits are held now (expired leases not counted).
    pub async fn held(&self) -> Result<u64> {
        let none: &[&[u8]] = &[];
        let r = self
            .client
            .run_script(&HOLDERS, &self.keys.keys, none)
            .await
            .map_err(|e| e.context(self.what()))?;
        Ok(r.into_int()?.max(0) as u64)
    }

    /// The semaphore's name.
    pub fn name(&self) -> &[u8] {
        &self.keys.name
    }

    /// Its number of permits.
    pub fn permits(&self) -> u64 {
        self.permits
    }

    fn what(&self) -> String {
        format!("semaphore {:?}", String::from_utf8_lossy(&self.keys.name))
    }

    /// Give back the permit `id` (waking the waiters); whether it was held.
    async fn release_permit(&self, id: &str) -> Result<bool> {
        let r = self
            .client
            .run_script(
                &RELEASE,
                &self.keys.keys,
                &[id.as_bytes(), &self.keys.channel],
            )
            .await
            .map_err(|e| e.context(self.what()))?;
        Ok(r.into_int()? == 1)
    }

    fn permit(&self, id: String) -> Permit {
        Permit {
            sem: self.clone(),
            id,
            released: AtomicBool::new(false),
        }
    }
}

/// Leaves the waiters' queue when dropped (unless disarmed): in the background, since it
/// may be dropped inside the runtime (a cancelled acquire).
struct Leave<'a> {
    sem: &'a Semaphore,
    waiter: &'a str,
    armed: bool,
}

impl Leave<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        // Not in the child of a fork(): the queue place is the parent's (`crate::fork`).
        if !self.armed || self.sem.client.runtime_handle().inherited() {
            return;
        }
        let sem = self.sem.clone();
        let waiter = self.waiter.to_string();
        self.sem.client.runtime_handle().spawn(async move {
            let _ = sem
                .client
                .run_script(
                    &LEAVE,
                    &sem.keys.keys,
                    &[waiter.as_bytes(), &sem.keys.channel],
                )
                .await;
        });
    }
}

/// A held permit of a [`Semaphore`]. [`release`](Permit::release) it; dropping it releases
/// it in the background. Its lease ends after the semaphore's lease unless
/// [`extend`](Permit::extend)ed: a holder that died gives its permit back that way.
#[derive(Debug)]
pub struct Permit {
    sem: Semaphore,
    id: String,
    released: AtomicBool,
}

impl Permit {
    /// The permit's id (random, unique).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Give the permit back (waking the waiters); `false` if it was no longer held (its
    /// lease ran out).
    pub async fn release(self) -> Result<bool> {
        if self.released.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        self.sem.release_permit(&self.id).await
    }

    /// Extend the lease to `lease` from now; `false` if it was no longer held.
    pub async fn extend(&self, lease: Duration) -> Result<bool> {
        if lease.as_millis() == 0 {
            return Err(Error::invalid("a lease must be at least 1 ms"));
        }
        if self.released.load(Ordering::Acquire) {
            return Ok(false);
        }
        let ms = lease.as_millis().to_string();
        let r = self
            .sem
            .client
            .run_script(
                &EXTEND,
                &self.sem.keys.keys,
                &[self.id.as_bytes(), ms.as_bytes()],
            )
            .await
            .map_err(|e| e.context(self.sem.what()))?;
        Ok(r.into_int()? == 1)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let (sem, id) = (self.sem.clone(), std::mem::take(&mut self.id));
        // From a thread: released before `drop` returns; inside a runtime: soon after.
        self.sem.client.runtime_handle().run_or_spawn(async move {
            let _ = sem.release_permit(&id).await;
        });
    }
}

impl Client {
    /// A semaphore named `name` with `permits` permits whose leases last `lease` (a holder
    /// that dies gives its permit back after it). Every process must use the same number
    /// of permits for a name.
    pub fn semaphore(
        &self,
        name: impl AsRef<[u8]>,
        permits: u64,
        lease: Duration,
    ) -> Result<Semaphore> {
        let name = name.as_ref();
        if name.is_empty() || name.iter().any(|b| *b == b'{' || *b == b'}') {
            return Err(Error::invalid(
                "a semaphore name must be non-empty and contain no '{' or '}'",
            ));
        }
        if permits == 0 {
            return Err(Error::invalid("a semaphore needs at least 1 permit"));
        }
        if lease.as_millis() == 0 {
            return Err(Error::invalid("a semaphore lease must be at least 1 ms"));
        }
        let prefix = &self.options().key_prefix;
        let key = |suffix: &str| {
            let mut k = format!("{prefix}{{sem:").into_bytes();
            k.extend_from_slice(name);
            k.extend_from_slice(b"}:");
            k.extend_from_slice(suffix.as_bytes());
            k
        };
        let mut channel = format!("{prefix}sem-released:").into_bytes();
        channel.extend_from_slice(name);
        Ok(Semaphore {
            client: self.clone(),
            keys: Arc::new(Keys {
                keys: [key("holders"), key("queue"), key("alive"), key("seq")],
                channel,
                name: Bytes::copy_from_slice(name),
            }),
            permits,
            lease,
        })
    }
}

//! Distributed locks with fencing tokens.
//!
//! `{prefix}{lock:NAME}` holds the owner's random id with a TTL; `{prefix}{lock:NAME}:fence`
//! counts acquisitions, so every holder gets a token greater than any earlier holder's (a
//! store can refuse writes carrying an older token). Acquire, release and extend are Lua
//! scripts; a release publishes on `{prefix}lock-released:NAME`, which wakes waiters at once
//! (they also retry when the holder's TTL runs out).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::patterns::script::Script;

/// KEYS: lock, fence. ARGV: owner, ttl ms. Returns the token, or the holder's PTTL negated.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}",
    )
});

/// KEYS: lock. ARGV: owner, channel. Deletes only if still the owner.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '1')
  return 1
end
return 0",
    )
});

/// KEYS: lock. ARGV: owner, ttl ms.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0",
    )
});

/// Options of [`Client::lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockOptions {
    /// How long the lock lives without renewal (default 10 s).
    pub ttl: Duration,
    /// How long to wait for it (default 10 s; zero: try once).
    pub wait: Duration,
    /// Renew the lock every `ttl / 3` while the guard lives (default false).
    pub auto_renew: bool,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: Duration::from_secs(10),
            wait: Duration::from_secs(10),
            auto_renew: false,
        }
    }
}

impl LockOptions {
    /// Set the TTL.
    pub fn ttl(mut self, t: Duration) -> Self {
        self.ttl = t;
        self
    }
    /// Set the wait.
    pub fn wait(mut self, t: Duration) -> Self {
        self.wait = t;
        self
    }
    /// Turn automatic renewal on or off.
    pub fn auto_renew(mut self, on: bool) -> Self {
        self.auto_renew = on;
        self
    }
}

/// A held lock. [`release`](LockGuard::release) it; dropping it releases it in the
/// background.
pub struct LockGuard {
    client: Client,
    name: Bytes,
    owner: String,
    token: u64,
    released: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("token", &self.token)
            .finish()
    }
}

impl LockGuard {
    /// The fencing token: strictly greater than that of every earlier holder of this lock.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The lock's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Release the lock; `false` if it was no longer ours (it expired, and maybe somebody
    /// else holds it now).
    pub async fn release(mut self) -> Result<bool> {
        self.release_inner().await
    }

    async fn release_inner(&mut self) -> Result<bool> {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.released.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        let key = self.client.lock_key(&self.name)?;
        let chan = self.client.lock_channel(&self.name);
        let r = self
            .client
            .run_script(&RELEASE, &[&key], &[self.owner.as_bytes(), &chan])
            .await?;
        Ok(r.into_int()? == 1)
    }

    /// Extend the lock to `ttl` from now; `false` if it was no longer ours.
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        self.client.lock_extend(&self.name, &self.owner, ttl).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.client.runtime_handle().inherited() {
            // In the child of a fork(): the lock is the parent's, and so is the runtime
            // its renewer runs on (`crate::fork`); nothing is touched.
            std::mem::forget(self.renewer.take());
            return;
        }
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let client = self.client.clone();
        let name = self.name.clone();
        let owner = std::mem::take(&mut self.owner);
        // From a thread: released before `drop` returns; inside a runtime: soon after.
        self.client.runtime_handle().run_or_spawn(async move {
            if let (Ok(key), chan) = (client.lock_key(&name), client.lock_channel(&name)) {
                let _ = client
                    .run_script(&RELEASE, &[&key], &[owner.as_bytes(), &chan])
                    .await;
            }
        });
    }
}

impl Client {
    fn lock_key(&self, name: &[u8]) -> Result<Vec<u8>> {
        if name.is_empty() || name.iter().any(|b| *b == b'{' || *b == b'}') {
            return Err(Error::invalid(
                "a lock name must be non-empty and contain no '{' or '}'",
            ));
        }
        let mut k = format!("{}{{lock:", self.options().key_prefix).into_bytes();
        k.extend_from_slice(name);
        k.push(b'}');
        Ok(k)
    }

    fn lock_channel(&self, name: &[u8]) -> Vec<u8> {
        let mut k = format!("{}lock-released:", self.options().key_prefix).into_bytes();
        k.extend_from_slice(name);
        k
    }

    async fn lock_extend(&self, name: &[u8], owner: &str, ttl: Duration) -> Result<bool> {
        let key = self.lock_key(name)?;
        let ms = ttl.as_millis().max(1).to_string();
        let r = self
            .run_script(&EXTEND, &[&key], &[owner.as_bytes(), ms.as_bytes()])
            .await?;
        Ok(r.into_int()? == 1)
    }

    fn lock_guard(&self, name: &[u8], owner: String, token: i64, opts: LockOptions) -> LockGuard {
        let released = Arc::new(AtomicBool::new(false));
        let renewer = opts.auto_renew.then(|| {
            let (c, nm, ow, rel) = (
                self.clone(),
                Bytes::copy_from_slice(name),
                owner.clone(),
                released.clone(),
            );
            let ttl = opts.ttl;
            self.runtime_handle().spawn(async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    if rel.load(Ordering::Acquire) {
                        return;
                    }
                    match c.lock_extend(&nm, &ow, ttl).await {
                        Ok(true) => {}
                        Ok(false) => return, // lost it
                        Err(_) => {}         // try again next round
                    }
                }
            })
        });
        LockGuard {
            client: self.clone(),
            name: Bytes::copy_from_slice(name),
            owner,
            token: token.max(0) as u64,
            released,
            renewer,
        }
    }
}

client_handles! {
    /// Acquire the lock `name`, waiting up to `opts.wait`; a [`ErrorKind::Timeout`] error
    /// when it stayed taken. The guard carries a fencing token.
    pub async fn lock(&self, name: impl AsRef<[u8]>, opts: LockOptions) -> Result<LockGuard> {
        let name = name.as_ref();
        let key = self.lock_key(name)?;
        if opts.ttl.as_millis() == 0 {
            return Err(Error::invalid("a lock TTL must be at least 1 ms"));
        }
        let mut fence = key.clone();
        fence.extend_from_slice(b":fence");
        let owner = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let ms = opts.ttl.as_millis().to_string();
        let deadline = Instant::now() + opts.wait;
        let attempt = || async {
            let r = self
                .run_script(&ACQUIRE, &[&key, &fence], &[owner.as_bytes(), ms.as_bytes()])
                .await?;
            let parts = r.as_slice().unwrap_or(&[]);
            let ok = parts.first().and_then(|r| r.as_int()) == Some(1);
            Ok::<_, Error>((ok, parts.get(1).and_then(|r| r.as_int()).unwrap_or(0)))
        };
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "lock {:?} still taken after {:?}",
                    String::from_utf8_lossy(name),
                    opts.wait
                ),
            )
        };
        let (ok, n) = attempt().await?;
        if ok {
            return Ok(self.lock_guard(name, owner, n, opts));
        }
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        // Listen for releases before looking again, so none is missed.
        let notifier = self.notifier().await?;
        let interest = notifier
            .interest(Bytes::from(self.lock_channel(name)))
            .await?;
        loop {
            let notified = interest.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (ok, n) = attempt().await?;
            if ok {
                return Ok(self.lock_guard(name, owner, n, opts));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out());
            }
            // Wake on a release, or when the holder's TTL runs out.
            let pttl = if n < 0 {
                Duration::from_millis(50)
            } else {
                Duration::from_millis(n as u64 + 5)
            };
            let _ = tokio::time::timeout_at((now + pttl).min(deadline), notified).await;
        }
    }
}

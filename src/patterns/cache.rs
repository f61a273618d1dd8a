//! A cache with TTL and a blocking get.
//!
//! Keys live under `{prefix}cache:<key>`. [`Client::cache_set`] writes the value and, in the
//! same script, publishes the key on `{prefix}cache-set:<key>`; [`Client::cache_wait`]
//! listens there (subscribed before it first looks), so it wakes as soon as a writer of this
//! library sets the key. Writers that bypass the library (a plain `SET` from another client)
//! are noticed by a slow fallback check once a second, not by busy polling.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::patterns::script::Script;

/// How often `cache_wait` looks at the key without a notification (for writes that do not
/// go through this library).
const FALLBACK_CHECK: Duration = Duration::from_secs(1);

/// SET with an optional PX, then PUBLISH the key. KEYS: key. ARGV: value, ttl ms (0: none),
/// channel, user key.
static CACHE_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1",
    )
});

impl Client {
    fn cache_key(&self, key: &[u8]) -> Result<Vec<u8>> {
        if key.is_empty() {
            return Err(Error::invalid("a cache key must not be empty"));
        }
        let mut k = format!("{}cache:", self.options().key_prefix).into_bytes();
        k.extend_from_slice(key);
        Ok(k)
    }

    fn cache_channel(&self, key: &[u8]) -> Bytes {
        let mut k = format!("{}cache-set:", self.options().key_prefix).into_bytes();
        k.extend_from_slice(key);
        Bytes::from(k)
    }
}

client_methods! {
    /// Set `key` to `value`, expiring after `ttl` (`None`: never), and wake its waiters.
    pub async fn cache_set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let key = key.as_ref();
        let k = self.cache_key(key)?;
        let ms = match ttl {
            Some(t) if t.as_millis() == 0 => {
                return Err(Error::invalid("a cache TTL must be at least 1 ms"));
            }
            Some(t) => t.as_millis().to_string(),
            None => "0".to_string(),
        };
        let chan = self.cache_channel(key);
        self.run_script(&CACHE_SET, &[&k], &[value.as_ref(), ms.as_bytes(), &chan, key])
        .await
        .map(|_| ())
    }

    /// The value of `key`, or `None` when it is missing (or expired).
    pub async fn cache_get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let k = self.cache_key(key.as_ref())?;
        self.get(k).await
    }

    /// Delete `key`; `true` if it existed.
    pub async fn cache_delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let k = self.cache_key(key.as_ref())?;
        Ok(self.del(&[k]).await? == 1)
    }

    /// Whether `key` exists.
    pub async fn cache_exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let k = self.cache_key(key.as_ref())?;
        Ok(self.exists(&[k]).await? == 1)
    }

    /// Wait until `key` exists and return its value; `Ok(None)` when `timeout` passed first
    /// (a timeout is not an error). Wakes on the notification of [`Client::cache_set`].
    pub async fn cache_wait(
        &self,
        key: impl AsRef<[u8]>,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        let k = self.cache_key(key)?;
        let deadline = Instant::now() + timeout;
        let notifier = self.notifier().await?;
        let interest = notifier.interest(self.cache_channel(key)).await?;
        loop {
            let notified = interest.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.get(&k).await? {
                return Ok(Some(v));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wake = (now + FALLBACK_CHECK).min(deadline);
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
    }
}

//! Rate limiters shared by every process that uses the same name: GCRA (the generic cell
//! rate algorithm, as in redis-cell and go-redis/redis_rate) in one Lua script on the
//! server's clock. One key, `{prefix}{rate:NAME}`, holds the theoretical arrival time in
//! microseconds and expires when the limiter is idle again.
//!
//! `rate` per `per` with `burst`: a request of `n` is allowed when at most `burst` units
//! would be ahead of the steady rate; over any window `w` at most `burst + rate * w / per`
//! units pass. A refused request is told exactly when it would pass (`retry_after`), and
//! `acquire_wait` sleeps that long, no polling.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::patterns::script::Script;

/// KEYS: the limiter. ARGV: emission interval µs, burst tolerance µs (= burst * interval),
/// n. Returns {1, 0} when allowed, {0, µs to wait} when not.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[3]) * interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}",
    )
});

/// A rate limiter (see the module docs); made by [`Client::rate_limiter`].
#[derive(Debug, Clone)]
pub struct RateLimiter {
    client: Client,
    key: Bytes,
    name: Bytes,
    interval_us: u64,
    burst: u64,
}

impl RateLimiter {
    /// The period the bindings use when none is given: rates are per second.
    pub const DEFAULT_PER: Duration = Duration::from_secs(1);

    /// Take `n` units if the rate allows it now: `Ok(None)` when taken, `Ok(Some(wait))`
    /// when not (nothing taken; `n` would pass after `wait`).
    pub async fn acquire(&self, n: u64) -> Result<Option<Duration>> {
        self.check(n)?;
        let interval = self.interval_us.to_string();
        let tolerance = (self.interval_us * self.burst).to_string();
        let n = n.to_string();
        let r = self
            .client
            .run_script(
                &GCRA,
                &[&self.key[..]],
                &[interval.as_bytes(), tolerance.as_bytes(), n.as_bytes()],
            )
            .await
            .map_err(|e| e.context(format!("rate limiter {}", self.name_lossy())))?;
        let parts = r.as_slice().unwrap_or(&[]);
        let allowed = parts.first().and_then(|r| r.as_int()) == Some(1);
        if allowed {
            return Ok(None);
        }
        let wait = parts.get(1).and_then(|r| r.as_int()).unwrap_or(0).max(1);
        Ok(Some(Duration::from_micros(wait as u64)))
    }

    /// Take `n` units, waiting as long as the rate says (one sleep of exactly the wait the
    /// server named, then another try: only a competitor that got there first makes it wait
    /// again). `timeout` `None` waits as long as it takes; otherwise `false` as soon as the
    /// wait would end after the timeout (without sleeping in vain).
    pub async fn acquire_wait(&self, n: u64, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(wait) = self.acquire(n).await? else {
                return Ok(true);
            };
            if let Some(d) = deadline
                && Instant::now() + wait > d
            {
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// The limiter's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Units allowed at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    fn check(&self, n: u64) -> Result<()> {
        if n == 0 || n > self.burst {
            return Err(Error::invalid(format!(
                "rate limiter {}: n must be between 1 and the burst ({}), got {n}",
                self.name_lossy(),
                self.burst
            )));
        }
        Ok(())
    }

    fn name_lossy(&self) -> String {
        format!("{:?}", String::from_utf8_lossy(&self.name))
    }
}

impl Client {
    /// A rate limiter named `name`: `rate` units per `per`, `burst` at once (`None`: the
    /// rate, at least 1). Every process using the same name, rate and burst shares it (a
    /// process that passes other numbers applies its own to its own requests).
    pub fn rate_limiter(
        &self,
        name: impl AsRef<[u8]>,
        rate: f64,
        per: Duration,
        burst: Option<u64>,
    ) -> Result<RateLimiter> {
        let name = name.as_ref();
        if name.is_empty() || name.iter().any(|b| *b == b'{' || *b == b'}') {
            return Err(Error::invalid(
                "a rate limiter name must be non-empty and contain no '{' or '}'",
            ));
        }
        if !(rate.is_finite() && rate > 0.0) || per.is_zero() {
            return Err(Error::invalid(
                "a rate limiter needs a rate above 0 and a period above 0",
            ));
        }
        let interval_us = (per.as_secs_f64() * 1e6 / rate).round();
        if !(1.0..=1e15).contains(&interval_us) {
            return Err(Error::invalid(
                "a rate limiter's interval (period / rate) must be between 1 µs and 30 years",
            ));
        }
        let burst = burst.unwrap_or((rate.round() as u64).max(1));
        if burst == 0 {
            return Err(Error::invalid("a rate limiter's burst must be at least 1"));
        }
        let mut key = format!("{}{{rate:", self.options().key_prefix).into_bytes();
        key.extend_from_slice(name);
        key.push(b'}');
        Ok(RateLimiter {
            client: self.clone(),
            key: key.into(),
            name: Bytes::copy_from_slice(name),
            interval_us: interval_us as u64,
            burst,
        })
    }
}

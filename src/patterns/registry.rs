//! The service registry: every running RPC server (redipc protocol) is an instance of its
//! service, renewed by a heartbeat, with metadata (version, host, pid, the user's own
//! fields). It is also what makes a call fail with `NoServer`: one mechanism.
//!
//! Keys: `{prefix}{rpc:SERVICE}:servers`, a sorted set of instance ids scored by expiry
//! (server time, ms); `{prefix}{rpc:SERVICE}:instances`, a hash of instance id → metadata
//! (JSON); `{prefix}rpc:services`, a sorted set of service names scored by the expiry of
//! their newest instance (its own slot: the index of a cluster is read on its own). Every
//! write prunes what expired, on the server's clock, and the keys expire with their newest
//! entry, so services whose servers all died leave nothing behind.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::patterns::queue::QueueKeys;
use crate::patterns::script::Script;
use crate::reply::Reply;

/// How often a server renews its instance, and how long an instance lives without renewal.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
pub(crate) const TTL: Duration = Duration::from_secs(3);

const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: servers, instances. ARGV: id, ttl ms, metadata. Renews the instance, prunes
/// expired ones.
static ANNOUNCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}
local ttl = tonumber(ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(gone) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return now + ttl"
    ))
});

/// KEYS: servers, instances. ARGV: id. Removes the instance; returns how many are live.
static WITHDRAW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZCOUNT', KEYS[1], now, '+inf')"
    ))
});

/// KEYS: services. ARGV: service, ttl ms.
static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
return 1"
    ))
});

/// KEYS: servers, instances. Returns {id, metadata, ms left, ...} of the live instances.
static LIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}
local out = {{}}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  local meta = redis.call('HGET', KEYS[2], live[i]) or ''
  table.insert(out, live[i])
  table.insert(out, meta)
  table.insert(out, tonumber(live[i + 1]) - now)
end
return out"
    ))
});

/// KEYS: servers. Returns how many instances are live.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}
return redis.call('ZCOUNT', KEYS[1], now, '+inf')"
    ))
});

/// KEYS: services. Returns the services with a live instance.
static SERVICES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "{NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')"
    ))
});

/// One live server of a service, as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Instance {
    /// The service it serves.
    pub service: Bytes,
    /// Its id (random, unique per server).
    pub id: String,
    /// The version it announced ([`WorkerOptions::version`](crate::WorkerOptions::version)).
    pub version: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started serving (Unix time, ms; the server host's clock).
    pub started_ms: u64,
    /// The user's own fields ([`WorkerOptions::metadata`](crate::WorkerOptions::metadata)).
    pub metadata: Vec<(String, String)>,
    /// How long it stays listed without another heartbeat.
    pub expires_in: Duration,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Meta {
    #[serde(default)]
    version: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    started_ms: u64,
    #[serde(default)]
    metadata: Vec<(String, String)>,
}

/// The registry keys of one service.
pub(crate) struct ServiceKeys {
    pub(crate) servers: Vec<u8>,
    instances: Vec<u8>,
    services: Vec<u8>,
    service: Bytes,
}

impl ServiceKeys {
    pub(crate) fn new(client: &Client, keys: &QueueKeys) -> ServiceKeys {
        let base = keys.base();
        let key = |suffix: &str| {
            let mut k = base.to_vec();
            k.push(b':');
            k.extend_from_slice(suffix.as_bytes());
            k
        };
        ServiceKeys {
            servers: key("servers"),
            instances: key("instances"),
            services: format!("{}rpc:services", client.options().key_prefix).into_bytes(),
            service: keys.name.clone(),
        }
    }
}

/// What a server announces about itself.
pub(crate) fn metadata(version: &str, metadata: &[(String, String)]) -> Vec<u8> {
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::to_vec(&Meta {
        version: version.to_string(),
        host: hostname(),
        pid: std::process::id(),
        started_ms,
        metadata: metadata.to_vec(),
    })
    .unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Renew (or first announce) an instance, and its service in the index.
pub(crate) async fn announce(c: &Client, keys: &ServiceKeys, id: &str, meta: &[u8]) -> Result<()> {
    let ttl = TTL.as_millis().to_string();
    let mut pipe = c.pipeline();
    pipe.add_script(
        &ANNOUNCE,
        &[&keys.servers[..], &keys.instances],
        &[id.as_bytes(), ttl.as_bytes(), meta],
    )?;
    pipe.add_script(
        &INDEX,
        &[&keys.services],
        &[&keys.service[..], ttl.as_bytes()],
    )?;
    for r in pipe.exec().await? {
        if let Reply::Error(e) = r {
            return Err(Error::from(e).context("RPC registry"));
        }
    }
    Ok(())
}

/// Remove an instance (a server that stopped), and its service from the index when it
/// was the last (a server starting meanwhile puts it back with its next heartbeat).
pub(crate) async fn withdraw(c: &Client, keys: &ServiceKeys, id: &str) -> Result<()> {
    let left = c
        .run_script(
            &WITHDRAW,
            &[&keys.servers, &keys.instances],
            &[id.as_bytes()],
        )
        .await?
        .into_int()?;
    if left == 0 {
        c.command(&[b"ZREM".as_slice(), &keys.services, &keys.service])
            .await?;
    }
    Ok(())
}

/// Whether any instance of the service is live.
pub(crate) async fn has_server(c: &Client, keys: &ServiceKeys) -> Result<bool> {
    let none: &[&[u8]] = &[];
    Ok(c.run_script(&COUNT, &[&keys.servers], none)
        .await?
        .into_int()?
        > 0)
}

fn decode(service: &Bytes, id: &Reply, meta: &Reply, left: &Reply) -> Option<Instance> {
    let id = String::from_utf8_lossy(id.as_bytes()?).into_owned();
    let meta: Meta = serde_json::from_slice(meta.as_bytes().unwrap_or(b"{}")).unwrap_or_default();
    Some(Instance {
        service: service.clone(),
        id,
        version: meta.version,
        host: meta.host,
        pid: meta.pid,
        started_ms: meta.started_ms,
        metadata: meta.metadata,
        expires_in: Duration::from_millis(left.as_int().unwrap_or(0).max(0) as u64),
    })
}

client_methods! {
    /// The services with at least one live server (redipc protocol), sorted.
    pub async fn services(&self) -> Result<Vec<Bytes>> {
        let key = format!("{}rpc:services", self.options().key_prefix).into_bytes();
        let none: &[&[u8]] = &[];
        let r = self.run_script(&SERVICES, &[key], none).await?;
        let mut out: Vec<Bytes> = r
            .as_slice()
            .unwrap_or(&[])
            .iter()
            .filter_map(|r| r.as_bytes().map(Bytes::copy_from_slice))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The live servers of `service`, with what they announced; an instance that stopped
    /// heartbeating is gone within its TTL (3 s).
    pub async fn instances(&self, service: impl AsRef<[u8]>) -> Result<Vec<Instance>> {
        let q = QueueKeys::new(&self.options().key_prefix, "rpc", service.as_ref())
            .map_err(|e| e.context("RPC service name"))?;
        let keys = ServiceKeys::new(self, &q);
        let none: &[&[u8]] = &[];
        let r = self
            .run_script(&LIVE, &[&keys.servers, &keys.instances], none)
            .await?;
        Ok(r.as_slice()
            .unwrap_or(&[])
            .chunks_exact(3)
            .filter_map(|c| decode(&keys.service, &c[0], &c[1], &c[2]))
            .collect())
    }
}

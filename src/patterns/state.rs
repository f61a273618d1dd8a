//! Shared state in hashes (the device-state pattern): a publisher writes fields and
//! announces each change on a channel named like the hash; a watcher starts with a full
//! read and then follows the changes.
//!
//! Writes are Lua scripts, so the write and its announcement are one atomic step. The
//! message on the channel is the field name; `*` means "several or all fields changed".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::Client;
use crate::delivery::runner::{Loop, Runner};
use crate::error::{Error, Result};
use crate::net::runtime;
use crate::pubsub::{Event, SubscribeOptions, Subscription};
use crate::report::{ErrorHook, Report, ReportKind, ReportSource, call_handler};

/// KEYS: hash. ARGV: field, value. Always publishes.
const HSET_PUB: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1";

/// KEYS: hash. ARGV: field, value. Publishes only when the value changed; returns 1 then.
const HSET_IF_CHANGED: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1";

/// KEYS: hash. ARGV: summary flag ('1': publish '*' once), then field, value pairs.
const HSET_MANY: &str = r"
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if ARGV[1] == '1' then
  redis.call('PUBLISH', KEYS[1], '*')
else
  for i = 2, #ARGV, 2 do redis.call('PUBLISH', KEYS[1], ARGV[i]) end
end
return (#ARGV - 1) / 2";

/// KEYS: hash. ARGV: field. Returns 1 if it existed.
const HDEL_PUB: &str = r"
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if n == 1 then redis.call('PUBLISH', KEYS[1], ARGV[1]) end
return n";

/// KEYS: hash. ARGV: field, value pairs. Replaces the whole hash, publishes '*'.
const HREPLACE: &str = r"
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PUBLISH', KEYS[1], '*')
return 1";

fn check_hash(hash: &[u8]) -> Result<()> {
    if hash.is_empty() {
        return Err(Error::invalid("a hash name must not be empty"));
    }
    Ok(())
}

/// A change seen by a watcher: `value` is `None` when the field was deleted.
pub type FieldHandler = Box<dyn FnMut(&[u8], Option<&[u8]>) + Send>;

/// Options of [`Client::hash_watch`].
#[non_exhaustive]
#[derive(Default)]
pub struct WatchOptions {
    /// Handlers for single fields.
    pub on_field: HashMap<Vec<u8>, FieldHandler>,
    /// Handler for every field (after the field's own handler).
    pub on_any: Option<FieldHandler>,
    /// Deliver every current field first (default true).
    pub initial_sync: bool,
    /// Coalesce changes arriving within this window into one delivery per field.
    pub debounce: Option<Duration>,
    /// Told of a handler that panicked and of a read that failed (default: the client's
    /// hook, else stderr). A failed read is retried with backoff as a full re-read of the
    /// hash, so no change is lost.
    pub error_hook: Option<ErrorHook>,
}

impl WatchOptions {
    /// Defaults: initial sync on, no debounce, no handlers.
    pub fn new() -> Self {
        WatchOptions {
            initial_sync: true,
            ..Default::default()
        }
    }
    /// Handle one field.
    pub fn on_field(
        mut self,
        field: impl AsRef<[u8]>,
        f: impl FnMut(&[u8], Option<&[u8]>) + Send + 'static,
    ) -> Self {
        self.on_field.insert(field.as_ref().to_vec(), Box::new(f));
        self
    }
    /// Handle every field.
    pub fn on_any(mut self, f: impl FnMut(&[u8], Option<&[u8]>) + Send + 'static) -> Self {
        self.on_any = Some(Box::new(f));
        self
    }
    /// Turn the initial sync on or off.
    pub fn initial_sync(mut self, on: bool) -> Self {
        self.initial_sync = on;
        self
    }
    /// Set a debounce window.
    pub fn debounce(mut self, d: Duration) -> Self {
        self.debounce = Some(d);
        self
    }
    /// Where handler panics and read failures are reported (default: the client's hook,
    /// else stderr).
    pub fn error_hook(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }
}

/// A running hash watcher; its handlers run on a thread of its own, in order. Stop it with
/// [`HashWatcher::stop`] (or drop it): after that returns no handler runs.
pub struct HashWatcher {
    runner: Runner,
}

impl std::fmt::Debug for HashWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashWatcher").finish_non_exhaustive()
    }
}

impl HashWatcher {
    runner_methods!([runner], "hash watcher", "no handler call follows.");
}

struct WatchState {
    known: HashMap<Vec<u8>, Vec<u8>>,
    opts: WatchOptions,
}

impl WatchState {
    /// Deliver a field's value if it differs from what was delivered last (not once the
    /// watcher is stopping: a stop from inside a handler ends the delivery there).
    fn deliver(&mut self, lp: &Loop, field: &[u8], value: Option<Vec<u8>>) {
        if lp.stopped() {
            return;
        }
        let same = match (&value, self.known.get(field)) {
            (Some(v), Some(k)) => v == k,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        match &value {
            Some(v) => {
                self.known.insert(field.to_vec(), v.clone());
            }
            None => {
                self.known.remove(field);
            }
        }
        let v = value.as_deref();
        let failed = |e: Error| {
            lp.report(
                lp.report_of(ReportKind::HandlerFailed)
                    .item(String::from_utf8_lossy(field))
                    .error(e),
            );
        };
        if let Some(f) = self.opts.on_field.get_mut(field)
            && let Err(e) = call_handler(|| {
                f(field, v);
                Ok(())
            })
        {
            failed(e);
        }
        if !lp.stopped()
            && let Some(f) = self.opts.on_any.as_mut()
            && let Err(e) = call_handler(|| {
                f(field, v);
                Ok(())
            })
        {
            failed(e);
        }
    }

    /// Re-read the whole hash: deliver changed fields and deletions.
    fn full_sync(&mut self, lp: &Loop, all: Vec<(Vec<u8>, Vec<u8>)>) {
        let now: HashMap<Vec<u8>, Vec<u8>> = all.into_iter().collect();
        let gone: Vec<Vec<u8>> = self
            .known
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = now.into_iter().collect();
        fields.sort();
        for (f, v) in fields {
            self.deliver(lp, &f, Some(v));
        }
        for f in gone {
            self.deliver(lp, &f, None);
        }
    }
}

/// The watcher's loop: deliver the initial read, then follow the changes announced on the
/// hash's channel (re-reading the changed fields, or the whole hash after `*`, a reconnect
/// or a failed read).
fn watch_loop(
    lp: &mut Loop,
    client: Client,
    hash: Bytes,
    sub: Arc<Subscription>,
    initial: Vec<(Vec<u8>, Vec<u8>)>,
    opts: WatchOptions,
) {
    let handle = client.runtime_handle().clone();
    let sync = opts.initial_sync;
    let debounce = opts.debounce;
    let mut st = WatchState {
        known: HashMap::new(),
        opts,
    };
    if sync {
        st.full_sync(lp, initial);
    } else {
        st.known = initial.into_iter().collect();
    }
    let mut dirty: Vec<Vec<u8>> = Vec::new();
    let mut all = false;
    let mut since: Option<Instant> = None;
    // After a failed read: not again before this (backoff), and then whole.
    let mut retry_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(50);
    while !lp.stopped() {
        let mut wait = match (since, debounce) {
            (Some(t), Some(d)) => d.saturating_sub(t.elapsed()),
            _ => Duration::from_secs(1),
        };
        if let Some(t) = retry_at {
            wait = t.saturating_duration_since(Instant::now());
        }
        // `stop` closes the subscription: the wait ends at once.
        match sub.next_blocking(Some(wait)) {
            Ok(Some(Event::Message(m))) => {
                if &m.payload[..] == b"*" {
                    all = true;
                } else if !dirty.iter().any(|f| f[..] == m.payload[..]) {
                    dirty.push(m.payload.to_vec());
                }
                since.get_or_insert_with(Instant::now);
            }
            Ok(Some(Event::Reactivated { .. })) => {
                all = true;
                since.get_or_insert_with(Instant::now);
            }
            Ok(_) => {}
            Err(_) => return,
        }
        let due = match (since, debounce) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(t), Some(d)) => t.elapsed() >= d,
        } && retry_at.is_none_or(|t| Instant::now() >= t);
        if !due || lp.stopped() {
            continue;
        }
        since = None;
        let read = if all || retry_at.is_some() {
            runtime::block_on(&handle, client.hgetall(&hash[..]))
                .and_then(|r| r)
                .map(|v| st.full_sync(lp, v))
        } else {
            let mut r = Ok(());
            for field in &dirty {
                match runtime::block_on(&handle, client.hget(&hash[..], field)).and_then(|r| r) {
                    Ok(v) => st.deliver(lp, field, v),
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            r
        };
        match read {
            Ok(()) => {
                all = false;
                dirty.clear();
                retry_at = None;
                backoff = Duration::from_millis(50);
            }
            Err(e) if e.is_closed() => return,
            Err(e) => {
                lp.report(lp.report_of(ReportKind::ReadFailed).error(e));
                // Nothing is dropped: the retry reads the whole hash.
                since = Some(Instant::now());
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

client_methods! {
    /// `HSET hash field value` and publish `field` on the channel `hash`, atomically.
    pub async fn hash_set(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        check_hash(hash.as_ref())?;
        self.command(&[
            b"EVAL".as_slice(),
            HSET_PUB.as_bytes(),
            b"1",
            hash.as_ref(),
            field.as_ref(),
            value.as_ref(),
        ])
        .await
        .map(|_| ())
    }

    /// Like [`hash_set`](Client::hash_set), but writes and publishes only when the value
    /// differs; `true` if it changed.
    pub async fn hash_set_if_changed(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool> {
        check_hash(hash.as_ref())?;
        let r = self
            .command(&[
                b"EVAL".as_slice(),
                HSET_IF_CHANGED.as_bytes(),
                b"1",
                hash.as_ref(),
                field.as_ref(),
                value.as_ref(),
            ])
            .await?;
        Ok(r.into_int()? == 1)
    }

    /// Set several fields at once; publish each field, or `*` once when `summary`.
    pub async fn hash_set_many(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
        summary: bool,
    ) -> Result<()> {
        check_hash(hash.as_ref())?;
        if fields.is_empty() {
            return Err(Error::invalid("hash_set_many: give at least one field"));
        }
        let mut args: Vec<&[u8]> = vec![
            b"EVAL",
            HSET_MANY.as_bytes(),
            b"1",
            hash.as_ref(),
            if summary { b"1" } else { b"0" },
        ];
        for (f, v) in fields {
            args.push(f.as_ref());
            args.push(v.as_ref());
        }
        self.command(&args).await.map(|_| ())
    }

    /// Delete a field and publish it; `true` if it existed.
    pub async fn hash_delete(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
    ) -> Result<bool> {
        check_hash(hash.as_ref())?;
        let r = self
            .command(&[
                b"EVAL".as_slice(),
                HDEL_PUB.as_bytes(),
                b"1",
                hash.as_ref(),
                field.as_ref(),
            ])
            .await?;
        Ok(r.into_int()? == 1)
    }

    /// Replace the whole hash with `fields` and publish `*`.
    pub async fn hash_replace_all(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
    ) -> Result<()> {
        check_hash(hash.as_ref())?;
        let mut args: Vec<&[u8]> = vec![b"EVAL", HREPLACE.as_bytes(), b"1", hash.as_ref()];
        for (f, v) in fields {
            args.push(f.as_ref());
            args.push(v.as_ref());
        }
        self.command(&args).await.map(|_| ())
    }

    /// Watch a hash: subscribe to its channel first, then read it whole (the initial sync),
    /// then deliver each change. A value already delivered is not delivered again, so the
    /// overlap of the read and the first changes gives neither a gap nor a duplicate. After a
    /// reconnect the hash is read whole again. Handlers run on the watcher's own thread.
    pub async fn hash_watch(
        &self,
        hash: impl AsRef<[u8]>,
        opts: WatchOptions,
    ) -> Result<HashWatcher> {
        let hash = Bytes::copy_from_slice(hash.as_ref());
        check_hash(&hash)?;
        let sub = self
            .subscribe(&[&hash[..]], SubscribeOptions::default())
            .await?;
        let initial = self.hgetall(&hash[..]).await?;
        let sub = Arc::new(sub);
        let mut runner = Runner::new(
            ReportSource::HashWatcher,
            hash.clone(),
            self.reporter(opts.error_hook.as_ref()),
        );
        let s = sub.clone();
        runner.waker(Arc::new(move || s.close()));
        let client = self.clone();
        runner.spawn("redipc-hash-watch".into(), move |lp| {
            watch_loop(lp, client, hash, sub, initial, opts)
        })?;
        runner.started();
        Ok(HashWatcher { runner })
    }
}

//! Shared state in hashes (the device-state pattern): a publisher writes fields and
//! announces each change on a channel named like the hash; a watcher starts with a full
//! read and then follows the changes.
//!
//! Writes are Lua scripts, so the write and its announcement are one atomic step. The
//! message on the channel is the field name; `*` means "several or all fields changed". The
//! conventions of redis-ipc fleets are spoken too ([`HashWrite`], `docs/FLEET.md`): a chosen
//! announcement word for multi-field writes, `<field>:timestamp` fields, `cleared` and
//! `replaced`; a watcher can deliver every notification and hand payloads that are not
//! fields to an event handler.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::Client;
use crate::delivery::runner::{Loop, Runner};
use crate::error::{Error, Result};
use crate::net::runtime;
use crate::patterns::script::Script;
use crate::pubsub::{Event, SubscribeOptions, Subscription};
use crate::report::{ErrorHook, Report, ReportKind, ReportSource, call_handler};

/// KEYS: hash. ARGV: channel, announcement word ('': each field), timestamp ('': none),
/// then field, value pairs. Sets the fields (and `<field>:timestamp`), then publishes.
static HSET_ANNOUNCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[i] .. ':timestamp', ARGV[3]) end
end
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
else
  for i = 4, #ARGV, 2 do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
end
return (#ARGV - 3) / 2",
    )
});

/// KEYS: hash. ARGV: channel, field. Returns 1 if it existed (and was announced).
static HDEL_ANNOUNCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('HDEL', KEYS[1], ARGV[2])
if n == 1 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n",
    )
});

/// KEYS: hash. ARGV: channel, word, timestamp ('': none), then field, value pairs.
/// Replaces the whole hash (or clears it, without pairs), then publishes the word.
static HREPLACE_ANNOUNCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[i] .. ':timestamp', ARGV[3]) end
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1",
    )
});

/// Raise fault `code` of a group (the fleet's layout): `SADD <group>:fault code`; when it
/// is new, `XADD events:faults MAXLEN ~ 1000 * group g code c description d` and
/// `PUBLISH <group> fault`. KEYS: set, stream. ARGV: code, group, description. Returns 1
/// when the fault is new.
static FAULT_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*',
             'group', ARGV[2], 'code', ARGV[1], 'description', ARGV[3])
  redis.call('PUBLISH', ARGV[2], 'fault')
end
return added",
    )
});

/// Clear fault `code`: `SREM`; when it was set, `XADD ... code -<code>` and `PUBLISH
/// <group> fault`. KEYS: set, stream. ARGV: code, group. Returns 1 when it was set.
static FAULT_CLEAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local removed = redis.call('SREM', KEYS[1], ARGV[1])
if removed == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*',
             'group', ARGV[2], 'code', '-' .. ARGV[1])
  redis.call('PUBLISH', ARGV[2], 'fault')
end
return removed",
    )
});

/// Payloads on a hash's channel that mean "read it all again": ours (`*`) and the fleet's.
const REREAD: [&[u8]; 3] = [b"*", b"cleared", b"replaced"];

/// How a `<field>:timestamp` field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampFormat {
    /// RFC 3339 in UTC with milliseconds (`2026-12-04T21:40:00.123Z`).
    Rfc3339,
    /// Unix time in milliseconds (`1796420400123`), as librescoot/redis-ipc's Go
    /// `SetWithTimestamp` writes it.
    UnixMillis,
}

impl TimestampFormat {
    /// The timestamp of `t` in this format.
    pub fn format(self, t: std::time::SystemTime) -> String {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        match self {
            TimestampFormat::UnixMillis => ms.to_string(),
            TimestampFormat::Rfc3339 => {
                let (secs, milli) = (ms / 1000, ms % 1000);
                let (days, rem) = (secs / 86_400, secs % 86_400);
                let (y, m, d) = civil_from_days(days as i64);
                format!(
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
                    rem / 3600,
                    rem / 60 % 60,
                    rem % 60
                )
            }
        }
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How a hash write is announced and what it writes besides the fields: the defaults are
/// redipc's (the channel named like the hash, each field announced, `*` for a replace), the
/// options speak a redis-ipc fleet's words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashWrite {
    /// The channel the write is announced on (default: the hash's name).
    pub channel: Option<Bytes>,
    /// Also set `<field>:timestamp` for every field written, in this format.
    pub timestamp: Option<TimestampFormat>,
    /// The announcement: for a multi-field write, this word once instead of each field
    /// (the fleet's e.g. `blinker:state`); for a replace-all (default `*`) the fleet's
    /// `replaced`; for a clear (default `cleared`).
    pub announce: Option<Bytes>,
}

impl HashWrite {
    /// redipc's defaults.
    pub fn new() -> Self {
        HashWrite::default()
    }
    /// Announce on `channel` instead of the hash's name.
    pub fn channel(mut self, channel: impl AsRef<[u8]>) -> Self {
        self.channel = Some(Bytes::copy_from_slice(channel.as_ref()));
        self
    }
    /// Write `<field>:timestamp` fields in `format`.
    pub fn timestamp(mut self, format: TimestampFormat) -> Self {
        self.timestamp = Some(format);
        self
    }
    /// Announce with `word` (see [`HashWrite::announce`]).
    pub fn announce(mut self, word: impl AsRef<[u8]>) -> Self {
        self.announce = Some(Bytes::copy_from_slice(word.as_ref()));
        self
    }
    /// Announce a multi-field write with redipc's summary word `*` (watchers re-read the
    /// whole hash) instead of each field.
    pub fn summary(self) -> Self {
        self.announce("*")
    }

    fn channel_for<'a>(&'a self, hash: &'a [u8]) -> &'a [u8] {
        self.channel.as_deref().unwrap_or(hash)
    }

    fn stamp(&self) -> Vec<u8> {
        self.timestamp
            .map(|f| f.format(std::time::SystemTime::now()).into_bytes())
            .unwrap_or_default()
    }
}

/// KEYS: hash. ARGV: field, value. Publishes only when the value changed; returns 1 then.
static HSET_IF_CHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1",
    )
});

/// The fault set of `group` (`<group>:fault`) and the code as text.
fn fault_keys(group: &[u8], code: i64) -> Result<(Vec<u8>, String)> {
    if group.is_empty() {
        return Err(Error::invalid("a fault group name must not be empty"));
    }
    if code <= 0 {
        return Err(Error::invalid(format!(
            "a fault code must be positive (a cleared fault is written as -<code>), not {code}"
        )));
    }
    let mut set = group.to_vec();
    set.extend_from_slice(b":fault");
    Ok((set, code.to_string()))
}

fn check_hash(hash: &[u8]) -> Result<()> {
    if hash.is_empty() {
        return Err(Error::invalid("a hash name must not be empty"));
    }
    Ok(())
}

/// A change seen by a watcher: `value` is `None` when the field was deleted.
pub type FieldHandler = Box<dyn FnMut(&[u8], Option<&[u8]>) + Send>;

/// A payload on a hash's channel that is not one of its fields (a fleet's event, such as
/// `seatbox:opened`).
pub type EventHandler = Box<dyn FnMut(&[u8]) + Send>;

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
    /// hook, and the log). A failed read is retried with backoff as a full re-read of the
    /// hash, so no change is lost.
    pub error_hook: Option<ErrorHook>,
    /// Deliver every notification, reading the field each time, even when its value did
    /// not change (a keycard tapped twice), as redis-ipc fleets' watchers do; default false:
    /// a value already delivered is not delivered again.
    pub every_notification: bool,
    /// Handler of payloads on the channel that are not fields of the hash (neither now nor
    /// before): a fleet's events (`seatbox:opened`, `fault`). Without one they are ignored.
    pub on_event: Option<EventHandler>,
    /// The channel the hash's changes are announced on (default: the hash's name).
    pub channel: Option<Bytes>,
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
    /// and the log).
    pub fn error_hook(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }
    /// Deliver every notification (see [`WatchOptions::every_notification`]).
    pub fn every_notification(mut self, on: bool) -> Self {
        self.every_notification = on;
        self
    }
    /// Handle payloads that are not fields (see [`WatchOptions::on_event`]).
    pub fn on_event(mut self, f: impl FnMut(&[u8]) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }
    /// Follow `channel` instead of the channel named like the hash.
    pub fn channel(mut self, channel: impl AsRef<[u8]>) -> Self {
        self.channel = Some(Bytes::copy_from_slice(channel.as_ref()));
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
            (Some(v), Some(k)) => v == k && !self.opts.every_notification,
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

    /// A payload that is neither a field now nor one delivered before: an event.
    fn event(&mut self, lp: &Loop, payload: &[u8]) {
        let Some(f) = self.opts.on_event.as_mut() else {
            return;
        };
        if lp.stopped() {
            return;
        }
        if let Err(e) = call_handler(|| {
            f(payload);
            Ok(())
        }) {
            lp.report(
                lp.report_of(ReportKind::HandlerFailed)
                    .item(String::from_utf8_lossy(payload))
                    .error(e),
            );
        }
    }

    /// One announced payload, read: its field's value (delivered), its deletion (a field
    /// delivered before), or an event.
    fn notified(&mut self, lp: &Loop, payload: &[u8], value: Option<Vec<u8>>) {
        if value.is_none() && !self.known.contains_key(payload) {
            self.event(lp, payload);
        } else {
            self.deliver(lp, payload, value);
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
    let every = opts.every_notification;
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
                if REREAD.contains(&&m.payload[..]) {
                    all = true;
                } else if every || !dirty.iter().any(|f| f[..] == m.payload[..]) {
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
                .map(|v| {
                    let before: Vec<Vec<u8>> = st.known.keys().cloned().collect();
                    st.full_sync(lp, v);
                    // Payloads announced meanwhile that were never fields: events.
                    for p in &dirty {
                        if !st.known.contains_key(p) && !before.contains(p) {
                            st.event(lp, p);
                        }
                    }
                })
        } else {
            let mut r = Ok(());
            for field in &dirty {
                match runtime::block_on(&handle, client.hget(&hash[..], field)).and_then(|r| r) {
                    Ok(v) => st.notified(lp, field, v),
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
        self.hash_set_with(hash, field, value, HashWrite::new()).await
    }

    /// [`hash_set`](Client::hash_set) announced and stamped as `write` says (another
    /// channel, a `<field>:timestamp` field).
    pub async fn hash_set_with(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        write: HashWrite,
    ) -> Result<()> {
        self.hash_set_many_with(hash, &[(field, value)], write).await
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
        let r = self.run_script(&HSET_IF_CHANGED, &[hash.as_ref()], &[field.as_ref(), value.as_ref()])
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
        let write = if summary {
            HashWrite::new().summary()
        } else {
            HashWrite::new()
        };
        self.hash_set_many_with(hash, fields, write).await
    }

    /// Set several fields at once, atomically, and announce them as `write` says: each
    /// field, or one word ([`HashWrite::announce`], e.g. the fleet's `blinker:state`).
    pub async fn hash_set_many_with(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
        write: HashWrite,
    ) -> Result<()> {
        let hash = hash.as_ref();
        check_hash(hash)?;
        if fields.is_empty() {
            return Err(Error::invalid("hash_set_many: give at least one field"));
        }
        let stamp = write.stamp();
        let mut args: Vec<&[u8]> = vec![
            write.channel_for(hash),
            write.announce.as_deref().unwrap_or(b""),
            &stamp,
        ];
        for (f, v) in fields {
            args.push(f.as_ref());
            args.push(v.as_ref());
        }
        self.run_script(&HSET_ANNOUNCE, &[hash], &args).await.map(|_| ())
    }

    /// Delete a field and publish it; `true` if it existed.
    pub async fn hash_delete(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
    ) -> Result<bool> {
        self.hash_delete_with(hash, field, HashWrite::new()).await
    }

    /// [`hash_delete`](Client::hash_delete), announced on the channel `write` names.
    pub async fn hash_delete_with(
        &self,
        hash: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        write: HashWrite,
    ) -> Result<bool> {
        let hash = hash.as_ref();
        check_hash(hash)?;
        let r = self.run_script(&HDEL_ANNOUNCE, &[&hash], &[write.channel_for(hash), field.as_ref()])
            .await?;
        Ok(r.into_int()? == 1)
    }

    /// Replace the whole hash with `fields` and publish `*`.
    pub async fn hash_replace_all(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
    ) -> Result<()> {
        self.hash_replace_all_with(hash, fields, HashWrite::new()).await
    }

    /// Replace the whole hash with `fields`, atomically, and announce it with
    /// [`HashWrite::announce`] (default `*`; a redis-ipc fleet says `replaced`). Watchers
    /// read the hash whole again and report deleted fields.
    pub async fn hash_replace_all_with(
        &self,
        hash: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
        write: HashWrite,
    ) -> Result<()> {
        let hash = hash.as_ref();
        check_hash(hash)?;
        let stamp = write.stamp();
        let mut args: Vec<&[u8]> = vec![
            write.channel_for(hash),
            write.announce.as_deref().unwrap_or(b"*"),
            &stamp,
        ];
        for (f, v) in fields {
            args.push(f.as_ref());
            args.push(v.as_ref());
        }
        self.run_script(&HREPLACE_ANNOUNCE, &[hash], &args).await.map(|_| ())
    }

    /// Delete the whole hash and announce `cleared` (or [`HashWrite::announce`]) on its
    /// channel, atomically: the fleet's clear. Watchers read it again and report every
    /// field deleted.
    pub async fn hash_clear(&self, hash: impl AsRef<[u8]>, write: HashWrite) -> Result<()> {
        let hash = hash.as_ref();
        check_hash(hash)?;
        self.run_script(&HREPLACE_ANNOUNCE, &[&hash], &[write.channel_for(hash), write.announce.as_deref().unwrap_or(b"cleared"), b""])
        .await
        .map(|_| ())
    }

    /// Raise fault `code` of `group` in the fleet's layout, atomically: `SADD
    /// <group>:fault code`, and when it is new `XADD events:faults MAXLEN ~ 1000 * group
    /// <group> code <code> description <description>` and `PUBLISH <group> fault`. `true`
    /// when the fault is new.
    pub async fn fault_set(
        &self,
        group: impl AsRef<[u8]>,
        code: i64,
        description: impl AsRef<[u8]>,
    ) -> Result<bool> {
        let (set, code) = fault_keys(group.as_ref(), code)?;
        let r = self.run_script(&FAULT_SET, &[&set[..], b"events:faults"], &[code.as_bytes(), group.as_ref(), description.as_ref()])
            .await?;
        Ok(r.into_int()? == 1)
    }

    /// Clear fault `code` of `group`: `SREM`, and when it was set `XADD events:faults ...
    /// code -<code>` and `PUBLISH <group> fault`. `true` when it was set.
    pub async fn fault_clear(&self, group: impl AsRef<[u8]>, code: i64) -> Result<bool> {
        let (set, code) = fault_keys(group.as_ref(), code)?;
        let r = self.run_script(&FAULT_CLEAR, &[&set[..], b"events:faults"], &[code.as_bytes(), group.as_ref()])
            .await?;
        Ok(r.into_int()? == 1)
    }

    /// Watch a hash: subscribe to its channel first, then read it whole (the initial sync),
    /// then deliver each change. A value already delivered is not delivered again (unless
    /// [`WatchOptions::every_notification`]), so the overlap of the read and the first
    /// changes gives neither a gap nor a duplicate. `*`, `cleared` and `replaced` (and a
    /// reconnect) make it read the hash whole again, reporting deleted fields; a payload
    /// that is not a field goes to [`WatchOptions::on_event`]. Handlers run on the
    /// watcher's own thread.
    pub async fn hash_watch(
        &self,
        hash: impl AsRef<[u8]>,
        opts: WatchOptions,
    ) -> Result<HashWatcher> {
        let hash = Bytes::copy_from_slice(hash.as_ref());
        check_hash(&hash)?;
        let channel = opts.channel.clone().unwrap_or_else(|| hash.clone());
        let sub = self
            .subscribe(&[&channel[..]], SubscribeOptions::default())
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

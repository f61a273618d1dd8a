//! Event streams: publishing with a length bound, reading and following, and consumer
//! groups with acknowledgement, claiming from dead consumers and dead letters.
//!
//! Keys: the stream is the name the user gives (other Redis clients may read and write it);
//! its dead-letter stream is `<name>:dead`; the last error of each failing entry waits in
//! the hash `{prefix}stream-errors:<name>:<group>` until the entry is acked or
//! dead-lettered.
//!
//! A consumer reads new entries with `XREADGROUP ... >`, runs the handler, and `XACK`s only
//! on success: a failed entry stays pending. Every `claim_interval` it takes over entries
//! idle longer than `min_idle` (its own failed ones and those of dead consumers) with
//! `XAUTOCLAIM` and handles them again; an entry already delivered `max_deliveries` times is
//! moved to the dead-letter stream with its error instead.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::Client;
use crate::delivery::runner::{Loop, Runner};
use crate::error::{Error, ErrorKind, Result};
use crate::net::conn::Dedicated;
use crate::net::conn::{LoopConn, Unblock};
use crate::net::runtime::{self, Rt};
use crate::reply::Reply;
use crate::report::{ErrorHook, Report, ReportKind, ReportSource, call_handler};
use crate::stats::{self, ConsumerCounters};

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEntry {
    /// Its id (`1700000000000-0`).
    pub id: String,
    /// Its fields, in order.
    pub fields: Vec<(Bytes, Bytes)>,
    /// How many times it was delivered to a group consumer (1 the first time); 0 outside
    /// consumer groups.
    pub deliveries: u64,
}

impl StreamEntry {
    /// The value of the first field named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Bytes> {
        self.fields
            .iter()
            .find(|(k, _)| &k[..] == name)
            .map(|(_, v)| v)
    }
}

/// Parse `[id, [f, v, ...]]`.
fn parse_entry(r: &Reply) -> Option<StreamEntry> {
    let parts = r.as_slice()?;
    let id = String::from_utf8_lossy(parts.first()?.as_bytes()?).into_owned();
    let mut fields = Vec::new();
    if let Some(flat) = parts.get(1).and_then(|f| f.as_slice()) {
        for pair in flat.chunks_exact(2) {
            fields.push((
                Bytes::copy_from_slice(pair[0].as_bytes().unwrap_or_default()),
                Bytes::copy_from_slice(pair[1].as_bytes().unwrap_or_default()),
            ));
        }
    } else if let Some(map) = parts.get(1).and_then(|f| f.as_map()) {
        for (k, v) in map {
            fields.push((
                Bytes::copy_from_slice(k.as_bytes().unwrap_or_default()),
                Bytes::copy_from_slice(v.as_bytes().unwrap_or_default()),
            ));
        }
    }
    Some(StreamEntry {
        id,
        fields,
        deliveries: 0,
    })
}

fn parse_entries(r: &Reply) -> Vec<StreamEntry> {
    r.as_slice()
        .map(|v| v.iter().filter_map(parse_entry).collect())
        .unwrap_or_default()
}

/// Parse an `XREAD`/`XREADGROUP` reply (RESP3 map or RESP2 array of pairs) for one stream.
fn parse_read(r: &Reply) -> Vec<StreamEntry> {
    match r {
        Reply::Map(pairs) => pairs.iter().flat_map(|(_, v)| parse_entries(v)).collect(),
        Reply::Array(streams) => streams
            .iter()
            .filter_map(|s| s.as_slice().and_then(|p| p.get(1)))
            .flat_map(parse_entries)
            .collect(),
        _ => Vec::new(),
    }
}

fn check_id(id: &str) -> Result<()> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match id {
        "$" => true,
        _ => {
            let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
            digits(ms) && digits(seq)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid stream id {id:?}: use \"$\", \"0\" or MS-SEQ"
        )))
    }
}

fn check_name(what: &str, name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("a {what} name must not be empty")));
    }
    Ok(())
}

/// Options of a group consumer ([`Client::stream_consume`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct ConsumerOptions {
    /// Entries read per round trip (default 10).
    pub count: usize,
    /// How long one read blocks on the server (default 1 s; `stop` wakes a blocked read at
    /// once with `CLIENT UNBLOCK`, or within this time where ACLs forbid it).
    pub block: Duration,
    /// Entries pending longer than this are claimed (default 30 s).
    pub min_idle: Duration,
    /// An entry delivered more than this many times goes to the dead-letter stream
    /// (default 5).
    pub max_deliveries: u64,
    /// How often to look for entries to claim (default: `min_idle / 2`).
    pub claim_interval: Option<Duration>,
    /// Where the consumer's [`Report`]s go (default: the client's hook, and the log).
    pub error_hook: Option<ErrorHook>,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            count: 10,
            block: Duration::from_secs(1),
            min_idle: Duration::from_secs(30),
            max_deliveries: 5,
            claim_interval: None,
            error_hook: None,
        }
    }
}

impl std::fmt::Debug for ConsumerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerOptions")
            .field("count", &self.count)
            .field("block", &self.block)
            .field("min_idle", &self.min_idle)
            .field("max_deliveries", &self.max_deliveries)
            .field("claim_interval", &self.claim_interval)
            .finish_non_exhaustive()
    }
}

impl ConsumerOptions {
    /// Set the read count.
    pub fn count(mut self, n: usize) -> Self {
        self.count = n;
        self
    }
    /// Set the block time.
    pub fn block(mut self, t: Duration) -> Self {
        self.block = t;
        self
    }
    /// Set the idle time after which entries are claimed.
    pub fn min_idle(mut self, t: Duration) -> Self {
        self.min_idle = t;
        self
    }
    /// Set the deliveries before an entry is dead-lettered.
    pub fn max_deliveries(mut self, n: u64) -> Self {
        self.max_deliveries = n;
        self
    }
    /// Set the claim interval.
    pub fn claim_interval(mut self, t: Duration) -> Self {
        self.claim_interval = Some(t);
        self
    }
    /// Send the consumer's reports to `hook` instead of the client's hook (they are logged either way).
    pub fn error_hook(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }
}

/// A stream entry handler: `Ok(())` acks it; an error (make one with [`Error::handler`])
/// leaves it pending, to be retried after `min_idle`. A panic is a failure.
pub type EntryHandler = Arc<dyn Fn(&StreamEntry) -> Result<()> + Send + Sync>;

pub use crate::stats::ConsumerStats;

/// Pending entries of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingInfo {
    /// How many entries are delivered and not acked.
    pub count: u64,
    /// Per consumer name, how many.
    pub consumers: Vec<(String, u64)>,
}

struct ConsumerShared {
    client: Client,
    stream: Bytes,
    group: Bytes,
    consumer: Bytes,
    handler: EntryHandler,
    opts: ConsumerOptions,
    counts: ConsumerCounters,
    /// The loop's blocking connection, so that `stop` can end its read at once.
    unblock: Unblock,
}

impl ConsumerShared {
    /// Count `n` on this consumer and on its client's sum.
    fn count(&self, field: fn(&ConsumerCounters) -> &AtomicU64, n: u64) {
        stats::add(&self.counts, &self.client.counters().consumers, field, n);
    }

    fn errors_key(&self) -> Vec<u8> {
        let mut k = format!("{}stream-errors:", self.client.options().key_prefix).into_bytes();
        k.extend_from_slice(&in_its_slot(&self.client, &self.stream));
        k.push(b':');
        k.extend_from_slice(&self.group);
        k
    }

    fn dead_key(&self) -> Vec<u8> {
        dead_key(&self.client, &self.stream)
    }
}

/// The stream's name as the keys kept beside it (its dead letters, its consumers' errors)
/// hold it: as it is, or on a cluster `{name}` when the name has no hash tag of its own, so
/// that those keys share the stream's slot (the transaction that dead-letters an entry
/// touches all three).
fn in_its_slot<'a>(client: &Client, stream: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    let tagged = stream.iter().position(|&b| b == b'{').is_some_and(|open| {
        stream[open + 1..]
            .iter()
            .position(|&b| b == b'}')
            .is_some_and(|len| len > 0)
    });
    if client.conn().cluster().is_none() || tagged {
        return std::borrow::Cow::Borrowed(stream);
    }
    let mut k = Vec::with_capacity(stream.len() + 2);
    k.push(b'{');
    k.extend_from_slice(stream);
    k.push(b'}');
    std::borrow::Cow::Owned(k)
}

/// The dead-letter stream of `stream`: `<stream>:dead` (`{<stream>}:dead` on a cluster when
/// the name has no hash tag).
fn dead_key(client: &Client, stream: &[u8]) -> Vec<u8> {
    let mut k = in_its_slot(client, stream).into_owned();
    k.extend_from_slice(b":dead");
    k
}

/// A running group consumer, on a thread of its own; stop it with
/// [`StreamConsumer::stop`] (or drop it).
pub struct StreamConsumer {
    shared: Arc<ConsumerShared>,
    runner: Runner,
}

impl std::fmt::Debug for StreamConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConsumer")
            .field("stream", &self.shared.stream)
            .field("group", &self.shared.group)
            .field("consumer", &self.shared.consumer)
            .finish()
    }
}

impl StreamConsumer {
    /// Counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.shared.counts.snapshot()
    }

    runner_methods!(
        [runner],
        "stream consumer",
        "no more entries are read; the rest of a batch being handled stays pending (another consumer claims it after `min_idle`)."
    );
}

async fn call(
    conn: &mut Option<Dedicated>,
    client: &Client,
    cmd: &redis::Cmd,
    timeout: Duration,
) -> Result<Reply> {
    if conn.is_none() {
        *conn = Some(client.conn().dedicated(Some(cmd)).await?);
    }
    let Some(c) = conn.as_ref() else {
        return Err(Error::closed());
    };
    match tokio::time::timeout(timeout, c.command(cmd)).await {
        Ok(Ok(Reply::Error(e))) => {
            // In a cluster, the stream's slot moved: the next read goes to its owner.
            if e.code == "MOVED" {
                *conn = None;
            }
            Err(Error::from(e))
        }
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => {
            *conn = None;
            Err(e)
        }
        Err(_) => {
            *conn = None;
            Err(Error::new(
                ErrorKind::Timeout,
                format!("no reply within {timeout:?}"),
            ))
        }
    }
}

fn consumer_loop(s: Arc<ConsumerShared>, lp: &mut Loop) {
    let handle = s.client.runtime_handle().clone();
    let create = s
        .client
        .stream_group_create(&s.stream[..], &s.group[..], "0");
    if let Err(e) = runtime::block_on(&handle, create).and_then(|r| r) {
        if e.is_closed() {
            return;
        }
        lp.failed("creating the group", e);
    }
    let mut conn = LoopConn::new(&s.unblock);
    let claim_every = s
        .opts
        .claim_interval
        .unwrap_or(s.opts.min_idle / 2)
        .max(Duration::from_millis(10));
    let mut last_claim = Instant::now();
    while !lp.stopped() {
        let round = if last_claim.elapsed() >= claim_every {
            last_claim = Instant::now();
            runtime::block_on(&handle, claim(&s)).and_then(|r| r)
        } else {
            runtime::block_on(&handle, read_new(&s, &mut conn)).and_then(|r| r)
        };
        let entries = match round {
            Ok(e) => {
                lp.succeeded();
                e
            }
            Err(e) if e.is_closed() => return,
            Err(e) => {
                lp.failed("reading entries", e);
                continue;
            }
        };
        for entry in entries {
            // Stopping: the rest stays pending (another consumer claims it after min_idle).
            if lp.stopped() {
                break;
            }
            handle_entry(&s, lp, &handle, entry);
        }
    }
}

fn entry_report(lp: &Loop, kind: ReportKind, entry: &StreamEntry) -> Report {
    lp.report_of(kind)
        .item(entry.id.clone())
        .attempts(entry.deliveries.min(u32::MAX as u64) as u32, 0)
}

fn handle_entry(s: &ConsumerShared, lp: &mut Loop, handle: &Rt, entry: StreamEntry) {
    if entry.deliveries > s.opts.max_deliveries {
        if let Err(e) = runtime::block_on(handle, dead_letter(s, lp, &entry)).and_then(|r| r) {
            lp.failed("dead-lettering an entry", e.context(&entry.id));
        }
        return;
    }
    let outcome = call_handler(|| (s.handler)(&entry));
    let settle = async {
        match &outcome {
            Ok(()) => {
                let mut p = s.client.pipeline();
                p.add(&[b"XACK".as_slice(), &s.stream, &s.group, entry.id.as_bytes()])?;
                p.add(&[b"HDEL".as_slice(), &s.errors_key(), entry.id.as_bytes()])?;
                p.exec().await?;
                s.count(|c| &c.acked, 1);
            }
            Err(err) => {
                s.count(|c| &c.failed, 1);
                s.client
                    .command(&[
                        b"HSET".as_slice(),
                        &s.errors_key(),
                        entry.id.as_bytes(),
                        err.message().as_bytes(),
                    ])
                    .await?;
            }
        }
        Ok::<(), Error>(())
    };
    if let Err(e) = outcome.clone() {
        lp.report(entry_report(lp, ReportKind::HandlerFailed, &entry).error(e));
    }
    if let Err(e) = runtime::block_on(handle, settle).and_then(|r| r) {
        lp.failed("settling an entry", e.context(&entry.id));
    }
}

async fn read_new(s: &ConsumerShared, conn: &mut LoopConn) -> Result<Vec<StreamEntry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(&s.group[..])
        .arg(&s.consumer[..])
        .arg("COUNT")
        .arg(s.opts.count)
        .arg("BLOCK")
        .arg(s.opts.block.as_millis() as u64)
        .arg("STREAMS")
        .arg(&s.stream[..])
        .arg(">");
    let timeout = s.opts.block + s.client.conn().response_timeout();
    let r = conn.call(s.client.conn(), &cmd, timeout).await?;
    let mut entries = parse_read(&r);
    for e in &mut entries {
        e.deliveries = 1;
    }
    Ok(entries)
}

/// Take over entries idle longer than `min_idle`, with their delivery counts.
async fn claim(s: &ConsumerShared) -> Result<Vec<StreamEntry>> {
    let mut cmd = redis::cmd("XAUTOCLAIM");
    cmd.arg(&s.stream[..])
        .arg(&s.group[..])
        .arg(&s.consumer[..])
        .arg(s.opts.min_idle.as_millis() as u64)
        .arg("0-0")
        .arg("COUNT")
        .arg(s.opts.count);
    let r = s.client.run_cmd(&cmd).await?;
    let mut entries = r
        .as_slice()
        .and_then(|p| p.get(1))
        .map(parse_entries)
        .unwrap_or_default();
    if entries.is_empty() {
        return Ok(entries);
    }
    s.count(|c| &c.claimed, entries.len() as u64);
    // Delivery counts (XAUTOCLAIM raised them) from XPENDING of our consumer.
    let mut p = redis::cmd("XPENDING");
    p.arg(&s.stream[..])
        .arg(&s.group[..])
        .arg(&entries[0].id)
        .arg(&entries[entries.len() - 1].id)
        .arg(entries.len() * 10 + 100)
        .arg(&s.consumer[..]);
    let pending = s.client.run_cmd(&p).await?;
    let counts: HashMap<String, u64> = pending
        .as_slice()
        .unwrap_or(&[])
        .iter()
        .filter_map(|row| {
            let row = row.as_slice()?;
            let id = String::from_utf8_lossy(row.first()?.as_bytes()?).into_owned();
            let n = row.get(3)?.as_int()? as u64;
            Some((id, n))
        })
        .collect();
    for e in &mut entries {
        e.deliveries = counts.get(&e.id).copied().unwrap_or(1);
    }
    Ok(entries)
}

async fn dead_letter(s: &ConsumerShared, lp: &Loop, entry: &StreamEntry) -> Result<()> {
    let error = s
        .client
        .command(&[b"HGET".as_slice(), &s.errors_key(), entry.id.as_bytes()])
        .await?
        .into_opt_bytes()?
        .unwrap_or_else(|| b"(no error recorded: the consumer died while handling it)".to_vec());
    let mut args: Vec<Vec<u8>> = vec![b"XADD".to_vec(), s.dead_key(), b"*".to_vec()];
    for (k, v) in &entry.fields {
        args.push(k.to_vec());
        args.push(v.to_vec());
    }
    args.push(b"_id".to_vec());
    args.push(entry.id.clone().into_bytes());
    args.push(b"_group".to_vec());
    args.push(s.group.to_vec());
    args.push(b"_deliveries".to_vec());
    args.push(
        (entry.deliveries.saturating_sub(1))
            .to_string()
            .into_bytes(),
    );
    let last = String::from_utf8_lossy(&error).into_owned();
    args.push(b"_error".to_vec());
    args.push(error);
    let mut tx = s.client.tx();
    tx.add(&args)?;
    tx.add(&[b"XACK".as_slice(), &s.stream, &s.group, entry.id.as_bytes()])?;
    tx.add(&[b"HDEL".as_slice(), &s.errors_key(), entry.id.as_bytes()])?;
    for r in tx.exec().await? {
        if let Reply::Error(e) = r {
            return Err(Error::from(e));
        }
    }
    s.count(|c| &c.dead_lettered, 1);
    let mut r = entry_report(lp, ReportKind::DeadLettered, entry).count(1);
    r.attempt = entry.deliveries.saturating_sub(1).min(u32::MAX as u64) as u32;
    lp.report(r.error(Error::handler(last)));
    Ok(())
}

/// Follows a stream from a position, yielding entries as they come (its own connection).
pub struct StreamFollower {
    client: Client,
    stream: Bytes,
    last_id: String,
    buffer: VecDeque<StreamEntry>,
    conn: Option<Dedicated>,
}

impl std::fmt::Debug for StreamFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamFollower")
            .field("stream", &self.stream)
            .field("last_id", &self.last_id)
            .finish()
    }
}

impl StreamFollower {
    /// The id of the last entry returned (or the starting position).
    pub fn position(&self) -> &str {
        &self.last_id
    }

    /// The next entry, waiting up to `timeout`; `Ok(None)` when none came.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<StreamEntry>> {
        if self.buffer.is_empty() {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(100)
                .arg("BLOCK")
                .arg(timeout.as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(&self.stream[..])
                .arg(&self.last_id);
            let limit = timeout + self.client.conn().response_timeout();
            let r = call(&mut self.conn, &self.client, &cmd, limit).await?;
            self.buffer.extend(parse_read(&r));
        }
        let next = self.buffer.pop_front();
        if let Some(e) = &next {
            self.last_id.clone_from(&e.id);
        }
        Ok(next)
    }
}

impl Client {
    /// Consume a group as `consumer` on a thread of its own: see the module docs. The
    /// group is created (from `"0"`) if missing.
    pub fn stream_consume(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
        handler: impl Fn(&StreamEntry) -> Result<()> + Send + Sync + 'static,
        opts: ConsumerOptions,
    ) -> Result<StreamConsumer> {
        let (stream, group, consumer) = (stream.as_ref(), group.as_ref(), consumer.as_ref());
        check_name("stream", stream)?;
        check_name("group", group)?;
        check_name("consumer", consumer)?;
        if opts.count == 0 || opts.max_deliveries == 0 {
            return Err(Error::invalid(
                "count and max_deliveries must be at least 1",
            ));
        }
        if opts.block < Duration::from_millis(1) || opts.min_idle < Duration::from_millis(1) {
            // BLOCK 0 would wait forever and stop would never be noticed.
            return Err(Error::invalid("block and min_idle must be at least 1 ms"));
        }
        let runner = Runner::new(
            ReportSource::StreamConsumer,
            Bytes::copy_from_slice(stream),
            self.reporter(opts.error_hook.as_ref()),
        );
        let mut runner = runner.with_group(Bytes::copy_from_slice(group));
        let shared = Arc::new(ConsumerShared {
            client: self.clone(),
            stream: Bytes::copy_from_slice(stream),
            group: Bytes::copy_from_slice(group),
            consumer: Bytes::copy_from_slice(consumer),
            handler: Arc::new(handler),
            opts,
            counts: ConsumerCounters::default(),
            unblock: Unblock::default(),
        });
        // An idle loop sits in `XREADGROUP BLOCK`: `stop` ends it at once.
        let s = shared.clone();
        runner.waker(Arc::new(move || {
            let c = &s.client;
            let _ = runtime::block_on(c.runtime_handle(), s.unblock.unblock(c.conn()));
        }));
        let s = shared.clone();
        runner.spawn("redipc-stream".into(), move |lp| consumer_loop(s, lp))?;
        runner.started();
        Ok(StreamConsumer { shared, runner })
    }
}

client_methods! {
    /// `XADD stream MAXLEN ~ N * field value ...`: the new entry's id. `maxlen`: `None`
    /// uses [`crate::Options::stream_maxlen`], `Some(0)` means unbounded.
    pub async fn stream_publish(
        &self,
        stream: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
        maxlen: Option<usize>,
    ) -> Result<String> {
        let stream = stream.as_ref();
        check_name("stream", stream)?;
        if fields.is_empty() {
            return Err(Error::invalid("XADD: give at least one field"));
        }
        let maxlen = maxlen.unwrap_or(self.options().stream_maxlen);
        let n = maxlen.to_string();
        let mut args: Vec<&[u8]> = vec![b"XADD", stream];
        if maxlen > 0 {
            args.extend_from_slice(&[b"MAXLEN", b"~", n.as_bytes()]);
        }
        args.push(b"*");
        for (f, v) in fields {
            args.push(f.as_ref());
            args.push(v.as_ref());
        }
        let r = self.command(&args).await?;
        r.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| Error::new(ErrorKind::Protocol, "XADD did not return an id"))
    }

    /// `XREAD COUNT n [BLOCK ms] STREAMS stream from_id`: entries after `from_id` (`"0"`:
    /// from the start, `"$"`: only new ones, which needs `block`). A blocking read uses a
    /// connection of its own.
    pub async fn stream_read(
        &self,
        stream: impl AsRef<[u8]>,
        from_id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<StreamEntry>> {
        let stream = stream.as_ref();
        check_name("stream", stream)?;
        check_id(from_id)?;
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(stream).arg(from_id);
        let r = match block {
            None => self.run_cmd(&cmd).await?,
            Some(b) => {
                let mut conn = Some(self.conn().dedicated(Some(&cmd)).await?);
                let r = call(&mut conn, self, &cmd, b + self.conn().response_timeout()).await?;
                if let Some(c) = conn {
                    self.conn().put_dedicated(c);
                }
                r
            }
        };
        Ok(parse_read(&r))
    }

    /// The last entry, or `None` for an empty or missing stream.
    pub async fn stream_last(&self, stream: impl AsRef<[u8]>) -> Result<Option<StreamEntry>> {
        check_name("stream", stream.as_ref())?;
        let r = self
            .command(&[
                b"XREVRANGE".as_slice(),
                stream.as_ref(),
                b"+",
                b"-",
                b"COUNT",
                b"1",
            ])
            .await?;
        Ok(parse_entries(&r).into_iter().next())
    }

    /// `XLEN`.
    pub async fn stream_len(&self, stream: impl AsRef<[u8]>) -> Result<u64> {
        check_name("stream", stream.as_ref())?;
        Ok(self
            .command(&[b"XLEN".as_slice(), stream.as_ref()])
            .await?
            .into_int()?
            .max(0) as u64)
    }

    /// Create a consumer group (and the stream if missing) starting at `from_id` (`"$"` or
    /// `"0"` or an id). `Ok(false)` if the group already existed (not an error).
    pub async fn stream_group_create(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        from_id: &str,
    ) -> Result<bool> {
        check_name("stream", stream.as_ref())?;
        check_name("group", group.as_ref())?;
        check_id(from_id)?;
        match self
            .command(&[
                b"XGROUP".as_slice(),
                b"CREATE",
                stream.as_ref(),
                group.as_ref(),
                from_id.as_bytes(),
                b"MKSTREAM",
            ])
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pending (delivered, not acked) entries of a group, in all and per consumer.
    pub async fn stream_pending(
        &self,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
    ) -> Result<PendingInfo> {
        let r = self
            .command(&[b"XPENDING".as_slice(), stream.as_ref(), group.as_ref()])
            .await?;
        let parts = r.as_slice().unwrap_or(&[]);
        let count = parts.first().and_then(Reply::as_int).unwrap_or(0).max(0) as u64;
        let consumers = parts
            .get(3)
            .and_then(Reply::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|row| {
                let row = row.as_slice()?;
                Some((
                    String::from_utf8_lossy(row.first()?.as_bytes()?).into_owned(),
                    row.get(1)?.as_int()?.max(0) as u64,
                ))
            })
            .collect();
        Ok(PendingInfo { count, consumers })
    }

    /// The dead letters of a stream (entries of `<stream>:dead`, oldest first; on a cluster
    /// `{<stream>}:dead` when the stream's name has no hash tag, so that it shares the
    /// stream's slot).
    pub async fn stream_dead_letters(
        &self,
        stream: impl AsRef<[u8]>,
        count: usize,
    ) -> Result<Vec<StreamEntry>> {
        let dead = dead_key(self, stream.as_ref());
        let n = count.max(1).to_string();
        let r = self
            .command(&[
                b"XRANGE".as_slice(),
                &dead,
                b"-",
                b"+",
                b"COUNT",
                n.as_bytes(),
            ])
            .await?;
        Ok(parse_entries(&r))
    }
}

client_handles! {
    /// Follow a stream from `from_id` (`"$"`: new entries only, `"0"`: everything).
    ///
    /// `"$"` is pinned now to the stream's last id, so whatever is published from this call
    /// on is seen, even between calls of `next`.
    pub async fn stream_follow(
        &self,
        stream: impl AsRef<[u8]>,
        from_id: &str,
    ) -> Result<StreamFollower> {
        let stream = stream.as_ref();
        check_name("stream", stream)?;
        check_id(from_id)?;
        let last_id = if from_id == "$" {
            self.stream_last(stream)
                .await?
                .map(|e| e.id)
                .unwrap_or_else(|| "0-0".to_string())
        } else {
            from_id.to_string()
        };
        Ok(StreamFollower {
            client: self.clone(),
            stream: Bytes::copy_from_slice(stream),
            last_id,
            buffer: VecDeque::new(),
            conn: None,
        })
    }
}

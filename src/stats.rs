//! Client statistics, cheap enough to be always on: a handful of relaxed atomic counters
//! per client and a log-linear latency histogram (HDR-style: 4 buckets per power of two of
//! microseconds, so any value is placed within 25 %), read with [`crate::Client::stats`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ErrorKind;

/// Kinds whose failures are counted apart, in [`ClientStats::failed`]'s order.
const KINDS: [ErrorKind; 12] = [
    ErrorKind::Connection,
    ErrorKind::Timeout,
    ErrorKind::Server,
    ErrorKind::Protocol,
    ErrorKind::InvalidArgument,
    ErrorKind::Closed,
    ErrorKind::Unsupported,
    ErrorKind::Watch,
    ErrorKind::Remote,
    ErrorKind::NoServer,
    ErrorKind::Handler,
    ErrorKind::Aborted,
];

/// The place of `kind` in [`KINDS`] (a match, so a new kind cannot be forgotten).
fn index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Connection => 0,
        ErrorKind::Timeout => 1,
        ErrorKind::Server => 2,
        ErrorKind::Protocol => 3,
        ErrorKind::InvalidArgument => 4,
        ErrorKind::Closed => 5,
        ErrorKind::Unsupported => 6,
        ErrorKind::Watch => 7,
        ErrorKind::Remote => 8,
        ErrorKind::NoServer => 9,
        ErrorKind::Handler => 10,
        ErrorKind::Aborted => 11,
    }
}

/// Sub-buckets per power of two.
const SUB: u32 = 4;
/// Buckets: values up to 2^36 µs (about 19 hours); anything longer lands in the last.
const BUCKETS: usize = 144;

fn bucket_of(micros: u64) -> usize {
    let v = micros.max(1);
    let e = 63 - v.leading_zeros(); // floor(log2 v)
    let i = if e < 2 {
        v as usize
    } else {
        let sub = ((v >> (e - 2)) & u64::from(SUB - 1)) as usize;
        (SUB as usize) * (e as usize - 1) + sub
    };
    i.min(BUCKETS - 1)
}

/// The largest value (µs) bucket `i` holds.
fn bucket_upper(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let e = i as u32 / SUB + 1;
    let sub = (i as u32 % SUB) as u64;
    // Values v with floor(log2 v) == e and (v >> (e-2)) & 3 == sub.
    ((4 + sub + 1) << (e - 2)) - 1
}

/// Counters of one worker (or RPC server), or the sum of a client's ([`ClientStats::workers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Requests handled successfully.
    pub handled: u64,
    /// Handler failures (each retry counts).
    pub failed: u64,
    /// Requests this worker moved to the dead-letter list.
    pub dead_lettered: u64,
    /// Requests of dead workers this worker recovered: put back into the queue, or (after
    /// `max_attempts` deaths) into the dead-letter list.
    pub recovered: u64,
}

/// Counters of a group consumer, or the sum of a client's ([`ClientStats::consumers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Entries handled and acked.
    pub acked: u64,
    /// Handler failures.
    pub failed: u64,
    /// Entries taken over from idle consumers (or retried after failing).
    pub claimed: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

/// A worker's counters, kept by the worker and summed by its client.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) handled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) recovered: AtomicU64,
}

impl WorkerCounters {
    pub(crate) fn snapshot(&self) -> WorkerStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerStats {
            handled: load(&self.handled),
            failed: load(&self.failed),
            dead_lettered: load(&self.dead_lettered),
            recovered: load(&self.recovered),
        }
    }
}

/// A group consumer's counters, kept by the consumer and summed by its client.
#[derive(Default)]
pub(crate) struct ConsumerCounters {
    pub(crate) acked: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) claimed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
}

impl ConsumerCounters {
    pub(crate) fn snapshot(&self) -> ConsumerStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConsumerStats {
            acked: load(&self.acked),
            failed: load(&self.failed),
            claimed: load(&self.claimed),
            dead_lettered: load(&self.dead_lettered),
        }
    }
}

/// Add `n` to the same counter of a handle and of its client's sum.
pub(crate) fn add<C>(own: &C, sum: &C, field: fn(&C) -> &AtomicU64, n: u64) {
    field(own).fetch_add(n, Ordering::Relaxed);
    field(sum).fetch_add(n, Ordering::Relaxed);
}

/// The counters of one server's connections of a client (one node of a cluster; the one
/// server otherwise), besides the client's own.
#[derive(Default)]
pub(crate) struct NodeCounters {
    pub(crate) commands: AtomicU64,
    /// Calls on it that failed with a connection error or a timeout.
    pub(crate) failed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// `MOVED`/`ASK` replies it gave.
    pub(crate) redirects: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

impl NodeCounters {
    pub(crate) fn snapshot(&self, addr: String, primary: bool, connected: bool) -> NodeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeStats {
            addr,
            primary,
            slots: Vec::new(),
            connected,
            commands: get(&self.commands),
            failed: get(&self.failed),
            reconnects: get(&self.reconnects),
            redirects: get(&self.redirects),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
        }
    }
}

/// One server's share of a client's traffic ([`Client::node_stats`](crate::Client::node_stats)):
/// each node of a cluster (primaries, and the replicas read from), or the one server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// `host:port`, or the unix socket's path.
    pub addr: String,
    /// A primary (`false`: a replica, which serves reads with `read_from_replicas`).
    pub primary: bool,
    /// The slot ranges it serves, inclusive, ascending (a replica: its primary's); empty for
    /// a standalone server.
    pub slots: Vec<(u16, u16)>,
    /// Its command connection is up now (`false` too before its first use: a cluster's
    /// node connections are opened on demand).
    pub connected: bool,
    /// Commands written to it (as [`ClientStats::commands`], this node's part).
    pub commands: u64,
    /// Calls on it that failed with a connection error or a timeout.
    pub failed: u64,
    /// Times its command connection was re-established after it broke.
    pub reconnects: u64,
    /// `MOVED`/`ASK` replies it gave (it no longer served the slot).
    pub redirects: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
}

/// The counters of one client (shared by its connections).
pub(crate) struct Counters {
    pub(crate) commands: AtomicU64,
    failed: [AtomicU64; KINDS.len()],
    pub(crate) reconnects: AtomicU64,
    /// Cluster redirects followed (`MOVED`, `ASK`).
    pub(crate) redirects: AtomicU64,
    pub(crate) pubsub_reconnects: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) pubsub_received: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    latency_max: AtomicU64,
    /// The sums of the client's workers and RPC servers, and of its group consumers.
    pub(crate) workers: WorkerCounters,
    pub(crate) consumers: ConsumerCounters,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            commands: AtomicU64::new(0),
            failed: Default::default(),
            reconnects: AtomicU64::new(0),
            redirects: AtomicU64::new(0),
            pubsub_reconnects: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            pubsub_received: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_max: AtomicU64::new(0),
            workers: WorkerCounters::default(),
            consumers: ConsumerCounters::default(),
        }
    }
}

/// Counts one call while it runs (in flight), then its outcome and latency. A call
/// dropped before its end (its future cancelled) leaves the in-flight count all the same.
pub(crate) struct CallTimer<'a> {
    counters: &'a Counters,
    start: std::time::Instant,
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Start counting a call of the client (its commands are counted by the connection
    /// that writes them).
    pub(crate) fn start(&self) -> CallTimer<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallTimer {
            counters: self,
            start: std::time::Instant::now(),
        }
    }

    /// Count a call in flight whose end [`end`](Self::end) records (for calls that
    /// outlive any borrow, such as a [`crate::LocalWire`]'s).
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// The call counted by [`begin`](Self::begin) at `began` ended with `outcome`.
    pub(crate) fn end<T>(&self, began: std::time::Instant, outcome: &crate::Result<T>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            Ok(_) => self.record(began.elapsed()),
            Err(e) => self.failed(e.kind()),
        }
    }

    /// The call counted by [`begin`](Self::begin) goes on elsewhere (counted there).
    pub(crate) fn end_quietly(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn failed(&self, kind: ErrorKind) {
        self.failed[index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, took: Duration) {
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.latency_max.fetch_max(us, Ordering::Relaxed);
    }

    /// A snapshot (each counter read once; they may move while it is taken).
    pub(crate) fn snapshot(&self, pubsub_dropped: u64) -> ClientStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let buckets: Vec<u64> = self.latency.iter().map(load).collect();
        let count: u64 = buckets.iter().sum();
        let quantile = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, n) in buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_micros(bucket_upper(i));
                }
            }
            Duration::from_micros(load(&self.latency_max))
        };
        let failed: Vec<(ErrorKind, u64)> = KINDS
            .iter()
            .zip(&self.failed)
            .map(|(k, n)| (*k, load(n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        ClientStats {
            commands: load(&self.commands),
            failed,
            reconnects: load(&self.reconnects),
            redirects: load(&self.redirects),
            pubsub_reconnects: load(&self.pubsub_reconnects),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            in_flight: load(&self.in_flight),
            pubsub_received: load(&self.pubsub_received),
            pubsub_dropped,
            workers: self.workers.snapshot(),
            consumers: self.consumers.snapshot(),
            latency: LatencyStats {
                count,
                p50: quantile(0.50),
                p90: quantile(0.90),
                p99: quantile(0.99),
                p999: quantile(0.999),
                max: Duration::from_micros(load(&self.latency_max)),
                buckets: buckets
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (Duration::from_micros(bucket_upper(i)), *n))
                    .collect(),
            },
        }
    }
}

impl CallTimer<'_> {
    /// The call ended with `outcome`.
    pub(crate) fn finish<T>(self, outcome: &crate::Result<T>) {
        let c = self.counters;
        match outcome {
            Ok(_) => c.record(self.start.elapsed()),
            Err(e) => {
                // A failure's latency would be its timeout: only successes are timed.
                c.failed(e.kind());
            }
        }
    }
}

/// Statistics of a client ([`crate::Client::stats`]): counters since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Commands written to the server on every connection of the client: calls, each
    /// command of a pipeline or transaction (`MULTI` and `EXEC` included), the patterns'
    /// own (a worker's `BLMOVE`s, a consumer's `XREADGROUP`s, ...), the connections'
    /// handshakes, pub/sub's `SUBSCRIBE`s and health-check `PING`s.
    pub commands: u64,
    /// Calls of the client (a command, a pipeline or transaction, a pattern's call) that
    /// failed, by error kind (kinds with no failure left out). A command whose reply is a
    /// server error counts under [`ErrorKind::Server`].
    pub failed: Vec<(ErrorKind, u64)>,
    /// Times the command connection was re-established after it broke.
    pub reconnects: u64,
    /// Redis Cluster redirects followed (`MOVED` and `ASK` replies: a slot moved or is
    /// moving); 0 for a standalone server.
    pub redirects: u64,
    /// Times the pub/sub connection was re-established after it broke.
    pub pubsub_reconnects: u64,
    /// Bytes read from the server, on every connection of the client.
    pub bytes_in: u64,
    /// Bytes written to the server, on every connection of the client.
    pub bytes_out: u64,
    /// Calls waiting for their reply now.
    pub in_flight: u64,
    /// Pub/sub messages received (before routing to subscriptions).
    pub pubsub_received: u64,
    /// Pub/sub messages dropped by subscriptions' overflow policies.
    pub pubsub_dropped: u64,
    /// The sum of the counters of every worker and RPC server the client ran (stopped
    /// ones included).
    pub workers: WorkerStats,
    /// The sum of the counters of every stream group consumer the client ran.
    pub consumers: ConsumerStats,
    /// The latency of successful calls, from the call to its reply.
    pub latency: LatencyStats,
}

/// A latency histogram's summary: quantiles accurate to 25 % (the bucket's upper bound).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencyStats {
    /// How many calls were timed.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// The longest.
    pub max: Duration,
    /// The non-empty buckets: (upper bound, count), ascending.
    pub buckets: Vec<(Duration, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_within_a_quarter() {
        let mut last = 0;
        for v in [1u64, 2, 3, 4, 5, 7, 8, 9, 15, 16, 100, 1000, 12345, 1 << 30] {
            let i = bucket_of(v);
            assert!(i >= last, "{v}");
            last = i;
            let upper = bucket_upper(i);
            assert!(upper >= v, "{v} -> bucket {i} up to {upper}");
            assert!(upper as f64 <= (v as f64) * 1.25 + 1.0, "{v} -> {upper}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn every_kind_has_its_own_counter() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(index(*k), i);
        }
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let c = Counters::default();
        for us in 1..=1000u64 {
            let t = c.start();
            t.finish::<()>(&Ok(()));
            c.record(Duration::from_micros(us)); // a second sample with a known value
        }
        let s = c.snapshot(0);
        assert_eq!(s.in_flight, 0);
        assert!(
            s.latency.p99 >= Duration::from_micros(900),
            "{:?}",
            s.latency
        );
        assert!(s.latency.max >= Duration::from_micros(1000));
        let t = c.start();
        t.finish::<()>(&Err(crate::Error::new(ErrorKind::Timeout, "x")));
        let s = c.snapshot(0);
        assert_eq!(s.latency.count, 2000);
        assert_eq!(s.failed, vec![(ErrorKind::Timeout, 1)]);
    }
}

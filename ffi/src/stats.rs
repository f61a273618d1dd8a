//! Client statistics: `ipc_client_stats()` (a versioned struct of counters and latency
//! quantiles) and `ipc_client_latency_histogram()` (the latency histogram's buckets). The
//! core counts (`redipc::Client::stats`); this converts its snapshot for C.

use std::time::Duration;

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};

/// Counters of a client since it was made, filled by `ipc_client_stats()`.
///
/// Versioning: the struct only ever grows at its end. Set `size` to
/// `sizeof(ipc_client_counts)` before the call; the library fills the fields that fit in
/// `size` (a program built against an older header gets the fields it knows) and writes
/// back the size it filled (smaller than the caller's when the library is older than the
/// header: fields past it were not written). A `size` smaller than the first version of
/// the struct (296 bytes) is refused with `IPC_ERR_INVALID_ARGUMENT`.
///
/// The counters are read one by one while the client runs, so they may move while a
/// snapshot is taken (`commands` may already count a call whose latency is not yet in).
/// Latencies are in microseconds, from the call to its reply, of successful calls only;
/// quantiles are the upper bound of their histogram bucket (within 25 %).
///
/// Failures are counted per call of the client (a command, a pipeline or transaction, a
/// pattern's call such as `ipc_send_request()`), by the code the call failed with: `failed`
/// is their sum, `failed_server` counts error replies (`WRONGTYPE`, `OOM`, ...), and so on.
/// `workers_*` and `consumers_*` sum the counters of the client's workers, RPC servers and
/// group consumers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ipc_client_counts {
    /// In: `sizeof(ipc_client_counts)`, set by the caller. Out: the size filled.
    pub size: u32,
    /// The number of non-empty latency buckets: the capacity `ipc_client_latency_histogram()`
    /// needs for this snapshot (later ones may need more).
    pub latency_buckets: u32,
    /// Commands written to the server on every connection of the client: calls, each
    /// command of a pipeline or transaction (`MULTI` and `EXEC` included), the patterns'
    /// own (a worker's `BLMOVE`s, a consumer's `XREADGROUP`s, ...), the connections'
    /// handshakes, pub/sub's `SUBSCRIBE`s and health-check `PING`s.
    pub commands: u64,
    /// Calls that failed, whatever the code (the sum of the `failed_*` fields).
    pub failed: u64,
    /// Times the command connection was re-established after it broke.
    pub reconnects: u64,
    /// Times the pub/sub connection was re-established after it broke.
    pub pubsub_reconnects: u64,
    /// Bytes read from the server, on every connection of the client.
    pub bytes_in: u64,
    /// Bytes written to the server, on every connection of the client.
    pub bytes_out: u64,
    /// Calls waiting for their reply now.
    pub in_flight: u64,
    /// Pub/sub messages received (before they are routed to subscriptions).
    pub pubsub_received: u64,
    /// Pub/sub messages dropped by subscriptions' overflow policies.
    pub pubsub_dropped: u64,
    /// Successful calls timed (the latency histogram's total count).
    pub latency_count: u64,
    /// Median latency, in microseconds (0 before the first timed call).
    pub latency_p50_us: u64,
    /// 90th percentile latency, in microseconds.
    pub latency_p90_us: u64,
    /// 99th percentile latency, in microseconds.
    pub latency_p99_us: u64,
    /// 99.9th percentile latency, in microseconds.
    pub latency_p999_us: u64,
    /// The longest latency, in microseconds (exact, not a bucket bound).
    pub latency_max_us: u64,
    /// Calls that failed with `IPC_ERR_CONNECTION`.
    pub failed_connection: u64,
    /// Calls that failed with `IPC_ERR_TIMEOUT`.
    pub failed_timeout: u64,
    /// Calls that failed with `IPC_ERR_SERVER` (an error reply of the server).
    pub failed_server: u64,
    /// Calls that failed with `IPC_ERR_PROTOCOL`.
    pub failed_protocol: u64,
    /// Calls that failed with `IPC_ERR_INVALID_ARGUMENT` (refused before anything was sent,
    /// or by the core's checks).
    pub failed_invalid_argument: u64,
    /// Calls that failed with `IPC_ERR_CLOSED`.
    pub failed_closed: u64,
    /// Calls that failed with `IPC_ERR_UNSUPPORTED`.
    pub failed_unsupported: u64,
    /// Calls that failed with `IPC_ERR_WATCH`.
    pub failed_watch: u64,
    /// Calls that failed with `IPC_ERR_TX_ABORTED`.
    pub failed_tx_aborted: u64,
    /// Calls that failed with `IPC_ERR_REMOTE`.
    pub failed_remote: u64,
    /// Calls that failed with `IPC_ERR_NO_SERVER`.
    pub failed_no_server: u64,
    /// Calls that failed with `IPC_ERR_HANDLER`.
    pub failed_handler: u64,
    /// Calls that failed with an error this version of the C API has no code for
    /// (`IPC_ERR_INTERNAL`).
    pub failed_other: u64,
    /// The sums of the counters of every worker and RPC server the client ran, stopped ones
    /// included (see `ipc_worker_counts`): requests handled successfully.
    pub workers_handled: u64,
    /// Handler failures of the client's workers and RPC servers (each attempt counts).
    pub workers_failed: u64,
    /// Requests the client's workers moved to the dead letters.
    pub workers_dead_lettered: u64,
    /// Requests of dead workers the client's workers recovered.
    pub workers_recovered: u64,
    /// The sums of the counters of every stream group consumer the client ran (see
    /// `ipc_consumer_stats`): entries handled and acknowledged.
    pub consumers_acked: u64,
    /// Handler failures of the client's group consumers.
    pub consumers_failed: u64,
    /// Entries the client's group consumers claimed from idle consumers.
    pub consumers_claimed: u64,
    /// Entries the client's group consumers moved to the dead-letter stream.
    pub consumers_dead_lettered: u64,
    /// Redis Cluster redirects followed (`MOVED`, `ASK`: a slot moved or is moving); 0 for
    /// a standalone server. (Added after the first version: filled when `size` covers it.)
    pub redirects: u64,
}

/// The size of the first version of `ipc_client_counts`: the smallest `size` accepted.
const STATS_V1_SIZE: usize = 296;

// No padding anywhere (two `u32`s, then `u64`s): the bytes copied to C are all initialized.
const _: () = assert!(size_of::<ipc_client_counts>() == 8 + 8 * 37);
const _: () = assert!(size_of::<ipc_client_counts>() >= STATS_V1_SIZE);

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl From<redipc::ClientStats> for ipc_client_counts {
    fn from(s: redipc::ClientStats) -> Self {
        let l = &s.latency;
        let mut out = ipc_client_counts {
            size: size_of::<ipc_client_counts>() as u32,
            latency_buckets: u32::try_from(l.buckets.len()).unwrap_or(u32::MAX),
            commands: s.commands,
            reconnects: s.reconnects,
            pubsub_reconnects: s.pubsub_reconnects,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            in_flight: s.in_flight,
            pubsub_received: s.pubsub_received,
            pubsub_dropped: s.pubsub_dropped,
            latency_count: l.count,
            latency_p50_us: micros(l.p50),
            latency_p90_us: micros(l.p90),
            latency_p99_us: micros(l.p99),
            latency_p999_us: micros(l.p999),
            latency_max_us: micros(l.max),
            workers_handled: s.workers.handled,
            workers_failed: s.workers.failed,
            workers_dead_lettered: s.workers.dead_lettered,
            workers_recovered: s.workers.recovered,
            consumers_acked: s.consumers.acked,
            consumers_failed: s.consumers.failed,
            consumers_claimed: s.consumers.claimed,
            consumers_dead_lettered: s.consumers.dead_lettered,
            redirects: s.redirects,
            ..Default::default()
        };
        for (kind, n) in &s.failed {
            out.failed += n;
            *out.failed_mut(ipc_result::from_kind(*kind)) += n;
        }
        out
    }
}

impl ipc_client_counts {
    /// The `failed_*` counter of `code`.
    fn failed_mut(&mut self, code: ipc_result) -> &mut u64 {
        use ipc_result::*;
        match code {
            IPC_ERR_CONNECTION => &mut self.failed_connection,
            IPC_ERR_TIMEOUT => &mut self.failed_timeout,
            IPC_ERR_SERVER => &mut self.failed_server,
            IPC_ERR_PROTOCOL => &mut self.failed_protocol,
            IPC_ERR_INVALID_ARGUMENT | IPC_ERR_NULL_ARG => &mut self.failed_invalid_argument,
            IPC_ERR_CLOSED => &mut self.failed_closed,
            IPC_ERR_UNSUPPORTED => &mut self.failed_unsupported,
            IPC_ERR_WATCH => &mut self.failed_watch,
            IPC_ERR_TX_ABORTED => &mut self.failed_tx_aborted,
            IPC_ERR_REMOTE => &mut self.failed_remote,
            IPC_ERR_NO_SERVER => &mut self.failed_no_server,
            IPC_ERR_HANDLER => &mut self.failed_handler,
            IPC_OK | IPC_ERR_BUFFER_TOO_SMALL | IPC_ERR_PANIC | IPC_ERR_INTERNAL => {
                &mut self.failed_other
            }
        }
    }
}

/// The client's statistics: commands, failures by code, reconnects, bytes, calls in flight,
/// pub/sub messages, latency quantiles. Cheap (a handful of atomic reads); call it as often
/// as you like.
///
/// `out->size` must be set to `sizeof(ipc_client_counts)` first (see `ipc_client_counts` for
/// the versioning rule): `ipc_client_counts st = {.size = sizeof st};`.
///
/// Output: on `IPC_OK`, the fields of `*out` that fit in `out->size` bytes, and `out->size`
/// is the number of bytes filled.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `out`); `IPC_ERR_INVALID_ARGUMENT` if `out->size` is
/// smaller than the first version of the struct (nothing is written).
///
/// Thread safety: any thread, concurrently with other calls on the client, also from
/// inside a callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_stats(
    client: *const ipc_client,
    out: *mut ipc_client_counts,
) -> ipc_result {
    ffi_boundary!(ipc_client_stats(client, out) {
        // SAFETY: `out` is not NULL (checked by the boundary) and its first field, `size`, is
        // readable (C's contract: the caller set it).
        let size = unsafe { std::ptr::addr_of!((*out).size).read() } as usize;
        if size < STATS_V1_SIZE {
            return Err(Error::invalid(format!(
                "`out->size` is {size}: set it to sizeof(ipc_client_counts) (at least {STATS_V1_SIZE})"
            )));
        }
        let filled = size.min(size_of::<ipc_client_counts>());
        let mut stats = ipc_client_counts::from(try_ref!(client).stats());
        stats.size = filled as u32;
        // SAFETY: `stats` has no padding (asserted above), so its first `filled` bytes are
        // initialized; `out` is writable for `size >= filled` bytes (C's contract).
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::addr_of!(stats).cast::<u8>(),
                out.cast::<u8>(),
                filled,
            );
        }
        Ok(())
    })
}

/// The client's latency histogram: the non-empty buckets, ascending. Bucket `i` counts
/// `counts[i]` successful calls that took at most `upper_us[i]` microseconds (and more than
/// the bound of the bucket before it, which may be empty and left out); bounds are 4 per
/// power of two, so each is within 25 % of the values it holds.
///
/// `upper_us` and `counts` are arrays of `cap` elements; both may be NULL when `cap` is 0
/// (to ask for the count). `ipc_client_stats()`'s `latency_buckets` is a good capacity
/// (buckets only appear, so a later call may need more).
///
/// Output: `*len` is the number of non-empty buckets; on `IPC_OK` (`*len <= cap`) the first
/// `*len` elements of both arrays are filled. On `IPC_ERR_BUFFER_TOO_SMALL` (`*len > cap`)
/// the first `cap` buckets are filled and `*len` says how many there are: call again with a
/// capacity of at least `*len`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `len`, and `upper_us` or `counts` when `cap` is not
/// 0); `IPC_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: any thread, concurrently with other calls on the client, also from
/// inside a callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_latency_histogram(
    client: *const ipc_client,
    upper_us: *mut u64,
    counts: *mut u64,
    cap: usize,
    len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_client_latency_histogram(client, #[nullable] upper_us, #[nullable] counts, cap, len) {
        if cap > 0 && upper_us.is_null() {
            return Err(Error::null_arg("upper_us"));
        }
        if cap > 0 && counts.is_null() {
            return Err(Error::null_arg("counts"));
        }
        let buckets = try_ref!(client).stats().latency.buckets;
        for (i, (upper, n)) in buckets.iter().take(cap).enumerate() {
            // SAFETY: both arrays hold `cap` writable elements (C's contract) and `i < cap`.
            unsafe {
                upper_us.add(i).write(micros(*upper));
                counts.add(i).write(*n);
            }
        }
        put!(len, buckets.len());
        if buckets.len() > cap {
            return Err(Error::new(
                ipc_result::IPC_ERR_BUFFER_TOO_SMALL,
                format!("{} buckets, room for {cap}: call again with cap >= {}", buckets.len(), buckets.len()),
            ));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_version_is_the_size_the_docs_state() {
        // The doc comment of `ipc_client_counts` states 296 bytes.
        assert_eq!(STATS_V1_SIZE, 296);
        assert_eq!(std::mem::offset_of!(ipc_client_counts, commands), 8);
    }

    #[test]
    fn failures_are_summed_and_counted_by_code() {
        let mut s = redipc::ClientStats::default();
        s.failed = vec![
            (redipc::ErrorKind::Server, 3),
            (redipc::ErrorKind::Timeout, 2),
            (redipc::ErrorKind::Aborted, 1),
        ];
        s.latency.p99 = Duration::from_millis(2);
        s.latency.buckets = vec![(Duration::from_micros(7), 1), (Duration::from_micros(9), 2)];
        let c = ipc_client_counts::from(s);
        assert_eq!(c.failed, 6);
        assert_eq!(c.failed_server, 3);
        assert_eq!(c.failed_timeout, 2);
        assert_eq!(c.failed_tx_aborted, 1);
        assert_eq!(c.failed_other, 0);
        assert_eq!(c.latency_p99_us, 2000);
        assert_eq!(c.latency_buckets, 2);
    }
}

//! Rate limiters shared by every process using the same name (`ipc_rate_limiter_*`): the
//! core's GCRA on the server's clock.
//!
//! Ownership: an `ipc_rate_limiter` owns a `redipc::blocking::RateLimiter` (with a clone of
//! the client).

use std::ffi::c_char;

use crate::client::ipc_client;
use crate::convert::millis;
use crate::error::ipc_result;
use crate::handle::to_boxed;

/// A rate limiter: `rate` units per period, up to `burst` at once, shared by every client
/// (in any process and language) that uses the same name with the same numbers.
///
/// Owns a `redipc::blocking::RateLimiter`, which holds a clone of the client (so it stays
/// usable after `ipc_client_free()` of the handle it came from; calls then fail once the
/// client is closed). The state is one key on the server, `{prefix}{rate:NAME}`, holding
/// when the limiter is next free (GCRA, on the server's clock, so the processes' clocks do
/// not matter); it expires when the limiter is idle. Over any window of `w` at most `burst +
/// rate * w / period` units pass. Made by `ipc_rate_limiter_new()`, freed by
/// `ipc_rate_limiter_free()`.
///
/// Thread safety: any number of threads may use one limiter at once.
pub struct ipc_rate_limiter {
    _private: [u8; 0],
}
box_castable!(ipc_rate_limiter => redipc::blocking::RateLimiter);

/// Make a rate limiter named `name` (a byte string, not empty, without `{` or `}`): `rate`
/// units per `per_ms` milliseconds, `burst` units at once (0: the default, `rate` rounded,
/// at least 1). Nothing is sent. Every process using the same name must use the same
/// numbers (one that passes others applies its own to its own requests).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_rate_limiter_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `name`, `out`); `IPC_ERR_INVALID_ARGUMENT` for a
/// bad name, a rate that is not a number above 0, a period of 0, or an interval
/// (`per_ms / rate`) under 1 µs or over 30 years.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rate_limiter_new(
    client: *const ipc_client,
    name: *const c_char,
    name_len: usize,
    rate: f64,
    per_ms: u64,
    burst: u64,
    out: *mut *mut ipc_rate_limiter,
) -> ipc_result {
    ffi_boundary!(ipc_rate_limiter_new(client, name, name_len, rate, per_ms, burst, out) {
        let burst = (burst > 0).then_some(burst);
        let limiter = try_ref!(client).rate_limiter(bytes!(name, name_len), rate, millis(per_ms), burst)?;
        put!(out, to_boxed(limiter));
        Ok(())
    })
}

/// Take `n` units (1 to the burst) if the rate allows it now; never waits (one script on
/// the server).
///
/// Output: on `IPC_OK`, `*allowed` is true when the units were taken (then
/// `*retry_after_us` is 0), false when not: nothing was taken, and `*retry_after_us` is
/// how long until `n` units would pass, in microseconds (at least 1; another process may
/// take them first).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for `n` of 0 or above the burst
/// (such a request would never pass); `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread; see `ipc_rate_limiter`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rate_limiter_acquire(
    limiter: *const ipc_rate_limiter,
    n: u64,
    allowed: *mut bool,
    retry_after_us: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_rate_limiter_acquire(limiter, n, allowed, retry_after_us) {
        let wait = try_ref!(limiter).acquire(n)?;
        put!(allowed, wait.is_none());
        put!(retry_after_us, wait.map_or(0, |w| u64::try_from(w.as_micros()).unwrap_or(u64::MAX)));
        Ok(())
    })
}

/// Take `n` units (1 to the burst), waiting as long as the rate says: after a refusal the
/// calling thread sleeps exactly the wait the server named, then tries again (only a
/// competitor that got there first makes it wait again; no polling).
///
/// `timeout_ms`: a negative number (-1) waits as long as it takes; otherwise the call gives
/// up as soon as the next wait would end after `timeout_ms` milliseconds from the start,
/// without sleeping in vain (0: take them only if allowed now).
///
/// Output: on `IPC_OK`, `*acquired` says whether the units were taken.
///
/// Errors: as `ipc_rate_limiter_acquire()`.
///
/// Thread safety: any thread; see `ipc_rate_limiter`. Blocks the calling thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rate_limiter_acquire_wait(
    limiter: *const ipc_rate_limiter,
    n: u64,
    timeout_ms: i64,
    acquired: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_rate_limiter_acquire_wait(limiter, n, timeout_ms, acquired) {
        let timeout = u64::try_from(timeout_ms).ok().map(millis);
        put!(acquired, try_ref!(limiter).acquire_wait(n, timeout)?);
        Ok(())
    })
}

/// Free a rate limiter. NULL is a no-op. Its state on the server stays (it expires when
/// idle) and other handles of the same name are unaffected.
///
/// Thread safety: every other call on `limiter` must have returned; the handle must not be
/// used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_rate_limiter_free(limiter: *mut ipc_rate_limiter) {
    ffi_boundary!(ipc_rate_limiter_free(#[nullable] limiter) { free_box!(limiter) })
}

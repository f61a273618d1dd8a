//! Distributed locks with fencing tokens (`ipc_lock_*`).
//!
//! Ownership: an `ipc_lock` owns a `redipc::blocking::LockGuard` until the lock is released
//! (then nothing but its token).

use std::ffi::c_char;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redipc::{ErrorKind, LockOptions, SubscribeOptions};

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::stream::client_arg;
use crate::{borrow, bytes_arg, free_handle, to_handle, write_out};

/// The core's `lock` with its wait rebuilt on public API.
///
/// WORKAROUND for a deadlock in the core (see `cache_wait` in cache.rs): a waiting
/// `Client::lock` registers interest in `<prefix>lock-released:<name>` through the
/// client's notifier, which deadlocks on its own `waiters` mutex when the channel is still
/// active from the previous wait (a contended lock taken in a loop hangs for good). So each
/// attempt here is the core's `lock` with a zero wait (one try, the notifier untouched), and
/// the waiting happens on a subscription of our own to the release channel (confirmed
/// before the next try, so no release is missed), woken by a release or when the holder's
/// TTL (`PTTL <prefix>{lock:<name>}`) runs out.
fn lock(
    client: &redipc::blocking::Client,
    name: &[u8],
    opts: LockOptions,
    wait: Duration,
) -> Result<redipc::blocking::LockGuard, Error> {
    let deadline = Instant::now() + wait;
    let once = opts.wait(Duration::ZERO);
    let try_once = || match client.lock(name, once) {
        Ok(g) => Ok(Some(g)),
        Err(e) if e.kind() == ErrorKind::Timeout => Ok(None),
        Err(e) => Err(e),
    };
    if let Some(g) = try_once()? {
        return Ok(g);
    }
    let timed_out = || {
        Error::new(
            ipc_result::IPC_ERR_TIMEOUT,
            format!(
                "lock {:?} still taken after {} ms",
                String::from_utf8_lossy(name),
                wait.as_millis()
            ),
        )
    };
    if wait.is_zero() {
        return Err(timed_out());
    }
    let prefix = &client.options().key_prefix;
    let mut channel = format!("{prefix}lock-released:").into_bytes();
    channel.extend_from_slice(name);
    let mut key = format!("{prefix}{{lock:").into_bytes();
    key.extend_from_slice(name);
    key.push(b'}');
    let sub = client.subscribe(&[&channel[..]], SubscribeOptions::default())?;
    loop {
        if let Some(g) = try_once()? {
            return Ok(g);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out());
        }
        let pttl = client
            .command(&[&b"PTTL"[..], &key[..]])?
            .as_int()
            .unwrap_or(-1);
        let until_expiry = match u64::try_from(pttl) {
            Ok(ms) => Duration::from_millis(ms + 5),
            Err(_) => Duration::from_millis(50),
        };
        // Any event (a release, a reconnect) means: try again.
        let _ = sub.next(Some((deadline - now).min(until_expiry)))?;
    }
}

/// A held (or released) lock.
///
/// Owns a `redipc::blocking::LockGuard` while held: the lock's key holds a random owner id
/// with a time to live, so only this handle can extend or release it, and a holder that
/// dies loses it when the TTL runs out. With automatic renewal, a background task of the
/// library extends it every `ttl_ms / 3` while held. Made by `ipc_lock_acquire()`, released
/// by `ipc_lock_release()` or `ipc_lock_free()`, freed by `ipc_lock_free()`.
///
/// Thread safety: any thread, concurrently (calls on one lock are serialized), except
/// `ipc_lock_free()`, which must come after every other call on it has returned.
pub struct ipc_lock {
    guard: Mutex<Option<redipc::blocking::LockGuard>>,
    token: u64,
}

/// Acquire the lock `name` (`nlen` bytes, not empty, without `{` or `}`), waiting up to
/// `wait_ms` milliseconds (0: try once) while another holder has it. Waiters wake as soon
/// as the holder releases it (a notification, not polling) or its TTL runs out.
///
/// `ttl_ms` (at least 1): the lock expires this long after it was taken (or last
/// extended) unless released: protection against a holder that dies. With `auto_renew`
/// the library extends it every `ttl_ms / 3` until it is released; without it, extend it
/// yourself (`ipc_lock_extend()`) if the work may take longer.
///
/// Fencing token: every acquisition of a lock name gets a token greater than that of every
/// earlier acquisition (`ipc_lock_token()`); pass it to the resource you protect so that
/// it can refuse writes from a holder whose lock expired meanwhile.
///
/// Output: on `IPC_OK`, `*out` is the held lock, owned by the caller; release it with
/// `ipc_lock_release()` and free it with `ipc_lock_free()` (which releases it if still
/// held). Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a bad name or `ttl_ms` 0;
/// `IPC_ERR_TIMEOUT` when the lock was still taken after `wait_ms` (also when the server
/// does not answer in time); `IPC_ERR_SERVER`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client; blocks the
/// calling thread up to `wait_ms`.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_acquire(
    client: *const ipc_client,
    name: *const c_char,
    nlen: usize,
    ttl_ms: u64,
    wait_ms: u64,
    auto_renew: bool,
    out: *mut *mut ipc_lock,
) -> ipc_result {
    ffi_boundary!(ipc_lock_acquire(client, name, nlen, ttl_ms, wait_ms, auto_renew, out) {
        if ttl_ms == 0 {
            return Err(Error::invalid("ttl_ms must be at least 1"));
        }
        let opts = LockOptions::default()
            .ttl(Duration::from_millis(ttl_ms))
            .auto_renew(auto_renew);
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let name = bytes_arg(name.cast(), nlen, "name")?;
            let guard = lock(client_arg(client)?, name, opts, Duration::from_millis(wait_ms))?;
            let token = guard.token();
            let handle = to_handle(ipc_lock { guard: Mutex::new(Some(guard)), token });
            write_out(out, handle, "out")
        }
    })
}

/// The lock's fencing token: greater than the token of every earlier acquisition of the
/// same lock name (by any client), starting at 1. Still available after release.
///
/// Output: on `IPC_OK`, `*token`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread; see `ipc_lock`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_token(lock: *const ipc_lock, token: *mut u64) -> ipc_result {
    ffi_boundary!(ipc_lock_token(lock, token) {
        // SAFETY: `lock` is a live handle and `token` writable (caller contract, NULL checked).
        unsafe {
            let l = borrow(lock, "lock")?;
            write_out(token, l.token, "token")
        }
    })
}

/// Extend the lock to expire `ttl_ms` milliseconds (at least 1) from now, if this handle
/// still holds it.
///
/// Output: on `IPC_OK`, `*still_held` is true if it was extended, false if the lock was no
/// longer ours (released, or expired — and maybe taken by another holder meanwhile: stop
/// the protected work). Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for `ttl_ms` 0;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread; see `ipc_lock`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_extend(
    lock: *const ipc_lock,
    ttl_ms: u64,
    still_held: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_lock_extend(lock, ttl_ms, still_held) {
        if ttl_ms == 0 {
            return Err(Error::invalid("ttl_ms must be at least 1"));
        }
        // SAFETY: `lock` is a live handle (caller contract, NULL checked).
        let l = unsafe { borrow(lock, "lock") }?;
        let held = match &*l.guard.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(g) => g.extend(Duration::from_millis(ttl_ms))?,
            None => false,
        };
        // SAFETY: `still_held` is writable (caller contract, NULL checked).
        unsafe { write_out(still_held, held, "still_held") }
    })
}

/// Release the lock if this handle still holds it (compare-and-delete in one script, so
/// a lock that expired and was taken by another holder is left alone), waking its waiters.
/// Automatic renewal stops. The handle stays valid (for `ipc_lock_token()`); free it with
/// `ipc_lock_free()`. Releasing again gives `*was_held` false.
///
/// Output: on `IPC_OK`, `*was_held` says whether the lock was still ours when released
/// (false: it had expired). Untouched otherwise; after an error the lock is released no
/// more by this handle (it expires after its TTL).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread; see `ipc_lock`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_release(
    lock: *const ipc_lock,
    was_held: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_lock_release(lock, was_held) {
        // SAFETY: `lock` is a live handle (caller contract, NULL checked).
        let l = unsafe { borrow(lock, "lock") }?;
        let guard = l.guard.lock().unwrap_or_else(|p| p.into_inner()).take();
        let held = match guard {
            Some(g) => g.release()?,
            None => false,
        };
        // SAFETY: `was_held` is writable (caller contract, NULL checked).
        unsafe { write_out(was_held, held, "was_held") }
    })
}

/// Free the lock handle, releasing the lock first if it is still held (waiting for the
/// server's answer; errors are ignored: the lock then expires after its TTL). NULL is a
/// no-op.
///
/// Thread safety: any thread, once, after every other call on it has returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_free(lock: *mut ipc_lock) {
    ffi_boundary!(ipc_lock_free(#[nullable] lock) {
        // SAFETY: NULL or a handle from ipc_lock_acquire, freed once (caller contract).
        unsafe { free_handle(lock) };
        Ok(())
    })
}

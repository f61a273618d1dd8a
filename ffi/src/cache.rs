//! The cache (`ipc_cache_*`): values with a time to live, and a blocking get that wakes on
//! the writers' notification.
//!
//! Keys are the caller's names; the library stores them under `<prefix>cache:<key>` (prefix
//! `"ipc:"` by default, `ipc_options_set_key_prefix()`), so cache keys never collide with
//! other keys. Values returned are copies owned by the caller, freed with `ipc_buf_free()`.

use std::ffi::c_char;
use std::time::{Duration, Instant};

use redipc::SubscribeOptions;

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::stream::{client_arg, name_arg};
use crate::{bytes_arg, write_out};

/// Write an optional value to the `(buf, len, found)` outputs (a buffer for
/// `ipc_buf_free()`).
///
/// # Safety
/// The three pointers are writable (NULL is refused before anything is allocated).
unsafe fn write_value(
    value: Option<Vec<u8>>,
    buf: *mut *mut u8,
    len: *mut usize,
    found: *mut bool,
) -> Result<(), Error> {
    if buf.is_null() || len.is_null() || found.is_null() {
        return Err(Error::null_arg("buf/len/found"));
    }
    let (p, n, f) = match value {
        Some(v) => {
            let b = v.into_boxed_slice();
            let n = b.len();
            (Box::into_raw(b).cast::<u8>(), n, true)
        }
        None => (std::ptr::null_mut(), 0, false),
    };
    // SAFETY: the caller promises the outputs are writable (NULL checked above).
    unsafe {
        write_out(buf, p, "buf")?;
        write_out(len, n, "len")?;
        write_out(found, f, "found")
    }
}

/// How often `cache_wait` looks at the key without a notification (as the core's
/// `cache_wait`: for writes that bypass the library).
const FALLBACK_CHECK: Duration = Duration::from_secs(1);

/// The core's `cache_wait`, rebuilt on public API.
///
/// WORKAROUND for a deadlock in the core: `Notifier::interest` (src/notify.rs) holds its
/// `waiters` mutex while calling `Subscription::register`; when the channel is still
/// active on the server (a wait on the same key just ended and its UNSUBSCRIBE is not
/// through yet), `PubSub::add_names` pushes an `Activated` event, and the notifier's
/// subscription is inline, so the push runs its handler on this thread, which locks
/// `waiters` again: two `cache_wait`s of the same key in a row hang forever. This waits the
/// same way on a subscription of its own (a queue, no inline handler): subscribe to the
/// key's notification channel `<prefix>cache-set:<key>` (confirmed before the first look,
/// so no write is missed), look, and look again on each event or once a second.
fn cache_wait(
    client: &redipc::blocking::Client,
    key: &[u8],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, Error> {
    let deadline = Instant::now() + timeout;
    if let Some(v) = client.cache_get(key)? {
        return Ok(Some(v));
    }
    if timeout.is_zero() {
        return Ok(None);
    }
    let mut channel = format!("{}cache-set:", client.options().key_prefix).into_bytes();
    channel.extend_from_slice(key);
    let sub = client.subscribe(&[&channel[..]], SubscribeOptions::default())?;
    loop {
        if let Some(v) = client.cache_get(key)? {
            return Ok(Some(v));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // Any event (the notification, a reconnect) means: look again.
        let _ = sub.next(Some((deadline - now).min(FALLBACK_CHECK)))?;
    }
}

/// Set the cache entry `key` (`klen` bytes, not empty) to `val` (`vlen` bytes), expiring
/// after `ttl_ms` milliseconds (0: never), and wake every `ipc_cache_wait()` on it at once
/// (the write and its notification are one script).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty key or a value over
/// the size limit (nothing is sent); `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cache_set(
    client: *const ipc_client,
    key: *const c_char,
    klen: usize,
    val: *const u8,
    vlen: usize,
    ttl_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_cache_set(client, key, klen, val, vlen, ttl_ms) {
        let ttl = (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms));
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = name_arg(key, klen, "key")?;
            let val = bytes_arg(val, vlen, "val")?;
            client_arg(client)?.cache_set(key, val, ttl)?;
        }
        Ok(())
    })
}

/// The value of the cache entry `key`, without waiting.
///
/// Output: on `IPC_OK`, `*found` says whether the entry exists (an expired one does not);
/// if so `(*buf, *len)` is a copy of the value owned by the caller, freed with
/// `ipc_buf_free(*buf, *len)` (never NULL, even when empty; not NUL-terminated), else
/// `*buf` is NULL and `*len` 0. Untouched on failure.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty key;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cache_get(
    client: *const ipc_client,
    key: *const c_char,
    klen: usize,
    buf: *mut *mut u8,
    len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_get(client, key, klen, buf, len, found) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = name_arg(key, klen, "key")?;
            let value = client_arg(client)?.cache_get(key)?;
            write_value(value, buf, len, found)
        }
    })
}

/// Delete the cache entry `key`.
///
/// Output: on `IPC_OK`, `*existed` says whether there was one. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty key;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cache_delete(
    client: *const ipc_client,
    key: *const c_char,
    klen: usize,
    existed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_delete(client, key, klen, existed) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = name_arg(key, klen, "key")?;
            let was = client_arg(client)?.cache_delete(key)?;
            write_out(existed, was, "existed")
        }
    })
}

/// Whether the cache entry `key` exists (and has not expired).
///
/// Output: on `IPC_OK`, `*exists`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty key;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cache_exists(
    client: *const ipc_client,
    key: *const c_char,
    klen: usize,
    exists: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_exists(client, key, klen, exists) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = name_arg(key, klen, "key")?;
            let yes = client_arg(client)?.cache_exists(key)?;
            write_out(exists, yes, "exists")
        }
    })
}

/// Wait until the cache entry `key` exists and return its value, or until `timeout_ms`
/// milliseconds passed (0: look once, do not wait).
///
/// It does not poll: it subscribes to the notification `ipc_cache_set()` publishes (from
/// any client and process using this library) before it first looks, so it returns within
/// a round trip of such a write. A value written by other means (a plain `SET` of the
/// prefixed key by another Redis client) is noticed by a fallback check once a second.
///
/// Output: on `IPC_OK`, `*found` is true and `(*buf, *len)` holds a copy of the value
/// (freed with `ipc_buf_free(*buf, *len)`; never NULL), or — when the time passed first,
/// which is not an error — `*found` is false, `*buf` NULL and `*len` 0. Untouched on
/// failure.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty key;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT` only when the server stops answering (not when the
/// entry does not come); `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client (many threads
/// may wait on the same or different keys); blocks the calling thread up to `timeout_ms`.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cache_wait(
    client: *const ipc_client,
    key: *const c_char,
    klen: usize,
    timeout_ms: u64,
    buf: *mut *mut u8,
    len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_wait(client, key, klen, timeout_ms, buf, len, found) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = name_arg(key, klen, "key")?;
            let value = cache_wait(client_arg(client)?, key, Duration::from_millis(timeout_ms))?;
            write_value(value, buf, len, found)
        }
    })
}

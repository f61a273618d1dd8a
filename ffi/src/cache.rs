//! The cache (`ipc_cache_*`): values with a time to live, and a blocking get that wakes on
//! the writers' notification.
//!
//! Keys are the caller's names; the library stores them under `<prefix>cache:<key>` (prefix
//! `"ipc:"` by default, `ipc_options_set_key_prefix()`), so cache keys never collide with
//! other keys. Values returned are copies owned by the caller, freed with `ipc_buf_free()`.

use std::ffi::c_char;

use crate::client::ipc_client;
use crate::commands::put_value;
use crate::convert::millis;
use crate::error::ipc_result;

/// Set the cache entry `key` (a byte string, not empty) to `value`, expiring after `ttl_ms`
/// milliseconds (0: never), and wake every `ipc_cache_wait()` on it at once (the write and
/// its notification are one script).
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
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_cache_set(client, key, key_len, value, value_len, ttl_ms) {
        let ttl = (ttl_ms > 0).then(|| millis(ttl_ms));
        try_ref!(client).cache_set(bytes!(key, key_len), bytes!(value, value_len), ttl)?;
        Ok(())
    })
}

/// The value of the cache entry `key`, without waiting.
///
/// Output: on `IPC_OK`, `*found` says whether the entry exists (an expired one does not);
/// if so `(*value, *value_len)` is a copy of the value owned by the caller, freed with
/// `ipc_buf_free(*value, *value_len)` (never NULL, even when empty; not NUL-terminated),
/// else `*value` is NULL and `*value_len` 0.
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
    key_len: usize,
    value: *mut *mut c_char,
    value_len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_get(client, key, key_len, value, value_len, found) {
        let v = try_ref!(client).cache_get(bytes!(key, key_len))?;
        // SAFETY: the outputs are writable (C's contract; NULL checked by the boundary).
        unsafe { put_value(v, value, value_len, found) };
        Ok(())
    })
}

/// Delete the cache entry `key`.
///
/// Output: on `IPC_OK`, `*existed` says whether there was one.
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
    key_len: usize,
    existed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_delete(client, key, key_len, existed) {
        put!(existed, try_ref!(client).cache_delete(bytes!(key, key_len))?);
        Ok(())
    })
}

/// Whether the cache entry `key` exists (and has not expired).
///
/// Output: on `IPC_OK`, `*exists`.
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
    key_len: usize,
    exists: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_exists(client, key, key_len, exists) {
        put!(exists, try_ref!(client).cache_exists(bytes!(key, key_len))?);
        Ok(())
    })
}

/// Wait until the cache entry `key` exists and return its value, or until `timeout_ms`
/// milliseconds passed (0: look once, do not wait).
///
/// It does not poll: it subscribes to the notification `ipc_cache_set()` publishes (from
/// any client and process using this library) before it first looks, so it returns within a
/// round trip of such a write. A value written by other means is noticed by a fallback
/// check once a second.
///
/// Output: on `IPC_OK`, `*found` is true and `(*value, *value_len)` holds a copy of the
/// value (freed with `ipc_buf_free()`; never NULL), or, when the time passed first (not an
/// error), `*found` is false, `*value` NULL and `*value_len` 0.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty key;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT` only when the server stops answering (not when the
/// entry does not come); `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client (many threads may
/// wait on the same or different keys); blocks the calling thread up to `timeout_ms`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cache_wait(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    timeout_ms: u64,
    value: *mut *mut c_char,
    value_len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_cache_wait(client, key, key_len, timeout_ms, value, value_len, found) {
        let v = try_ref!(client).cache_wait(bytes!(key, key_len), millis(timeout_ms))?;
        // SAFETY: the outputs are writable (C's contract; NULL checked by the boundary).
        unsafe { put_value(v, value, value_len, found) };
        Ok(())
    })
}

//! Typed helpers for the common commands, and `ipc_buf_free()` for the buffers the library
//! returns.

use std::ffi::c_char;

use crate::client::ipc_client;
use crate::convert::{into_buf, millis};
use crate::error::{Error, ipc_result};

/// `ipc_set_ex()` flag: set only if the key does not exist (`NX`).
pub const IPC_SET_NX: u32 = 1;
/// `ipc_set_ex()` flag: set only if the key already exists (`XX`).
pub const IPC_SET_XX: u32 = 2;

/// Write an optional value to the `(value, value_len, found)` outputs: a buffer for
/// `ipc_buf_free()`, or NULL, 0 and false.
///
/// # Safety
/// The three pointers are valid for a write.
pub(crate) unsafe fn put_value(
    v: Option<Vec<u8>>,
    value: *mut *mut c_char,
    value_len: *mut usize,
    found: *mut bool,
) {
    let is_some = v.is_some();
    let (p, n) = v.map_or((std::ptr::null_mut(), 0), into_buf);
    // SAFETY: forwarded from the caller.
    unsafe {
        found.write(is_some);
        value.write(p);
        value_len.write(n);
    }
}

/// Free a buffer the library returned (a value of `ipc_get()`, `ipc_hget()`,
/// `ipc_cache_get()`, a reply of `ipc_call()`, ...); `len` must be the length that came
/// with it. NULL is a no-op.
///
/// Thread safety: any thread; the buffer belongs to the caller alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_buf_free(buf: *mut c_char, len: usize) {
    ffi_boundary!(ipc_buf_free(#[nullable] buf, len) {
        if !buf.is_null() {
            // SAFETY: `(buf, len)` came from `into_buf` (a boxed slice) and is freed once
            // (C's contract).
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf.cast::<u8>(), len)) });
        }
        Ok(())
    })
}

/// `GET key`: the value of a key.
///
/// Output: on `IPC_OK`, if the key exists, `*found` is true and `*value` holds a copy of
/// the value of `*value_len` bytes, owned by the caller and freed with
/// `ipc_buf_free(*value, *value_len)` (not NUL-terminated; never NULL, even when empty); if
/// it does not, `*found` is false, `*value` NULL and `*value_len` 0.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`WRONGTYPE` if the key holds another
/// type); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_get(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    value: *mut *mut c_char,
    value_len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_get(client, key, key_len, value, value_len, found) {
        let v = try_ref!(client).get(bytes!(key, key_len))?;
        // SAFETY: the outputs are writable (C's contract; NULL checked by the boundary).
        unsafe { put_value(v, value, value_len, found) };
        Ok(())
    })
}

/// `SET key value [PX ttl_ms]`: set a key to a value, with a time to live in milliseconds
/// unless `ttl_ms` is 0.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a value over the size limit
/// (nothing is sent); `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_set(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_set(client, key, key_len, value, value_len, ttl_ms) {
        let opts = set_options(ttl_ms, 0)?;
        try_ref!(client).set_with(bytes!(key, key_len), bytes!(value, value_len), opts)?;
        Ok(())
    })
}

/// `SET key value [PX ttl_ms] [NX|XX]`: as `ipc_set()`, with `flags` 0, `IPC_SET_NX` (only
/// if the key does not exist) or `IPC_SET_XX` (only if it exists).
///
/// Output: on `IPC_OK`, `*was_set` is true if the value was set, false if the condition
/// kept it from being set.
///
/// Errors: as `ipc_set()`; `IPC_ERR_INVALID_ARGUMENT` for unknown flags or both flags.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_set_ex(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    ttl_ms: u64,
    flags: u32,
    was_set: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_set_ex(client, key, key_len, value, value_len, ttl_ms, flags, was_set) {
        let opts = set_options(ttl_ms, flags)?;
        put!(was_set, try_ref!(client).set_with(bytes!(key, key_len), bytes!(value, value_len), opts)?);
        Ok(())
    })
}

/// The core's `SetOptions` for a TTL (0: none) and the `IPC_SET_*` flags.
fn set_options(ttl_ms: u64, flags: u32) -> Result<redipc::SetOptions, Error> {
    if flags & !(IPC_SET_NX | IPC_SET_XX) != 0 {
        return Err(Error::invalid(format!(
            "unknown flags {flags:#x}: use IPC_SET_NX or IPC_SET_XX"
        )));
    }
    let mut o = redipc::SetOptions::default();
    o.ttl = (ttl_ms > 0).then(|| millis(ttl_ms));
    o.only_if_absent = flags & IPC_SET_NX != 0;
    o.only_if_present = flags & IPC_SET_XX != 0;
    Ok(o)
}

/// `INCR key`: add 1 to the integer at `key` (0 if missing).
///
/// Output: on `IPC_OK`, `*out` is the new value.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`ERR value is not an integer`,
/// `WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_incr(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    out: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_incr(client, key, key_len, out) {
        put!(out, try_ref!(client).incr(bytes!(key, key_len))?);
        Ok(())
    })
}

/// `INCRBY key by`: add `by` (which may be negative) to the integer at `key`.
///
/// Output: on `IPC_OK`, `*out` is the new value.
///
/// Errors: as `ipc_incr()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_incrby(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    by: i64,
    out: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_incrby(client, key, key_len, by, out) {
        put!(out, try_ref!(client).incr_by(bytes!(key, key_len), by)?);
        Ok(())
    })
}

/// `DEL key`: delete a key.
///
/// Output: on `IPC_OK`, `*removed` is 1 if the key existed, else 0.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_del(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    removed: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_del(client, key, key_len, removed) {
        put!(removed, try_ref!(client).del(&[bytes!(key, key_len)])?);
        Ok(())
    })
}

/// `HGET key field`: the value of a hash field.
///
/// Output: as `ipc_get()`: `*found`, and the value in `(*value, *value_len)` for
/// `ipc_buf_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hget(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    field: *const c_char,
    field_len: usize,
    value: *mut *mut c_char,
    value_len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hget(client, key, key_len, field, field_len, value, value_len, found) {
        let v = try_ref!(client).hget(bytes!(key, key_len), bytes!(field, field_len))?;
        // SAFETY: the outputs are writable (C's contract; NULL checked by the boundary).
        unsafe { put_value(v, value, value_len, found) };
        Ok(())
    })
}

/// `HSET key field value`: set one hash field.
///
/// Output: on `IPC_OK`, `*added` is 1 if the field is new, 0 if it was updated.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a value over the size limit;
/// `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hset(
    client: *const ipc_client,
    key: *const c_char,
    key_len: usize,
    field: *const c_char,
    field_len: usize,
    value: *const c_char,
    value_len: usize,
    added: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_hset(client, key, key_len, field, field_len, value, value_len, added) {
        let pair = [(bytes!(field, field_len), bytes!(value, value_len))];
        put!(added, try_ref!(client).hset(bytes!(key, key_len), &pair)?);
        Ok(())
    })
}

/// `PUBLISH channel message`: send a message to the channel's subscribers.
///
/// Output: on `IPC_OK`, `*receivers` is how many subscribers received it.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a message over the size
/// limit; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client, also from a
/// callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_publish(
    client: *const ipc_client,
    channel: *const c_char,
    channel_len: usize,
    message: *const c_char,
    message_len: usize,
    receivers: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_publish(client, channel, channel_len, message, message_len, receivers) {
        put!(receivers, try_ref!(client).publish(bytes!(channel, channel_len), bytes!(message, message_len))?);
        Ok(())
    })
}

/// `SPUBLISH channel message`: send a message to a shard channel's subscribers
/// (`IPC_SUB_SHARD`).
///
/// Output: on `IPC_OK`, `*receivers` is how many subscribers received it.
///
/// Errors: as `ipc_publish()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_spublish(
    client: *const ipc_client,
    channel: *const c_char,
    channel_len: usize,
    message: *const c_char,
    message_len: usize,
    receivers: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_spublish(client, channel, channel_len, message, message_len, receivers) {
        put!(receivers, try_ref!(client).spublish(bytes!(channel, channel_len), bytes!(message, message_len))?);
        Ok(())
    })
}

/// `PING`: succeeds when the server answers.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_ping(client: *const ipc_client) -> ipc_result {
    ffi_boundary!(ipc_ping(client) {
        try_ref!(client).ping()?;
        Ok(())
    })
}

//! Typed helpers for the common commands, and `ipc_buf_free()` for the buffers they return.
//!
//! Keys, fields, channels and values are all `(pointer, length)`: binary-safe, no NUL
//! terminator needed. A pointer must not be NULL even when its length is 0 (pass `""`).

use std::ffi::c_char;
use std::time::Duration;

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::{borrow, bytes_arg, write_out};

/// `ipc_set_ex()` flag: set only if the key does not exist (`NX`).
pub const IPC_SET_NX: u32 = 1;
/// `ipc_set_ex()` flag: set only if the key already exists (`XX`).
pub const IPC_SET_XX: u32 = 2;

/// Hand a buffer to C: the caller frees it with `ipc_buf_free(ptr, len)`.
fn into_buf(v: Vec<u8>) -> (*mut u8, usize) {
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b).cast::<u8>(), len)
}

/// The client behind a handle.
///
/// # Safety
/// `client` is NULL or a live handle from `ipc_client_new`.
unsafe fn client<'a>(client: *const ipc_client) -> Result<&'a redipc::blocking::Client, Error> {
    // SAFETY: forwarded from the caller.
    Ok(&unsafe { borrow(client, "client") }?.inner)
}

/// Write an optional value to the `(buf, len, found)` outputs.
///
/// # Safety
/// The three pointers are writable (NULL is refused).
unsafe fn write_value(
    value: Option<Vec<u8>>,
    buf: *mut *mut u8,
    len: *mut usize,
    found: *mut bool,
) -> Result<(), Error> {
    let (p, n, f) = match value {
        Some(v) => {
            let (p, n) = into_buf(v);
            (p, n, true)
        }
        None => (std::ptr::null_mut(), 0, false),
    };
    // SAFETY: the caller promises the outputs are writable; they were checked for NULL
    // before the command was sent, so the buffer is never lost here.
    unsafe {
        write_out(buf, p, "buf")?;
        write_out(len, n, "len")?;
        write_out(found, f, "found")
    }
}

/// Free a buffer returned by `ipc_get()` or `ipc_hget()`; `len` must be the length that
/// came with it. NULL is a no-op.
///
/// Thread safety: any thread; the buffer belongs to the caller alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_buf_free(buf: *mut u8, len: usize) {
    ffi_boundary!(ipc_buf_free(#[nullable] buf, len) {
        if !buf.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(buf, len);
            // SAFETY: `(buf, len)` came from `into_buf` (a boxed slice) and is freed once
            // (caller contract).
            drop(unsafe { Box::from_raw(slice) });
        }
        Ok(())
    })
}

/// `GET key`: the value of a key.
///
/// Output: on `IPC_OK`, if the key exists, `*found` is true and `*buf` holds a copy of
/// the value of `*len` bytes, owned by the caller and freed with
/// `ipc_buf_free(*buf, *len)` (not NUL-terminated; never NULL, even when empty). If the
/// key does not exist, `*found` is false, `*buf` NULL and `*len` 0. Nothing is written on
/// failure.
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
    keylen: usize,
    buf: *mut *mut u8,
    len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_get(client, key, keylen, buf, len, found) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let value = self::client(client)?.get(key)?;
            write_value(value, buf, len, found)
        }
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
    keylen: usize,
    val: *const u8,
    vallen: usize,
    ttl_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_set(client, key, keylen, val, vallen, ttl_ms) {
        let mut opts = redipc::SetOptions::default();
        if ttl_ms > 0 {
            opts = opts.ttl(Duration::from_millis(ttl_ms));
        }
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let val = bytes_arg(val, vallen, "val")?;
            self::client(client)?.set_with(key, val, opts)?;
        }
        Ok(())
    })
}

/// `SET key value [PX ttl_ms] [NX|XX]`: as `ipc_set()`, with `flags` 0, `IPC_SET_NX` (only
/// if the key does not exist) or `IPC_SET_XX` (only if it exists).
///
/// Output: on `IPC_OK`, `*was_set` is true if the value was set, false if the condition
/// kept it from being set. Untouched otherwise.
///
/// Errors: as `ipc_set()`; `IPC_ERR_INVALID_ARGUMENT` for unknown flags or both flags.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_set_ex(
    client: *const ipc_client,
    key: *const c_char,
    keylen: usize,
    val: *const u8,
    vallen: usize,
    ttl_ms: u64,
    flags: u32,
    was_set: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_set_ex(client, key, keylen, val, vallen, ttl_ms, flags, was_set) {
        if flags & !(IPC_SET_NX | IPC_SET_XX) != 0 {
            return Err(Error::invalid(format!("unknown flags {flags:#x}: use IPC_SET_NX or IPC_SET_XX")));
        }
        let mut opts = redipc::SetOptions::default();
        if ttl_ms > 0 {
            opts = opts.ttl(Duration::from_millis(ttl_ms));
        }
        if flags & IPC_SET_NX != 0 {
            opts = opts.nx();
        }
        if flags & IPC_SET_XX != 0 {
            opts = opts.xx();
        }
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let val = bytes_arg(val, vallen, "val")?;
            let set = self::client(client)?.set_with(key, val, opts)?;
            write_out(was_set, set, "was_set")
        }
    })
}

/// `INCR key`: add 1 to the integer in a key (a missing key counts as 0).
///
/// Output: on `IPC_OK`, `*out` is the new value. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`ERR value is not an integer or out of
/// range`, `WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_incr(
    client: *const ipc_client,
    key: *const c_char,
    keylen: usize,
    out: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_incr(client, key, keylen, out) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let v = self::client(client)?.incr(key)?;
            write_out(out, v, "out")
        }
    })
}

/// `INCRBY key by`: add `by` (may be negative) to the integer in a key.
///
/// Output: on `IPC_OK`, `*out` is the new value. Untouched otherwise.
///
/// Errors: as `ipc_incr()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_incrby(
    client: *const ipc_client,
    key: *const c_char,
    keylen: usize,
    by: i64,
    out: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_incrby(client, key, keylen, by, out) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let v = self::client(client)?.incr_by(key, by)?;
            write_out(out, v, "out")
        }
    })
}

/// `DEL key`: delete a key.
///
/// Output: on `IPC_OK`, `*removed` is 1 if the key existed, else 0. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_del(
    client: *const ipc_client,
    key: *const c_char,
    keylen: usize,
    removed: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_del(client, key, keylen, removed) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let n = self::client(client)?.del(&[key])?;
            write_out(removed, n, "removed")
        }
    })
}

/// `HGET key field`: the value of a field of a hash.
///
/// Output: as `ipc_get()`: on `IPC_OK`, `*found` says whether the field exists and
/// `(*buf, *len)` is a copy of its value, freed with `ipc_buf_free()`, or NULL and 0.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hget(
    client: *const ipc_client,
    key: *const c_char,
    keylen: usize,
    field: *const c_char,
    fieldlen: usize,
    buf: *mut *mut u8,
    len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hget(client, key, keylen, field, fieldlen, buf, len, found) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let field = bytes_arg(field.cast(), fieldlen, "field")?;
            let value = self::client(client)?.hget(key, field)?;
            write_value(value, buf, len, found)
        }
    })
}

/// `HSET key field value`: set a field of a hash.
///
/// Output: on `IPC_OK`, `*added` is 1 if the field is new, 0 if it was updated.
/// Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a value over the size
/// limit; `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hset(
    client: *const ipc_client,
    key: *const c_char,
    keylen: usize,
    field: *const c_char,
    fieldlen: usize,
    val: *const u8,
    vallen: usize,
    added: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_hset(client, key, keylen, field, fieldlen, val, vallen, added) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let key = bytes_arg(key.cast(), keylen, "key")?;
            let field = bytes_arg(field.cast(), fieldlen, "field")?;
            let val = bytes_arg(val, vallen, "val")?;
            let n = self::client(client)?.hset(key, &[(field, val)])?;
            write_out(added, n, "added")
        }
    })
}

/// `PUBLISH channel message`: send a message to the subscribers of a channel.
///
/// Output: on `IPC_OK`, `*receivers` is the number of subscribers that received it.
/// Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a message over the size
/// limit; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_publish(
    client: *const ipc_client,
    channel: *const c_char,
    chlen: usize,
    msg: *const u8,
    len: usize,
    receivers: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_publish(client, channel, chlen, msg, len, receivers) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let channel = bytes_arg(channel.cast(), chlen, "channel")?;
            let msg = bytes_arg(msg, len, "msg")?;
            let n = self::client(client)?.publish(channel, msg)?;
            write_out(receivers, n, "receivers")
        }
    })
}

/// `SPUBLISH shardchannel message`: send a message to the subscribers of a shard channel
/// (`ipc_ssubscribe()`). Needs Redis 7 or later.
///
/// Output: on `IPC_OK`, `*receivers` is the number of subscribers that received it.
/// Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a message over the size
/// limit; `IPC_ERR_SERVER` from a server without shard channels; `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_spublish(
    client: *const ipc_client,
    channel: *const c_char,
    chlen: usize,
    msg: *const u8,
    len: usize,
    receivers: *mut i64,
) -> ipc_result {
    ffi_boundary!(ipc_spublish(client, channel, chlen, msg, len, receivers) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let channel = bytes_arg(channel.cast(), chlen, "channel")?;
            let msg = bytes_arg(msg, len, "msg")?;
            let n = self::client(client)?.spublish(channel, msg)?;
            write_out(receivers, n, "receivers")
        }
    })
}

/// `PING`: check that the server answers.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_ping(client: *const ipc_client) -> ipc_result {
    ffi_boundary!(ipc_ping(client) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        unsafe { self::client(client) }?.ping()?;
        Ok(())
    })
}

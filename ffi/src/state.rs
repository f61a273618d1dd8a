//! Hash state (`ipc_hash_*`): a publisher writes fields of a hash and announces each change
//! on the channel named like the hash, in one script; a watcher reads the hash whole and
//! then follows the changes.
//!
//! Ownership: an `ipc_hash_watcher` owns a `redipc::HashWatcher` (a thread of its own, which
//! owns the callback closure made here); `userdata_free` hangs on the core's
//! `HashWatcher::on_stopped`.

use std::ffi::{c_char, c_void};

use crate::client::ipc_client;
use crate::convert::{UserData, ipc_userdata_free_cb, millis, present};
use crate::error::ipc_result;
use crate::handle::to_boxed;
use crate::options::{ipc_hash_watch_options, or_default};
use crate::stream::{fields_arg, ipc_field};

/// `HSET hash field value` and `PUBLISH hash field`, atomically (one script): every watcher
/// of the hash sees the change. All three are byte strings; the hash name must not be
/// empty, the field may be.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty hash name or a value
/// over the size limit (nothing is sent); `IPC_ERR_SERVER` (`WRONGTYPE` when the key holds
/// another type: nothing is changed, nothing published); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_set(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    field: *const c_char,
    field_len: usize,
    value: *const c_char,
    value_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set(client, hash, hash_len, field, field_len, value, value_len) {
        try_ref!(client).hash_set(bytes!(hash, hash_len), bytes!(field, field_len), bytes!(value, value_len))?;
        Ok(())
    })
}

/// As `ipc_hash_set()`, but writes and publishes only when the value differs from the stored
/// one (compared in the same script): repeating a value publishes nothing. Meant for
/// publishers that sample a value often and announce only changes.
///
/// Output: on `IPC_OK`, `*changed` says whether the value was written (and published).
///
/// Errors: as `ipc_hash_set()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_set_if_changed(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    field: *const c_char,
    field_len: usize,
    value: *const c_char,
    value_len: usize,
    changed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set_if_changed(client, hash, hash_len, field, field_len, value, value_len, changed) {
        put!(changed, try_ref!(client).hash_set_if_changed(bytes!(hash, hash_len), bytes!(field, field_len), bytes!(value, value_len))?);
        Ok(())
    })
}

/// Set `n` fields (at least one) of a hash at once, atomically, and publish each field name
/// on the hash's channel, or, with `summary`, publish `"*"` once (watchers then re-read the
/// whole hash).
///
/// Errors: `IPC_ERR_NULL_ARG` (also a field's pointers); `IPC_ERR_INVALID_ARGUMENT` for an
/// empty hash name, no field, or a value over the size limit (nothing is sent);
/// `IPC_ERR_SERVER` (`WRONGTYPE`: nothing changed); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_set_many(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    fields: *const ipc_field,
    n: usize,
    summary: bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set_many(client, hash, hash_len, #[nullable] fields, n, summary) {
        // SAFETY: `fields` holds `n` fields (C's contract).
        let fields = unsafe { fields_arg(fields, n) }?;
        try_ref!(client).hash_set_many(bytes!(hash, hash_len), &fields, summary)?;
        Ok(())
    })
}

/// Delete a field of a hash and publish its name (only if it existed); watchers see the
/// field with a NULL value.
///
/// Output: on `IPC_OK`, `*existed` says whether the field existed.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty hash name;
/// `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_delete(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    field: *const c_char,
    field_len: usize,
    existed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_delete(client, hash, hash_len, field, field_len, existed) {
        put!(existed, try_ref!(client).hash_delete(bytes!(hash, hash_len), bytes!(field, field_len))?);
        Ok(())
    })
}

/// Replace the whole hash with `n` fields (0 empties it; then `fields` may be NULL),
/// atomically, and publish `"*"`: watchers re-read it and see every changed field, and every
/// removed one with a NULL value.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`, `fields` when `n > 0`, a field's pointers);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty hash name or a value over the size limit (nothing
/// is sent); `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_replace_all(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    fields: *const ipc_field,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_replace_all(client, hash, hash_len, #[nullable] fields, n) {
        // SAFETY: `fields` holds `n` fields (C's contract).
        let fields = unsafe { fields_arg(fields, n) }?;
        try_ref!(client).hash_replace_all(bytes!(hash, hash_len), &fields)?;
        Ok(())
    })
}

/// A hash watcher's callback: one call per field change, for every field of the hash (there
/// is one callback per watcher: switch on `field` to handle fields differently).
///
/// `field` (`field_len` bytes, not NUL-terminated) is the field's name; `value`
/// (`value_len` bytes) its new value, never NULL for a present field (even when empty), or
/// NULL with `value_len` 0 when the field was deleted. Both are valid only during the call.
///
/// Thread: the watcher's own thread (also in poll mode), one call at a time, in order. A
/// value is delivered only when it differs from the last one delivered for that field. The
/// callback may use the library and `ipc_hash_watcher_stop()` / `_free()` of its own
/// watcher (no further call follows); it must not unwind or `longjmp` out.
pub type ipc_field_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        field: *const c_char,
        field_len: usize,
        value: *const c_char,
        value_len: usize,
    ),
>;

/// A running hash watcher.
///
/// Owns a `redipc::HashWatcher`: a subscription to the hash's channel and a thread that runs
/// the callback (which owns `userdata`). Made by `ipc_hash_watch()`, stopped by
/// `ipc_hash_watcher_stop()`, freed by `ipc_hash_watcher_free()`.
///
/// Thread safety: `ipc_hash_watcher_stop()` may be called from any thread, also the
/// watcher's callback; `ipc_hash_watcher_free()` must come after every other call on it has
/// returned.
pub struct ipc_hash_watcher {
    _private: [u8; 0],
}
box_castable!(ipc_hash_watcher => redipc::HashWatcher);

/// Watch the hash `hash` (a byte string): subscribe to its channel, then read it whole, then
/// call `cb` for each field: first, with initial sync, for every current field, then for
/// each change announced by `ipc_hash_set()` and its siblings. Subscribing before reading
/// means no change is lost between the read and the first change, and no value is
/// delivered twice. After a reconnect (or a failed read, which is reported) the hash is read
/// whole again, so changed and deleted fields are delivered. Changes written without the
/// library's functions (a plain `HSET`) are not announced and not seen until the next full
/// read. `opts` may be NULL for the defaults; it is copied.
///
/// Callback: see `ipc_field_cb`; the first calls may come before this function returns.
/// `userdata_free` (may be NULL) runs exactly once, after the last callback returned, when
/// the watcher has stopped (in `ipc_hash_watcher_stop()` / `_free()`, or after the callback
/// that stopped it returned). If this call fails, it never runs and the caller keeps
/// `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the watcher, owned by the caller; free it with
/// `ipc_hash_watcher_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`, `cb`, `out`); `IPC_ERR_INVALID_ARGUMENT`
/// for an empty hash name; `IPC_ERR_SERVER` (`WRONGTYPE` when the key is not a hash);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`; `IPC_ERR_UNSUPPORTED` if no
/// thread can be started.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_watch(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    opts: *const ipc_hash_watch_options,
    cb: ipc_field_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_hash_watcher,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch(client, hash, hash_len, #[nullable] opts, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let cb = callback!(cb);
        let userdata = UserData(userdata);
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) }.to_core().on_any(move |field: &[u8], value: Option<&[u8]>| {
            let (f, f_len) = present(field);
            let (v, v_len) = value.map_or((std::ptr::null(), 0), present);
            // SAFETY: the caller gave `cb` to be called with `userdata` on the watcher's
            // thread; the bytes outlive the call.
            unsafe { cb(userdata.ptr(), f, f_len, v, v_len) };
        });
        let watcher = try_ref!(client).hash_watch(bytes!(hash, hash_len), opts)?;
        watcher.on_stopped(userdata.release(userdata_free));
        put!(out, to_boxed(watcher));
        Ok(())
    })
}

/// Stop watching and wait up to `timeout_ms` milliseconds for a running callback. On
/// `IPC_OK` no callback runs or will run, and `userdata_free` has run. From inside the
/// watcher's own callback it returns `IPC_OK` at once: no further call is made, and the
/// watcher stops when the callback returns. The handle stays allocated: free it with
/// `ipc_hash_watcher_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if the callback was still running at the
/// deadline (the watcher stops when it returns).
///
/// Thread safety: see `ipc_hash_watcher`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_watcher_stop(
    watcher: *const ipc_hash_watcher,
    timeout_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watcher_stop(watcher, timeout_ms) {
        try_ref!(watcher).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// Stop watching (waiting up to 10 s, as `ipc_hash_watcher_stop()`) and free the watcher.
/// NULL is a no-op. Called from inside the watcher's own callback, it returns at once, no
/// further call is made, and `userdata_free` runs after the callback returns.
///
/// Thread safety: see `ipc_hash_watcher`; the handle must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_watcher_free(watcher: *mut ipc_hash_watcher) {
    ffi_boundary!(ipc_hash_watcher_free(#[nullable] watcher) { free_box!(watcher) })
}

//! Hash state (`ipc_hash_*`): a publisher writes fields of a hash and announces each change
//! on the channel named like the hash, in one script; a watcher reads the hash whole and
//! then follows the changes. The writes speak a redis-ipc fleet's words when asked
//! (`ipc_hash_write_options`), and faults are raised and cleared in the fleet's layout
//! (`ipc_fault_set()`, `ipc_fault_clear()`).
//!
//! Ownership: an `ipc_hash_watcher` owns a `redipc::HashWatcher` (a thread of its own, which
//! owns the callback closures made here); `userdata_free` hangs on the core's
//! `HashWatcher::on_stopped`.

use std::ffi::{c_char, c_void};

use crate::client::ipc_client;
use crate::convert::{UserData, fields_arg, ipc_field, ipc_userdata_free_cb, millis, present};
use crate::error::ipc_result;
use crate::handle::to_boxed;
use crate::options::{ipc_hash_watch_options, ipc_hash_write_options, or_default};

/// `HSET hash field value` and `PUBLISH hash field`, atomically (one script): every watcher
/// of the hash sees the change. All three are byte strings; the hash name must not be
/// empty, the field may be. `opts` may be NULL for redipc's defaults; with options (see
/// `ipc_hash_write_options`) the write is announced on another channel, with an
/// announcement word instead of the field name, and/or also sets `<field>:timestamp`
/// (the fleet's `HSET hash field value` + `HSET hash field:timestamp <time>` +
/// `PUBLISH hash field`, still one atomic step).
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
    opts: *const ipc_hash_write_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set(client, hash, hash_len, field, field_len, value, value_len, #[nullable] opts) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let write = unsafe { or_default(opts) };
        try_ref!(client).hash_set_with(bytes!(hash, hash_len), bytes!(field, field_len), bytes!(value, value_len), write)?;
        Ok(())
    })
}

/// As `ipc_hash_set()` with redipc's defaults, but writes and publishes only when the value
/// differs from the stored one (compared in the same script): repeating a value publishes
/// nothing. Meant for publishers that sample a value often and announce only changes.
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
/// on the hash's channel. `opts` may be NULL for redipc's defaults; with
/// `ipc_hash_write_options_set_announce()` one word is published once instead (`"*"`:
/// redipc watchers re-read the whole hash; a fleet's word such as `"blinker:state"`), and
/// the channel and timestamps follow the options too.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`, `fields` when `n > 0`, a field's
/// pointers); `IPC_ERR_INVALID_ARGUMENT` for an empty hash name, no field, or a value over
/// the size limit (nothing is sent); `IPC_ERR_SERVER` (`WRONGTYPE`: nothing changed);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
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
    opts: *const ipc_hash_write_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set_many(client, hash, hash_len, #[nullable] fields, n, #[nullable] opts) {
        // SAFETY: `fields` holds `n` fields (C's contract).
        let fields = unsafe { fields_arg(fields, n) }?;
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let write = unsafe { or_default(opts) };
        try_ref!(client).hash_set_many_with(bytes!(hash, hash_len), &fields, write)?;
        Ok(())
    })
}

/// Delete a field of a hash and publish its name (only if it existed); watchers see the
/// field with a NULL value. `opts` may be NULL for redipc's defaults; of the options only
/// the channel applies.
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
    opts: *const ipc_hash_write_options,
    existed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_delete(client, hash, hash_len, field, field_len, #[nullable] opts, existed) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let write = unsafe { or_default(opts) };
        put!(existed, try_ref!(client).hash_delete_with(bytes!(hash, hash_len), bytes!(field, field_len), write)?);
        Ok(())
    })
}

/// Replace the whole hash with `n` fields (0 empties it; then `fields` may be NULL),
/// atomically, and publish `"*"`: watchers re-read it and see every changed field, and every
/// removed one with a NULL value. `opts` may be NULL for redipc's defaults; a fleet's
/// replace-all (`DEL`, the `HSET`s, `PUBLISH hash replaced`) is
/// `ipc_hash_write_options_set_announce(opts, "replaced", 8)` (watchers of this library
/// re-read on `replaced` too); the channel and timestamps follow the options.
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
    opts: *const ipc_hash_write_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_replace_all(client, hash, hash_len, #[nullable] fields, n, #[nullable] opts) {
        // SAFETY: `fields` holds `n` fields (C's contract).
        let fields = unsafe { fields_arg(fields, n) }?;
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let write = unsafe { or_default(opts) };
        try_ref!(client).hash_replace_all_with(bytes!(hash, hash_len), &fields, write)?;
        Ok(())
    })
}

/// Delete the whole hash and publish `"cleared"` on its channel, atomically: a redis-ipc
/// fleet's clear (`DEL hash`, `PUBLISH hash cleared`). Watchers (of this library and of the
/// fleet) read it again and see every field deleted (a NULL value). `opts` may be NULL for
/// the defaults; the channel and the announcement word (instead of `cleared`) follow the
/// options, timestamps do not apply.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`); `IPC_ERR_INVALID_ARGUMENT` for an empty
/// hash name; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_clear(
    client: *const ipc_client,
    hash: *const c_char,
    hash_len: usize,
    opts: *const ipc_hash_write_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_clear(client, hash, hash_len, #[nullable] opts) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let write = unsafe { or_default(opts) };
        try_ref!(client).hash_clear(bytes!(hash, hash_len), write)?;
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
/// Thread: the watcher's own thread (also in poll mode), one call at a time, in order (and
/// in order with the watcher's `ipc_hash_event_cb`). A value is delivered only when it
/// differs from the last one delivered for that field, unless
/// `ipc_hash_watch_options_set_every_notification()` asks for every announcement. The
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

/// A hash watcher's event callback: a payload on the hash's channel that is not a field of
/// the hash (not now, and not one delivered before): a redis-ipc fleet's event such as
/// `seatbox:opened` or `fault`. `payload` (`payload_len` bytes, not NUL-terminated, never
/// NULL) is valid only during the call. `*`, `cleared` and `replaced` are not events: they
/// make the watcher read the whole hash again.
///
/// Thread: the watcher's own thread, one call at a time, in order with the field callback
/// (`ipc_field_cb`), with the same `userdata`. It may use the library and
/// `ipc_hash_watcher_stop()` / `_free()` of its own watcher (no further call follows); it
/// must not unwind or `longjmp` out.
pub type ipc_hash_event_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, payload: *const c_char, payload_len: usize)>;

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

/// Watch the hash `hash` (a byte string): subscribe to its channel (the hash's name, or
/// `ipc_hash_watch_options_set_channel()`), then read it whole, then call `cb` for each
/// field: first, with initial sync, for every current field, then for each change announced
/// on the channel (by `ipc_hash_set()` and its siblings, or by any client that publishes the
/// field name after writing it, as redis-ipc fleets do: the field is read with `HGET`, a
/// missing one is a deletion). Subscribing before reading means no change is lost between
/// the read and the first change, and no value is delivered twice. `*`, `cleared`,
/// `replaced`, a reconnect (or a failed read, which is reported) make it read the hash whole
/// again, so changed and deleted fields are delivered. A payload that is not a field goes to
/// `event_cb` (may be NULL: then it is ignored). Changes written without an announcement (a
/// plain `HSET`) are not seen until the next full read. `opts` may be NULL for the defaults;
/// it is copied.
///
/// Callbacks: see `ipc_field_cb` and `ipc_hash_event_cb`; both get `userdata`, and the
/// first calls may come before this function returns. `userdata_free` (may be NULL) runs
/// exactly once, after the last call of either returned, when the watcher has stopped (in
/// `ipc_hash_watcher_stop()` / `_free()`, or after the callback that stopped it returned).
/// If this call fails, it never runs and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the watcher, owned by the caller; free it with
/// `ipc_hash_watcher_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`, `cb`, `out`); `IPC_ERR_INVALID_ARGUMENT`
/// for an empty hash name (or channel); `IPC_ERR_SERVER` (`WRONGTYPE` when the key is not a hash);
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
    event_cb: ipc_hash_event_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_hash_watcher,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch(client, hash, hash_len, #[nullable] opts, cb, #[nullable] event_cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let cb = callback!(cb);
        let userdata = UserData(userdata);
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let mut opts = unsafe { or_default(opts) }.to_core().on_any(move |field: &[u8], value: Option<&[u8]>| {
            let (f, f_len) = present(field);
            let (v, v_len) = value.map_or((std::ptr::null(), 0), present);
            // SAFETY: the caller gave `cb` to be called with `userdata` on the watcher's
            // thread; the bytes outlive the call.
            unsafe { cb(userdata.ptr(), f, f_len, v, v_len) };
        });
        if let Some(event_cb) = event_cb {
            opts = opts.on_event(move |payload: &[u8]| {
                let (p, p_len) = present(payload);
                // SAFETY: as for `cb`: `event_cb` with `userdata`, on the watcher's thread.
                unsafe { event_cb(userdata.ptr(), p, p_len) };
            });
        }
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

/// Raise fault `code` (positive) of `group` (a byte string, not empty) in the layout of
/// redis-ipc fleets, atomically (one script): `SADD <group>:fault <code>`, and when the
/// fault is new `XADD events:faults MAXLEN ~ 1000 * group <group> code <code> description
/// <description>` and `PUBLISH <group> fault` (a hash watcher of `group` gets the event
/// `fault`). Raising a fault that is already set changes nothing. `description` is a byte
/// string (may be empty).
///
/// Output: on `IPC_OK`, `*is_new` says whether the fault was new (and announced).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty group name or a code
/// that is not positive; `IPC_ERR_SERVER` (`WRONGTYPE` when `<group>:fault` or
/// `events:faults` holds another type: nothing changed); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_fault_set(
    client: *const ipc_client,
    group: *const c_char,
    group_len: usize,
    code: i64,
    description: *const c_char,
    description_len: usize,
    is_new: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_fault_set(client, group, group_len, code, description, description_len, is_new) {
        put!(is_new, try_ref!(client).fault_set(bytes!(group, group_len), code, bytes!(description, description_len))?);
        Ok(())
    })
}

/// Clear fault `code` (positive) of `group` (a byte string, not empty), atomically:
/// `SREM <group>:fault <code>`, and when it was set `XADD events:faults MAXLEN ~ 1000 *
/// group <group> code -<code>` and `PUBLISH <group> fault`. Clearing a fault that is not set
/// changes nothing.
///
/// Output: on `IPC_OK`, `*was_set` says whether the fault was set (and the clearing
/// announced).
///
/// Errors: as `ipc_fault_set()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_fault_clear(
    client: *const ipc_client,
    group: *const c_char,
    group_len: usize,
    code: i64,
    was_set: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_fault_clear(client, group, group_len, code, was_set) {
        put!(was_set, try_ref!(client).fault_clear(bytes!(group, group_len), code)?);
        Ok(())
    })
}

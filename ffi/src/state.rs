//! Hash state (`ipc_hash_*`): a publisher writes fields of a hash and announces each change
//! on the channel named like the hash, in one script; a watcher reads the hash whole and
//! then follows the changes.
//!
//! Ownership: an `ipc_hash_watcher` owns a `redipc::HashWatcher` (a thread of its own);
//! the watcher's thread owns the callback closure made here, and the closure owns the
//! caller's `(userdata, userdata_free)` (see `userdata.rs`).

use std::ffi::{c_char, c_void};
use std::time::Duration;

use redipc::WatchOptions;

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::pubsub::ipc_userdata_free_cb;
use crate::stream::{client_arg, fields_arg, ipc_field, name_arg};
use crate::userdata::{Finalizer, Stopped, UserData, present};
use crate::{bytes_arg, free_handle, to_handle, write_out};

/// `HSET hash field value` and `PUBLISH hash field`, atomically (one script): every
/// watcher of the hash sees the change. The hash name must not be empty; the field may be.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty hash name or a value
/// over the size limit (nothing is sent); `IPC_ERR_SERVER` (`WRONGTYPE` when the key holds
/// another type: nothing is changed, nothing published); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_set(
    client: *const ipc_client,
    hash: *const c_char,
    hlen: usize,
    field: *const c_char,
    flen: usize,
    val: *const u8,
    vlen: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set(client, hash, hlen, field, flen, val, vlen) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let hash = name_arg(hash, hlen, "hash")?;
            let field = bytes_arg(field.cast(), flen, "field")?;
            let val = bytes_arg(val, vlen, "val")?;
            client_arg(client)?.hash_set(hash, field, val)?;
        }
        Ok(())
    })
}

/// As `ipc_hash_set()`, but writes and publishes only when the value differs from the
/// stored one (compared in the same script): repeating a value publishes nothing. Meant
/// for publishers that sample a value often and announce only changes.
///
/// Output: on `IPC_OK`, `*changed` says whether the value was written (and published).
/// Untouched otherwise.
///
/// Errors: as `ipc_hash_set()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_set_if_changed(
    client: *const ipc_client,
    hash: *const c_char,
    hlen: usize,
    field: *const c_char,
    flen: usize,
    val: *const u8,
    vlen: usize,
    changed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set_if_changed(client, hash, hlen, field, flen, val, vlen, changed) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let hash = name_arg(hash, hlen, "hash")?;
            let field = bytes_arg(field.cast(), flen, "field")?;
            let val = bytes_arg(val, vlen, "val")?;
            let did = client_arg(client)?.hash_set_if_changed(hash, field, val)?;
            write_out(changed, did, "changed")
        }
    })
}

/// Set `n` fields (at least one) of a hash at once, atomically, and publish each field
/// name on the hash's channel — or, with `summary`, publish `"*"` once (watchers then
/// re-read the whole hash).
///
/// Errors: `IPC_ERR_NULL_ARG` (also a field's pointers); `IPC_ERR_INVALID_ARGUMENT` for
/// an empty hash name, `n` 0, or a value over the size limit (nothing is sent);
/// `IPC_ERR_SERVER` (`WRONGTYPE`: nothing changed); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_set_many(
    client: *const ipc_client,
    hash: *const c_char,
    hlen: usize,
    fields: *const ipc_field,
    n: usize,
    summary: bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_set_many(client, hash, hlen, fields, n, summary) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let hash = name_arg(hash, hlen, "hash")?;
            let fields = fields_arg(fields, n)?;
            if fields.is_empty() {
                return Err(Error::invalid("give at least one field (n is 0)"));
            }
            client_arg(client)?.hash_set_many(hash, &fields, summary)?;
        }
        Ok(())
    })
}

/// Delete a field of a hash and publish its name (only if it existed); watchers see the
/// field with a NULL value.
///
/// Output: on `IPC_OK`, `*existed` says whether the field existed. Untouched otherwise.
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
    hlen: usize,
    field: *const c_char,
    flen: usize,
    existed: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_delete(client, hash, hlen, field, flen, existed) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let hash = name_arg(hash, hlen, "hash")?;
            let field = bytes_arg(field.cast(), flen, "field")?;
            let was = client_arg(client)?.hash_delete(hash, field)?;
            write_out(existed, was, "existed")
        }
    })
}

/// Replace the whole hash with `n` fields (0 empties it; then `fields` may be NULL),
/// atomically, and publish `"*"`: watchers re-read it and see every changed field, and
/// every removed one with a NULL value.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`, `fields` when `n > 0`, a field's
/// pointers); `IPC_ERR_INVALID_ARGUMENT` for an empty hash name or a value over the size
/// limit (nothing is sent); `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_replace_all(
    client: *const ipc_client,
    hash: *const c_char,
    hlen: usize,
    fields: *const ipc_field,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_replace_all(client, hash, hlen, #[nullable] fields, n) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let hash = name_arg(hash, hlen, "hash")?;
            let fields = fields_arg(fields, n)?;
            client_arg(client)?.hash_replace_all(hash, &fields)?;
        }
        Ok(())
    })
}

/// A hash watcher's callback: one call per field change, for every field of the hash
/// (there is one callback per watcher: switch on `field` to handle fields differently).
///
/// `field` (`flen` bytes, not NUL-terminated) is the field's name; `value` (`vlen` bytes)
/// its new value, never NULL for a present field (even when empty), or NULL with `vlen` 0
/// when the field was deleted. Both are valid only during the call.
///
/// Thread: the watcher's own thread (`redipc-hash-watch`; also in poll mode), one call at a
/// time, in order. A value is delivered only when it differs from the last one delivered
/// for that field. The callback may use the library; it must not unwind or `longjmp` out.
/// It may free its own watcher (`ipc_hash_watcher_free()`): no further call follows.
pub type ipc_field_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        field: *const c_char,
        flen: usize,
        value: *const u8,
        vlen: usize,
    ),
>;

/// Settings of a hash watcher, a plain struct: fill it with
/// `ipc_hash_watch_options_init()`, change what you need, pass it to `ipc_hash_watch()`
/// (which copies it).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ipc_hash_watch_options {
    /// Deliver every field's current value first (default true). Without it only changes
    /// made after `ipc_hash_watch()` are delivered.
    pub initial_sync: bool,
    /// Coalesce the changes of this many milliseconds after the first one into one
    /// delivery per field, of its latest value (default 0: deliver each change at once).
    pub debounce_ms: u64,
}

impl Default for ipc_hash_watch_options {
    fn default() -> Self {
        ipc_hash_watch_options {
            initial_sync: true,
            debounce_ms: 0,
        }
    }
}

/// Fill `opts` with the defaults: initial sync on, no debounce.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_watch_options_init(
    opts: *mut ipc_hash_watch_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_init(opts) {
        // SAFETY: `opts` is writable (caller contract, NULL checked).
        unsafe { write_out(opts, ipc_hash_watch_options::default(), "opts") }
    })
}

/// A running hash watcher.
///
/// Owns a `redipc::HashWatcher`: a subscription to the hash's channel and a thread that
/// runs the callback (which owns `userdata`). Made by `ipc_hash_watch()`, freed by
/// `ipc_hash_watcher_free()`.
///
/// Thread safety: only `ipc_hash_watcher_free()` takes it; any thread.
pub struct ipc_hash_watcher {
    inner: redipc::HashWatcher,
    stopped: Stopped,
}

impl Drop for ipc_hash_watcher {
    fn drop(&mut self) {
        // Before `inner` is dropped (which stops and joins the thread): no further call,
        // not even for the rest of a batch, when freed from inside the callback.
        self.stopped.stop();
        let _ = self.inner.stop(std::time::Duration::from_secs(10));
    }
}

/// Watch the hash `hash`: subscribe to its channel, then read it whole, then call `cb` for
/// each field — first, with `initial_sync`, for every current field, then for each change
/// announced by `ipc_hash_set()` and its siblings. Subscribing before reading means no
/// change is lost between the read and the first change, and no value is delivered twice.
/// After a reconnect the hash is read whole again (changed and deleted fields are
/// delivered). Changes written without the library's functions (a plain `HSET`) are not
/// announced and not seen until the next full read.
///
/// `opts` may be NULL for the defaults (initial sync on, no debounce); it is copied.
///
/// Callback: see `ipc_field_cb` for its arguments and thread; the first calls may come
/// before this function returns. `userdata` is the caller's: the library only passes it
/// to `cb` and `userdata_free`, from other threads. `userdata_free` may be NULL. On
/// `IPC_OK` it runs exactly once, on the watcher's thread when it ends: before
/// `ipc_hash_watcher_free()` returns, or after the callback returns when that was called
/// from inside the callback, or soon after the client is closed (`ipc_client_close()`,
/// `ipc_client_free()`: the watcher then stops by itself; still free its handle). On
/// failure it does not run and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the watcher, owned by the caller; free it with
/// `ipc_hash_watcher_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `hash`, `cb`, `out`); `IPC_ERR_INVALID_ARGUMENT`
/// for an empty hash name; `IPC_ERR_SERVER` (`WRONGTYPE` when the key is not a hash);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`; `IPC_ERR_UNSUPPORTED` if no
/// thread can be started.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_watch(
    client: *const ipc_client,
    hash: *const c_char,
    hlen: usize,
    cb: ipc_field_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    opts: *const ipc_hash_watch_options,
    out: *mut *mut ipc_hash_watcher,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch(client, hash, hlen, cb, #[nullable] userdata, #[nullable] userdata_free, #[nullable] opts, out) {
        let Some(cb) = cb else {
            return Err(Error::null_arg("cb"));
        };
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        let (client, hash, opts) = unsafe {
            (
                client_arg(client)?,
                name_arg(hash, hlen, "hash")?,
                if opts.is_null() { ipc_hash_watch_options::default() } else { *crate::borrow(opts, "opts")? },
            )
        };
        let userdata = UserData(userdata);
        let (finalizer, owner) = Finalizer::new(userdata, userdata_free);
        let stopped = Stopped::default();
        let st = stopped.clone();
        let mut core_opts = WatchOptions::new()
            .initial_sync(opts.initial_sync)
            .on_any(move |field: &[u8], value: Option<&[u8]>| {
                let _owns = &owner;
                if st.is_stopped() {
                    return;
                }
                let (f, flen) = present(field);
                let (v, vlen) = value.map_or((std::ptr::null(), 0), present);
                // SAFETY: the caller of ipc_hash_watch promised that `cb` may be called
                // with `userdata` on the watcher thread; the bytes outlive the call.
                unsafe { cb(userdata.ptr(), f.cast(), flen, v, vlen) };
            });
        if opts.debounce_ms > 0 {
            core_opts = core_opts.debounce(Duration::from_millis(opts.debounce_ms));
        }
        match client.hash_watch(hash, core_opts) {
            Ok(inner) => {
                finalizer.succeeded();
                let handle = to_handle(ipc_hash_watcher { inner, stopped });
                // SAFETY: `out` is writable (caller contract, NULL checked).
                unsafe { out.write(handle) };
                Ok(())
            }
            Err(e) => {
                finalizer.failed();
                Err(e.into())
            }
        }
    })
}

/// Stop watching and free the watcher. NULL is a no-op.
///
/// Guarantee: after it returns, no call of its callback runs or will run (a running one on
/// the watcher thread is waited for) and `userdata_free` has run. Called from inside the
/// watcher's own callback, it returns at once, no further call is made, and `userdata_free`
/// runs on the watcher thread after the callback returns.
///
/// Thread safety: any thread, once; the handle must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_watcher_free(watcher: *mut ipc_hash_watcher) {
    ffi_boundary!(ipc_hash_watcher_free(#[nullable] watcher) {
        // SAFETY: NULL or a handle from ipc_hash_watch, freed once (caller contract).
        unsafe { free_handle(watcher) };
        Ok(())
    })
}

//! Keyspace notifications (`ipc_watch_keys()`): `(key, event)` pairs for keys matching a
//! pattern, delivered to a C callback.
//!
//! Ownership: an `ipc_key_watch` owns a `redipc::KeyspaceWatch` (a pattern subscription);
//! the core owns the callback closure made here, and the closure owns the caller's
//! `(userdata, userdata_free)` (see `userdata.rs`).

use std::ffi::{CStr, CString, c_char, c_void};

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::pubsub::ipc_userdata_free_cb;
use crate::stream::{client_arg, name_arg};
use crate::userdata::{Finalizer, Stopped, UserData, present};
use crate::{free_handle, to_handle};

/// A keyspace watch's callback: `key` (`klen` bytes, not NUL-terminated, never NULL) had
/// the event `event` (NUL-terminated: `"set"`, `"del"`, `"expired"`, `"hset"`, ...). Both
/// are valid only during the call.
///
/// Thread: as the callbacks of subscriptions (`ipc_message_cb`): a library dispatcher
/// thread, one call at a time in the order the server sent the events; in poll mode only
/// inside `ipc_client_poll()`. It may use the library; it must not unwind or `longjmp`
/// out, and may free its own watch (`ipc_key_watch_free()`).
pub type ipc_key_event_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        key: *const c_char,
        klen: usize,
        event: *const c_char,
    ),
>;

/// A keyspace watch: a subscription to `__keyspace@<db>__:<pattern>`.
///
/// Owns a `redipc::KeyspaceWatch` and, through it, the callback and its `userdata`. Made by
/// `ipc_watch_keys()`, freed by `ipc_key_watch_free()`.
///
/// Thread safety: only `ipc_key_watch_free()` takes it; any thread.
pub struct ipc_key_watch {
    inner: Option<redipc::KeyspaceWatch>,
    stopped: Stopped,
}

impl Drop for ipc_key_watch {
    fn drop(&mut self) {
        // Before the subscription closes: no further call, not even for the rest of a
        // batch, when freed from inside the callback.
        self.stopped.stop();
        drop(self.inner.take());
    }
}

/// The event names passed by C (`events` may be NULL when `n` is 0).
///
/// # Safety
/// `events` is NULL or holds `n` NUL-terminated strings.
unsafe fn events_arg(events: *const *const c_char, n: usize) -> Result<Vec<String>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if events.is_null() {
        return Err(Error::null_arg("events"));
    }
    if n > isize::MAX as usize / size_of::<*const c_char>() {
        return Err(Error::invalid(format!("`nevents`: count {n} is too large")));
    }
    // SAFETY: `events` is not NULL and holds `n` pointers (caller contract).
    let ptrs = unsafe { std::slice::from_raw_parts(events, n) };
    let mut out = Vec::with_capacity(n);
    for (i, &p) in ptrs.iter().enumerate() {
        if p.is_null() {
            return Err(Error::new(
                ipc_result::IPC_ERR_NULL_ARG,
                format!("argument `events[{i}]` is NULL"),
            ));
        }
        // SAFETY: `p` is a NUL-terminated string (caller contract).
        let s = unsafe { CStr::from_ptr(p) }
            .to_str()
            .map_err(|e| Error::invalid(format!("`events[{i}]` is not UTF-8: {e}")))?;
        if s.is_empty() {
            return Err(Error::invalid(format!("`events[{i}]` is empty")));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// Call `cb` for keyspace events of the keys matching the glob `pattern` (`plen` bytes,
/// not empty; `"*"` for all keys of the client's database), limited to the `nevents` event
/// names in `events` (NUL-terminated: `"set"`, `"del"`, `"expired"`, `"hset"`, ...); with
/// `nevents` 0 every event is delivered (then `events` may be NULL).
///
/// Keyspace notifications are off in a default Redis. With `configure_server`, the flags
/// the wanted events need are added to the server's `notify-keyspace-events` (flags are
/// only added, never removed; this needs permission for `CONFIG SET`). Without it the
/// server's configuration is left alone, and only the events it already publishes arrive.
/// Keys are the server's names: the client's key prefix does not apply.
///
/// Returns once the server confirmed the subscription: events from then on are delivered.
/// Events that happen while the pub/sub connection is down are lost (Redis does not keep
/// them).
///
/// Callback: see `ipc_key_event_cb` for its arguments and thread. `userdata` is the
/// caller's: the library only passes it to `cb` and `userdata_free`, from other threads.
/// `userdata_free` may be NULL. On `IPC_OK` it runs exactly once, when the watch ends: in
/// `ipc_key_watch_free()`, or in `ipc_client_close()` / `ipc_client_free()` of its client,
/// whichever comes first, as for subscriptions (see `ipc_subscribe()`). On failure it does
/// not run and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the watch, owned by the caller; free it with
/// `ipc_key_watch_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `pattern`, `events` when `nevents > 0`, any
/// `events[i]`, `cb`, `out`); `IPC_ERR_INVALID_ARGUMENT` for an empty pattern or event
/// name; `IPC_ERR_SERVER` (`CONFIG` refused); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_watch_keys(
    client: *const ipc_client,
    pattern: *const c_char,
    plen: usize,
    events: *const *const c_char,
    nevents: usize,
    configure_server: bool,
    cb: ipc_key_event_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_key_watch,
) -> ipc_result {
    ffi_boundary!(ipc_watch_keys(client, pattern, plen, #[nullable] events, nevents, configure_server, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let Some(cb) = cb else {
            return Err(Error::null_arg("cb"));
        };
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        let (client, pattern, events) = unsafe {
            (client_arg(client)?, name_arg(pattern, plen, "pattern")?, events_arg(events, nevents)?)
        };
        let names: Vec<&str> = events.iter().map(String::as_str).collect();
        let userdata = UserData(userdata);
        let (finalizer, owner) = Finalizer::new(userdata, userdata_free);
        let stopped = Stopped::default();
        let st = stopped.clone();
        let handler = move |key: &[u8], event: &str| {
            let _owns = &owner;
            if st.is_stopped() {
                return;
            }
            let (k, klen) = present(key);
            let event = CString::new(event.replace('\0', "")).unwrap_or_default();
            // SAFETY: the caller of ipc_watch_keys promised that `cb` may be called with
            // `userdata` on the dispatcher (or polling) thread; the bytes outlive the call.
            unsafe { cb(userdata.ptr(), k.cast(), klen, event.as_ptr()) };
        };
        match client.watch_keys(pattern, &names, configure_server, handler) {
            Ok(inner) => {
                finalizer.succeeded();
                let handle = to_handle(ipc_key_watch { inner: Some(inner), stopped });
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

/// Unsubscribe and free the watch. NULL is a no-op.
///
/// Guarantee: as `ipc_subscription_free()`: after it returns no call of its callback runs
/// or will run and `userdata_free` has run; from inside its own callback it takes effect
/// when the callback returns (no further call is made).
///
/// Thread safety: any thread, once; the handle must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_key_watch_free(watch: *mut ipc_key_watch) {
    ffi_boundary!(ipc_key_watch_free(#[nullable] watch) {
        // SAFETY: NULL or a handle from ipc_watch_keys, freed once (caller contract).
        unsafe { free_handle(watch) };
        Ok(())
    })
}

//! Keyspace notifications (`ipc_watch_keys()`): `(key, event)` pairs for keys matching a
//! pattern, delivered to a C callback.
//!
//! Ownership: an `ipc_key_watch` owns a `redipc::KeyspaceWatch` (a pattern subscription
//! whose handler is the closure made here); `userdata_free` hangs on the core's
//! `KeyspaceWatch::on_stopped`.

use std::ffi::{c_char, c_void};

use crate::client::ipc_client;
use crate::convert::{UserData, c_text, ipc_userdata_free_cb, millis, present};
use crate::error::{Error, ipc_result};
use crate::handle::to_boxed;

/// A keyspace watch's callback: `key` (`key_len` bytes, not NUL-terminated, never NULL) had
/// the event `event` (NUL-terminated: `"set"`, `"del"`, `"expired"`, `"hset"`, ...). Both
/// are valid only during the call.
///
/// Thread: as the callbacks of subscriptions (`ipc_message_cb`): a library dispatcher
/// thread, one call at a time in the order the server sent the events; in poll mode only
/// inside `ipc_client_poll()`. It may use the library and `ipc_key_watch_stop()` / `_free()`
/// of its own watch (no further call follows); it must not unwind or `longjmp` out.
pub type ipc_key_event_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        key: *const c_char,
        key_len: usize,
        event: *const c_char,
    ),
>;

/// A keyspace watch: a subscription to `__keyspace@<db>__:<pattern>`.
///
/// Owns a `redipc::KeyspaceWatch` and, through it, the callback and its `userdata`. Made by
/// `ipc_watch_keys()`, stopped by `ipc_key_watch_stop()`, freed by `ipc_key_watch_free()`.
///
/// Thread safety: `ipc_key_watch_stop()` may be called from any thread, also the watch's
/// callback; `ipc_key_watch_free()` must come after every other call on it has returned.
pub struct ipc_key_watch {
    _private: [u8; 0],
}
box_castable!(ipc_key_watch => redipc::KeyspaceWatch);

/// Call `cb` for keyspace events of the keys matching the glob `pattern` (a byte string;
/// `"*"` for all keys of the client's database), limited to the `n_events` event names in
/// `events` (NUL-terminated: `"set"`, `"del"`, `"expired"`, `"hset"`, ...); with `n_events`
/// 0 every event is delivered (then `events` may be NULL).
///
/// Keyspace notifications are off in a default Redis. With `configure_server`, the flags
/// the wanted events need are added to the server's `notify-keyspace-events` (flags are only
/// added, never removed; this needs permission for `CONFIG SET`). Without it the server's
/// configuration is left alone, and only the events it already publishes arrive. Keys are
/// the server's names: the client's key prefix does not apply.
///
/// Returns once the server confirmed the subscription: events from then on are delivered.
/// Events that happen while the pub/sub connection is down are lost (Redis does not keep
/// them).
///
/// Callback: see `ipc_key_event_cb`. `userdata_free` (may be NULL) runs exactly once, after
/// the last callback returned, when the watch has stopped (`ipc_key_watch_stop()` /
/// `_free()`, or its client closed). If this call fails, it never runs and the caller keeps
/// `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the watch, owned by the caller; free it with
/// `ipc_key_watch_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `pattern`, `events` when `n_events > 0`, any
/// `events[i]`, `cb`, `out`); `IPC_ERR_INVALID_ARGUMENT` for an event name that is not
/// UTF-8; `IPC_ERR_UNSUPPORTED` with `configure_server` when the server does not let
/// `CONFIG` switch notifications on (renamed away or forbidden, as on many embedded boards:
/// the message says so; enable `notify-keyspace-events` in the server's configuration and
/// pass `configure_server` false); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_watch_keys(
    client: *const ipc_client,
    pattern: *const c_char,
    pattern_len: usize,
    events: *const *const c_char,
    n_events: usize,
    configure_server: bool,
    cb: ipc_key_event_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_key_watch,
) -> ipc_result {
    ffi_boundary!(ipc_watch_keys(client, pattern, pattern_len, #[nullable] events, n_events, configure_server, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let cb = callback!(cb);
        let userdata = UserData(userdata);
        let no_lens = std::ptr::null();
        let events = byte_list!(events, no_lens, n_events)
            .into_iter()
            .map(|e| std::str::from_utf8(e).map_err(|e| Error::invalid(format!("an event name is not UTF-8: {e}"))))
            .collect::<Result<Vec<&str>, Error>>()?;
        let handler = move |key: &[u8], event: &str| {
            let (k, k_len) = present(key);
            let event = c_text(event);
            // SAFETY: the caller gave `cb` to be called with `userdata` on the dispatcher
            // (or polling) thread; the bytes outlive the call.
            unsafe { cb(userdata.ptr(), k, k_len, event.as_ptr()) };
        };
        let watch = try_ref!(client).watch_keys(bytes!(pattern, pattern_len), &events, configure_server, handler)?;
        watch.on_stopped(userdata.release(userdata_free));
        put!(out, to_boxed(watch));
        Ok(())
    })
}

/// Unsubscribe and stop the callbacks, waiting up to `timeout_ms` milliseconds for a
/// running one; as `ipc_subscription_stop()`. On `IPC_OK` no callback runs or will run, and
/// `userdata_free` has run. From inside the watch's own callback it returns `IPC_OK` at once
/// (no further call is made). The handle stays allocated: free it with
/// `ipc_key_watch_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if the callback was still running at the
/// deadline (the watch stops when it returns).
///
/// Thread safety: see `ipc_key_watch`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_key_watch_stop(
    watch: *const ipc_key_watch,
    timeout_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_key_watch_stop(watch, timeout_ms) {
        try_ref!(watch).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// Stop the watch (waiting up to 10 s, as `ipc_key_watch_stop()`) and free it. NULL is a
/// no-op. From inside its own callback it takes effect when the callback returns (no
/// further call is made).
///
/// Thread safety: see `ipc_key_watch`; the handle must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_key_watch_free(watch: *mut ipc_key_watch) {
    ffi_boundary!(ipc_key_watch_free(#[nullable] watch) { free_box!(watch) })
}

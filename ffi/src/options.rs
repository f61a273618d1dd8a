//! `ipc_options`: the settings of a client, before it connects.

use std::ffi::c_char;
use std::time::Duration;

use crate::error::ipc_result;
use crate::{borrow_mut, free_handle, str_arg, to_handle, write_out};

/// Settings for `ipc_client_new()`: timeouts, credentials, protocol, limits, reconnection.
///
/// Owns a `redipc::Options` (a plain value; nothing is connected yet). Made by
/// `ipc_options_new()` with the defaults, changed by the `ipc_options_set_*` functions,
/// freed by `ipc_options_free()`. Values set here override those in the URL.
///
/// Thread safety: not synchronized; use one from one thread at a time (reading it in
/// `ipc_client_new()` from several threads at once is fine).
pub struct ipc_options {
    pub(crate) inner: redipc::Options,
}

/// Make options with the defaults: connect and response timeouts 5000 ms, RESP3, database
/// of the URL, key prefix `"ipc:"`, one I/O thread, no value limit below the server's
/// (512 MiB), reconnect delays 10 ms to 2000 ms, reconnecting forever, pub/sub health
/// check every 3000 ms, poll mode off.
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` if `out` is NULL.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_new(out: *mut *mut ipc_options) -> ipc_result {
    ffi_boundary!(ipc_options_new(out) {
        let opts = to_handle(ipc_options { inner: redipc::Options::default() });
        // SAFETY: `out` is not NULL (checked) and the caller gives a writable pointer.
        unsafe { write_out(out, opts, "out") }
    })
}

/// Free options made by `ipc_options_new()`. NULL is a no-op. Clients made with these
/// options keep their own copy, so the options may be freed right after
/// `ipc_client_new()`.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_free(opts: *mut ipc_options) {
    ffi_boundary!(ipc_options_free(#[nullable] opts) {
        // SAFETY: the caller gives NULL or a handle from ipc_options_new, freed once.
        unsafe { free_handle(opts) };
        Ok(())
    })
}

/// Apply `f` to the options behind `opts`.
///
/// # Safety
/// `opts` is NULL or a live handle from `ipc_options_new` used by this thread only.
unsafe fn update(
    opts: *mut ipc_options,
    f: impl FnOnce(&mut redipc::Options) -> Result<(), crate::error::Error>,
) -> Result<(), crate::error::Error> {
    // SAFETY: forwarded from the caller.
    let o = unsafe { borrow_mut(opts, "opts") }?;
    f(&mut o.inner)
}

/// Set the limit on establishing a connection, in milliseconds (default 5000; must be
/// greater than 0, checked by `ipc_client_new()`). An unreachable server is reported as
/// `IPC_ERR_CONNECTION` within this time.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_connect_timeout_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_connect_timeout_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.connect_timeout = Duration::from_millis(ms); Ok(()) }) }
    })
}

/// Set the limit on every call, from sending the command to its reply, including a wait
/// for a reconnect, in milliseconds (default 5000; must be greater than 0, checked by
/// `ipc_client_new()`). A call that takes longer fails with `IPC_ERR_TIMEOUT`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_response_timeout_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_response_timeout_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.response_timeout = Duration::from_millis(ms); Ok(()) }) }
    })
}

/// Set the connection name (`CLIENT SETNAME`), a NUL-terminated UTF-8 string without
/// spaces (checked by `ipc_client_new()`). The string is copied.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_client_name(
    opts: *mut ipc_options,
    name: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_client_name(opts, name) {
        // SAFETY: `name` is a NUL-terminated string (caller contract, NULL checked).
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.client_name = Some(name.to_string()); Ok(()) }) }
    })
}

/// Set the database number (`SELECT`), overriding the URL's; must not be negative
/// (checked by `ipc_client_new()`).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_database(opts: *mut ipc_options, db: i64) -> ipc_result {
    ffi_boundary!(ipc_options_set_database(opts, db) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.database = Some(db); Ok(()) }) }
    })
}

/// Set the ACL user name, a NUL-terminated UTF-8 string (copied).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_username(
    opts: *mut ipc_options,
    username: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_username(opts, username) {
        // SAFETY: `username` is a NUL-terminated string (caller contract, NULL checked).
        let username = unsafe { str_arg(username, "username") }?;
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.username = Some(username.to_string()); Ok(()) }) }
    })
}

/// Set the password, a NUL-terminated UTF-8 string (copied).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_password(
    opts: *mut ipc_options,
    password: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_password(opts, password) {
        // SAFETY: `password` is a NUL-terminated string (caller contract, NULL checked).
        let password = unsafe { str_arg(password, "password") }?;
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.password = Some(password.to_string()); Ok(()) }) }
    })
}

/// Set the prefix of the keys the library itself creates (queues, streams, ...), default
/// `"ipc:"`; a NUL-terminated UTF-8 string (copied). Keys given to commands are used as
/// they are, never prefixed.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_key_prefix(
    opts: *mut ipc_options,
    prefix: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_key_prefix(opts, prefix) {
        // SAFETY: `prefix` is a NUL-terminated string (caller contract, NULL checked).
        let prefix = unsafe { str_arg(prefix, "prefix") }?;
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.key_prefix = prefix.to_string(); Ok(()) }) }
    })
}

/// Set the number of I/O threads of the process-wide runtime (0, the default: one).
/// Only the first client of the process starts the runtime; a later client asking for a
/// different non-zero number fails in `ipc_client_new()` with `IPC_ERR_INVALID_ARGUMENT`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_io_threads(
    opts: *mut ipc_options,
    threads: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_io_threads(opts, threads) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.io_threads = threads; Ok(()) }) }
    })
}

/// Speak RESP3 (`true`, the default: maps, sets, doubles, booleans in replies) or RESP2
/// (`false`: those come as arrays, strings and integers).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_resp3(opts: *mut ipc_options, on: bool) -> ipc_result {
    ffi_boundary!(ipc_options_set_resp3(opts, on) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.resp3 = on; Ok(()) }) }
    })
}

/// Set the largest value accepted in one command argument, in bytes; a larger one is
/// refused with `IPC_ERR_INVALID_ARGUMENT` before anything is sent, and the client stays
/// usable. The smaller of this and the server's `proto-max-bulk-len` applies (default:
/// the server's, 512 MiB).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for 0. Thread safety: see
/// `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_max_value_size(
    opts: *mut ipc_options,
    bytes: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_max_value_size(opts, bytes) {
        if bytes == 0 {
            return Err(crate::error::Error::invalid("max_value_size must be at least 1 byte"));
        }
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.max_value_size = bytes; Ok(()) }) }
    })
}

/// Set the first delay before reconnecting after the connection broke, in milliseconds
/// (default 10). Delays double up to the maximum, with random jitter.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_reconnect_min_delay_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_reconnect_min_delay_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.reconnect.min_delay = Duration::from_millis(ms); Ok(()) }) }
    })
}

/// Set the longest delay between reconnection attempts, in milliseconds (default 2000).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_reconnect_max_delay_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_reconnect_max_delay_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.reconnect.max_delay = Duration::from_millis(ms); Ok(()) }) }
    })
}

/// Give up reconnecting after this many failed attempts; 0 (the default) reconnects
/// forever. After giving up, calls fail with `IPC_ERR_CONNECTION`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_reconnect_max_attempts(
    opts: *mut ipc_options,
    attempts: u32,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_reconnect_max_attempts(opts, attempts) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe {
            update(opts, |o| {
                o.reconnect.max_attempts = (attempts != 0).then_some(attempts);
                Ok(())
            })
        }
    })
}

/// Poll mode (default off): subscription callbacks run only inside `ipc_client_poll()`, on
/// the thread that calls it, never on a library thread; `ipc_client_fd()` gives a file
/// descriptor that is readable whenever events wait, for the host's `poll()`/`epoll` loop.
/// I/O still runs on the library's runtime. Off, callbacks run on library dispatcher
/// threads.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_poll_mode(opts: *mut ipc_options, on: bool) -> ipc_result {
    ffi_boundary!(ipc_options_set_poll_mode(opts, on) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.poll_mode = on; Ok(()) }) }
    })
}

/// Set how often the idle pub/sub connection is checked with a `PING`, in milliseconds
/// (default 3000; at least 10, checked by `ipc_client_new()`). A connection that does not
/// answer (a half-open socket, a stopped server) is declared dead within about 1.5 times
/// this: subscriptions get `IPC_EVENT_DISCONNECTED` and the library reconnects.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_health_check_interval_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_health_check_interval_ms(opts, ms) {
        // SAFETY: `opts` is a live handle (caller contract, NULL checked).
        unsafe { update(opts, |o| { o.health_check_interval = Duration::from_millis(ms); Ok(()) }) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_change_the_options() {
        let mut opts: *mut ipc_options = std::ptr::null_mut();
        // SAFETY: `opts` is a valid out pointer; the handle is used and freed here only.
        unsafe {
            assert_eq!(ipc_options_new(&mut opts), ipc_result::IPC_OK);
            assert_eq!(
                ipc_options_set_connect_timeout_ms(opts, 250),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_response_timeout_ms(opts, 750),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_client_name(opts, c"svc".as_ptr()),
                ipc_result::IPC_OK
            );
            assert_eq!(ipc_options_set_database(opts, 3), ipc_result::IPC_OK);
            assert_eq!(
                ipc_options_set_username(opts, c"u".as_ptr()),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_password(opts, c"p".as_ptr()),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_key_prefix(opts, c"x:".as_ptr()),
                ipc_result::IPC_OK
            );
            assert_eq!(ipc_options_set_io_threads(opts, 2), ipc_result::IPC_OK);
            assert_eq!(ipc_options_set_resp3(opts, false), ipc_result::IPC_OK);
            assert_eq!(ipc_options_set_max_value_size(opts, 10), ipc_result::IPC_OK);
            assert_eq!(
                ipc_options_set_reconnect_min_delay_ms(opts, 1),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_reconnect_max_delay_ms(opts, 9),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_reconnect_max_attempts(opts, 4),
                ipc_result::IPC_OK
            );
            assert_eq!(ipc_options_set_poll_mode(opts, true), ipc_result::IPC_OK);
            assert_eq!(
                ipc_options_set_health_check_interval_ms(opts, 400),
                ipc_result::IPC_OK
            );
            let o = &(*opts).inner;
            assert_eq!(o.connect_timeout, Duration::from_millis(250));
            assert_eq!(o.response_timeout, Duration::from_millis(750));
            assert_eq!(o.client_name.as_deref(), Some("svc"));
            assert_eq!(o.database, Some(3));
            assert_eq!(o.username.as_deref(), Some("u"));
            assert_eq!(o.password.as_deref(), Some("p"));
            assert_eq!(o.key_prefix, "x:");
            assert_eq!(o.io_threads, 2);
            assert!(!o.resp3);
            assert_eq!(o.max_value_size, 10);
            assert_eq!(o.reconnect.min_delay, Duration::from_millis(1));
            assert_eq!(o.reconnect.max_delay, Duration::from_millis(9));
            assert_eq!(o.reconnect.max_attempts, Some(4));
            assert!(o.poll_mode);
            assert_eq!(o.health_check_interval, Duration::from_millis(400));
            assert_eq!(
                ipc_options_set_reconnect_max_attempts(opts, 0),
                ipc_result::IPC_OK
            );
            assert_eq!((*opts).inner.reconnect.max_attempts, None);
            assert_eq!(
                ipc_options_set_max_value_size(opts, 0),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            let bad = [0xffu8, 0];
            assert_eq!(
                ipc_options_set_client_name(opts, bad.as_ptr().cast()),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                ipc_options_set_password(opts, std::ptr::null()),
                ipc_result::IPC_ERR_NULL_ARG
            );
            assert_eq!(
                ipc_options_set_resp3(std::ptr::null_mut(), true),
                ipc_result::IPC_ERR_NULL_ARG
            );
            ipc_options_free(opts);
            ipc_options_free(std::ptr::null_mut());
        }
    }
}

//! `ipc_client`: connecting, closing, any command with `ipc_command()`, and poll mode.

use std::ffi::{c_char, c_int};

use crate::error::ipc_result;
use crate::handle::to_boxed;
use crate::options::{ipc_options, or_default};
use crate::reply::{ipc_reply, new_reply};

/// A connection to one Redis server.
///
/// Owns a `redipc::blocking::Client` (an `Arc` of the core client underneath): one
/// auto-pipelined connection shared by every thread that uses this handle, re-established
/// in the background after it breaks. Made by `ipc_client_new()`, freed by
/// `ipc_client_free()`.
///
/// Thread safety: safe to share between threads; any number of threads may call any
/// function on the same `ipc_client` at the same time (their commands are pipelined on
/// the one connection), except `ipc_client_free()`, which must come after every other
/// use has returned.
///
/// After `fork()`: the child may not use a client made before the fork (its connections
/// and the library's I/O thread belong to the parent): every call on it fails at once
/// with `IPC_ERR_CLOSED` ("made in the parent process, before fork()") without touching
/// the parent's connections, and `ipc_client_free()` on it frees nothing the parent
/// uses. A client made in the child works (a daemon that forks after `ipc_client_new()`
/// makes a new client in the child); the parent's clients are not affected.
pub struct ipc_client {
    _private: [u8; 0],
}
box_castable!(ipc_client => redipc::blocking::Client);

/// Connect to the server at `url` and make a client.
///
/// `url` is a NUL-terminated string: `redis://[user:password@]host[:port][/db]`,
/// `rediss://...` (TLS: the `ipc_options_set_tls_*` options),
/// `redis-sentinel://[user:password@]host:26379,host2:26379[/db]#master` (the master those
/// sentinels name, followed through failovers; `rediss-sentinel://` over TLS; the
/// sentinels' own credentials: `ipc_options_set_sentinel_*`), or
/// `unix:///path/to/redis.sock[?db=N]` (also `redis+unix://`). `opts` may be NULL for the
/// defaults; it is copied, not kept, and stays the caller's. The options are checked here
/// (`IPC_ERR_INVALID_ARGUMENT` names the one that is wrong).
///
/// Blocks until connected or the connect timeout (default 5 s) passes; it does not retry a
/// failed first connection. Later breaks are repaired in the background.
///
/// Output: on `IPC_OK`, `*out` is a new client owned by the caller; free it with
/// `ipc_client_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`url`, `out`); `IPC_ERR_INVALID_ARGUMENT` for a malformed URL
/// or invalid options; `IPC_ERR_UNSUPPORTED` for what the library was built without (its
/// cargo features, docs/SIZE.md: `rediss://` without `tls`, `redis-sentinel://` without
/// `sentinel`, a cluster without `cluster`); `IPC_ERR_CONNECTION`
/// if the server cannot be reached in time; `IPC_ERR_SERVER` if it refuses the connection
/// setup (wrong password, unknown database, ...).
///
/// Thread safety: any thread, also from inside a callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_new(
    url: *const c_char,
    opts: *const ipc_options,
    out: *mut *mut ipc_client,
) -> ipc_result {
    ffi_boundary!(ipc_client_new(url, #[nullable] opts, out) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let client = redipc::blocking::Client::connect(text!(url), opts)?;
        put!(out, to_boxed(client));
        Ok(())
    })
}

/// Close the connection and free the client. NULL is a no-op.
///
/// The client's subscriptions, groups and keyspace watches end here (their callbacks stop;
/// a running one is waited for); their handles must still be freed. Workers, servers,
/// consumers and watchers keep the client's core alive until they are freed.
///
/// Thread safety: calls still running on other threads must have returned before this is
/// called (use `ipc_client_close()` to make them return early); the handle must not be used
/// afterwards. Not from inside a callback of one of its subscriptions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_free(client: *mut ipc_client) {
    ffi_boundary!(ipc_client_free(#[nullable] client) { free_box!(client) })
}

/// Close the client without freeing it: later calls fail with `IPC_ERR_CLOSED`, and it stops
/// reconnecting. Calls in flight on other threads return at once with `IPC_ERR_CLOSED` (a
/// `BLPOP` waiting forever, an RPC call waiting for its reply, a lock or cache wait
/// included); whether such a command ran on the server is unknown,
/// as after a connection error. Closing twice is fine. Its subscriptions end; a thread
/// waiting in `ipc_client_poll()` is woken and gets `IPC_ERR_CLOSED`.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_close(client: *const ipc_client) -> ipc_result {
    ffi_boundary!(ipc_client_close(client) {
        try_ref!(client).close();
        Ok(())
    })
}

/// Whether the client's connection is up right now (it is re-established in the background
/// after it breaks).
///
/// Errors: returns false (and sets the last error) if `client` is NULL.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_is_connected(client: *const ipc_client) -> bool {
    ffi_boundary!(ipc_client_is_connected(client) { Ok(try_ref!(client).is_connected()) })
}

/// Send any command and wait for its reply: `n` arguments, the first being the command
/// name (`"SET"`, `"key"`, `"value"`), as an array of byte strings (`lens` NULL: every
/// argument is NUL-terminated).
///
/// Blocking commands (`BLPOP`, `XREAD ... BLOCK`, `WAIT`, ...) run on a connection of their
/// own, with a limit of their block time plus the response timeout; a pop whose item comes
/// after that limit passed puts it back where it was (`IPC_ERR_TIMEOUT` loses nothing).
/// Commands that would
/// change the shared connection for every thread (`SUBSCRIBE`, `MULTI`, `WATCH`, `SELECT`,
/// ...) are refused with `IPC_ERR_INVALID_ARGUMENT` naming the function to use instead.
///
/// Output: on `IPC_OK`, `*out` is the reply, owned by the caller; free it with
/// `ipc_reply_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `args`, any `args[i]`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for no arguments, an empty command name, a refused command or
/// an argument over the size limit (nothing is sent; the client stays usable);
/// `IPC_ERR_SERVER` when the server answers with an error reply (`ipc_last_error_code()`
/// has its code, such as `"WRONGTYPE"`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_command(
    client: *const ipc_client,
    args: *const *const c_char,
    lens: *const usize,
    n: usize,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_command(client, #[nullable] args, #[nullable] lens, n, out) {
        let reply = try_ref!(client).command(&byte_list!(args, lens, n))?;
        put!(out, new_reply(reply));
        Ok(())
    })
}

/// Poll mode: run the callbacks of waiting events on this thread.
///
/// Only for a client made with `ipc_options_set_poll_mode(opts, true)`: its subscription
/// and keyspace callbacks run nowhere else. If no event waits, waits up to `timeout_ms`
/// milliseconds for one: 0 does not wait, a negative number waits until there is work or
/// the client is closed. Runs at most one batch (256 events) per subscription per call, so
/// that no subscription starves the others; what is left keeps `ipc_client_fd()` readable.
///
/// Output: on `IPC_OK`, if `n_dispatched` is not NULL, `*n_dispatched` is the number of
/// events handed to callbacks (0 when the time passed with none).
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`); `IPC_ERR_INVALID_ARGUMENT` if the client is not in
/// poll mode; `IPC_ERR_CLOSED` once the client is closed (`ipc_client_close()` wakes a
/// waiting call).
///
/// Thread safety: any thread (usually the host's event-loop thread; callbacks run on the
/// calling thread); calls from several threads at once share out the work. Not from inside
/// a callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_poll(
    client: *const ipc_client,
    timeout_ms: c_int,
    n_dispatched: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_client_poll(client, timeout_ms, #[nullable] n_dispatched) {
        let timeout = u64::try_from(timeout_ms).ok().map(crate::convert::millis);
        let n = try_ref!(client).poll(timeout)?;
        if !n_dispatched.is_null() {
            put!(n_dispatched, n);
        }
        Ok(())
    })
}

/// Poll mode: a file descriptor that is readable whenever `ipc_client_poll()` has events to
/// run, for the host's `select()`/`poll()`/`epoll` set (watch it for `POLLIN`). It stays
/// readable until `ipc_client_poll()` took the waiting work; do not read from, write to or
/// close it. It belongs to the client and is valid until `ipc_client_free()`.
///
/// Output: on `IPC_OK`, `*fd` is the descriptor.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if the client is not in poll mode.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_fd(client: *const ipc_client, fd: *mut c_int) -> ipc_result {
    ffi_boundary!(ipc_client_fd(client, fd) {
        put!(fd, try_ref!(client).poll_fd()?);
        Ok(())
    })
}

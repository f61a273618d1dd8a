//! `ipc_client`: connecting, closing, and any command with `ipc_command()`.

use std::ffi::{CStr, c_char};

use crate::error::{Error, ipc_result};
use crate::options::ipc_options;
use crate::reply::ipc_reply;
use crate::{borrow, bytes_arg, free_handle, str_arg, to_handle, write_out};

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
pub struct ipc_client {
    pub(crate) inner: redipc::blocking::Client,
}

/// Connect to the server at `url` and make a client.
///
/// `url` is a NUL-terminated string: `redis://[user:password@]host[:port][/db]`,
/// `unix:///path/to/redis.sock[?db=N]` (also `redis+unix://`). `opts` may be NULL for
/// the defaults; it is copied, not kept, and stays owned by the caller.
///
/// Blocks until connected or the connect timeout (default 5 s) passes; it does not retry
/// a failed first connection. Later breaks are repaired in the background.
///
/// Output: on `IPC_OK`, `*out` is a new client owned by the caller; free it with
/// `ipc_client_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`url`, `out`); `IPC_ERR_INVALID_ARGUMENT` for a malformed
/// URL or invalid options; `IPC_ERR_UNSUPPORTED` for `rediss://` (TLS);
/// `IPC_ERR_CONNECTION` if the server cannot be reached in time; `IPC_ERR_SERVER` if it
/// refuses the connection setup (wrong password, unknown database, ...).
///
/// Thread safety: any thread, also from inside a subscription callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_new(
    url: *const c_char,
    opts: *const ipc_options,
    out: *mut *mut ipc_client,
) -> ipc_result {
    ffi_boundary!(ipc_client_new(url, #[nullable] opts, out) {
        // SAFETY: `url` is a NUL-terminated string (caller contract, NULL checked).
        let url = unsafe { str_arg(url, "url") }?;
        let opts = if opts.is_null() {
            redipc::Options::default()
        } else {
            // SAFETY: `opts` is a live handle from ipc_options_new (caller contract).
            unsafe { borrow(opts, "opts") }?.inner.clone()
        };
        let inner = redipc::blocking::Client::connect(url, opts)?;
        let client = to_handle(ipc_client { inner });
        // SAFETY: `out` is writable (caller contract, NULL checked).
        if let Err(e) = unsafe { write_out(out, client, "out") } {
            // SAFETY: `client` was just made by to_handle and given to no one.
            unsafe { free_handle(client) };
            return Err(e);
        }
        Ok(())
    })
}

/// Close the connection and free the client. NULL is a no-op.
///
/// Subscriptions of the client end here: their callbacks stop (a running one is waited
/// for) and their `userdata_free` runs before this returns; their handles must still be
/// freed with `ipc_subscription_free()`.
///
/// Thread safety: calls still running on other threads must have returned before this
/// is called (use `ipc_client_close()` to make them return early); the handle must not be
/// used afterwards. Not from inside a callback of one of its subscriptions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_free(client: *mut ipc_client) {
    ffi_boundary!(ipc_client_free(#[nullable] client) {
        // SAFETY: `client` is NULL or a handle from ipc_client_new, freed once, with no
        // call running on it (caller contract).
        unsafe { free_handle(client) };
        Ok(())
    })
}

/// Close the client without freeing it: later calls fail with `IPC_ERR_CLOSED`, and it
/// stops reconnecting. Calls in flight on other threads return at once with
/// `IPC_ERR_CLOSED` (a `BLPOP` waiting forever included); whether such a command ran on the
/// server is unknown, as after a connection error. Use it to wake other threads before
/// `ipc_client_free()`.
/// Closing twice is fine. Its subscriptions end: their callbacks stop (a running one on
/// another thread is waited for) and their `userdata_free` runs before this returns. A
/// thread waiting in `ipc_client_poll()` is woken and gets `IPC_ERR_CLOSED`.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_close(client: *const ipc_client) -> ipc_result {
    ffi_boundary!(ipc_client_close(client) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        unsafe { borrow(client, "client") }?.inner.close();
        Ok(())
    })
}

/// Whether the client's connection is up right now (it is re-established in the
/// background after it breaks).
///
/// Errors: returns false (and sets the last error) if `client` is NULL.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_is_connected(client: *const ipc_client) -> bool {
    ffi_boundary!(ipc_client_is_connected(client) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        Ok(unsafe { borrow(client, "client") }?.inner.is_connected())
    })
}

/// Send any command and wait for its reply: `argc` arguments, the first being the command
/// name (`"SET"`, `"key"`, `"value"`). Binary-safe: argument `i` is `argvlen[i]` bytes at
/// `argv[i]`; if `argvlen` is NULL, every argument is a NUL-terminated string and its
/// length is `strlen(argv[i])`. Every `argv[i]` must be non-NULL (also for a length of 0).
///
/// Output: on `IPC_OK`, `*out` is the reply, owned by the caller; free it with
/// `ipc_reply_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `argv`, any `argv[i]`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for `argc == 0`, an empty command name, or an argument over
/// the size limit (nothing is sent; the client stays usable); `IPC_ERR_SERVER` when the
/// server answers with an error reply (`ipc_last_error_message()` has
/// `"WRONGTYPE Operation against a key ..."`, `ipc_last_error_code()` has `"WRONGTYPE"`);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Do not send blocking commands (`BLPOP`, `XREAD BLOCK`, ...) or `SUBSCRIBE` this way:
/// they hold up the connection every thread shares.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_command(
    client: *const ipc_client,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_command(client, argc, argv, #[nullable] argvlen, out) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let client = unsafe { borrow(client, "client") }?;
        if argc == 0 {
            return Err(Error::invalid("argc is 0: give at least the command name"));
        }
        if argc > isize::MAX as usize / size_of::<*const c_char>() {
            return Err(Error::invalid(format!("argc {argc} is too large")));
        }
        // SAFETY: `argv` is not NULL and holds `argc` pointers (caller contract); the
        // size fits in isize (checked).
        let ptrs = unsafe { std::slice::from_raw_parts(argv, argc) };
        let lens = if argvlen.is_null() {
            None
        } else {
            // SAFETY: `argvlen` holds `argc` lengths (caller contract).
            Some(unsafe { std::slice::from_raw_parts(argvlen, argc) })
        };
        let mut args: Vec<&[u8]> = Vec::with_capacity(argc);
        for (i, &p) in ptrs.iter().enumerate() {
            if p.is_null() {
                return Err(Error::new(
                    ipc_result::IPC_ERR_NULL_ARG,
                    format!("argument `argv[{i}]` is NULL"),
                ));
            }
            let arg = match lens {
                // SAFETY: `p` is readable for `n` bytes (caller contract, NULL checked).
                Some(lens) => unsafe { bytes_arg(p.cast::<u8>(), lens[i], "argv[i]") }?,
                // SAFETY: without lengths, `p` is a NUL-terminated string (caller contract).
                None => unsafe { CStr::from_ptr(p) }.to_bytes(),
            };
            args.push(arg);
        }
        let reply = client.inner.command(&args)?;
        let reply = Box::into_raw(ipc_reply::root(reply));
        // SAFETY: `out` is writable (caller contract, NULL checked).
        if let Err(e) = unsafe { write_out(out, reply, "out") } {
            // SAFETY: `reply` was just made by Box::into_raw and given to no one.
            drop(unsafe { Box::from_raw(reply) });
            return Err(e);
        }
        Ok(())
    })
}

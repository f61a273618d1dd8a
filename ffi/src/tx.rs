//! Transactions (`ipc_tx`: `MULTI`/`EXEC`), pipelines (`ipc_pipeline`: many commands in
//! one write, non-atomic) and optimistic transactions (`ipc_transaction()`: `WATCH`, read,
//! queue, `EXEC`, retried when a watched key changed).
//!
//! Ownership: an `ipc_tx` owns a `redipc::blocking::Batch`, an `ipc_pipeline` a
//! `redipc::blocking::Batch`; both hold a clone of the client (an `Arc` of the core
//! client), so they stay usable after `ipc_client_free()` of the handle they came from
//! (calls then fail once the client is closed). An `ipc_watch` owns nothing: it points at
//! the `redipc::blocking::WatchSession` of the running `ipc_transaction()` call and lives
//! on that call's stack.

use std::ffi::{CStr, c_char, c_int, c_void};

use redipc::{ErrorKind, Reply};

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::reply::ipc_reply;
use crate::{borrow, borrow_mut, bytes_arg, free_handle, to_handle, write_out};

/// The arguments of a command passed by C as `(argc, argv, argvlen)`, as `ipc_command()`
/// takes them: `argvlen` NULL means every argument is NUL-terminated.
///
/// # Safety
/// `argv` is NULL or holds `argc` pointers; `argvlen` is NULL or holds `argc` lengths; each
/// argument is readable for its length (or NUL-terminated when `argvlen` is NULL), and all of
/// it stays unchanged during the call.
pub(crate) unsafe fn command_args<'a>(
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> Result<Vec<&'a [u8]>, Error> {
    if argv.is_null() {
        return Err(Error::null_arg("argv"));
    }
    if argc == 0 {
        return Err(Error::invalid("argc is 0: give at least the command name"));
    }
    if argc > isize::MAX as usize / size_of::<*const c_char>() {
        return Err(Error::invalid(format!("argc {argc} is too large")));
    }
    // SAFETY: `argv` is not NULL and holds `argc` pointers (caller contract); the size fits
    // in isize (checked).
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
    Ok(args)
}

/// Hand a reply to C through `out` (freed by the caller with `ipc_reply_free()`).
///
/// # Safety
/// `out` is NULL or valid for a write of one pointer.
pub(crate) unsafe fn write_reply(out: *mut *mut ipc_reply, reply: Reply) -> Result<(), Error> {
    let reply = Box::into_raw(ipc_reply::root(reply));
    // SAFETY: forwarded from the caller.
    if let Err(e) = unsafe { write_out(out, reply, "out") } {
        // SAFETY: `reply` was just made by Box::into_raw and given to no one.
        drop(unsafe { Box::from_raw(reply) });
        return Err(e);
    }
    Ok(())
}

/// A `MULTI`/`EXEC` transaction being built: a list of queued commands.
///
/// Owns a `redipc::blocking::Batch`: the queued commands and a clone of the client
/// (an `Arc` of the core client underneath). Nothing is sent before `ipc_tx_exec()`, which
/// sends `MULTI`, the commands and `EXEC` in one write on the client's shared connection:
/// atomic, and no other command of any client runs in between. Made by `ipc_tx_new()`, freed
/// by `ipc_tx_free()`.
///
/// Thread safety: use one `ipc_tx` from one thread at a time (different threads may use it
/// one after the other). Different `ipc_tx` of one client may be used by different threads
/// at once.
pub struct ipc_tx {
    inner: redipc::blocking::Batch,
}

/// A pipeline being built: a list of queued commands sent in one write by
/// `ipc_pipeline_exec()`. Not atomic: other clients' commands may run between them; for
/// bulk speed.
///
/// Owns a `redipc::blocking::Batch`: the queued commands and a clone of the client (an
/// `Arc` of the core client). Made by `ipc_pipeline_new()`, freed by `ipc_pipeline_free()`.
///
/// Thread safety: as `ipc_tx`: one thread at a time.
pub struct ipc_pipeline {
    inner: redipc::blocking::Batch,
}

/// The optimistic transaction in progress, handed to an `ipc_transaction_cb`: the `WATCH`
/// of `ipc_transaction()` holds on a connection of its own. Read with
/// `ipc_watch_command()`, queue writes with `ipc_watch_queue()`.
///
/// Owns nothing; it belongs to the running `ipc_transaction()` call. Valid only during the
/// callback call that receives it, and only on that thread; never free it.
pub struct ipc_watch {
    session: *mut redipc::blocking::WatchSession,
}

/// The callback of `ipc_transaction()`: `userdata` as given there, and the transaction in
/// progress. Read the watched keys with `ipc_watch_command()`, decide, and queue the writes
/// with `ipc_watch_queue()`.
///
/// Return 0 to `EXEC` the queued commands, or any other number to abort: nothing queued
/// runs and `ipc_transaction()` returns `IPC_ERR_TX_ABORTED` (commands already run with
/// `ipc_watch_command()` did run).
///
/// Thread: the thread that called `ipc_transaction()`, inside that call. It runs once per
/// attempt: again (with a fresh `w` and nothing queued) each time a watched key changed
/// before `EXEC`, so it must not have side effects outside Redis that may not repeat.
/// `w` is valid only during the call. The callback may use the library (other clients, the
/// same client's `ipc_command()`), must not unwind (C++ exceptions) or `longjmp` out, and
/// must not free the client.
pub type ipc_transaction_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, w: *mut ipc_watch) -> c_int>;

/// Make an empty transaction on `client`.
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_tx_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, concurrently with other calls on the client. The new
/// `ipc_tx` is used from one thread at a time (see `ipc_tx`).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_tx_new(
    client: *const ipc_client,
    out: *mut *mut ipc_tx,
) -> ipc_result {
    ffi_boundary!(ipc_tx_new(client, out) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let client = unsafe { borrow(client, "client") }?;
        let tx = to_handle(ipc_tx { inner: client.inner.tx() });
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, tx, "out") }
    })
}

/// Queue a command in the transaction: `argc` arguments, the first the command name, as for
/// `ipc_command()` (argument `i` is `argvlen[i]` bytes at `argv[i]`; if `argvlen` is NULL,
/// every argument is a NUL-terminated string). The arguments are copied; nothing is sent.
///
/// Errors: `IPC_ERR_NULL_ARG` (`tx`, `argv`, any `argv[i]`); `IPC_ERR_INVALID_ARGUMENT` for
/// `argc == 0`, an empty command name or an argument over the client's size limit (the
/// command is not queued). Whether the server accepts the command is only known at
/// `ipc_tx_exec()`.
///
/// Thread safety: see `ipc_tx` (one thread at a time).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_tx_add(
    tx: *mut ipc_tx,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> ipc_result {
    ffi_boundary!(ipc_tx_add(tx, argc, argv, #[nullable] argvlen) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let tx = borrow_mut(tx, "tx")?;
            let args = command_args(argc, argv, argvlen)?;
            tx.inner.add(&args)?;
        }
        Ok(())
    })
}

/// Send `MULTI`, the queued commands and `EXEC`, and wait for the results. The commands stay
/// queued afterwards (exec again to run them again, `ipc_tx_clear()` to start over).
///
/// Output: on `IPC_OK`, `*replies` is an `IPC_REPLY_ARRAY` reply with one element per queued
/// command, in order (0 elements for an empty transaction). A command that failed when it
/// ran (for example `INCR` on a string: `WRONGTYPE`, or `ERR value is not an integer`) has
/// an `IPC_REPLY_ERROR` element with the server's text, while the others carry their values:
/// Redis does not roll back. Owned by the caller; free it with `ipc_reply_free()`.
/// Untouched on failure.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` when the server refused a command while
/// queueing it (unknown command, wrong number of arguments): the whole transaction is
/// aborted and nothing ran; `ipc_last_error_code()` is `"EXECABORT"` and
/// `ipc_last_error_message()` names the refused command(s), e.g. `"ipc_tx_exec: EXEC
/// (command 1 (NOSUCHCMD x) was rejected: ERR unknown command ...): EXECABORT Transaction
/// discarded because of previous errors."`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_tx` (one thread at a time); blocks the calling thread until the
/// results came or the response timeout passed.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_tx_exec(
    tx: *const ipc_tx,
    replies: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_tx_exec(tx, replies) {
        // SAFETY: `tx` is a live handle (caller contract, NULL checked).
        let results = unsafe { borrow(tx, "tx") }?.inner.exec()?;
        // SAFETY: `replies` is writable (caller contract, NULL checked).
        unsafe { write_reply(replies, Reply::Array(results)) }
    })
}

/// The number of commands queued in the transaction.
///
/// Errors: returns 0 (and sets the last error) if `tx` is NULL.
///
/// Thread safety: see `ipc_tx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_tx_len(tx: *const ipc_tx) -> usize {
    ffi_boundary!(ipc_tx_len(tx) {
        // SAFETY: `tx` is a live handle (caller contract, NULL checked).
        Ok(unsafe { borrow(tx, "tx") }?.inner.len())
    })
}

/// Forget the queued commands, to build another transaction with the same handle.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: see `ipc_tx`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_tx_clear(tx: *mut ipc_tx) -> ipc_result {
    ffi_boundary!(ipc_tx_clear(tx) {
        // SAFETY: `tx` is a live handle used by this thread only (caller contract).
        unsafe { borrow_mut(tx, "tx") }?.inner.clear();
        Ok(())
    })
}

/// Free a transaction and its queued commands (nothing is sent). NULL is a no-op.
///
/// Thread safety: no other thread may use `tx` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_tx_free(tx: *mut ipc_tx) {
    ffi_boundary!(ipc_tx_free(#[nullable] tx) {
        // SAFETY: NULL or a handle from ipc_tx_new, freed once (caller contract).
        unsafe { free_handle(tx) };
        Ok(())
    })
}

/// Make an empty pipeline on `client`.
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_pipeline_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, concurrently with other calls on the client. The new
/// `ipc_pipeline` is used from one thread at a time.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_pipeline_new(
    client: *const ipc_client,
    out: *mut *mut ipc_pipeline,
) -> ipc_result {
    ffi_boundary!(ipc_pipeline_new(client, out) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let client = unsafe { borrow(client, "client") }?;
        let p = to_handle(ipc_pipeline { inner: client.inner.pipeline() });
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, p, "out") }
    })
}

/// Queue a command in the pipeline; the arguments are as for `ipc_command()` (`argvlen`
/// may be NULL for NUL-terminated arguments) and are copied; nothing is sent.
///
/// Errors: `IPC_ERR_NULL_ARG` (`p`, `argv`, any `argv[i]`); `IPC_ERR_INVALID_ARGUMENT` for
/// `argc == 0`, an empty command name or an argument over the size limit.
///
/// Thread safety: see `ipc_pipeline` (one thread at a time).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_pipeline_add(
    p: *mut ipc_pipeline,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> ipc_result {
    ffi_boundary!(ipc_pipeline_add(p, argc, argv, #[nullable] argvlen) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let p = borrow_mut(p, "p")?;
            let args = command_args(argc, argv, argvlen)?;
            p.inner.add(&args)?;
        }
        Ok(())
    })
}

/// Send the queued commands in one write and wait for all their replies. The commands stay
/// queued afterwards (exec again to resend, `ipc_pipeline_clear()` to start over).
///
/// Output: on `IPC_OK`, `*replies` is an `IPC_REPLY_ARRAY` reply with one element per
/// queued command, in order; a command the server refused has an `IPC_REPLY_ERROR`
/// element (the others still ran). Owned by the caller; free it with `ipc_reply_free()`.
/// Untouched on failure.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION` (some of the
/// commands may have run); `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_pipeline` (one thread at a time).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_pipeline_exec(
    p: *const ipc_pipeline,
    replies: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_pipeline_exec(p, replies) {
        // SAFETY: `p` is a live handle (caller contract, NULL checked).
        let results = unsafe { borrow(p, "p") }?.inner.exec()?;
        // SAFETY: `replies` is writable (caller contract, NULL checked).
        unsafe { write_reply(replies, Reply::Array(results)) }
    })
}

/// The number of commands queued in the pipeline.
///
/// Errors: returns 0 (and sets the last error) if `p` is NULL.
///
/// Thread safety: see `ipc_pipeline`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_pipeline_len(p: *const ipc_pipeline) -> usize {
    ffi_boundary!(ipc_pipeline_len(p) {
        // SAFETY: `p` is a live handle (caller contract, NULL checked).
        Ok(unsafe { borrow(p, "p") }?.inner.len())
    })
}

/// Forget the queued commands.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: see `ipc_pipeline`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_pipeline_clear(p: *mut ipc_pipeline) -> ipc_result {
    ffi_boundary!(ipc_pipeline_clear(p) {
        // SAFETY: `p` is a live handle used by this thread only (caller contract).
        unsafe { borrow_mut(p, "p") }?.inner.clear();
        Ok(())
    })
}

/// Free a pipeline and its queued commands (nothing is sent). NULL is a no-op.
///
/// Thread safety: no other thread may use `p` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_pipeline_free(p: *mut ipc_pipeline) {
    ffi_boundary!(ipc_pipeline_free(#[nullable] p) {
        // SAFETY: NULL or a handle from ipc_pipeline_new, freed once (caller contract).
        unsafe { free_handle(p) };
        Ok(())
    })
}

/// An optimistic transaction: `WATCH` the `nkeys` keys on a connection of its own, call
/// `cb` (which reads with `ipc_watch_command()` and queues writes with
/// `ipc_watch_queue()`), then `MULTI`, the queued commands, `EXEC`. If a watched key was
/// changed by anybody between `WATCH` and `EXEC`, nothing queued runs and all of it starts
/// over (a new `WATCH`, `cb` again), up to `max_retries` more times (so at most
/// `max_retries + 1` attempts; 0 means one attempt).
///
/// Keys: key `i` is `keylens[i]` bytes at `keys[i]`; if `keylens` is NULL, every key is a
/// NUL-terminated string. `nkeys` must be at least 1.
///
/// Output: on `IPC_OK`, `*replies` is an `IPC_REPLY_ARRAY` reply with the results of the
/// queued commands, as for `ipc_tx_exec()` (error slots as `IPC_REPLY_ERROR` elements);
/// owned by the caller, freed with `ipc_reply_free()`. Untouched on failure.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `keys`, any `keys[i]`, `cb`, `replies`);
/// `IPC_ERR_INVALID_ARGUMENT` for `nkeys == 0` or a negative `max_retries`;
/// `IPC_ERR_WATCH` when a watched key changed on every attempt; `IPC_ERR_TX_ABORTED`
/// when `cb` returned non-zero (nothing queued ran; the number is in the message);
/// `IPC_ERR_SERVER` (a queued command refused: `EXECABORT`, as for `ipc_tx_exec()`);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`. `userdata` may be NULL.
///
/// Thread safety: any thread, concurrently with other calls on the client (each call
/// watches on a connection of its own). `cb` runs on the calling thread (see
/// `ipc_transaction_cb`).
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_transaction(
    client: *const ipc_client,
    keys: *const *const c_char,
    keylens: *const usize,
    nkeys: usize,
    max_retries: c_int,
    cb: ipc_transaction_cb,
    userdata: *mut c_void,
    replies: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_transaction(client, keys, #[nullable] keylens, nkeys, max_retries, cb, #[nullable] userdata, replies) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let client = unsafe { borrow(client, "client") }?;
        let Some(cb) = cb else { return Err(Error::null_arg("cb")) };
        if nkeys == 0 {
            return Err(Error::invalid("nkeys is 0: WATCH at least one key"));
        }
        let retries = usize::try_from(max_retries)
            .map_err(|_| Error::invalid(format!("max_retries {max_retries} is negative")))?;
        // SAFETY: `keys` holds `nkeys` keys as documented (caller contract).
        let keys = unsafe { command_args(nkeys, keys, keylens) }.map_err(|e| {
            // Report the keys as keys, not as command arguments.
            Error::new(e.code(), e.message().replace("argv", "keys"))
        })?;
        let mut aborted: Option<c_int> = None;
        let result = client.inner.transaction(&keys, retries, |session| {
            let mut w = ipc_watch { session: session as *mut _ };
            // SAFETY: `cb` and `userdata` are the caller's, called on the caller's thread;
            // `w` outlives the call.
            let rc = unsafe { cb(userdata, &mut w) };
            if rc != 0 {
                aborted = Some(rc);
                return Err(redipc::Error::new(ErrorKind::InvalidArgument, "aborted"));
            }
            Ok(())
        });
        let results = match (result, aborted) {
            (Ok(r), _) => r,
            (Err(_), Some(rc)) => {
                return Err(Error::new(
                    ipc_result::IPC_ERR_TX_ABORTED,
                    format!("the callback returned {rc}: transaction aborted, no queued command ran"),
                ));
            }
            (Err(e), None) => return Err(e.into()),
        };
        // SAFETY: `replies` is writable (caller contract, NULL checked).
        unsafe { write_reply(replies, Reply::Array(results)) }
    })
}

/// The session behind an `ipc_watch`.
///
/// # Safety
/// `w` is NULL or the `ipc_watch` handed to the running callback, on its thread.
unsafe fn session<'a>(w: *mut ipc_watch) -> Result<&'a mut redipc::blocking::WatchSession, Error> {
    // SAFETY: forwarded from the caller.
    let w = unsafe { borrow_mut(w, "w") }?;
    // SAFETY: `w.session` points at the session of the running `ipc_transaction()` call,
    // which outlives the callback and is not used by anything else during it.
    unsafe { w.session.as_mut() }.ok_or_else(|| Error::null_arg("w"))
}

/// Inside an `ipc_transaction_cb`: run a command now, on the watching connection, and wait
/// for its reply (typically a read of a watched key, such as `GET`). The arguments are as
/// for `ipc_command()` (`argvlen` may be NULL for NUL-terminated arguments).
///
/// Output: on `IPC_OK`, `*out` is the reply, owned by the caller; free it with
/// `ipc_reply_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`w`, `argv`, any `argv[i]`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` (`argc == 0`, an empty command name, a value over the size
/// limit); `IPC_ERR_SERVER` for an error reply; `IPC_ERR_TIMEOUT` or
/// `IPC_ERR_CONNECTION` (then the watching connection is dropped and the transaction
/// fails: return non-zero); `IPC_ERR_CLOSED`.
///
/// Thread safety: only inside the callback that received `w`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_watch_command(
    w: *mut ipc_watch,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_watch_command(w, argc, argv, #[nullable] argvlen, out) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let session = session(w)?;
            let args = command_args(argc, argv, argvlen)?;
            let reply = session.command(&args)?;
            write_reply(out, reply)
        }
    })
}

/// Inside an `ipc_transaction_cb`: queue a command to run in the `MULTI`/`EXEC` after the
/// callback returns 0. The arguments are as for `ipc_command()` (`argvlen` may be NULL for
/// NUL-terminated arguments) and are copied.
///
/// Errors: `IPC_ERR_NULL_ARG` (`w`, `argv`, any `argv[i]`); `IPC_ERR_INVALID_ARGUMENT`
/// (`argc == 0`, an empty command name, a value over the size limit).
///
/// Thread safety: only inside the callback that received `w`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_watch_queue(
    w: *mut ipc_watch,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> ipc_result {
    ffi_boundary!(ipc_watch_queue(w, argc, argv, #[nullable] argvlen) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let session = session(w)?;
            let args = command_args(argc, argv, argvlen)?;
            session.queue(&args)?;
        }
        Ok(())
    })
}

//! Batches (`ipc_batch`: a pipeline, or with `atomic` a `MULTI`/`EXEC` transaction) and
//! optimistic transactions (`ipc_transaction()`: `WATCH`, read, queue, `EXEC`, retried by
//! the core when a watched key changed).

use std::ffi::{c_char, c_int, c_void};

use redipc::Reply;

use crate::client::ipc_client;
use crate::convert::UserData;
use crate::error::ipc_result;
use crate::handle::{as_handle, to_boxed};
use crate::reply::{ipc_reply, new_reply};
use crate::script::ipc_script;

/// A batch of commands sent in one write: a pipeline (each command's reply or error in its
/// own slot), or, made with `atomic`, a `MULTI`/`EXEC` transaction.
///
/// Owns a `redipc::blocking::Batch` (with a clone of the client, so it stays usable after
/// `ipc_client_free()` of the handle it came from; calls then fail once the client is
/// closed). Made by `ipc_batch_new()`, freed by `ipc_batch_free()`.
///
/// Thread safety: not synchronized: use one batch from one thread at a time (it may move
/// between threads).
pub struct ipc_batch {
    _private: [u8; 0],
}
box_castable!(ipc_batch => redipc::blocking::Batch);

/// Make an empty batch on `client`: `atomic` false for a pipeline (the commands are sent in
/// one write; each runs on its own), true for a transaction (`MULTI`, the commands, `EXEC`:
/// all run together, or none when one was refused while queueing).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_batch_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_new(
    client: *const ipc_client,
    atomic: bool,
    out: *mut *mut ipc_batch,
) -> ipc_result {
    ffi_boundary!(ipc_batch_new(client, atomic, out) {
        put!(out, to_boxed(try_ref!(client).batch(atomic)));
        Ok(())
    })
}

/// Queue a command in the batch: `n` arguments as for `ipc_command()` (copied; `lens` NULL
/// for NUL-terminated arguments). Nothing is sent.
///
/// Errors: `IPC_ERR_NULL_ARG` (`batch`, `args`, any `args[i]`); `IPC_ERR_INVALID_ARGUMENT`
/// for no arguments, an empty command name, an argument over the size limit, a command
/// `ipc_command()` refuses (`SUBSCRIBE`, `MULTI`, `WATCH`, `SELECT`, ...) and, in a
/// pipeline, a blocking command (`BLPOP`, `XREAD ... BLOCK`: it would hold up every call
/// on the shared connection; inside `MULTI` it does not block and is accepted).
///
/// Thread safety: see `ipc_batch`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_add(
    batch: *mut ipc_batch,
    args: *const *const c_char,
    lens: *const usize,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_batch_add(batch, #[nullable] args, #[nullable] lens, n) {
        try_mut!(batch).add(&byte_list!(args, lens, n))?;
        Ok(())
    })
}

/// Queue a run of `script` in the batch, with `nkeys` keys and `nargs` arguments as for
/// `ipc_script_run()` (copied; `key_lens` / `arg_lens` NULL for NUL-terminated elements,
/// `keys` / `args` NULL when their count is 0). Nothing is sent. Its reply takes its slot
/// in the result of `ipc_batch_exec()` like any command's.
///
/// In a pipeline, a script already run by this library goes as `EVALSHA`; if the server
/// answers `NOSCRIPT` (it restarted or flushed its scripts) that command is sent again as
/// `EVAL` right after the pipeline (so in that case it runs after the pipeline's later
/// commands) and its slot holds the second answer. An atomic batch always sends the source
/// (`EVAL`): a transaction cannot run a part again.
///
/// Errors: `IPC_ERR_NULL_ARG` (`batch`, `script`, `keys` or `args` when their count is not
/// 0, any element); `IPC_ERR_INVALID_ARGUMENT` for an element over the size limit.
///
/// Thread safety: see `ipc_batch` (the script may be used by other threads meanwhile).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_add_script(
    batch: *mut ipc_batch,
    script: *const ipc_script,
    keys: *const *const c_char,
    key_lens: *const usize,
    nkeys: usize,
    args: *const *const c_char,
    arg_lens: *const usize,
    nargs: usize,
) -> ipc_result {
    ffi_boundary!(ipc_batch_add_script(batch, script, #[nullable] keys, #[nullable] key_lens, nkeys, #[nullable] args, #[nullable] arg_lens, nargs) {
        let script = &try_ref!(script).script;
        try_mut!(batch).add_script(script, &byte_list!(keys, key_lens, nkeys), &byte_list!(args, arg_lens, nargs))?;
        Ok(())
    })
}

/// The number of commands queued in the batch.
///
/// Errors: returns 0 (and sets the last error) if `batch` is NULL.
///
/// Thread safety: see `ipc_batch`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_len(batch: *const ipc_batch) -> usize {
    ffi_boundary!(ipc_batch_len(batch) { Ok(try_ref!(batch).len()) })
}

/// Forget the queued commands, to build another batch with the same handle.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: see `ipc_batch`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_clear(batch: *mut ipc_batch) -> ipc_result {
    ffi_boundary!(ipc_batch_clear(batch) {
        try_mut!(batch).clear();
        Ok(())
    })
}

/// Send the queued commands and wait for all their replies. The commands stay queued
/// afterwards (exec again to run them again, `ipc_batch_clear()` to start over).
///
/// Output: on `IPC_OK`, `*out` is an `IPC_REPLY_ARRAY` reply with one element per queued
/// command, in order (none for an empty batch). A command that failed when it ran (for
/// example `INCR` on a string) has an `IPC_REPLY_ERROR` element with the server's text,
/// while the others carry their values (a transaction is not rolled back). Owned by the
/// caller; free it with `ipc_reply_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; for an atomic batch `IPC_ERR_SERVER` when the server refused
/// a command while queueing it (unknown command, wrong number of arguments): nothing ran,
/// `ipc_last_error_code()` is `"EXECABORT"` and `ipc_last_error_message()` names the refused
/// command(s); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION` (for a pipeline some commands may
/// have run); `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_batch`; blocks the calling thread until the replies came or the
/// response timeout passed.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_exec(
    batch: *const ipc_batch,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_batch_exec(batch, out) {
        let replies = try_ref!(batch).exec()?;
        put!(out, new_reply(Reply::Array(replies)));
        Ok(())
    })
}

/// Free a batch and its queued commands (nothing is sent). NULL is a no-op.
///
/// Thread safety: no other thread may use `batch` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_batch_free(batch: *mut ipc_batch) {
    ffi_boundary!(ipc_batch_free(#[nullable] batch) { free_box!(batch) })
}

/// The watching side of a running `ipc_transaction()`, passed to its callback.
///
/// Borrows the core's `redipc::blocking::WatchSession` (a connection of its own holding the
/// `WATCH`, and the writes queued so far) for the duration of the callback; never free it.
///
/// Thread safety: only inside the callback that received it, on its thread.
pub struct ipc_watch {
    _private: [u8; 0],
}
ref_castable!(ipc_watch => redipc::blocking::WatchSession);

/// The callback of `ipc_transaction()`: read with `ipc_watch_command()`, queue writes with
/// `ipc_watch_queue()`, and return 0 to run them (`EXEC`), or non-zero to give the
/// transaction up: nothing queued runs, and `ipc_transaction()` returns
/// `IPC_ERR_TX_ABORTED`.
///
/// Thread: the thread that called `ipc_transaction()`, once per attempt (again after a
/// watched key changed). `watch` is valid only during the call. The callback must not
/// unwind or `longjmp` out.
pub type ipc_transaction_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, watch: *mut ipc_watch) -> c_int>;

/// An optimistic transaction: `WATCH` the `n` keys on a connection of its own, call `cb`
/// (which reads with `ipc_watch_command()` and queues writes with `ipc_watch_queue()`),
/// then `MULTI`, the queued commands, `EXEC`. If a watched key was changed by anybody
/// between `WATCH` and `EXEC`, nothing queued runs and all of it starts over (a new
/// `WATCH`, `cb` again), up to `max_retries` more times (so at most `max_retries + 1`
/// attempts).
///
/// Keys: an array of byte strings (`lens` NULL for NUL-terminated keys); at least one.
/// `userdata` (may be NULL) is passed to `cb`, on this thread, and not kept.
///
/// Output: on `IPC_OK`, `*out` is an `IPC_REPLY_ARRAY` reply with the results of the queued
/// commands, as for `ipc_batch_exec()`; owned by the caller, freed with `ipc_reply_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `keys`, any `keys[i]`, `cb`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for no keys; `IPC_ERR_WATCH` when a watched key changed on
/// every attempt; `IPC_ERR_TX_ABORTED` when `cb` returned non-zero (nothing queued ran; the
/// number is in the message); `IPC_ERR_SERVER` (a queued command refused: `EXECABORT`, as
/// for `ipc_batch_exec()`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client (each call
/// watches on a connection of its own). `cb` runs on the calling thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_transaction(
    client: *const ipc_client,
    keys: *const *const c_char,
    lens: *const usize,
    n: usize,
    max_retries: usize,
    cb: ipc_transaction_cb,
    userdata: *mut c_void,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_transaction(client, #[nullable] keys, #[nullable] lens, n, max_retries, cb, #[nullable] userdata, out) {
        let cb = callback!(cb);
        let userdata = UserData(userdata);
        let replies = try_ref!(client).transaction(&byte_list!(keys, lens, n), max_retries, |session| {
            // SAFETY: `cb` and `userdata` are the caller's, called on the caller's thread;
            // the session outlives the call.
            match unsafe { cb(userdata.ptr(), as_handle(session)) } {
                0 => Ok(()),
                rc => Err(redipc::Error::aborted(format!(
                    "the callback returned {rc}: transaction given up, no queued command ran"
                ))),
            }
        })?;
        put!(out, new_reply(Reply::Array(replies)));
        Ok(())
    })
}

/// Inside an `ipc_transaction_cb`: run a command now, on the watching connection, and wait
/// for its reply (typically a read of a watched key, such as `GET`). The arguments are as
/// for `ipc_command()`.
///
/// Output: on `IPC_OK`, `*out` is the reply, owned by the caller; free it with
/// `ipc_reply_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`watch`, `args`, any `args[i]`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` (no arguments, an empty command name, a value over the size
/// limit); `IPC_ERR_SERVER` for an error reply; `IPC_ERR_TIMEOUT` or `IPC_ERR_CONNECTION`
/// (then the watching connection is dropped: return non-zero); `IPC_ERR_CLOSED`.
///
/// Thread safety: only inside the callback that received `watch`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_watch_command(
    watch: *mut ipc_watch,
    args: *const *const c_char,
    lens: *const usize,
    n: usize,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_watch_command(watch, #[nullable] args, #[nullable] lens, n, out) {
        let reply = try_mut!(watch).command(&byte_list!(args, lens, n))?;
        put!(out, new_reply(reply));
        Ok(())
    })
}

/// Inside an `ipc_transaction_cb`: queue a command to run in the `MULTI`/`EXEC` after the
/// callback returns 0. The arguments are as for `ipc_command()` (copied).
///
/// Errors: `IPC_ERR_NULL_ARG` (`watch`, `args`, any `args[i]`); `IPC_ERR_INVALID_ARGUMENT`
/// (no arguments, an empty command name, a value over the size limit).
///
/// Thread safety: only inside the callback that received `watch`, on its thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_watch_queue(
    watch: *mut ipc_watch,
    args: *const *const c_char,
    lens: *const usize,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_watch_queue(watch, #[nullable] args, #[nullable] lens, n) {
        try_mut!(watch).queue(&byte_list!(args, lens, n))?;
        Ok(())
    })
}

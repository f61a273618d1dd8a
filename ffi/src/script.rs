//! Lua scripts run by SHA (`ipc_script_*`): the core's `redipc::Script` (source and SHA1)
//! and `run_script` (`EVALSHA`, and `EVAL` once when the server answers `NOSCRIPT`).
//! `ipc_batch_add_script()` (batch.rs) queues one in a batch.
//!
//! Ownership: an `ipc_script` owns a `redipc::Script` and its SHA as a C string.

use std::ffi::{CString, c_char};

use crate::client::ipc_client;
use crate::convert::c_text;
use crate::error::{Error, ipc_result};
use crate::handle::to_boxed;
use crate::reply::{ipc_reply, new_reply};

/// A script and its SHA as a C string.
pub(crate) struct ScriptHandle {
    pub(crate) script: redipc::Script,
    sha: CString,
}

/// A Lua script, run by its SHA1 with `ipc_script_run()` or queued in a batch with
/// `ipc_batch_add_script()`.
///
/// Owns a `redipc::Script`: the source, its SHA1, and whether a call already loaded it on
/// the server (then `EVALSHA` is sent; before that, and once more whenever the server
/// answers `NOSCRIPT` after a restart, a failover or `SCRIPT FLUSH`, `EVAL` with the
/// source, which loads it again: the caller sees one result either way). Make it once and
/// run it many times, from any client. Made by `ipc_script_new()`, freed by
/// `ipc_script_free()`.
///
/// Thread safety: any number of threads may use one script at once (with any clients).
pub struct ipc_script {
    _private: [u8; 0],
}
box_castable!(ipc_script => ScriptHandle);

/// Make a script from its Lua source (a byte string of UTF-8 text, copied). Nothing is sent:
/// the server sees the script on its first run (a syntax error is the first run's
/// `IPC_ERR_SERVER`).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_script_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`source`, `out`); `IPC_ERR_INVALID_ARGUMENT` if the source
/// is not UTF-8.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_script_new(
    source: *const c_char,
    source_len: usize,
    out: *mut *mut ipc_script,
) -> ipc_result {
    ffi_boundary!(ipc_script_new(source, source_len, out) {
        let text = std::str::from_utf8(bytes!(source, source_len))
            .map_err(|e| Error::invalid(format!("`source` is not UTF-8: {e}")))?;
        let script = redipc::Script::new(text);
        let sha = c_text(script.sha());
        put!(out, to_boxed(ScriptHandle { script, sha }));
        Ok(())
    })
}

/// The script's SHA1 in lowercase hex (40 characters, NUL-terminated): what `SCRIPT LOAD`
/// answers and `EVALSHA` takes.
///
/// Lifetime: owned by the script, valid until `ipc_script_free()`. Never NULL: `""` (and
/// the last error set) for a NULL `script`.
///
/// Errors: see above. Thread safety: any thread; see `ipc_script`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_script_sha(script: *const ipc_script) -> *const c_char {
    ffi_boundary!(ipc_script_sha(script) { Ok(try_ref!(script).sha.as_ptr()) })
}

/// Run a script with `nkeys` keys and `nargs` arguments, arrays of byte strings as for
/// `ipc_command()` (`key_lens` / `arg_lens` NULL for NUL-terminated elements; `keys` /
/// `args` may be NULL when their count is 0). Sends `EVALSHA`; when the server does not
/// know the script (`NOSCRIPT`: a restart, a failover, `SCRIPT FLUSH`) the same call once
/// more as `EVAL`, which loads it again: the caller sees one result either way.
///
/// Output: on `IPC_OK`, `*out` is the script's reply (Lua tables are arrays, numbers
/// integers, `true` the integer 1, `false`/`nil` a nil reply), owned by the caller; free it
/// with `ipc_reply_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `script`, `keys` or `args` when their count is
/// not 0, any element, `out`); `IPC_ERR_INVALID_ARGUMENT` for an element over the size
/// limit; `IPC_ERR_SERVER` for the script's own errors (`redis.error_reply`, a failed
/// `redis.call`, a syntax error: `ipc_last_error_code()` has the code); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client and on the
/// script.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_script_run(
    client: *const ipc_client,
    script: *const ipc_script,
    keys: *const *const c_char,
    key_lens: *const usize,
    nkeys: usize,
    args: *const *const c_char,
    arg_lens: *const usize,
    nargs: usize,
    out: *mut *mut ipc_reply,
) -> ipc_result {
    ffi_boundary!(ipc_script_run(client, script, #[nullable] keys, #[nullable] key_lens, nkeys, #[nullable] args, #[nullable] arg_lens, nargs, out) {
        let script = &try_ref!(script).script;
        let reply = try_ref!(client).run_script(script, &byte_list!(keys, key_lens, nkeys), &byte_list!(args, arg_lens, nargs))?;
        put!(out, new_reply(reply));
        Ok(())
    })
}

/// Free a script. NULL is a no-op. Batches it was queued in keep what they need.
///
/// Thread safety: every other call on `script` must have returned; the handle must not be
/// used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_script_free(script: *mut ipc_script) {
    ffi_boundary!(ipc_script_free(#[nullable] script) { free_box!(script) })
}

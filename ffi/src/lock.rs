//! Distributed locks with fencing tokens (`ipc_lock_*`).
//!
//! Ownership: an `ipc_lock` owns a `redipc::blocking::LockGuard` until the lock is released
//! (then only its token).

use std::ffi::c_char;

use crate::client::ipc_client;
use crate::convert::millis;
use crate::error::ipc_result;
use crate::handle::to_boxed;
use crate::options::{ipc_lock_options, or_default};

/// A lock's guard while held, and its fencing token.
pub(crate) struct Lock {
    guard: Option<redipc::blocking::LockGuard>,
    token: u64,
}

/// A held (or released) lock.
///
/// Owns a `redipc::blocking::LockGuard` while held: the lock's key holds a random owner id
/// with a time to live, so only this handle can extend or release it, and a holder that dies
/// loses it when the time to live runs out. With automatic renewal, a background task of the
/// library extends it every `ttl / 3` while held. Made by `ipc_lock_acquire()`, released by
/// `ipc_lock_release()` or `ipc_lock_free()`, freed by `ipc_lock_free()`.
///
/// Thread safety: not synchronized: use one lock handle from one thread at a time (it may
/// move between threads).
pub struct ipc_lock {
    _private: [u8; 0],
}
box_castable!(ipc_lock => Lock);

/// Acquire the lock `name` (a byte string, not empty, without `{` or `}`), waiting while
/// another holder has it (see `ipc_lock_options`; `opts` may be NULL for the defaults: time
/// to live 10 s, wait 10 s, no renewal). Waiters wake as soon as the holder releases it (a
/// notification, not polling) or its time to live runs out.
///
/// Fencing token: every acquisition of a lock name gets a token greater than that of every
/// earlier acquisition (`ipc_lock_token()`); pass it to the resource you protect so that it
/// can refuse writes from a holder whose lock expired meanwhile.
///
/// Output: on `IPC_OK`, `*out` is the held lock, owned by the caller; release it with
/// `ipc_lock_release()` and free it with `ipc_lock_free()` (which releases it if still
/// held).
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `name`, `out`); `IPC_ERR_INVALID_ARGUMENT` for a
/// bad name or a time to live of 0; `IPC_ERR_TIMEOUT` when the lock was still taken after
/// the wait (also when the server does not answer in time); `IPC_ERR_SERVER`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client; blocks the
/// calling thread up to the wait.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_acquire(
    client: *const ipc_client,
    name: *const c_char,
    name_len: usize,
    opts: *const ipc_lock_options,
    out: *mut *mut ipc_lock,
) -> ipc_result {
    ffi_boundary!(ipc_lock_acquire(client, name, name_len, #[nullable] opts, out) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let guard = try_ref!(client).lock(bytes!(name, name_len), opts)?;
        put!(out, to_boxed(Lock { token: guard.token(), guard: Some(guard) }));
        Ok(())
    })
}

/// The lock's fencing token: greater than the token of every earlier acquisition of the
/// same lock name (by any client), starting at 1. Still available after release.
///
/// Output: on `IPC_OK`, `*token`.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: see `ipc_lock`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_token(lock: *const ipc_lock, token: *mut u64) -> ipc_result {
    ffi_boundary!(ipc_lock_token(lock, token) {
        put!(token, try_ref!(lock).token);
        Ok(())
    })
}

/// Extend the lock to expire `ttl_ms` milliseconds from now, if this handle still holds it.
///
/// Output: on `IPC_OK`, `*still_held` is true if it was extended, false if the lock was no
/// longer ours (released, or expired, and maybe taken by another holder meanwhile: stop the
/// protected work).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_lock`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_extend(
    lock: *const ipc_lock,
    ttl_ms: u64,
    still_held: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_lock_extend(lock, ttl_ms, still_held) {
        let held = match &try_ref!(lock).guard {
            Some(g) => g.extend(millis(ttl_ms))?,
            None => false,
        };
        put!(still_held, held);
        Ok(())
    })
}

/// Release the lock if this handle still holds it (compare-and-delete in one script, so a
/// lock that expired and was taken by another holder is left alone), waking its waiters.
/// Automatic renewal stops. The handle stays valid (for `ipc_lock_token()`); free it with
/// `ipc_lock_free()`. Releasing again gives `*was_held` false.
///
/// Output: on `IPC_OK`, `*was_held` says whether the lock was still ours when released
/// (false: it had expired). After an error the lock is released no more by this handle (it
/// expires after its time to live).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_lock`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_release(lock: *mut ipc_lock, was_held: *mut bool) -> ipc_result {
    ffi_boundary!(ipc_lock_release(lock, was_held) {
        let held = match try_mut!(lock).guard.take() {
            Some(g) => g.release()?,
            None => false,
        };
        put!(was_held, held);
        Ok(())
    })
}

/// Free the lock handle, releasing the lock first if it is still held (waiting for the
/// server's answer; errors are ignored: the lock then expires after its time to live).
/// NULL is a no-op.
///
/// Thread safety: any thread, once, after every other call on it has returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_lock_free(lock: *mut ipc_lock) {
    ffi_boundary!(ipc_lock_free(#[nullable] lock) { free_box!(lock) })
}

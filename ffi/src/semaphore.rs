//! Counting semaphores with leases, shared by every process using the same name
//! (`ipc_semaphore_*`), and the permits they hand out (`ipc_permit_*`).
//!
//! Ownership: an `ipc_semaphore` owns a `redipc::blocking::Semaphore` (with a clone of the
//! client); an `ipc_permit` owns a `redipc::blocking::Permit` until it is released (then
//! only its id).

use std::ffi::{CString, c_char};

use crate::client::ipc_client;
use crate::convert::{c_text, millis};
use crate::error::ipc_result;
use crate::handle::to_boxed;

/// A permit while held, and its id as a C string.
pub(crate) struct PermitHandle {
    permit: Option<redipc::blocking::Permit>,
    id: CString,
}

/// A counting semaphore: at most `permits` holders at once, across every client (in any
/// process and language) that uses the same name.
///
/// Owns a `redipc::blocking::Semaphore`, which holds a clone of the client (so it stays
/// usable after `ipc_client_free()` of the handle it came from; calls then fail once the
/// client is closed). Each permit is a lease on the server (keys `{prefix}{sem:NAME}:*`,
/// on the server's clock): a holder that dies without releasing gives its permit back
/// when the lease ends. Waiters are served in arrival order and woken by a notification
/// when a permit is released (no polling). Made by `ipc_semaphore_new()`, freed by
/// `ipc_semaphore_free()`.
///
/// Thread safety: any number of threads may use one semaphore at once.
pub struct ipc_semaphore {
    _private: [u8; 0],
}
box_castable!(ipc_semaphore => redipc::blocking::Semaphore);

/// A held permit of an `ipc_semaphore`.
///
/// Owns a `redipc::blocking::Permit` while held: a random id in the semaphore's set of
/// holders with a lease that ends `lease_ms` after it was taken (or last extended). Without
/// `ipc_permit_extend()` the permit is lost when the lease ends, as if its holder had died.
/// Made by `ipc_semaphore_acquire()`, released by `ipc_permit_release()` or
/// `ipc_permit_free()`, freed by `ipc_permit_free()`. It stays usable after its semaphore
/// handle is freed.
///
/// Thread safety: not synchronized: use one permit from one thread at a time (it may move
/// between threads).
pub struct ipc_permit {
    _private: [u8; 0],
}
box_castable!(ipc_permit => PermitHandle);

/// Make a semaphore named `name` (a byte string, not empty, without `{` or `}`) with
/// `permits` permits (at least 1) whose leases last `lease_ms` milliseconds (at least 1).
/// Nothing is sent. Every process must use the same number of permits for a name.
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_semaphore_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `name`, `out`); `IPC_ERR_INVALID_ARGUMENT` for a
/// bad name, 0 permits or a lease of 0.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_semaphore_new(
    client: *const ipc_client,
    name: *const c_char,
    name_len: usize,
    permits: u64,
    lease_ms: u64,
    out: *mut *mut ipc_semaphore,
) -> ipc_result {
    ffi_boundary!(ipc_semaphore_new(client, name, name_len, permits, lease_ms, out) {
        let sem = try_ref!(client).semaphore(bytes!(name, name_len), permits, millis(lease_ms))?;
        put!(out, to_boxed(sem));
        Ok(())
    })
}

/// Take a permit, waiting while all are held: up to `timeout_ms` milliseconds (0: try once;
/// a negative number (-1): as long as it takes). Waiters are served in arrival order and
/// wake as soon as a permit is released or a lease ends.
///
/// Output: on `IPC_OK`, `*out` is the held permit, owned by the caller; release it with
/// `ipc_permit_release()` and free it with `ipc_permit_free()` (which releases it if still
/// held).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` when no permit came within the timeout
/// (also when the server does not answer in time); `IPC_ERR_SERVER`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread; see `ipc_semaphore`. Blocks the calling thread up to the
/// timeout.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_semaphore_acquire(
    sem: *const ipc_semaphore,
    timeout_ms: i64,
    out: *mut *mut ipc_permit,
) -> ipc_result {
    ffi_boundary!(ipc_semaphore_acquire(sem, timeout_ms, out) {
        let wait = u64::try_from(timeout_ms).ok().map(millis);
        let permit = try_ref!(sem).acquire(wait)?;
        let id = c_text(permit.id());
        put!(out, to_boxed(PermitHandle { permit: Some(permit), id }));
        Ok(())
    })
}

/// How many permits of the semaphore are held now, by anybody (leases that ended are not
/// counted).
///
/// Output: on `IPC_OK`, `*held`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread; see `ipc_semaphore`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_semaphore_held(
    sem: *const ipc_semaphore,
    held: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_semaphore_held(sem, held) {
        put!(held, try_ref!(sem).held()?);
        Ok(())
    })
}

/// Free a semaphore handle. NULL is a no-op. Permits taken from it stay held and usable.
///
/// Thread safety: every other call on `sem` must have returned; the handle must not be used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_semaphore_free(sem: *mut ipc_semaphore) {
    ffi_boundary!(ipc_semaphore_free(#[nullable] sem) { free_box!(sem) })
}

/// The permit's id (random, unique; NUL-terminated), as stored in the semaphore's set of
/// holders. Still available after release.
///
/// Lifetime: owned by the permit, valid until `ipc_permit_free()`. Never NULL: `""` (and
/// the last error set) for a NULL `permit`.
///
/// Errors: see above. Thread safety: see `ipc_permit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_permit_id(permit: *const ipc_permit) -> *const c_char {
    ffi_boundary!(ipc_permit_id(permit) { Ok(try_ref!(permit).id.as_ptr()) })
}

/// Extend the permit's lease to end `lease_ms` milliseconds from now (at least 1), if this
/// handle still holds it.
///
/// Output: on `IPC_OK`, `*still_held` is true if it was extended, false if the permit was
/// no longer ours (released, or its lease ended: another holder may have it now; stop the
/// protected work).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a lease of 0;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_permit`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_permit_extend(
    permit: *const ipc_permit,
    lease_ms: u64,
    still_held: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_permit_extend(permit, lease_ms, still_held) {
        let held = match &try_ref!(permit).permit {
            Some(p) => p.extend(millis(lease_ms))?,
            None => false,
        };
        put!(still_held, held);
        Ok(())
    })
}

/// Give the permit back, waking the semaphore's waiters. The handle stays valid (for
/// `ipc_permit_id()`); free it with `ipc_permit_free()`. Releasing again gives `*was_held`
/// false.
///
/// Output: on `IPC_OK`, `*was_held` says whether the permit was still ours when released
/// (false: its lease had ended). After an error the permit is released no more by this
/// handle (it ends with its lease).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_permit`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_permit_release(
    permit: *mut ipc_permit,
    was_held: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_permit_release(permit, was_held) {
        let held = match try_mut!(permit).permit.take() {
            Some(p) => p.release()?,
            None => false,
        };
        put!(was_held, held);
        Ok(())
    })
}

/// Free the permit handle, releasing the permit first if it is still held (waiting for the
/// server's answer; errors are ignored: the permit then ends with its lease). NULL is a
/// no-op.
///
/// Thread safety: any thread, once, after every other call on it has returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_permit_free(permit: *mut ipc_permit) {
    ffi_boundary!(ipc_permit_free(#[nullable] permit) { free_box!(permit) })
}

//! Redis Cluster helpers (`ipc_keyslot`, `ipc_hash_tag_for_slot`): the core's
//! `redipc::keyslot` and `redipc::hash_tag_for_slot` (issue 12, first slice).

use std::ffi::{CString, c_char};
use std::sync::OnceLock;

use crate::error::{Error, ipc_result};

/// The Redis Cluster slot of a key (0 to 16383), as the server's `CLUSTER KEYSLOT` says:
/// CRC16 of the key, or of its hash tag when it has one (`{user:42}:cart` and
/// `{user:42}:orders` share a slot). Computed locally; no server needed.
///
/// Output: on `IPC_OK`, `*out` is the slot.
///
/// Errors: `IPC_ERR_NULL_ARG` (`key`, `out`).
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_keyslot(
    key: *const c_char,
    key_len: usize,
    out: *mut u16,
) -> ipc_result {
    ffi_boundary!(ipc_keyslot(key, key_len, out) {
        put!(out, redipc::keyslot(bytes!(key, key_len)));
        Ok(())
    })
}

/// A short hash tag (without braces, NUL-terminated) whose keys land in `slot`: a key
/// `"{TAG}:jobs"` is in that slot. The same tag for every call and every process; use it
/// to put queues, streams or shard channels on chosen slots, and so spread them over the
/// nodes of a cluster.
///
/// Output: on `IPC_OK`, `*out` is a static string (never freed, valid for the life of
/// the process).
///
/// Errors: `IPC_ERR_NULL_ARG` (`out`); `IPC_ERR_INVALID_ARGUMENT` when `slot` is 16384 or
/// more.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_hash_tag_for_slot(slot: u16, out: *mut *const c_char) -> ipc_result {
    ffi_boundary!(ipc_hash_tag_for_slot(slot, out) {
        static TAGS: OnceLock<Vec<CString>> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            (0..redipc::SLOTS)
                .map(|s| {
                    let tag = redipc::hash_tag_for_slot(s).unwrap_or_default();
                    CString::new(tag).unwrap_or_default()
                })
                .collect()
        });
        let Some(tag) = tags.get(usize::from(slot)) else {
            return Err(Error::invalid(format!(
                "slot {slot} is out of range: a cluster has slots 0 to 16383"
            )));
        };
        put!(out, tag.as_ptr());
        Ok(())
    })
}

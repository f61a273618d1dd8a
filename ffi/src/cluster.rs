//! Redis Cluster helpers (`ipc_keyslot`, `ipc_hash_tag_for_slot`,
//! `ipc_cluster_hash_tag_for_node`) and per-node statistics (`ipc_client_node_stats`): the
//! core's `redipc::keyslot`, `redipc::hash_tag_for_slot`, `Client::hash_tag_for_node` and
//! `Client::node_stats`, converted for C.

use std::ffi::{CString, c_char};

use crate::client::ipc_client;
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
        let Some(tag) = slot_tag(slot) else {
            return Err(Error::invalid(format!(
                "slot {slot} is out of range: a cluster has slots 0 to 16383"
            )));
        };
        put!(out, tag.as_ptr());
        Ok(())
    })
}

/// The static tag of `slot` (the table of `ipc_hash_tag_for_slot`).
fn slot_tag(slot: u16) -> Option<&'static CString> {
    static TAGS: OnceLock<Vec<CString>> = OnceLock::new();
    TAGS.get_or_init(|| {
        (0..redipc::SLOTS)
            .map(|s| {
                let tag = redipc::hash_tag_for_slot(s).unwrap_or_default();
                CString::new(tag).unwrap_or_default()
            })
            .collect()
    })
    .get(usize::from(slot))
}

/// A short hash tag (without braces, NUL-terminated) whose keys land on the cluster's
/// primary at `addr` (`"host:port"`, NUL-terminated, as `ipc_client_node_stats()` names
/// it), with the slot map the client has now: a key `"{TAG}:jobs"` is served by that node.
/// To place queues or shard channels on chosen nodes (one tag per primary spreads them over
/// every shard); a later slot migration moves the keys with their slot.
///
/// Output: on `IPC_OK`, `*out` is a static string (never freed, valid for the life of
/// the process).
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `addr`, `out`); `IPC_ERR_UNSUPPORTED` when the
/// client is not connected to a cluster; `IPC_ERR_INVALID_ARGUMENT` when `addr` is not a
/// primary of the cluster (the message lists the primaries) or is not UTF-8.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_cluster_hash_tag_for_node(
    client: *const ipc_client,
    addr: *const c_char,
    out: *mut *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_cluster_hash_tag_for_node(client, addr, out) {
        let tag = try_ref!(client).hash_tag_for_node(text!(addr))?;
        let Some(tag) = slot_tag(redipc::keyslot(&tag)) else {
            return Err(Error::invalid("no tag for the node's slot"));
        };
        put!(out, tag.as_ptr());
        Ok(())
    })
}

/// One server's share of a client's traffic, filled by `ipc_client_node_stats()`: each
/// node of a cluster (primaries, and replicas, which serve reads with
/// `ipc_options_set_read_from_replicas()`), or the one server of a standalone client.
///
/// Versioning: the struct only ever grows at its end; the caller sets `size` of the first
/// element of its array to `sizeof(ipc_node_counts)` (the elements' stride), and the
/// library writes back, in each element, the size it filled.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ipc_node_counts {
    /// In (first element): `sizeof(ipc_node_counts)`. Out: the size filled.
    pub size: u32,
    /// How many slots it serves (a replica: its primary's); 0 for a standalone server.
    pub slots: u32,
    /// Commands written to it (its part of `ipc_client_counts.commands`).
    pub commands: u64,
    /// Calls on it that failed with a connection error or a timeout.
    pub failed: u64,
    /// Times its command connection was re-established after it broke.
    pub reconnects: u64,
    /// `MOVED`/`ASK` replies it gave (it no longer served the slot).
    pub redirects: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
    /// A primary (`false`: a replica).
    pub primary: bool,
    /// Its command connection is up now (`false` too before its first use: a cluster's
    /// node connections are opened on demand).
    pub connected: bool,
    /// `host:port` or the unix socket's path, NUL-terminated (cut at 253 bytes).
    pub addr: [c_char; 254],
}

const NODE_COUNTS_SIZE: usize = size_of::<ipc_node_counts>();
const _: () = assert!(NODE_COUNTS_SIZE == 312);

impl From<&redipc::NodeStats> for ipc_node_counts {
    fn from(s: &redipc::NodeStats) -> Self {
        let mut addr = [0 as c_char; 254];
        for (d, &b) in addr.iter_mut().zip(s.addr.as_bytes().iter().take(253)) {
            *d = b as c_char;
        }
        ipc_node_counts {
            size: NODE_COUNTS_SIZE as u32,
            slots: s.slots.iter().map(|&(a, b)| u32::from(b - a) + 1).sum(),
            commands: s.commands,
            failed: s.failed,
            reconnects: s.reconnects,
            redirects: s.redirects,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            primary: s.primary,
            connected: s.connected,
            addr,
        }
    }
}

/// Each server's share of the client's traffic: on a cluster every node of the slot map
/// (primaries by their first slot, each followed by its replicas), standalone the one
/// server. Cheap (atomic reads); call it as often as you like.
///
/// `out` is an array of `cap` elements whose first element's `size` is set to
/// `sizeof(ipc_node_counts)` first (`ipc_node_counts nodes[8] = {{.size = sizeof nodes[0]}};`);
/// it may be NULL when `cap` is 0 (to ask for the count).
///
/// Output: `*len` is the number of nodes; on `IPC_OK` (`*len <= cap`) the first `*len`
/// elements are filled. On `IPC_ERR_BUFFER_TOO_SMALL` (`*len > cap`) the first `cap`
/// are filled and `*len` says how many there are.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `len`; `out` when `cap` > 0);
/// `IPC_ERR_INVALID_ARGUMENT` if `out[0].size` is smaller than the first version of the
/// struct (312 bytes); `IPC_ERR_BUFFER_TOO_SMALL` (above).
///
/// Thread safety: any thread, concurrently with other calls on the client, also from
/// inside a callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_node_stats(
    client: *const ipc_client,
    out: *mut ipc_node_counts,
    cap: usize,
    len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_client_node_stats(client, #[nullable] out, cap, len) {
        let nodes = try_ref!(client).node_stats();
        put!(len, nodes.len());
        if cap == 0 {
            return if nodes.is_empty() { Ok(()) } else { Err(too_small(nodes.len(), cap)) };
        }
        if out.is_null() {
            return Err(Error::null_arg("out"));
        }
        // SAFETY: `out` is not NULL and its first element's `size` is readable (C's
        // contract: the caller set it).
        let stride = unsafe { std::ptr::addr_of!((*out).size).read() } as usize;
        if stride < NODE_COUNTS_SIZE {
            return Err(Error::invalid(format!(
                "`out[0].size` is {stride}: set it to sizeof(ipc_node_counts) (at least {NODE_COUNTS_SIZE})"
            )));
        }
        for (i, n) in nodes.iter().take(cap).enumerate() {
            let v = ipc_node_counts::from(n);
            // SAFETY: `out` holds `cap` elements of `stride >= NODE_COUNTS_SIZE` bytes (C's
            // contract); `v` has no padding (asserted), so its bytes are initialised.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    std::ptr::addr_of!(v).cast::<u8>(),
                    out.cast::<u8>().add(i * stride),
                    NODE_COUNTS_SIZE,
                );
            }
        }
        if nodes.len() > cap {
            return Err(too_small(nodes.len(), cap));
        }
        Ok(())
    })
}

fn too_small(need: usize, cap: usize) -> Error {
    Error::new(
        crate::error::ipc_result::IPC_ERR_BUFFER_TOO_SMALL,
        format!("{need} nodes, room for {cap}: call again with a larger array"),
    )
}

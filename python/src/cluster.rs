//! Redis Cluster helpers: `redipc.keyslot`, `redipc.hash_tag_for_slot` (the core's).

use pyo3::prelude::*;

use crate::convert::Arg;

/// The Redis Cluster slot of `key` (0 to 16383), as the server's `CLUSTER KEYSLOT` says
/// (CRC16 of the key, or of its `{hash tag}`); computed locally.
#[pyfunction]
pub(crate) fn keyslot(key: Arg) -> u16 {
    redipc::keyslot(key)
}

/// A short hash tag whose keys land in `slot`: `f"{{{tag}}}:jobs"` is in that slot (the
/// same tag in every process). `InvalidArgument` when `slot` is not in 0..16384.
#[pyfunction]
pub(crate) fn hash_tag_for_slot(slot: i64) -> PyResult<&'static str> {
    u16::try_from(slot)
        .ok()
        .and_then(redipc::hash_tag_for_slot)
        .ok_or_else(|| {
            py_err!(
                InvalidArgument,
                "slot {slot} is out of range: a cluster has slots 0 to 16383"
            )
        })
}

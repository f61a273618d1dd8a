//! [`Call`]: one RPC call as a server's handler sees it, whatever the wire.

use std::time::SystemTime;

use bytes::Bytes;

/// One call as a server sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Call {
    /// The method name (empty for plain `call`).
    pub method: Bytes,
    /// The request payload (JSON text on the redis-ipc wire).
    pub payload: Bytes,
    /// When the caller stops waiting.
    pub deadline: SystemTime,
}

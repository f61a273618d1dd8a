//! [`Call`]: one RPC call as a server's handler sees it, whatever the wire.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};

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

/// How long a call that timed out may take to take its request back (`LREM`) and check for
/// a server, past its timeout.
pub(crate) const CLEANUP_GRACE: Duration = Duration::from_millis(200);

/// The error of a call that got no reply within `timeout`.
pub(crate) fn timed_out(timeout: Duration) -> Error {
    Error::new(ErrorKind::Timeout, format!("no reply within {timeout:?}"))
}

/// Run `f` until `deadline`: a call's steps share its one timeout.
pub(crate) async fn within<T>(
    deadline: tokio::time::Instant,
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout_at(deadline, f)
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)))
}

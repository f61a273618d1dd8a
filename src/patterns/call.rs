//! [`Call`]: one RPC call as a server's handler sees it, whatever the wire.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use tokio::sync::oneshot;

use crate::client::Client;
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

/// What [`push_and_wait`] got: the reply, or no reply in time (the request may be queued
/// still: the caller takes it back).
pub(crate) enum Waited<T> {
    Reply(T),
    TimedOut(Error),
}

/// `LPUSH` a call's `envelope` onto `list` and wait for its reply on `rx`, both before
/// `deadline`. `Err`: the push failed (nothing was queued) or the reply channel closed.
pub(crate) async fn push_and_wait<T>(
    client: &Client,
    list: &[u8],
    envelope: &[u8],
    deadline: tokio::time::Instant,
    timeout: Duration,
    rx: oneshot::Receiver<T>,
) -> Result<Waited<T>> {
    let push = [b"LPUSH".as_slice(), list, envelope];
    match within(deadline, timeout, client.command(&push)).await {
        // The push may or may not have reached the server.
        Err(e) if e.kind() == ErrorKind::Timeout => Ok(Waited::TimedOut(e)),
        Err(e) => Err(e),
        Ok(_) => match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reply)) => Ok(Waited::Reply(reply)),
            Ok(Err(_)) => Err(Error::closed()),
            Err(_) => Ok(Waited::TimedOut(timed_out(timeout))),
        },
    }
}

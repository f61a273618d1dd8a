//! Sentinel discovery when the library is built without the `sentinel` feature (a smaller
//! library for boards that talk to one known server): no [`Sentinel`] can exist, so the
//! code that would follow one drops out, and a `redis-sentinel://` URL is refused as
//! `Unsupported` when the client is created.

use std::sync::Weak;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// The default port of a sentinel (URLs are still read, to refuse them clearly).
pub(crate) const DEFAULT_PORT: u16 = 26379;

/// An address: host and port.
pub(crate) type Addr = (String, u16);

/// What a client of a build without the `sentinel` feature says of a sentinel URL.
pub(crate) fn unsupported(url: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{url}: this library was built without the `sentinel` feature (Redis Sentinel)"),
    )
}

/// Uninhabited: there are no sentinels without the `sentinel` feature.
pub(crate) enum Sentinel {}

impl Sentinel {
    pub(crate) fn moved(&self) -> watch::Receiver<Option<Addr>> {
        match *self {}
    }

    pub(crate) async fn resolve(&self, _deadline: Instant) -> Result<Addr> {
        match *self {}
    }
}

/// Nothing to follow.
pub(crate) async fn watch(
    _sentinel: Weak<Sentinel>,
    _poll: Duration,
    _shutdown: watch::Receiver<bool>,
) {
}

//! The cluster router when the library is built without the `cluster` feature (a smaller
//! library for boards that talk to one server): no [`Router`] can exist, so every use of
//! one in the rest of the crate is dead code the compiler drops. A cluster node found at
//! connect time, or `ClusterMode::Cluster`, is an `Unsupported` error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::{Options, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::net::node::Node;
use crate::net::wire::Expect;
use crate::reply::Reply;

/// What a client of a build without the `cluster` feature says of a cluster.
pub(crate) fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{what}: this library was built without the `cluster` feature (Redis Cluster)"),
    )
}

/// Uninhabited: there is no router without the `cluster` feature.
pub(crate) enum Router {}

impl Router {
    /// Refuse: `first` answered `CLUSTER SLOTS` with a slot map.
    pub(crate) fn new(
        first: Arc<Node>,
        _slots: &Reply,
        _target: Target,
        _opts: &Options,
        _handle: tokio::runtime::Handle,
        _counters: Arc<crate::stats::Counters>,
    ) -> Result<Arc<Router>> {
        first.close();
        Err(unsupported(&format!(
            "{} is a Redis Cluster node",
            first.display
        )))
    }

    pub(crate) fn display(&self) -> &str {
        match *self {}
    }

    pub(crate) fn max_value_size(&self) -> usize {
        match *self {}
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        match *self {}
    }

    pub(crate) fn node_stats(&self) -> Vec<crate::NodeStats> {
        match *self {}
    }

    pub(crate) fn hash_tag_for_node(&self, _addr: &str) -> Result<String> {
        match *self {}
    }

    pub(crate) fn direct_ready(&self) -> bool {
        match *self {}
    }

    pub(crate) fn is_connected(&self) -> bool {
        match *self {}
    }

    pub(crate) fn is_closed(&self) -> bool {
        match *self {}
    }

    pub(crate) fn primaries(&self) -> Vec<(String, u16)> {
        match *self {}
    }

    pub(crate) fn close(&self) {
        match *self {}
    }

    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        match *self {}
    }

    pub(crate) fn plain(&self) -> bool {
        match *self {}
    }

    pub(crate) fn slot_now<A: AsRef<[u8]>>(&self, _args: &[A]) -> Option<u16> {
        match *self {}
    }

    pub(crate) fn with_owner<R>(
        &self,
        _slot: u16,
        _f: impl FnOnce(&(String, u16)) -> R,
    ) -> Option<R> {
        match *self {}
    }

    pub(crate) fn node_settings(
        &self,
        _addr: &(String, u16),
    ) -> Option<crate::net::wire::WireSettings> {
        match *self {}
    }

    pub(crate) fn refused_at(
        self: &Arc<Self>,
        _reply: &Reply,
        _from: &(String, u16),
        _node: &crate::stats::NodeCounters,
    ) -> bool {
        match **self {}
    }

    pub(crate) fn moved(self: &Arc<Self>, _message: &str) {
        match **self {}
    }

    pub(crate) async fn node_for_cmd(
        self: &Arc<Self>,
        _cmd: Option<&redis::Cmd>,
    ) -> Result<Arc<Node>> {
        match **self {}
    }

    pub(crate) async fn request(self: &Arc<Self>, _bytes: Bytes, _expect: Expect) -> Result<Reply> {
        match **self {}
    }

    pub(crate) async fn request_at(
        self: &Arc<Self>,
        _addr: &(String, u16),
        _bytes: Bytes,
    ) -> Result<Reply> {
        match **self {}
    }
}

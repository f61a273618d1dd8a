//! The client's command connection ([`Conn`]): one server's ([`Node`], `net/node.rs`) or a
//! Redis Cluster's router (`net/cluster.rs`) behind the same calls; dedicated connections
//! and the loops' connections for blocking commands ([`LoopConn`], [`Unblock`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Options, Target};
use crate::error::{Error, ErrorKind, Result};
pub(crate) use crate::net::node::LOG_TARGET;
use crate::net::node::Node;
use crate::net::wire::{Expect, Wire, WireSettings};
use crate::reply::Reply;

/// The client's command connection: one server ([`Node`]), or a Redis Cluster's router,
/// behind the same calls (every pattern sends through these, so routing by key is the
/// router's business alone).
pub(crate) enum Conn {
    One(Arc<Node>),
    Cluster(Arc<crate::net::cluster::Router>),
}

/// A dedicated connection and the node it belongs to (derefs to its [`Wire`]).
pub(crate) struct Dedicated {
    wire: Wire,
    node: Arc<Node>,
}

impl Dedicated {
    /// The node it is connected to.
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The server's id of this connection (`CLIENT ID`, for `CLIENT UNBLOCK`), asked once
    /// per connection (a refusal by ACLs is kept too: `None`, not asked again; no answer
    /// within `timeout`: `None`, asked again next time).
    pub(crate) async fn client_id(&self, timeout: Duration) -> Option<i64> {
        if let Some(known) = self.wire.id() {
            return known;
        }
        let mut ask = redis::cmd("CLIENT");
        ask.arg("ID");
        match tokio::time::timeout(timeout, self.wire.command(&ask)).await {
            Ok(Ok(Reply::Int(id))) => {
                self.wire.set_id(Some(id));
                Some(id)
            }
            Ok(Ok(_)) => {
                self.wire.set_id(None);
                None
            }
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

impl std::ops::Deref for Dedicated {
    type Target = Wire;
    fn deref(&self) -> &Wire {
        &self.wire
    }
}

impl Conn {
    /// Connect to the first node of the URL that answers (no retries: an unreachable
    /// server is reported within the connect timeout for each), then, unless the options
    /// say standalone, ask it whether it is a cluster node (`CLUSTER SLOTS`: the slot map,
    /// or "cluster support disabled").
    pub(crate) async fn connect(
        target: Target,
        opts: &Options,
        handle: tokio::runtime::Handle,
        counters: Arc<crate::stats::Counters>,
    ) -> Result<Arc<Conn>> {
        use crate::config::ClusterMode;
        #[cfg(not(feature = "cluster"))]
        if opts.cluster == ClusterMode::Cluster {
            return Err(crate::net::cluster::unsupported("cluster mode"));
        }
        if target.seeds.is_empty() {
            // A unix socket or sentinels: one server.
            if opts.cluster == ClusterMode::Cluster {
                return Err(Error::invalid(format!(
                    "cluster mode needs redis:// or rediss:// node addresses, not {}",
                    target.url
                )));
            }
            let node = Node::connect(target, opts, handle, counters).await?;
            return Ok(Arc::new(Conn::One(node)));
        }
        let mut node = None;
        let mut failures = Vec::new();
        for (host, port) in &target.seeds {
            let at = if target.seeds.len() == 1 {
                target.clone()
            } else {
                target.at(host, *port)
            };
            match Node::connect(at, opts, handle.clone(), counters.clone()).await {
                Ok(n) => {
                    node = Some(n);
                    break;
                }
                // Refused credentials, a bad database: the same on every node.
                Err(e) if !matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout) => {
                    return Err(e);
                }
                Err(e) => failures.push(e),
            }
        }
        let Some(node) = node else {
            let mut e = failures
                .pop()
                .unwrap_or_else(|| Error::new(ErrorKind::Connection, "no node"));
            if !failures.is_empty() {
                e = Error::new(
                    e.kind(),
                    format!(
                        "none of the {} nodes answered; last: {}",
                        failures.len() + 1,
                        e.text()
                    ),
                );
            }
            return Err(e);
        };
        if opts.cluster == ClusterMode::Standalone {
            return Ok(Arc::new(Conn::One(node)));
        }
        let mut slots = redis::cmd("CLUSTER");
        slots.arg("SLOTS");
        match node.send(&slots).await {
            Ok(Reply::Error(e)) if opts.cluster == ClusterMode::Auto => {
                log::debug!(target: LOG_TARGET, "{} is standalone ({})", node.display, e.message);
                Ok(Arc::new(Conn::One(node)))
            }
            Ok(Reply::Error(e)) => {
                node.close();
                Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "cluster mode was asked for, but {} is not a cluster node (CLUSTER SLOTS: {})",
                        node.display, e.message
                    ),
                ))
            }
            // Not a slot map (a proxy, a fake server): not a cluster.
            Ok(other) if opts.cluster == ClusterMode::Auto && other.as_slice().is_none() => {
                log::debug!(target: LOG_TARGET, "{} is standalone (CLUSTER SLOTS: {other:?})", node.display);
                Ok(Arc::new(Conn::One(node)))
            }
            Ok(map) => {
                let router =
                    crate::net::cluster::Router::new(node, &map, target, opts, handle, counters)?;
                Ok(Arc::new(Conn::Cluster(router)))
            }
            Err(e) => {
                node.close();
                Err(e.context("CLUSTER SLOTS"))
            }
        }
    }

    /// `host:port` (or what the cluster's seeds were), for messages.
    pub(crate) fn display(&self) -> &str {
        match self {
            Conn::One(n) => &n.display,
            Conn::Cluster(r) => r.display(),
        }
    }

    /// The largest value accepted in one argument.
    pub(crate) fn max_value_size(&self) -> usize {
        match self {
            Conn::One(n) => n.max_value_size.load(Ordering::Relaxed),
            Conn::Cluster(r) => r.max_value_size(),
        }
    }

    /// The router, when this is a cluster.
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::net::cluster::Router>> {
        match self {
            Conn::One(_) => None,
            Conn::Cluster(r) => Some(r),
        }
    }

    /// A connection of its own for `cmd` (on the node owning its keys' slot in a cluster):
    /// blocking pops, `WATCH` transactions. Give it back with [`Conn::put_dedicated`] when
    /// it is still good.
    pub(crate) async fn dedicated(&self, cmd: Option<&redis::Cmd>) -> Result<Dedicated> {
        let node = match self {
            Conn::One(n) => n.clone(),
            Conn::Cluster(r) => r.node_for_cmd(cmd).await?,
        };
        let wire = node.dedicated().await?;
        Ok(Dedicated { wire, node })
    }

    /// Give back a dedicated connection that is in a clean state (no WATCH, not blocked).
    pub(crate) fn put_dedicated(&self, c: Dedicated) {
        c.node.put_dedicated(c.wire);
    }

    /// How connections are opened (`None` for a cluster, whose nodes differ).
    pub(crate) fn wire_settings(&self) -> Option<&WireSettings> {
        match self {
            Conn::One(n) => Some(n.wire_settings()),
            Conn::Cluster(_) => None,
        }
    }

    /// The response timeout of ordinary calls.
    pub(crate) fn response_timeout(&self) -> Duration {
        match self {
            Conn::One(n) => n.response_timeout(),
            Conn::Cluster(r) => r.response_timeout(),
        }
    }

    /// Whether the connection is up now (in a cluster: to at least one node).
    pub(crate) fn is_connected(&self) -> bool {
        match self {
            Conn::One(n) => n.is_connected(),
            Conn::Cluster(r) => r.is_connected(),
        }
    }

    /// Whether [`close`](Conn::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Conn::One(n) => n.is_closed(),
            Conn::Cluster(r) => r.is_closed(),
        }
    }

    /// Close every connection (see [`Node::close`]).
    pub(crate) fn close(&self) {
        match self {
            Conn::One(n) => n.close(),
            Conn::Cluster(r) => r.close(),
        }
    }

    /// Completes once [`close`](Conn::close) was called (at once if it was).
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = match self {
            Conn::One(n) => n.shutdown_rx(),
            Conn::Cluster(r) => r.shutdown_rx(),
        };
        async move {
            // An error: the sender is gone, so is the connection.
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Send a pipeline of commands (as one write) and read every reply (`MULTI`'s, the
    /// `QUEUED`s and `EXEC`'s too for an atomic pipeline).
    pub(crate) async fn send_pipeline(&self, pipe: &redis::Pipeline) -> Result<Vec<Reply>> {
        let n = pipe.len() + if pipe.is_transaction() { 2 } else { 0 };
        if n == 0 {
            return Ok(Vec::new());
        }
        match self
            .request(pipe.get_packed_pipeline().into(), Expect::Many(n))
            .await?
        {
            Reply::Array(v) => Ok(v),
            _ => Err(Error::new(ErrorKind::Protocol, "pipeline replies lost")),
        }
    }

    /// Send one command and read its reply (a server error is `Ok(Reply::Error)`).
    pub(crate) async fn send(&self, cmd: &redis::Cmd) -> Result<Reply> {
        self.request(cmd.get_packed_command().into(), Expect::One)
            .await
    }

    /// Send packed commands (see [`Node::request`]; in a cluster, routed by their keys).
    pub(crate) async fn request(&self, bytes: bytes::Bytes, expect: Expect) -> Result<Reply> {
        match self {
            Conn::One(n) => n.request(bytes, expect).await,
            Conn::Cluster(r) => r.request(bytes, expect).await,
        }
    }

    /// Each server's share of the client's traffic: the one server, or every node of the
    /// cluster (see [`crate::NodeStats`]).
    pub(crate) fn node_stats(&self) -> Vec<crate::NodeStats> {
        match self {
            Conn::One(n) => vec![n.stats(true)],
            Conn::Cluster(r) => r.node_stats(),
        }
    }

    /// A hash tag whose keys land on the cluster's primary at `addr` (see
    /// [`crate::Client::hash_tag_for_node`]).
    pub(crate) fn hash_tag_for_node(&self, addr: &str) -> Result<String> {
        match self {
            Conn::One(_) => Err(Error::new(
                ErrorKind::Unsupported,
                "hash_tag_for_node: the client is not connected to a cluster (every key is on its one server)",
            )),
            Conn::Cluster(r) => r.hash_tag_for_node(addr),
        }
    }

    /// Whether a blocking caller should first poll its call on its own thread, where a
    /// single command may take a node's direct connection (see `net/direct.rs`).
    pub(crate) fn direct_ready(&self) -> bool {
        match self {
            Conn::One(n) => n.direct_ready(),
            Conn::Cluster(r) => r.direct_ready(),
        }
    }

    /// Whether this connection goes to a master found by sentinels.
    pub(crate) fn has_sentinels(&self) -> bool {
        match self {
            Conn::One(n) => n.has_sentinels(),
            Conn::Cluster(_) => false,
        }
    }
}

/// A loop connection's client id, and the node it is on.
type Blocked = (i64, Arc<Node>);

/// The server-side client ids of blocking loops' connections, so that another thread can
/// end their blocking commands at once with `CLIENT UNBLOCK` (safe: an unblocked `BRPOP`,
/// `BLMOVE` or `XREADGROUP` answers nil, or what it already took).
#[derive(Clone, Default)]
pub(crate) struct Unblock {
    ids: Arc<Mutex<Vec<Option<Blocked>>>>,
}

impl Unblock {
    /// A slot for one more loop.
    pub(crate) fn slot(&self) -> usize {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.push(None);
        ids.len() - 1
    }

    fn set(&self, slot: usize, id: Option<Blocked>) {
        if let Some(s) = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(slot)
        {
            *s = id;
        }
    }

    /// `CLIENT UNBLOCK` every loop's connection, on the shared connection of its node. Best
    /// effort: a loop that is not blocked, or a failure here, only means it stops at its
    /// block timeout.
    pub(crate) async fn unblock(&self, _conn: &Arc<Conn>) {
        let ids: Vec<Blocked> = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut rest = ids;
        while let Some((_, node)) = rest.first().cloned() {
            let (here, others): (Vec<_>, Vec<_>) =
                rest.into_iter().partition(|(_, n)| Arc::ptr_eq(n, &node));
            rest = others;
            let mut pipe = redis::Pipeline::with_capacity(here.len());
            for (id, _) in here {
                pipe.cmd("CLIENT").arg("UNBLOCK").arg(id);
            }
            let _ = node
                .request(pipe.get_packed_pipeline().into(), Expect::Many(pipe.len()))
                .await;
        }
    }
}

/// One loop's connection for blocking commands (never the shared one), made on first use,
/// dropped after an error or a timeout (a command may still be running on it), and known to
/// an [`Unblock`] by its client id. In a cluster it goes to the node owning the command's
/// slot, and follows the slot when it moves (`MOVED`: nothing ran).
pub(crate) struct LoopConn {
    wire: Option<Dedicated>,
    unblock: Unblock,
    slot: usize,
}

impl LoopConn {
    pub(crate) fn new(unblock: &Unblock) -> LoopConn {
        LoopConn {
            wire: None,
            unblock: unblock.clone(),
            slot: unblock.slot(),
        }
    }

    /// Send `cmd` with a limit of `timeout`; an error reply becomes an error.
    pub(crate) async fn call(
        &mut self,
        conn: &Arc<Conn>,
        cmd: &redis::Cmd,
        timeout: Duration,
    ) -> Result<Reply> {
        let deadline = Instant::now() + timeout;
        let mut redirects = 0;
        loop {
            match self.call_once(conn, cmd, deadline).await {
                Err(e) if e.code() == Some("MOVED") && redirects < 5 => {
                    // The slot moved: nothing ran; the next connection goes to its owner.
                    redirects += 1;
                    if let Some(r) = conn.cluster() {
                        r.moved(e.message());
                    }
                    self.drop_wire();
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &mut self,
        conn: &Arc<Conn>,
        cmd: &redis::Cmd,
        deadline: Instant,
    ) -> Result<Reply> {
        // On a cluster, a command for another node than the loop's connection: that one
        // goes back to its node's pool (it is idle), and one of the other node's is taken.
        if let (Some(r), Some(w)) = (conn.cluster(), self.wire.as_ref()) {
            let node = r.node_for_cmd(Some(cmd)).await?;
            if !Arc::ptr_eq(&node, &w.node) {
                if let Some(w) = self.wire.take() {
                    conn.put_dedicated(w);
                }
                self.unblock.set(self.slot, None);
            }
        }
        if self.wire.is_none() {
            let wire = conn.dedicated(Some(cmd)).await?;
            // No CLIENT ID (ACLs): a stop waits for the block timeout.
            let id = wire
                .client_id(conn.response_timeout())
                .await
                .map(|id| (id, wire.node.clone()));
            self.unblock.set(self.slot, id);
            self.wire = Some(wire);
        }
        let Some(wire) = self.wire.as_ref() else {
            return Err(Error::closed());
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(timeout, wire.command(cmd)).await {
            Ok(Ok(Reply::Error(e))) => {
                // With sentinels: the master was demoted under this loop; the next call
                // connects to the new one.
                if e.code == "READONLY" && conn.has_sentinels() {
                    self.drop_wire();
                }
                Err(Error::from(e))
            }
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.drop_wire();
                // The client was closed under the call: say so, not "connection lost".
                Err(if conn.is_closed() { Error::closed() } else { e })
            }
            Err(_) => {
                self.drop_wire();
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply within {timeout:?}"),
                ))
            }
        }
    }

    fn drop_wire(&mut self) {
        self.wire = None;
        self.unblock.set(self.slot, None);
    }
}

impl Drop for LoopConn {
    fn drop(&mut self) {
        self.unblock.set(self.slot, None);
    }
}

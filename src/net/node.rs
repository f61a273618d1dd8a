//! One server's command connection ([`Node`]): one auto-pipelined multiplexed connection,
//! re-established in the background after it breaks (the whole client's when standalone,
//! one node's in a cluster).
//!
//! State machine: `Up(conn)` → (an I/O error, or the RESP3 disconnect notice) → `Down`
//! while one reconnect task retries with capped exponential backoff and jitter → `Up` again.
//! A call made while `Down` waits for the reconnect, but never past its own deadline: then
//! it fails with a connection error that names the last reason.

use crate::net::spawn::Spawn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{Options, ReconnectPolicy, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::net::direct::{Direct, Taken};
use crate::net::wire::{Expect, Failure, Wire, WireSettings};
use crate::reply::Reply;

/// The `log` target of the command connection's state changes.
pub(crate) const LOG_TARGET: &str = "redipc::connection";

enum State {
    Up { conn: Wire, generation: u64 },
    Down { last_error: Error },
    Closed,
}

/// Settings the connection needs after it is made.
struct Settings {
    wire: WireSettings,
    response_timeout: Duration,
    reconnect: ReconnectPolicy,
}

/// One server's command connection (the whole client's when standalone, one node's in a
/// cluster): Up / Down / Closed, its reconnect task, its dedicated connections.
pub(crate) struct Node {
    /// `host:port` or socket path, for messages.
    pub(crate) display: String,
    settings: Settings,
    state: Mutex<State>,
    /// Bumped on every state change; waiters for a reconnect watch it.
    changed: watch::Sender<u64>,
    /// Turns true on close: every connection of this client (shared, pooled, and the ones
    /// loops hold) ends at once, failing what is in flight on it.
    shutdown: watch::Sender<bool>,
    /// The largest value accepted (our option, lowered to the server's
    /// `proto-max-bulk-len` when it can be read).
    pub(crate) max_value_size: AtomicUsize,
    configured_max_value_size: usize,
    handle: tokio::runtime::Handle,
    /// Idle dedicated connections (see [`Node::dedicated`]).
    idle: Mutex<Vec<Wire>>,
    /// A lone blocking caller's own connection (plain endpoints only; see `net/direct.rs`).
    direct: Option<Direct>,
}

impl Node {
    /// Connect once (no retries: an unreachable server is reported within the connect
    /// timeout), then keep the connection up in the background.
    pub(crate) async fn connect(
        target: Target,
        opts: &Options,
        handle: tokio::runtime::Handle,
        counters: Arc<crate::stats::Counters>,
    ) -> Result<Arc<Node>> {
        let info = &target.info;
        let redis_settings = info.redis_settings();
        let wire = WireSettings {
            readonly: target.readonly,
            endpoint: target.endpoint(),
            username: redis_settings.username().map(str::to_string),
            password: redis_settings.password().map(str::to_string),
            db: redis_settings.db(),
            client_name: opts.client_name.clone(),
            resp3: opts.resp3,
            connect_timeout: opts.connect_timeout,
            display: target.display.clone(),
            limits: opts.limits(),
            counters,
            node_counters: Default::default(),
        };
        let conn = Arc::new(Node {
            direct: Direct::new(&wire, opts.response_timeout, opts.direct_connections),
            settings: Settings {
                wire,
                response_timeout: opts.response_timeout,
                reconnect: opts.reconnect.clone(),
            },
            display: target.display,
            state: Mutex::new(State::Down {
                last_error: Error::new(ErrorKind::Connection, "not connected yet"),
            }),
            changed: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            max_value_size: AtomicUsize::new(opts.max_value_size),
            configured_max_value_size: opts.max_value_size,
            handle,
            idle: Mutex::new(Vec::new()),
        });
        let generation = 1;
        let mc = match &conn.settings.wire.endpoint.sentinel {
            None => Self::open(&conn, generation).await?,
            Some(sentinel) => {
                // Follow the master through failovers for as long as the client lives.
                conn.handle.spawn_task(crate::net::sentinel::watch(
                    Arc::downgrade(sentinel),
                    opts.health_check_for(false),
                    conn.shutdown.subscribe(),
                ));
                // The sentinels may name a server that is no longer the master (a failover
                // under way): ask again until the connect timeout.
                let deadline = Instant::now() + opts.connect_timeout;
                loop {
                    match Self::open(&conn, generation).await {
                        Ok(mc) => break mc,
                        Err(e)
                            if crate::net::wire::stale_master(&e)
                                && Instant::now() + Duration::from_millis(100) < deadline =>
                        {
                            log::debug!(target: LOG_TARGET, "{}; asking the sentinels again", e.text());
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => {
                            conn.close();
                            return Err(e);
                        }
                    }
                }
            }
        };
        log::debug!(target: LOG_TARGET, "connected to {}", conn.display);
        conn.set_state(State::Up {
            conn: mc,
            generation,
        });
        Ok(conn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written (every
        // write is one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, s: State) {
        *self.lock() = s;
        self.changed.send_modify(|g| *g += 1);
    }

    /// Open one connection and run the per-connection setup. `generation` 0 opens a
    /// dedicated connection, whose end does not concern the shared connection.
    async fn open(this: &Arc<Node>, generation: u64) -> Result<Wire> {
        let hook: Option<crate::net::wire::DownHook> = (generation != 0).then(|| {
            // The driver tells us at once when the socket fails, so the next call waits
            // for the reconnect instead of failing on a dead connection.
            let weak: Weak<Node> = Arc::downgrade(this);
            Box::new(move |err: Error| {
                if let Some(conn) = weak.upgrade() {
                    conn.mark_down(generation, err);
                }
            }) as crate::net::wire::DownHook
        });
        let wire = Wire::connect(&this.settings.wire, hook, this.shutdown.subscribe()).await?;
        // Learn the server's bulk limit so an oversized value is refused before it is sent
        // (the server would otherwise close the connection on it). CONFIG may be
        // forbidden by ACLs: then our own limit stays.
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("proto-max-bulk-len");
        let limit =
            match tokio::time::timeout(this.settings.response_timeout, wire.command(&cmd)).await {
                Ok(Ok(reply)) => reply
                    .into_pairs()
                    .ok()
                    .and_then(|p| p.into_iter().next())
                    .and_then(|(_, v)| std::str::from_utf8(&v).ok()?.parse::<usize>().ok()),
                _ => None,
            };
        if let Some(limit) = limit {
            this.max_value_size
                .store(limit.min(this.configured_max_value_size), Ordering::Relaxed);
        }
        Ok(wire)
    }

    /// A connection of its own, for what must not share the multiplexed one: blocking pops,
    /// `WATCH` transactions. Reuses an idle one when there is one. Return it with
    /// [`Node::put_dedicated`] when it is still good.
    pub(crate) async fn dedicated(self: &Arc<Self>) -> Result<Wire> {
        if self.is_closed() {
            return Err(Error::closed());
        }
        // An idle connection the server closed meanwhile (timeout, CLIENT KILL, restart)
        // is dropped here rather than failing its next user's command.
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|w| !w.is_closed());
            idle.pop()
        };
        match idle {
            Some(c) => Ok(c),
            None => Self::open(self, 0).await,
        }
    }

    /// Give back a dedicated connection that is in a clean state (no WATCH, not blocked).
    pub(crate) fn put_dedicated(&self, c: Wire) {
        const MAX_IDLE: usize = 4;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE && !self.is_closed() {
            idle.push(c);
        }
    }

    /// The response timeout of ordinary calls.
    /// How its connections are opened.
    pub(crate) fn wire_settings(&self) -> &WireSettings {
        &self.settings.wire
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        self.settings.response_timeout
    }

    /// Mark the connection of `generation` broken and start one reconnect task.
    fn mark_down(self: &Arc<Self>, generation: u64, err: Error) {
        let why = err.text();
        {
            let mut st = self.lock();
            match &*st {
                State::Up { generation: g, .. } if *g == generation => {
                    *st = State::Down { last_error: err };
                }
                _ => return, // already down, reconnected since, or closed
            }
        }
        log::warn!(target: LOG_TARGET, "connection to {} lost: {why}; reconnecting", self.display);
        self.changed.send_modify(|g| *g += 1);
        let weak = Arc::downgrade(self);
        self.handle
            .spawn_task(Self::reconnect_loop(weak, generation + 1));
    }

    async fn reconnect_loop(weak: Weak<Node>, generation: u64) {
        let mut attempt: u32 = 0;
        loop {
            let Some(this) = weak.upgrade() else { return };
            let delay = this.settings.reconnect.delay(attempt);
            let max_attempts = this.settings.reconnect.max_attempts;
            drop(this);
            tokio::time::sleep(delay).await;
            let Some(this) = weak.upgrade() else { return };
            if matches!(&*this.lock(), State::Closed) {
                return;
            }
            match Self::open(&this, generation).await {
                Ok(mc) => {
                    let mut st = this.lock();
                    if matches!(&*st, State::Closed) {
                        return;
                    }
                    *st = State::Up {
                        conn: mc,
                        generation,
                    };
                    drop(st);
                    this.settings
                        .wire
                        .counters
                        .reconnects
                        .fetch_add(1, Ordering::Relaxed);
                    this.settings
                        .wire
                        .node_counters
                        .reconnects
                        .fetch_add(1, Ordering::Relaxed);
                    log::info!(
                        target: LOG_TARGET,
                        "connection to {} restored (attempt {})",
                        this.display,
                        attempt + 1
                    );
                    this.changed.send_modify(|g| *g += 1);
                    return;
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    let gave_up = max_attempts.is_some_and(|m| attempt >= m);
                    let mut st = this.lock();
                    if matches!(&*st, State::Closed) {
                        return;
                    }
                    let level = if gave_up {
                        log::Level::Error
                    } else {
                        log::Level::Debug
                    };
                    log::log!(
                        target: LOG_TARGET,
                        level,
                        "reconnect to {} failed (attempt {attempt}{}): {}",
                        this.display,
                        if gave_up { ", giving up" } else { "" },
                        e.text()
                    );
                    let msg = if gave_up {
                        format!(
                            "gave up reconnecting after {attempt} attempts (max_attempts); last: {}",
                            e.text()
                        )
                    } else {
                        format!("reconnecting (attempt {attempt}): {}", e.text())
                    };
                    *st = State::Down {
                        last_error: Error::new(ErrorKind::Connection, msg),
                    };
                    drop(st);
                    this.changed.send_modify(|g| *g += 1);
                    if gave_up {
                        return;
                    }
                }
            }
        }
    }

    /// Whether the connection is up now.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(&*self.lock(), State::Up { .. })
    }

    /// Whether [`close`](Node::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(&*self.lock(), State::Closed)
    }

    /// Close: fail every later call with a `Closed` error, stop reconnecting, and end every
    /// connection, so that calls in flight (a `BLPOP` waiting forever included) fail with a
    /// `Closed` error at once instead of running on.
    pub(crate) fn close(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Some(d) = &self.direct {
            d.close();
        }
        self.set_state(State::Closed);
        self.shutdown.send_replace(true);
    }

    /// Turns true once [`close`](Node::close) was called.
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The current connection, waiting for a reconnect until `deadline`.
    async fn current(&self, deadline: Instant) -> Result<(Wire, u64)> {
        let mut rx = self.changed.subscribe();
        loop {
            let last_error = match &*self.lock() {
                State::Up { conn, generation } => return Ok((conn.clone(), *generation)),
                State::Closed => return Err(Error::closed()),
                State::Down { last_error } => last_error.clone(),
            };
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("not connected to {} ({})", self.display, last_error.text()),
                ));
            }
        }
    }

    /// Send one command and read its reply (a server error is `Ok(Reply::Error)`). Errors
    /// carry no context: the caller says which command it was.
    pub(crate) async fn send(self: &Arc<Self>, cmd: &redis::Cmd) -> Result<Reply> {
        self.request(cmd.get_packed_command().into(), Expect::One)
            .await
    }

    /// Send `bytes` on the shared connection within the response timeout. A request that
    /// never reached the socket because the connection broke first (it was still queued)
    /// is sent again after the reconnect: it cannot run twice. One that was written fails
    /// with a connection error (it may or may not have run: at most once).
    pub(crate) async fn request(
        self: &Arc<Self>,
        bytes: bytes::Bytes,
        expect: Expect,
    ) -> Result<Reply> {
        let r = self.request_once(bytes, expect).await;
        if let Err(e) = &r {
            self.count_failure(e);
        }
        r
    }

    async fn request_once(
        self: &Arc<Self>,
        mut bytes: bytes::Bytes,
        expect: Expect,
    ) -> Result<Reply> {
        if let Taken::Done(r) = self.direct_call(&bytes, expect) {
            if let Err(e) = &r {
                self.after_direct_loss(e).await;
            }
            return r;
        }
        let deadline = Instant::now() + self.settings.response_timeout;
        let sentinel = self.settings.wire.endpoint.sentinel.is_some();
        loop {
            let (wire, generation) = self.current(deadline).await?;
            // With sentinels, a READONLY reply means the master was demoted under us: the
            // command was refused, not run, so it is sent again to the new master (a
            // shared reference, not a copy).
            let again = sentinel.then(|| bytes.clone());
            match tokio::time::timeout_at(deadline, wire.request(bytes, expect)).await {
                Ok(Ok(r)) if again.is_some() && readonly(&r) => {
                    self.mark_down(
                        generation,
                        Error::new(
                            ErrorKind::Connection,
                            "the server is no longer the master (READONLY); asking the sentinels",
                        ),
                    );
                    bytes = again.unwrap_or_default();
                }
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(Failure::NotSent(e, back))) => {
                    self.mark_down(generation, e);
                    bytes = back;
                }
                Ok(Err(Failure::Sent(e))) => {
                    self.failed(&e, generation);
                    return Err(e);
                }
                Err(_) => return Err(self.timed_out()),
            }
        }
    }

    /// Send `bytes` once for a cluster's router, which decides what to do next: waits for
    /// this node's reconnect only until `patience` (the slot may have moved meanwhile), and
    /// for the reply until `deadline`. A request the broken connection never wrote comes
    /// back as `Tried::Down`, so it can go to another node without risk of running twice.
    #[cfg(feature = "cluster")]
    pub(crate) async fn try_request(
        self: &Arc<Self>,
        bytes: bytes::Bytes,
        expect: Expect,
        deadline: Instant,
        patience: Duration,
    ) -> std::result::Result<Reply, Tried> {
        let r = self.try_once(bytes, expect, deadline, patience).await;
        if let Err(Tried::Failed(e) | Tried::Down(e)) = &r {
            self.count_failure(e);
        }
        r
    }

    #[cfg(feature = "cluster")]
    async fn try_once(
        self: &Arc<Self>,
        mut bytes: bytes::Bytes,
        expect: Expect,
        deadline: Instant,
        patience: Duration,
    ) -> std::result::Result<Reply, Tried> {
        if let Taken::Done(r) = self.direct_call(&bytes, expect) {
            if let Err(e) = &r {
                self.after_direct_loss(e).await;
            }
            return r.map_err(Tried::Failed);
        }
        loop {
            let wait = deadline.min(Instant::now() + patience);
            let (wire, generation) = match self.current(wait).await {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Closed => return Err(Tried::Failed(e)),
                Err(e) => return Err(Tried::Down(e)),
            };
            match tokio::time::timeout_at(deadline, wire.request(bytes, expect)).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(Failure::NotSent(e, back))) => {
                    self.mark_down(generation, e);
                    bytes = back;
                }
                Ok(Err(Failure::Sent(e))) => {
                    self.failed(&e, generation);
                    return Err(Tried::Failed(e));
                }
                Err(_) => return Err(Tried::Failed(self.timed_out())),
            }
        }
    }

    /// A call on this node failed: a connection error or a timeout counts in its statistics.
    fn count_failure(&self, e: &Error) {
        if matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout) {
            self.settings
                .wire
                .node_counters
                .failed
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This node's share of the client's statistics (`slots` left empty).
    pub(crate) fn stats(&self, primary: bool) -> crate::NodeStats {
        self.settings.wire.node_counters.snapshot(
            self.display.clone(),
            primary,
            self.is_connected(),
        )
    }

    /// The counters of this node (the router counts its redirects there).
    #[cfg(feature = "cluster")]
    pub(crate) fn counters(&self) -> &crate::stats::NodeCounters {
        &self.settings.wire.node_counters
    }

    /// A single command of a blocking caller on its own connection, when it can take it
    /// (see `net/direct.rs`).
    fn direct_call(&self, bytes: &[u8], expect: Expect) -> Taken {
        match (&self.direct, expect) {
            (Some(d), Expect::One) => d.call(bytes, &self.handle),
            _ => Taken::No,
        }
    }

    /// A direct connection broke under a command (end-of-file or reset with the command
    /// written): the server likely restarted or killed its clients, and the shared
    /// connection, whose driver may not have read its own end-of-file yet, is asked with a
    /// `PING` (bounded by a second and the response timeout), so that it is marked down
    /// (and its reconnect started) before the caller hears of the failure: `is_connected`
    /// right after a connection error then says what is true.
    async fn after_direct_loss(self: &Arc<Self>, e: &Error) {
        if e.kind() != ErrorKind::Connection {
            return;
        }
        let (wire, generation) = match &*self.lock() {
            State::Up { conn, generation } => (conn.clone(), *generation),
            _ => return,
        };
        let limit = self.settings.response_timeout.min(Duration::from_secs(1));
        let ping = bytes::Bytes::from_static(b"*1\r\n$4\r\nPING\r\n");
        match tokio::time::timeout(limit, wire.request(ping, Expect::One)).await {
            Ok(Err(Failure::NotSent(e, _) | Failure::Sent(e))) => self.failed(&e, generation),
            Ok(Ok(_)) | Err(_) => {}
        }
    }

    /// Whether a blocking caller's single command could take the direct connection now
    /// (starting its dial when it is down).
    pub(crate) fn direct_ready(&self) -> bool {
        self.direct.as_ref().is_some_and(|d| d.ready(&self.handle))
    }

    /// Whether this connection goes to a master found by sentinels.
    pub(crate) fn has_sentinels(&self) -> bool {
        self.settings.wire.endpoint.sentinel.is_some()
    }

    fn failed(self: &Arc<Self>, e: &Error, generation: u64) {
        if e.kind() == ErrorKind::Connection {
            self.mark_down(generation, e.clone());
        }
    }

    fn timed_out(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "no reply from {} within the response timeout of {:?}",
                self.display, self.settings.response_timeout
            ),
        )
    }
}

/// How [`Node::try_request`] failed.
#[cfg(feature = "cluster")]
pub(crate) enum Tried {
    /// Not written (the node is down): to send elsewhere or again.
    Down(Error),
    /// Written, or the client closed, or no reply in time: the command may have run.
    Failed(Error),
}

/// Whether a reply (or a pipeline's replies) holds a `READONLY` error: the server is a
/// replica, and nothing that writes ran (a replica refuses every write; reads are safe to
/// run again).
fn readonly(r: &Reply) -> bool {
    let is = |r: &Reply| matches!(r, Reply::Error(e) if e.code == "READONLY");
    is(r) || r.as_slice().is_some_and(|v| v.iter().any(is))
}

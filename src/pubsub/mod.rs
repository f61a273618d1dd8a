//! The pub/sub multiplexer: every subscription of a client shares one pub/sub connection.
//!
//! A *registry* (what is subscribed, by whom, and what the server has confirmed) is the
//! source of truth. User calls change the registry and wake the connection task, which
//! *reconciles*: it sends `SUBSCRIBE`/`UNSUBSCRIBE` (and the `P`/`S` forms) for what
//! changed, many names per command. After a reconnect everything is marked to be sent again,
//! so subscriptions are restored without the user doing anything. Redis is subscribed to a
//! name once however many subscriptions share it, and unsubscribed when the last one leaves.
//!
//! Each subscription has its own bounded queue ([`crate::delivery`]); events arrive there in
//! order: messages, and `Activated`/`Disconnected`/`Reactivated`.
//!
//! Files: this one holds the types users see (kinds, messages, events, options);
//! `registry` the registry and [`Subscription`]; `connection` the connection task (connect,
//! reconcile, read and route messages, health check, reconnect); `group` subscription groups.

mod connection;
pub(crate) mod group;
#[cfg(feature = "cluster")]
mod lanes;
mod registry;

#[cfg(feature = "cluster")]
use crate::net::spawn::Spawn;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{Options, ReconnectPolicy};
use crate::delivery::{Droppable, Handler, Overflow};
use crate::error::Error;
use crate::report::{ErrorHook, Report};

/// Create the multiplexer of a client and start its connection task on `handle` (and on a
/// cluster the supervisor of its node connections, `lanes.rs`).
pub(crate) fn start(
    settings: Settings,
    mode: crate::delivery::Mode,
    handle: &tokio::runtime::Handle,
) -> Arc<PubSub> {
    let ps = connection::start(settings, mode, handle);
    #[cfg(feature = "cluster")]
    if let Some(router) = ps.settings.cluster.clone() {
        handle.spawn_task(lanes::supervise(ps.clone(), router));
    }
    ps
}

/// Whether a cluster carries `name` on node connections (`lanes.rs`) rather than the main
/// one: shard channels, and keyspace/keyevent notifications (each node publishes only its
/// own keys').
pub(crate) fn node_routed(kind: SubscriptionKind, name: &[u8]) -> bool {
    kind == SubscriptionKind::Shard || node_local(name)
}

/// Keyspace and keyevent notifications.
pub(crate) fn node_local(name: &[u8]) -> bool {
    name.starts_with(b"__keyspace@") || name.starts_with(b"__keyevent@")
}
pub(crate) use registry::PubSub;
pub use registry::{EventBatch, Events, Subscription};

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubscriptionKind {
    /// `SUBSCRIBE` to channels.
    Channel,
    /// `PSUBSCRIBE` to glob patterns.
    Pattern,
    /// `SSUBSCRIBE` to shard channels (`SPUBLISH`).
    Shard,
}

impl SubscriptionKind {
    fn index(self) -> usize {
        match self {
            SubscriptionKind::Channel => 0,
            SubscriptionKind::Pattern => 1,
            SubscriptionKind::Shard => 2,
        }
    }
    const ALL: [SubscriptionKind; 3] = [
        SubscriptionKind::Channel,
        SubscriptionKind::Pattern,
        SubscriptionKind::Shard,
    ];
    fn commands(self) -> (&'static str, &'static str) {
        match self {
            SubscriptionKind::Channel => ("SUBSCRIBE", "UNSUBSCRIBE"),
            SubscriptionKind::Pattern => ("PSUBSCRIBE", "PUNSUBSCRIBE"),
            SubscriptionKind::Shard => ("SSUBSCRIBE", "SUNSUBSCRIBE"),
        }
    }
}

/// A published message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// How it was subscribed to.
    pub kind: SubscriptionKind,
    /// The channel it was published on.
    pub channel: Bytes,
    /// The pattern that matched, for pattern subscriptions.
    pub pattern: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
}

/// What a subscription receives, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A message.
    Message(Message),
    /// The server confirmed the subscription to `name` (a channel or pattern) for the first
    /// time: messages published from now on arrive.
    Activated {
        /// Kind of the name.
        kind: SubscriptionKind,
        /// The channel or pattern.
        name: Bytes,
    },
    /// The pub/sub connection broke; messages published until `Reactivated` are lost. Once
    /// per outage, however many reconnect attempts fail during it.
    Disconnected {
        /// Why.
        error: Error,
    },
    /// After a reconnect, the server confirmed `name` again.
    Reactivated {
        /// Kind of the name.
        kind: SubscriptionKind,
        /// The channel or pattern.
        name: Bytes,
    },
}

impl Droppable for Event {
    fn droppable(&self) -> bool {
        matches!(self, Event::Message(_))
    }
    fn report_name(&self) -> Bytes {
        match self {
            Event::Message(m) => m.channel.clone(),
            Event::Activated { name, .. } | Event::Reactivated { name, .. } => name.clone(),
            Event::Disconnected { .. } => Bytes::new(),
        }
    }
}

/// Options of one subscription; start from [`SubscribeOptions::default`].
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Queue capacity in events (default 10,000).
    pub capacity: usize,
    /// What to do when the queue is full (default [`Overflow::Block`]).
    pub overflow: Overflow,
    /// The handler; without one, take events with `next`.
    pub handler: Option<Handler<Event>>,
    /// Where handler panics are reported (default: the client's hook; always logged).
    pub error_hook: Option<ErrorHook>,
    /// Run the handler inline in the connection task (library-internal handlers only).
    pub(crate) inline: bool,
    /// Set when the subscription is closed (see [`SubscribeOptions::closed_flag`]).
    closed: Arc<AtomicBool>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            capacity: 10_000,
            overflow: Overflow::Block,
            handler: None,
            error_hook: None,
            inline: false,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl std::fmt::Debug for SubscribeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeOptions")
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("handler", &self.handler.is_some())
            .finish()
    }
}

impl SubscribeOptions {
    /// Set the queue capacity.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }
    /// Set the overflow policy.
    pub fn overflow(mut self, p: Overflow) -> Self {
        self.overflow = p;
        self
    }
    /// Handle events in batches (in order, one batch at a time).
    pub fn batch_handler(mut self, f: impl FnMut(&[Event]) + Send + 'static) -> Self {
        self.handler = Some(Handler::Batch(Box::new(f)));
        self
    }
    /// Handle events one at a time. A panic is caught per event, reported (a
    /// [`ReportKind::HandlerFailed`](crate::ReportKind::HandlerFailed) naming the channel),
    /// and the following events are still delivered.
    pub fn handler(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.handler = Some(Handler::Each(Box::new(f)));
        self
    }
    /// A flag that becomes true when the subscription is closed. A batch handler that
    /// loops over its batch should stop at once when it is set (the subscription may have
    /// been closed from inside the handler); [`handler`](SubscribeOptions::handler) does.
    pub fn closed_flag(&self) -> Arc<AtomicBool> {
        self.closed.clone()
    }

    /// Report handler panics to `hook` instead of the client's hook (set it before
    /// `handler`); they are logged either way.
    pub fn error_hook(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(Arc::new(hook));
        self
    }
}

/// Settings of the pub/sub connection, taken from the client's [`Options`].
pub(crate) struct Settings {
    pub endpoint: crate::net::wire::Endpoint,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_name: Option<String>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub health_check_interval: Duration,
    pub reconnect: ReconnectPolicy,
    pub display: String,
    /// The client's report hook (for handlers of subscriptions without one of their own).
    pub error_hook: Option<ErrorHook>,
    /// What a message or reply may announce and take.
    pub limits: crate::net::resp::Limits,
    /// The client's statistics.
    pub counters: std::sync::Arc<crate::stats::Counters>,
    /// On a cluster, the router: after the connection to a node fails, the next attempts
    /// go to the cluster's primaries in turn.
    pub cluster: Option<Arc<crate::net::cluster::Router>>,
}

impl Settings {
    pub(crate) fn new(
        target: &crate::config::Target,
        opts: &Options,
        counters: std::sync::Arc<crate::stats::Counters>,
    ) -> Self {
        Settings {
            endpoint: target.endpoint(),
            username: target.info.redis_settings().username().map(str::to_string),
            password: target.info.redis_settings().password().map(str::to_string),
            client_name: opts.client_name.clone(),
            connect_timeout: opts.connect_timeout,
            response_timeout: opts.response_timeout,
            health_check_interval: opts
                .health_check_for(matches!(target.info.addr(), redis::ConnectionAddr::Unix(_))),
            reconnect: opts.reconnect.clone(),
            display: target.display.clone(),
            error_hook: opts.error_hook.clone(),
            limits: opts.limits(),
            counters,
            cluster: None,
        }
    }

    /// Where attempt `attempt` (0 after a connection that worked) connects: the endpoint,
    /// or on a cluster after a failure one primary after another.
    pub(crate) fn endpoint_for(&self, attempt: u32) -> (crate::net::wire::Endpoint, String) {
        if let Some(r) = &self.cluster
            && attempt > 0
        {
            let nodes = r.primaries();
            if !nodes.is_empty() {
                let (host, port) = nodes[attempt as usize % nodes.len()].clone();
                let display = format!("{host}:{port}");
                let ep = crate::net::wire::Endpoint {
                    addr: redis::ConnectionAddr::Tcp(host, port),
                    tls: self.endpoint.tls.clone(),
                    sentinel: None,
                };
                return (ep, display);
            }
        }
        (self.endpoint.clone(), self.display.clone())
    }
}

//! The registry of a client's subscriptions (the source of truth that the connection task
//! reconciles with the server) and [`Subscription`], the user's handle on its part of it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Event, Settings, SubscribeOptions, SubscriptionKind};
use crate::delivery::{Delivery, Mode, QueueStats};
use crate::error::{Error, ErrorKind, Result};
use crate::report::Reporter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerState {
    NotSent,
    Subscribing,
    Active,
    Unsubscribing,
}

pub(super) struct NameEntry {
    /// The subscriptions on this name, with their queues (messages are routed through here).
    pub(super) subs: Vec<(u64, Arc<Delivery<Event>>)>,
    pub(super) server: ServerState,
    pub(super) error: Option<Error>,
    /// On a cluster, the node whose connection (`lanes.rs`) confirmed this shard channel
    /// last: a loss that another node's connection tells is stale (the channel moved on).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(super) lane: Option<(String, u16)>,
}

pub(super) struct SubEntry {
    pub(super) kind: SubscriptionKind,
    pub(super) delivery: Arc<Delivery<Event>>,
    /// Names, with whether each was ever activated (for `Reactivated`).
    pub(super) names: HashMap<Bytes, bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ConnState {
    Connecting,
    Up,
    Down,
}

pub(super) struct Registry {
    pub(super) next_id: u64,
    pub(super) names: [HashMap<Bytes, NameEntry>; 3],
    pub(super) dirty: [HashSet<Bytes>; 3],
    pub(super) subs: HashMap<u64, SubEntry>,
    pub(super) conn: ConnState,
}

impl Registry {
    /// Tell every subscription of `name` it is live: `Activated` the first time,
    /// `Reactivated` after an outage.
    pub(super) fn announce_active(&mut self, kind: SubscriptionKind, name: &Bytes) {
        let Registry { names, subs, .. } = self;
        let Some(entry) = names[kind.index()].get(name) else {
            return;
        };
        for (id, _) in &entry.subs {
            if let Some(sub) = subs.get_mut(id)
                && let Some(seen) = sub.names.get_mut(name)
            {
                let name = name.clone();
                let event = if *seen {
                    Event::Reactivated { kind, name }
                } else {
                    Event::Activated { kind, name }
                };
                *seen = true;
                sub.delivery.push_control(event);
            }
        }
    }
}

/// The pub/sub side of one client.
pub(crate) struct PubSub {
    pub(super) reg: Mutex<Registry>,
    /// Wakes the connection task: something to reconcile, or closing.
    pub(super) wake: Notify,
    /// Wakes callers waiting for confirmations.
    pub(super) changed: Notify,
    /// Wakes the connection task's backoff sleep when the client closes.
    pub(super) closing: Notify,
    pub(super) settings: Settings,
    pub(super) mode: Mode,
    pub(super) closed: AtomicBool,
    /// Bumped on every change of the wanted names (and on close): what a cluster's node
    /// connections (`lanes.rs`) watch.
    pub(super) lanes: tokio::sync::watch::Sender<u64>,
    /// Messages dropped by subscriptions that are gone.
    retired_dropped: AtomicU64,
    /// The process generation it was made in (`crate::fork`).
    generation: u64,
}

/// Check and copy names: none may be empty.
fn to_bytes<N: AsRef<[u8]>>(names: &[N]) -> Result<Vec<Bytes>> {
    names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            if n.is_empty() {
                Err(Error::invalid(
                    "a channel or pattern name must not be empty",
                ))
            } else {
                Ok(Bytes::copy_from_slice(n))
            }
        })
        .collect()
}

pub(super) fn lock(m: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PubSub {
    /// A multiplexer with nothing subscribed; `connection::start` runs its task.
    pub(super) fn new(settings: Settings, mode: Mode) -> PubSub {
        PubSub {
            reg: Mutex::new(Registry {
                next_id: 1,
                names: Default::default(),
                dirty: Default::default(),
                subs: HashMap::new(),
                conn: ConnState::Connecting,
            }),
            wake: Notify::new(),
            changed: Notify::new(),
            closing: Notify::new(),
            settings,
            mode,
            closed: AtomicBool::new(false),
            lanes: tokio::sync::watch::Sender::new(0),
            retired_dropped: AtomicU64::new(0),
            generation: crate::fork::generation(),
        }
    }

    /// Wake the connection task (and a cluster's node connections): something to
    /// reconcile, or closing.
    pub(super) fn poke(&self) {
        if self.inherited() {
            return;
        }
        self.wake.notify_one();
        self.lanes.send_modify(|g| *g += 1);
    }

    /// Made before a `fork()` of this process: its locks may be held by the parent's
    /// threads, which are not there (`crate::fork`); nothing here touches them then.
    fn inherited(&self) -> bool {
        crate::fork::from_parent(self.generation)
    }

    /// Stop the connection task and close every subscription.
    pub(crate) fn close(&self) {
        if self.inherited() {
            return;
        }
        self.closed.store(true, Ordering::Release);
        self.poke();
        self.closing.notify_one();
        let deliveries: Vec<_> = lock(&self.reg)
            .subs
            .drain()
            .map(|(_, s)| s.delivery)
            .collect();
        for d in deliveries {
            self.retired_dropped
                .fetch_add(d.stats().dropped, Ordering::Relaxed);
            d.close();
        }
    }

    /// Messages dropped by the overflow policies of every subscription, gone ones included.
    pub(crate) fn dropped(&self) -> u64 {
        if self.inherited() {
            return self.retired_dropped.load(Ordering::Relaxed);
        }
        let live: u64 = lock(&self.reg)
            .subs
            .values()
            .map(|s| s.delivery.stats().dropped)
            .sum();
        live + self.retired_dropped.load(Ordering::Relaxed)
    }

    /// Register a new subscription and subscribe to `names`.
    pub(crate) async fn subscribe<N: AsRef<[u8]>>(
        self: &Arc<Self>,
        kind: SubscriptionKind,
        names: &[N],
        opts: SubscribeOptions,
    ) -> Result<Subscription> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed());
        }
        let mode = if opts.inline {
            Mode::Inline
        } else {
            self.mode.clone()
        };
        let delivery = Delivery::new(
            opts.capacity,
            opts.overflow,
            opts.handler,
            mode,
            Reporter::new(opts.error_hook.as_ref(), self.settings.error_hook.as_ref()),
            opts.closed,
        );
        let id = {
            let mut reg = lock(&self.reg);
            let id = reg.next_id;
            reg.next_id += 1;
            reg.subs.insert(
                id,
                SubEntry {
                    kind,
                    delivery: delivery.clone(),
                    names: HashMap::new(),
                },
            );
            id
        };
        let sub = Subscription {
            ps: self.clone(),
            id,
            kind,
            delivery,
            nowait: AtomicBool::new(false),
        };
        sub.add(names).await?;
        Ok(sub)
    }

    fn add_names(&self, id: u64, names: &[Bytes]) -> Result<Vec<Bytes>> {
        if self.inherited() {
            return Err(crate::fork::inherited());
        }
        let mut guard = lock(&self.reg);
        let reg = &mut *guard;
        let Some(sub) = reg.subs.get_mut(&id) else {
            return Err(Error::closed());
        };
        let kind = sub.kind;
        let mut added = Vec::new();
        for name in names {
            if sub.names.contains_key(name) {
                continue;
            }
            let entry = reg.names[kind.index()]
                .entry(name.clone())
                .or_insert(NameEntry {
                    subs: Vec::new(),
                    server: ServerState::NotSent,
                    error: None,
                    lane: None,
                });
            entry.subs.push((id, sub.delivery.clone()));
            let active = entry.server == ServerState::Active;
            sub.names.insert(name.clone(), active);
            if active {
                sub.delivery.push_control(Event::Activated {
                    kind,
                    name: name.clone(),
                });
            } else {
                reg.dirty[kind.index()].insert(name.clone());
            }
            added.push(name.clone());
        }
        Ok(added)
    }

    fn remove_names(&self, id: u64, names: &[Bytes]) {
        if self.inherited() {
            return;
        }
        let mut guard = lock(&self.reg);
        let reg = &mut *guard;
        let Some(sub) = reg.subs.get_mut(&id) else {
            return;
        };
        let kind = sub.kind;
        for name in names {
            if sub.names.remove(name).is_none() {
                continue;
            }
            if let Some(entry) = reg.names[kind.index()].get_mut(name) {
                entry.subs.retain(|(s, _)| *s != id);
                if entry.subs.is_empty() {
                    reg.dirty[kind.index()].insert(name.clone());
                }
            }
        }
        drop(guard);
    }

    /// Wait until every name in `names` is confirmed by the server, failed, or the deadline
    /// passes. While the connection is down (and not connecting) it returns at once: the
    /// names stay registered and activate when the connection is back.
    async fn wait_active(&self, kind: SubscriptionKind, names: &[Bytes]) -> Result<()> {
        let deadline = Instant::now() + self.settings.response_timeout;
        let mut pending: Vec<Bytes> = names.to_vec();
        loop {
            let notified = self.changed.notified();
            {
                let reg = lock(&self.reg);
                if reg.conn == ConnState::Down {
                    return Ok(());
                }
                let mut failed = None;
                pending.retain(|n| match reg.names[kind.index()].get(n) {
                    Some(e) if e.server == ServerState::Active => false,
                    Some(NameEntry {
                        error: Some(err), ..
                    }) => {
                        failed = Some(err.clone());
                        false
                    }
                    _ => true,
                });
                if let Some(err) = failed {
                    return Err(err);
                }
                if pending.is_empty() {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the server did not confirm the subscription within {:?}",
                        self.settings.response_timeout
                    ),
                ));
            }
        }
    }

    fn unregister(&self, id: u64) {
        if self.inherited() {
            return;
        }
        let mut guard = lock(&self.reg);
        let reg = &mut *guard;
        if let Some(sub) = reg.subs.remove(&id) {
            self.retired_dropped
                .fetch_add(sub.delivery.stats().dropped, Ordering::Relaxed);
            for name in sub.names.keys() {
                if let Some(entry) = reg.names[sub.kind.index()].get_mut(name) {
                    entry.subs.retain(|(s, _)| *s != id);
                    if entry.subs.is_empty() {
                        reg.dirty[sub.kind.index()].insert(name.clone());
                    }
                }
            }
        }
        drop(guard);
        self.poke();
    }
}

/// The events of a [`Subscription`], awaitable from anywhere ([`Subscription::events`]).
#[derive(Clone)]
pub struct Events(Arc<Delivery<Event>>);

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// The next event; `Ok(None)` when none came within `timeout` (`None`: no limit). A
    /// `Closed` error once the subscription is closed.
    pub async fn next(&self, timeout: Option<std::time::Duration>) -> Result<Option<Event>> {
        match timeout {
            None => self.0.next_async().await.map(Some),
            Some(t) => match tokio::time::timeout(t, self.0.next_async()).await {
                Ok(r) => r.map(Some),
                Err(_) => Ok(None),
            },
        }
    }

    /// The next event (waiting up to `timeout`, `None`: no limit) and those queued behind
    /// it, `max` at most (at least 1), oldest first; empty when none came in time. One
    /// wake-up of the caller for many events.
    pub async fn next_batch(
        &self,
        timeout: Option<std::time::Duration>,
        max: usize,
    ) -> Result<Vec<Event>> {
        let Some(first) = self.next(timeout).await? else {
            return Ok(Vec::new());
        };
        let mut out = vec![first];
        while out.len() < max.max(1) {
            match self.0.try_next()? {
                Some(e) => out.push(e),
                None => break,
            }
        }
        Ok(out)
    }

    /// [`next_batch`](Events::next_batch) for a consumer that may be cancelled after the
    /// events are taken and before it hands them out (an asyncio task awaiting them):
    /// [`EventBatch::accept`] takes them; a batch dropped without it puts its events back
    /// at the head of the queue, in order, so a cancelled wait loses nothing. One batch is
    /// out at a time: the next `take_batch` waits until the last one is accepted or dropped
    /// (other ways of taking events do not wait for it).
    pub async fn take_batch(
        &self,
        timeout: Option<std::time::Duration>,
        max: usize,
    ) -> Result<EventBatch> {
        let lent = match timeout {
            None => self.0.lend_async(max).await?,
            Some(t) => match tokio::time::timeout(t, self.0.lend_async(max)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Ok(EventBatch {
                        events: Vec::new(),
                        home: None,
                    });
                }
            },
        };
        Ok(EventBatch {
            events: lent,
            home: Some(self.0.clone()),
        })
    }
}

/// Events taken by [`Events::take_batch`] (none when its time passed):
/// [`accept`](EventBatch::accept) them, or drop the batch to put them back first in their
/// subscription's queue.
pub struct EventBatch {
    events: Vec<Event>,
    home: Option<Arc<Delivery<Event>>>,
}

impl EventBatch {
    /// The events, now handed out.
    pub fn accept(mut self) -> Vec<Event> {
        let events = std::mem::take(&mut self.events);
        if let Some(home) = self.home.take() {
            home.settle(Vec::new());
        }
        events
    }
}

impl Drop for EventBatch {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.settle(std::mem::take(&mut self.events));
        }
    }
}

impl std::fmt::Debug for EventBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBatch")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// A subscription: a handle on some channels (or patterns, or shard channels) of one kind
/// and on the queue their events arrive in. Dropping it (or [`close`](Subscription::close))
/// unsubscribes; after that returns no handler call of it runs.
pub struct Subscription {
    ps: Arc<PubSub>,
    id: u64,
    kind: SubscriptionKind,
    delivery: Arc<Delivery<Event>>,
    /// Closed by a handle's `stop` that must not wait for a running handler (its own
    /// deadline applies): dropping it then does not wait either.
    nowait: AtomicBool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("kind", &self.kind)
            .field("names", &self.names().len())
            .finish_non_exhaustive()
    }
}

/// The waiting half of [`Subscription::add`]: until the server confirmed `names` of the
/// subscription `id` (or the connection is down); on failure they are removed again.
async fn confirm(ps: &PubSub, id: u64, kind: SubscriptionKind, names: &[Bytes]) -> Result<()> {
    // From inside a handler, waiting could deadlock (the connection task may be waiting
    // for room in this very handler's queue): the names are registered, and their
    // Activated events tell when they are live.
    if names.is_empty() || crate::delivery::in_handler() {
        return Ok(());
    }
    if let Err(e) = ps.wait_active(kind, names).await {
        ps.remove_names(id, names);
        ps.poke();
        return Err(e);
    }
    Ok(())
}

impl Subscription {
    /// Made before a `fork()` of this process (`crate::fork`): in the child adding names
    /// fails with a `Closed` error, pulls too, and removing names or closing does nothing.
    pub(crate) fn inherited(&self) -> bool {
        self.ps.inherited()
    }

    /// The kind of this subscription.
    pub fn kind(&self) -> SubscriptionKind {
        self.kind
    }

    /// Subscribe to more names. Returns once the server confirmed them (or at once when the
    /// connection is down, or when called from inside a handler: they activate later, with
    /// an `Activated` event).
    pub async fn add<N: AsRef<[u8]>>(&self, names: &[N]) -> Result<()> {
        let added = self.register(names)?;
        self.confirm(&added).await
    }

    /// The synchronous half of [`add`](Subscription::add): record the names and wake the
    /// connection task; returns the names that were new to this subscription.
    pub(crate) fn register<N: AsRef<[u8]>>(&self, names: &[N]) -> Result<Vec<Bytes>> {
        let names = to_bytes(names)?;
        let added = self.ps.add_names(self.id, &names)?;
        if !added.is_empty() {
            self.ps.poke();
        }
        Ok(added)
    }

    /// The waiting half of [`add`](Subscription::add): until the server confirmed `names`
    /// (or the connection is down); on failure they are removed again.
    pub(crate) async fn confirm(&self, names: &[Bytes]) -> Result<()> {
        confirm(&self.ps, self.id, self.kind, names).await
    }

    /// [`add`](Subscription::add) as a future that does not borrow the subscription, for a
    /// binding that awaits it on an event loop of its own (Python's asyncio): the names are
    /// recorded now (an invalid name fails here), the future waits for the server's
    /// confirmation (on failure the names are removed again). Dropping the future (a
    /// cancelled await) leaves the names subscribed; they activate with an `Activated`
    /// event.
    pub fn add_owned<N: AsRef<[u8]>>(
        &self,
        names: &[N],
    ) -> Result<impl std::future::Future<Output = Result<()>> + Send + 'static> {
        let added = self.register(names)?;
        let (ps, id, kind) = (self.ps.clone(), self.id, self.kind);
        Ok(async move { confirm(&ps, id, kind, &added).await })
    }

    /// Stop receiving `names` (Redis is unsubscribed when no other subscription has them).
    pub fn remove<N: AsRef<[u8]>>(&self, names: &[N]) {
        let names: Vec<Bytes> = names
            .iter()
            .map(|n| Bytes::copy_from_slice(n.as_ref()))
            .collect();
        self.ps.remove_names(self.id, &names);
        self.ps.poke();
    }

    /// Remove every name; the subscription stays open for [`add`](Subscription::add).
    pub fn clear(&self) {
        let names = self.names();
        self.remove(&names);
    }

    /// The names subscribed to now.
    pub fn names(&self) -> Vec<Bytes> {
        if self.inherited() {
            return Vec::new();
        }
        lock(&self.ps.reg)
            .subs
            .get(&self.id)
            .map(|s| s.names.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Queue counters: delivered, dropped, queued, capacity.
    pub fn stats(&self) -> QueueStats {
        self.delivery.stats()
    }

    /// The next event without waiting (subscriptions without a handler).
    pub fn try_next(&self) -> Result<Option<Event>> {
        self.delivery.try_next()
    }

    /// The next event, waiting up to `timeout` (`None`: no limit); `Ok(None)` on timeout.
    /// Blocks the calling thread: do not call it from async code.
    pub fn next_blocking(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        self.delivery.next_blocking(timeout)
    }

    /// The next event (async).
    pub async fn next(&self) -> Result<Event> {
        self.delivery.next_async().await
    }

    /// A handle on this subscription's events, to await them where the subscription
    /// cannot be borrowed (another event loop's bridge). It does not keep the subscription
    /// open: once that closes, [`Events::next`] ends with a `Closed` error.
    pub fn events(&self) -> Events {
        Events(self.delivery.clone())
    }

    /// Unsubscribe and close (again: no effect). After it returns, no handler call of this
    /// subscription runs (called from inside its own handler, it takes effect when the
    /// handler returns). [`stats`](Subscription::stats) stays readable.
    pub fn close(&self) {
        self.ps.unregister(self.id);
        self.delivery.close();
    }

    /// Close like [`close`](Subscription::close), waiting at most `deadline` for a handler
    /// call running on another thread: `Ok` once no handler call runs any more and the
    /// handler is dropped; a [`ErrorKind::Timeout`] error if a call still runs at the
    /// deadline (the subscription is closed all the same: the handler is dropped, and the
    /// [`on_closed`](Subscription::on_closed) actions run, when that call returns). From
    /// inside its own handler it returns `Ok` at once and takes effect when the handler
    /// returns. What a binding's `stop(timeout)` is.
    pub fn stop(&self, deadline: Duration) -> Result<()> {
        self.close_nowait();
        self.delivery.wait_gone(deadline)
    }

    /// Whether the subscription was closed.
    pub fn is_closed(&self) -> bool {
        self.delivery.is_closed()
    }

    /// Run `f` once the subscription is closed and its handler dropped for good, after the
    /// last handler call returned (on the thread that closed it, or on the thread of that
    /// last call); at once if that has happened already. What a binding frees its
    /// handler's data in.
    pub fn on_closed(&self, f: impl FnOnce() + Send + 'static) {
        self.delivery.on_gone(f)
    }

    /// Unsubscribe and close without waiting for a handler running on another thread (it
    /// drops the handler when it returns); dropping the subscription then does not wait
    /// either.
    pub(crate) fn close_nowait(&self) {
        self.nowait.store(true, Ordering::Release);
        self.ps.unregister(self.id);
        self.delivery.close_nowait();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.inherited() {
            // Made before a fork(): its registry's locks may be held by the parent's
            // threads, which are not here; it is kept as it is (`crate::fork`).
            crate::fork::keep((self.ps.clone(), self.delivery.clone()));
            return;
        }
        if self.nowait.load(Ordering::Acquire) {
            self.close_nowait();
        } else {
            self.close();
        }
    }
}

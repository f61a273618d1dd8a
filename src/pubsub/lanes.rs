//! On a Redis Cluster, the subscriptions that live on particular nodes, each on a
//! connection to its node (a "lane"): shard channels (`SSUBSCRIBE`) on the primary owning
//! their slot, keyspace and keyevent notifications (`__keyspace@…`, `__keyevent@…`, which a
//! node publishes only to its own clients) on every primary. Classic channels and patterns
//! stay on the main connection (`connection.rs`), which skips these names on a cluster.
//!
//! Each lane compares what it should carry (the registry's names with subscribers, its node
//! in the router's map) with what its node confirmed, whenever either changes, and sends the
//! difference. A lane whose connection breaks tells the subscriptions of its names
//! (`Disconnected`: messages may have been missed) and reconnects while its node is a
//! primary; a shard channel the server unsubscribed (its slot moved: a `sunsubscribe` push
//! nobody asked for) gets `Disconnected` too, the map is refreshed, and the new owner's lane
//! subscribes it again (`Reactivated`); the lane also asks its node again, since a map
//! refreshed at that moment may come from a node not told of the move yet, and the node's
//! `MOVED` names the new owner. A confirmed shard channel that the map moves elsewhere before
//! its node unsubscribes it is told the same way; if the new owner's lane confirms it first,
//! the gap is told then and the old lane's late loss is ignored (`NameEntry::lane`). Unsubscribe confirmations are matched in order
//! against what the lane asked for, so a server-sent `sunsubscribe` is told apart from the
//! answer to our own (valkey issue 1066) — each shard channel has its own command.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::Event;
use super::connection::{Pending, Stop, confirmation, connect_to, route_messages, write_flush};
use super::registry::{PubSub, ServerState, lock};
use super::{SubscriptionKind, node_local, node_routed};
use crate::error::{Error, ErrorKind};
use crate::net::cluster::Router;
use crate::net::resp::Incoming;
use crate::net::wire::{Endpoint, io_error};
use crate::reply::Reply;

type Addr = (String, u16);

/// Whether the lane of `addr` carries `name` now.
fn wants(
    router: &Router,
    addr: &Addr,
    primaries: &[Addr],
    kind: SubscriptionKind,
    name: &[u8],
) -> bool {
    match kind {
        SubscriptionKind::Shard => {
            router.owner_of(crate::cluster::keyslot(name)).as_ref() == Some(addr)
        }
        _ => node_local(name) && primaries.contains(addr),
    }
}

/// Whether any name the lanes carry has subscribers.
fn any_wanted(ps: &PubSub) -> bool {
    let reg = lock(&ps.reg);
    SubscriptionKind::ALL.iter().any(|&kind| {
        reg.names[kind.index()]
            .iter()
            .any(|(n, e)| !e.subs.is_empty() && node_routed(kind, n))
    })
}

/// Start a lane for every primary while names need them; lanes end themselves when their
/// node stops being a primary or the client closes.
pub(super) async fn supervise(ps: Arc<PubSub>, router: Arc<Router>) {
    let mut reg_rx = ps.lanes.subscribe();
    let mut map_rx = router.map_changes();
    let mut lanes: HashMap<Addr, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        if ps.closed.load(Ordering::Acquire) {
            return;
        }
        lanes.retain(|_, h| !h.is_finished());
        if any_wanted(&ps) {
            for addr in router.primaries() {
                if let std::collections::hash_map::Entry::Vacant(v) = lanes.entry(addr) {
                    let addr = v.key().clone();
                    v.insert(crate::net::spawn::spawn_task(lane(
                        ps.clone(),
                        router.clone(),
                        addr,
                    )));
                }
            }
        }
        tokio::select! {
            r = reg_rx.changed() => if r.is_err() { return },
            r = map_rx.changed() => if r.is_err() { return },
            // A lane that ended (its node failed over) is started again once its node is
            // a primary again; look now and then.
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if !lanes.is_empty() => {}
        }
    }
}

/// One node's connection, reconnected while the node is a primary.
async fn lane(ps: Arc<PubSub>, router: Arc<Router>, addr: Addr) {
    let mut attempt: u32 = 0;
    let display = format!("{}:{}", addr.0, addr.1);
    loop {
        if ps.closed.load(Ordering::Acquire) || !router.primaries().contains(&addr) {
            return;
        }
        let ep = Endpoint {
            addr: redis::ConnectionAddr::Tcp(addr.0.clone(), addr.1),
            tls: ps.settings.endpoint.tls.clone(),
            sentinel: None,
        };
        let mut state = State {
            addr: addr.clone(),
            ..State::default()
        };
        match connect_to(&ps.settings, ep, &display).await {
            Ok((io, reader, _)) => {
                attempt = 0;
                let err = session(&ps, &router, &addr, io, reader, &mut state).await;
                if ps.closed.load(Ordering::Acquire) {
                    return;
                }
                log::debug!(target: "redipc::pubsub", "pub/sub connection to node {display} ended: {}", err.text());
                lost(&ps, &state, &err);
                router.refresh_soon();
            }
            Err(e) => {
                log::debug!(target: "redipc::pubsub", "pub/sub connect to node {display}: {}", e.text());
                router.refresh_soon();
            }
        }
        let delay = ps.settings.reconnect.delay(attempt);
        attempt = attempt.saturating_add(1);
        let mut map_rx = router.map_changes();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = map_rx.changed() => {}
        }
    }
}

/// What a lane asked for and its node confirmed.
#[derive(Default)]
struct State {
    /// The lane's node.
    addr: Addr,
    /// Names sent (`false`) or confirmed (`true`).
    names: HashMap<(usize, Bytes), bool>,
    /// What the answers still to come are for, in order.
    inflight: VecDeque<Asked>,
    /// The node unsubscribed a shard channel on its own: compare again once the frames read
    /// are handled (the map may not know of the move yet; asking the node again gets a
    /// `MOVED` naming the new owner).
    recheck: bool,
    /// `MOVED` answers not applied to the map yet, and when this lane last applied one: two
    /// nodes that disagree about a slot (told of a move one after the other) would otherwise
    /// send the channel back and forth between their lanes as fast as they answer.
    moved: Vec<String>,
    moved_at: Option<Instant>,
}

/// The least time between two `MOVED` answers a lane applies to the map.
const MOVED_GAP: std::time::Duration = std::time::Duration::from_millis(100);

impl State {
    /// When the pending `MOVED` answers may be applied (`None`: there are none).
    fn moved_due(&self) -> Option<Instant> {
        if self.moved.is_empty() {
            return None;
        }
        Some(self.moved_at.map_or_else(Instant::now, |t| t + MOVED_GAP))
    }

    fn apply_moved(&mut self, router: &Arc<Router>) {
        for m in self.moved.drain(..) {
            router.moved(&m);
        }
        self.moved_at = Some(Instant::now());
    }
}

enum Asked {
    Sub(SubscriptionKind, Bytes),
    Unsub(SubscriptionKind, Bytes),
    Ping,
}

fn kind_of(i: usize) -> SubscriptionKind {
    SubscriptionKind::ALL[i]
}

async fn session(
    ps: &Arc<PubSub>,
    router: &Arc<Router>,
    addr: &Addr,
    io: Box<dyn crate::net::wire::Io>,
    mut reader: crate::net::resp::Reader,
    state: &mut State,
) -> Error {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut reg_rx = ps.lanes.subscribe();
    let mut map_rx = router.map_changes();
    let interval = ps
        .settings
        .health_check_interval
        .max(std::time::Duration::from_secs(1));
    let mut last_rx = Instant::now();
    let mut incoming: Vec<Incoming> = Vec::new();
    let mut pending = Pending::default();
    let mut out = Vec::new();
    if let Err(e) = reconcile(ps, router, addr, state, &mut out, &mut wr).await {
        return e;
    }
    loop {
        if ps.closed.load(Ordering::Acquire) {
            let _ = wr.shutdown().await;
            return Error::closed();
        }
        if !router.primaries().contains(addr) {
            let _ = wr.shutdown().await;
            return Error::new(ErrorKind::Connection, "the node is no longer a primary");
        }
        tokio::select! {
            biased;
            _ = reg_rx.changed() => {
                if let Err(e) = reconcile(ps, router, addr, state, &mut out, &mut wr).await {
                    return e;
                }
            }
            _ = map_rx.changed() => {
                if let Err(e) = reconcile(ps, router, addr, state, &mut out, &mut wr).await {
                    return e;
                }
            }
            _ = tokio::time::sleep_until(state.moved_due().unwrap_or(last_rx)), if !state.moved.is_empty() => {
                state.apply_moved(router);
            }
            _ = tokio::time::sleep_until(last_rx + interval) => {
                if state.inflight.iter().any(|a| matches!(a, Asked::Ping)) {
                    return Error::new(ErrorKind::Connection, format!("pub/sub health check: no answer to PING within {interval:?}"));
                }
                let ping = redis::cmd("PING").get_packed_command();
                if let Err(e) = write_flush(&mut wr, &ping).await {
                    return Error::new(ErrorKind::Connection, io_error(&e));
                }
                state.inflight.push_back(Asked::Ping);
                last_rx = Instant::now();
            }
            read = reader.fill(&mut rd) => {
                match read {
                    Ok(0) => return Error::new(ErrorKind::Connection, "the node closed the pub/sub connection"),
                    Ok(n) => {
                        ps.settings.counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) => return Error::new(ErrorKind::Connection, io_error(&e)),
                }
                let shared_len = match reader.decode(&mut incoming) {
                    Ok(n) => n,
                    Err(e) => return e.context("pub/sub connection"),
                };
                let mut items = incoming.drain(..);
                loop {
                    let stop = route_messages(ps, &mut items, &mut pending);
                    pending.flush(shared_len).await;
                    match stop {
                        Stop::Frame(frame) => frame_of(ps, router, state, frame),
                        Stop::Full => {}
                        Stop::End => break,
                    }
                }
                last_rx = Instant::now();
                if std::mem::take(&mut state.recheck)
                    && let Err(e) = reconcile(ps, router, addr, state, &mut out, &mut wr).await
                {
                    return e;
                }
                if state.moved_due().is_some_and(|t| t <= Instant::now()) {
                    state.apply_moved(router);
                }
            }
        }
    }
}

/// Send what the lane should carry and does not, and take back what it should not.
async fn reconcile<W: tokio::io::AsyncWrite + Unpin>(
    ps: &PubSub,
    router: &Router,
    addr: &Addr,
    state: &mut State,
    out: &mut Vec<u8>,
    wr: &mut W,
) -> Result<(), Error> {
    let primaries = router.primaries();
    let mut wanted: Vec<(usize, Bytes)> = Vec::new();
    {
        let reg = lock(&ps.reg);
        for kind in SubscriptionKind::ALL {
            for (name, e) in &reg.names[kind.index()] {
                if !e.subs.is_empty()
                    && node_routed(kind, name)
                    && wants(router, addr, &primaries, kind, name)
                {
                    wanted.push((kind.index(), name.clone()));
                }
            }
        }
    }
    out.clear();
    let mut count = 0u64;
    for key in &wanted {
        if state.names.contains_key(key) {
            continue;
        }
        let kind = kind_of(key.0);
        let mut cmd = redis::cmd(kind.commands().0);
        cmd.arg(&key.1[..]);
        cmd.write_packed_command(out);
        state.inflight.push_back(Asked::Sub(kind, key.1.clone()));
        state.names.insert(key.clone(), false);
        count += 1;
    }
    let gone: Vec<(usize, Bytes)> = state
        .names
        .keys()
        .filter(|k| !wanted.contains(k))
        .cloned()
        .collect();
    // A confirmed name taken back while it still has subscribers moved to another node (the
    // map changed before this node unsubscribed it, if it does): messages published on the
    // new owner before its lane subscribes are missed, so its subscriptions are told, and
    // the new owner's confirmation is a `Reactivated`.
    let moved: Vec<(usize, Bytes)> = {
        let reg = lock(&ps.reg);
        gone.iter()
            .filter(|k| {
                state.names.get(*k) == Some(&true)
                    && reg.names[k.0].get(&k.1).is_some_and(|e| !e.subs.is_empty())
            })
            .cloned()
            .collect()
    };
    for key in &moved {
        lost_names(ps, std::slice::from_ref(key), &moved_error(&key.1), addr);
    }
    for key in gone {
        state.names.remove(&key);
        let kind = kind_of(key.0);
        let mut cmd = redis::cmd(kind.commands().1);
        cmd.arg(&key.1[..]);
        cmd.write_packed_command(out);
        state.inflight.push_back(Asked::Unsub(kind, key.1.clone()));
        count += 1;
    }
    if out.is_empty() {
        return Ok(());
    }
    ps.settings
        .counters
        .commands
        .fetch_add(count, Ordering::Relaxed);
    ps.settings
        .counters
        .bytes_out
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    match tokio::time::timeout(ps.settings.response_timeout, write_flush(wr, out)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Connection, io_error(&e))),
        Err(_) => Err(Error::new(ErrorKind::Timeout, "pub/sub write stalled")),
    }
}

/// A frame other than a message: a confirmation (ours, or a `sunsubscribe` the server sent
/// on its own when the slot moved), a `PONG`, or an error.
fn frame_of(ps: &PubSub, router: &Arc<Router>, state: &mut State, frame: Reply) {
    let (kind, data) = match frame {
        Reply::Push { kind, data } => (kind, data),
        other => {
            if let Some(Asked::Sub(kind, name)) = state.inflight.pop_front() {
                state.names.remove(&(kind.index(), name.clone()));
                if let Reply::Error(e) = &other {
                    if e.code == "MOVED" {
                        // Our map was stale: the new owner's lane takes it once the map
                        // says so (`State::moved`).
                        state.moved.push(e.message.clone());
                    } else {
                        failed(ps, kind, &name, Error::from(e.clone()));
                    }
                }
            }
            return;
        }
    };
    let Some((sk, subscribed, name)) = confirmation(&kind, data) else {
        return;
    };
    let key = (sk.index(), name.clone());
    let ours = match state.inflight.front() {
        Some(Asked::Sub(k, n)) if subscribed && *k == sk && *n == name => true,
        Some(Asked::Unsub(k, n)) if !subscribed && *k == sk && *n == name => true,
        _ => false,
    };
    if ours {
        state.inflight.pop_front();
    }
    if subscribed {
        if let Some(active) = state.names.get_mut(&key) {
            *active = true;
            activated(ps, sk, &name, &state.addr);
        }
    } else if !ours && state.names.remove(&key).is_some() {
        // The server unsubscribed it: its slot moved. Messages may be missed until the new
        // owner's lane has it. A map refreshed now may come from a node not told of the move
        // yet, so the lane also asks this node again (`recheck`): its `MOVED` names the new
        // owner.
        lost_names(ps, &[key], &moved_error(&name), &state.addr);
        state.recheck = true;
        router.refresh_soon();
    }
}

fn moved_error(name: &[u8]) -> Error {
    Error::new(
        ErrorKind::Connection,
        format!(
            "the shard channel {} moved to another node (its slot moved)",
            String::from_utf8_lossy(name)
        ),
    )
}

/// A name confirmed by the lane of `lane`: `Activated` (or `Reactivated`) unless another
/// lane had it active already. A shard channel confirmed here while another node's lane
/// still had it active (that lane has not seen the move yet: its loss, told later, is
/// stale) may have missed messages published here before: `Disconnected`, `Reactivated`.
fn activated(ps: &PubSub, kind: SubscriptionKind, name: &Bytes, lane: &Addr) {
    let mut guard = lock(&ps.reg);
    let reg = &mut *guard;
    let Some(entry) = reg.names[kind.index()].get_mut(name) else {
        return;
    };
    let mut moved_here = false;
    if kind == SubscriptionKind::Shard {
        moved_here =
            entry.server == ServerState::Active && entry.lane.as_ref().is_some_and(|l| l != lane);
        entry.lane = Some(lane.clone());
    }
    if moved_here {
        tell_disconnected(entry, &moved_error(name), &mut Vec::new());
        reg.announce_active(kind, name);
    } else if entry.server != ServerState::Active {
        entry.server = ServerState::Active;
        entry.error = None;
        reg.announce_active(kind, name);
    }
    drop(guard);
    ps.changed.notify_waiters();
}

/// `Disconnected` to each subscription of `entry` not in `told` yet (then added to it).
fn tell_disconnected(entry: &super::registry::NameEntry, err: &Error, told: &mut Vec<u64>) {
    for (id, d) in &entry.subs {
        if !told.contains(id) {
            told.push(*id);
            d.push_control(Event::Disconnected { error: err.clone() });
        }
    }
}

fn failed(ps: &PubSub, kind: SubscriptionKind, name: &Bytes, err: Error) {
    if let Some(entry) = lock(&ps.reg).names[kind.index()].get_mut(name) {
        entry.server = ServerState::NotSent;
        entry.error = Some(err);
    }
    ps.changed.notify_waiters();
}

/// The lane's connection broke: every name it had confirmed may have missed messages.
fn lost(ps: &PubSub, state: &State, err: &Error) {
    let names: Vec<(usize, Bytes)> = state
        .names
        .iter()
        .filter(|(_, active)| **active)
        .map(|(k, _)| k.clone())
        .collect();
    lost_names(ps, &names, err, &state.addr);
}

/// Mark `names` not active and tell each of their subscriptions once (`Disconnected`): what
/// the lane of `lane` lost. A shard channel another node's lane has confirmed since is
/// left alone.
fn lost_names(ps: &PubSub, names: &[(usize, Bytes)], err: &Error, lane: &Addr) {
    let mut guard = lock(&ps.reg);
    let reg = &mut *guard;
    let mut told: Vec<u64> = Vec::new();
    for (i, name) in names {
        let Some(entry) = reg.names[*i].get_mut(name) else {
            continue;
        };
        if kind_of(*i) == SubscriptionKind::Shard {
            if entry.lane.as_ref().is_some_and(|l| l != lane) {
                continue;
            }
            entry.lane = None;
        }
        entry.server = ServerState::NotSent;
        tell_disconnected(entry, err, &mut told);
    }
    drop(guard);
    ps.changed.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use crate::delivery::Mode;
    use crate::pubsub::SubscribeOptions;

    /// A multiplexer without a connection, and a pull subscription to one shard channel.
    fn setup() -> (Arc<PubSub>, crate::pubsub::Subscription, Bytes) {
        let opts = Options::default();
        let target = crate::config::parse_url("redis://127.0.0.1:1", &opts).unwrap();
        let settings = super::super::Settings::new(&target, &opts, Arc::new(Default::default()));
        let ps = Arc::new(PubSub::new(settings, Mode::Inline));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let none: [&[u8]; 0] = [];
        let sub = rt
            .block_on(ps.subscribe(SubscriptionKind::Shard, &none, SubscribeOptions::default()))
            .unwrap();
        let name = Bytes::from_static(b"{t}:ch");
        sub.register(&[&name[..]]).unwrap();
        (ps, sub, name)
    }

    fn events(sub: &crate::pubsub::Subscription) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some(e) = sub.try_next().unwrap() {
            out.push(match e {
                Event::Activated { .. } => "activated",
                Event::Reactivated { .. } => "reactivated",
                Event::Disconnected { .. } => "disconnected",
                Event::Message(_) => "message",
            });
        }
        out
    }

    fn addr(port: u16) -> Addr {
        ("127.0.0.1".to_string(), port)
    }

    /// The usual order of a move: the old owner's lane loses the channel, then the new
    /// owner's confirms it.
    #[test]
    fn a_move_told_by_the_old_lane_first() {
        let (ps, sub, name) = setup();
        let key = [(SubscriptionKind::Shard.index(), name.clone())];
        activated(&ps, SubscriptionKind::Shard, &name, &addr(1));
        lost_names(&ps, &key, &moved_error(&name), &addr(1));
        activated(&ps, SubscriptionKind::Shard, &name, &addr(2));
        assert_eq!(events(&sub), ["activated", "disconnected", "reactivated"]);
    }

    /// The other order: the new owner's lane confirms the channel while the old owner's
    /// still has it active (its task had not seen the map change yet). The gap is told
    /// then, and the old lane's late loss is stale: the channel stays active.
    #[test]
    fn a_move_confirmed_by_the_new_lane_first() {
        let (ps, sub, name) = setup();
        let key = [(SubscriptionKind::Shard.index(), name.clone())];
        activated(&ps, SubscriptionKind::Shard, &name, &addr(1));
        activated(&ps, SubscriptionKind::Shard, &name, &addr(2));
        lost_names(&ps, &key, &moved_error(&name), &addr(1));
        assert_eq!(events(&sub), ["activated", "disconnected", "reactivated"]);
        let reg = lock(&ps.reg);
        let entry = &reg.names[SubscriptionKind::Shard.index()][&name];
        assert!(entry.server == ServerState::Active);
        assert_eq!(entry.lane, Some(addr(2)));
        drop(reg);
        // The new lane's own loss is told.
        lost_names(&ps, &key, &moved_error(&name), &addr(2));
        assert_eq!(events(&sub), ["disconnected"]);
    }
}

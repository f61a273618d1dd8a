//! The cluster router: a client's command connection to a Redis Cluster.
//!
//! The slot map comes from `CLUSTER SLOTS` (at connect, then again — coalesced, at most
//! every 100 ms, with jitter — after a `MOVED`, a node that cannot be reached, a
//! `CLUSTERDOWN`, and every 30 s; a new map replaces the old only when it differs). Each
//! primary gets one multiplexed connection of its own (a [`Node`]: the same reconnecting,
//! auto-pipelined connection a standalone client has), opened on first use.
//!
//! Every command is routed by its keys (`cluster::key_spec`, else what the server says of
//! an unknown command in `COMMAND INFO`, asked once per command name, or `COMMAND GETKEYS`
//! for commands whose keys move): one slot → its owner; no key → any primary, or every
//! primary for what concerns all of them (`FLUSHALL`, `FLUSHDB`, `SCRIPT LOAD|FLUSH`,
//! `CONFIG SET|RESETSTAT|REWRITE`,
//! `FUNCTION LOAD|DELETE|FLUSH|RESTORE`: the first reply; `KEYS`: every node's keys;
//! `DBSIZE`: the sum; `SCRIPT EXISTS`: 1 where every node has it); `PUBLISH` by its
//! channel's slot (one channel's messages then keep their order); keys of several slots → `MGET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`
//! are split per slot and merged, anything else is refused before it is sent (a cross-slot
//! error naming the keys). Pipelines are split per node and their replies put back in the
//! caller's order; a transaction must touch one slot.
//!
//! Redirects: `MOVED` re-routes the command and patches the map at once (a full refresh
//! follows in the background, which keeps the patch while the node it reads still gives
//! the slot to the node that disclaimed it: [`Moves`]); `ASK` sends `ASKING` and the command to the node named,
//! without touching the map; `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` are sent
//! again with backoff within the call's deadline (the server refused them: nothing ran).
//! More than 16 redirects of one call is an error (a redirect loop). A command the node
//! never received (its connection broke first) goes again, to whichever node owns the slot
//! then; one that was written fails with a connection error (at most once, as standalone).

use crate::net::spawn::Spawn;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OnceCell, watch};
use tokio::time::Instant;

use crate::cluster::{KeySpec, SLOTS, key_positions, key_spec, keyslot};
use crate::config::{Options, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::net::node::{LOG_TARGET, Node, Tried};
use crate::net::wire::Expect;
use crate::reply::Reply;

/// A node's address.
type Addr = (String, u16);

fn show(a: &Addr) -> String {
    if a.0.contains(':') {
        format!("[{}]:{}", a.0, a.1)
    } else {
        format!("{}:{}", a.0, a.1)
    }
}

/// Most redirects one call follows.
const MAX_REDIRECTS: usize = 16;
/// How long a call waits for a node that is down before it looks at the map again.
const PATIENCE: Duration = Duration::from_millis(100);
/// Fewest time between two refreshes of the map.
const REFRESH_GAP: Duration = Duration::from_millis(100);
/// How often the map is compared with the cluster's when nothing asked for it.
const REFRESH_PERIOD: Duration = Duration::from_secs(30);
/// No owner.
const NONE: u16 = u16::MAX;

/// Which primary owns each slot.
#[derive(PartialEq, Eq)]
struct SlotMap {
    /// Per slot, its primary's index in `primaries` (`NONE`: not covered).
    owner: Vec<u16>,
    primaries: Vec<Addr>,
    /// The replicas of each primary (same index).
    replicas: Vec<Vec<Addr>>,
}

impl SlotMap {
    /// The slot ranges of each primary (same index), inclusive, ascending.
    fn ranges(&self) -> Vec<Vec<(u16, u16)>> {
        let mut out = vec![Vec::new(); self.primaries.len()];
        let mut slot = 0usize;
        while slot < self.owner.len() {
            let owner = self.owner[slot];
            let start = slot;
            while slot < self.owner.len() && self.owner[slot] == owner {
                slot += 1;
            }
            if let Some(r) = out.get_mut(owner as usize) {
                r.push((start as u16, (slot - 1) as u16));
            }
        }
        out
    }

    /// Read a `CLUSTER SLOTS` reply; `asked` is the host of the node that gave it (a node
    /// that does not know its own address announces an empty host).
    fn parse(reply: &Reply, asked: &str) -> Result<SlotMap> {
        let bad = || {
            Error::new(
                ErrorKind::Protocol,
                format!("CLUSTER SLOTS: unexpected reply {reply:?}"),
            )
        };
        let ranges = reply.as_slice().ok_or_else(bad)?;
        let mut map = SlotMap {
            owner: vec![NONE; SLOTS as usize],
            primaries: Vec::new(),
            replicas: Vec::new(),
        };
        let node = |n: &Reply| -> Option<Addr> {
            let p = n.as_slice()?;
            let host = String::from_utf8_lossy(p.first()?.as_bytes()?).into_owned();
            let host = if host.is_empty() || host == "?" {
                asked.to_owned()
            } else {
                host
            };
            match p.get(1) {
                Some(Reply::Int(port)) => Some((host, u16::try_from(*port).ok()?)),
                _ => None,
            }
        };
        for range in ranges {
            let r = range.as_slice().ok_or_else(bad)?;
            let (Some(Reply::Int(start)), Some(Reply::Int(end)), Some(primary)) =
                (r.first(), r.get(1), r.get(2))
            else {
                return Err(bad());
            };
            let addr = node(primary).ok_or_else(bad)?;
            let index = match map.primaries.iter().position(|a| *a == addr) {
                Some(i) => i,
                None => {
                    map.primaries.push(addr);
                    map.replicas.push(r[3..].iter().filter_map(node).collect());
                    map.primaries.len() - 1
                }
            };
            let (start, end) = (*start, *end);
            if !(0..SLOTS as i64).contains(&start) || !(start..SLOTS as i64).contains(&end) {
                return Err(bad());
            }
            for s in start..=end {
                map.owner[s as usize] = index as u16;
            }
        }
        Ok(map)
    }

    fn owner(&self, slot: u16) -> Option<&Addr> {
        match self.owner.get(slot as usize) {
            Some(&i) if i != NONE => self.primaries.get(i as usize),
            _ => None,
        }
    }

    /// A replica of `slot`'s primary, chosen at random (`None`: it has none known).
    fn replica(&self, slot: u16) -> Option<&Addr> {
        let i = *self.owner.get(slot as usize)?;
        let replicas = self.replicas.get(i as usize)?;
        if replicas.is_empty() {
            return None;
        }
        replicas.get(rand::random_range(0..replicas.len()))
    }

    /// Point `slot` at `addr` (a `MOVED`).
    fn patched(&self, slot: u16, addr: Addr) -> SlotMap {
        let mut primaries = self.primaries.clone();
        let mut replicas = self.replicas.clone();
        let index = match primaries.iter().position(|a| *a == addr) {
            Some(i) => i,
            None => {
                primaries.push(addr);
                replicas.push(Vec::new());
                primaries.len() - 1
            }
        };
        let mut owner = self.owner.clone();
        if let Some(o) = owner.get_mut(slot as usize) {
            *o = index as u16;
        }
        SlotMap {
            owner,
            primaries,
            replicas,
        }
    }
}

/// What a command learned from the server says of its keys.
#[derive(Clone, Copy)]
enum Learned {
    Spec(KeySpec),
    /// Its keys move with its arguments: ask `COMMAND GETKEYS` each time.
    Movable,
}

/// Where a command goes.
enum Dest {
    Slot(u16),
    Any,
    /// Every primary, the replies merged.
    All(Merge),
    /// Split per slot (`MGET`, `DEL` ...), the replies merged.
    Split(Merge),
}

#[derive(Clone, Copy)]
enum Merge {
    /// The first reply (every node did the same).
    First,
    /// The sum of the integer replies.
    Sum,
    /// The arrays one after another.
    Concat,
    /// Element by element, the smallest integer (`SCRIPT EXISTS`: 1 only where every node
    /// has the script).
    AllOf,
}

/// Which node a send goes to.
#[derive(Clone)]
enum Sel {
    Slot(u16),
    /// A replica of the slot's primary (the primary when it has none).
    Replica(u16),
    Any,
    Addr(Addr),
}

pub(crate) struct Router {
    display: String,
    target: Target,
    opts: Options,
    handle: tokio::runtime::Handle,
    counters: Arc<crate::stats::Counters>,
    map: RwLock<Arc<SlotMap>>,
    nodes: Mutex<HashMap<Addr, Arc<OnceCell<Arc<Node>>>>>,
    refreshing: AtomicBool,
    last_refresh: Mutex<Instant>,
    shutdown: watch::Sender<bool>,
    max_value_size: AtomicUsize,
    learned: Mutex<HashMap<Vec<u8>, Learned>>,
    /// Bumped whenever the map changes (pub/sub's node connections follow it).
    map_gen: watch::Sender<u64>,
    /// When a read found no replica for its slot and asked for the map again.
    replicas_checked: Mutex<Option<Instant>>,
    /// What `MOVED` answers said and no map read since has confirmed (below: [`Moves`]).
    moves: Mutex<Moves>,
}

/// The slots that a `MOVED` answer re-pointed, each with the node that disclaimed it and the
/// node it named. A node's `CLUSTER SLOTS` may not know of a move yet (the cluster tells its
/// nodes one by one): a map read there still gives the slot to the node that disclaimed it,
/// and taking it as it is would send the slot's commands back there, to be redirected
/// again, until a refresh happens to read a node that knows. So a map read keeps the
/// `MOVED` owner of such a slot; a map that names the new owner, or a third node, settles
/// the slot (forgotten here), and a later `MOVED` of the slot replaces what is known of it.
#[derive(Default)]
struct Moves(HashMap<u16, (Addr, Addr)>);

impl Moves {
    /// `slot` moved from `from` to `to` (a `MOVED` answer of `from`).
    fn moved(&mut self, slot: u16, from: Addr, to: Addr) {
        self.0.insert(slot, (from, to));
    }

    /// `map` (just read from a node) with the slots it still gives to the node that
    /// disclaimed them given to the node that `MOVED` named; the other slots are settled.
    fn apply(&mut self, mut map: SlotMap) -> SlotMap {
        let mut kept = 0;
        self.0.retain(|&slot, (from, to)| {
            if map.owner(slot) != Some(from) {
                return false;
            }
            map = map.patched(slot, to.clone());
            kept += 1;
            true
        });
        if kept > 0 {
            log::debug!(
                target: LOG_TARGET,
                "the slot map read gives {kept} slot(s) to nodes that answered MOVED for them: kept where MOVED said"
            );
        }
        map
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One command's place in packed bytes: all of it, and each argument.
struct Packed {
    range: Range<usize>,
    args: Vec<Range<usize>>,
}

/// Read the commands of packed bytes (`*N\r\n$len\r\narg\r\n...`, as the client packs them).
fn unpack(b: &[u8]) -> Result<Vec<Packed>> {
    let bad = || {
        Error::new(
            ErrorKind::Protocol,
            "cluster routing: malformed packed command",
        )
    };
    let number = |at: &mut usize, lead: u8| -> Result<usize> {
        if b.get(*at) != Some(&lead) {
            return Err(bad());
        }
        let end = b[*at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(bad)?
            + *at;
        let n = std::str::from_utf8(&b[*at + 1..end])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        *at = end + 2;
        Ok(n)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let start = at;
        let n = number(&mut at, b'*')?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let len = number(&mut at, b'$')?;
            if at + len + 2 > b.len() {
                return Err(bad());
            }
            args.push(at..at + len);
            at += len + 2;
        }
        out.push(Packed {
            range: start..at,
            args,
        });
    }
    Ok(out)
}

/// A redirect or a refusal worth another try in a reply.
enum Redirect {
    Moved(u16, Addr),
    Ask(Addr),
    Retry,
}

/// The slot and node of a `MOVED`/`ASK` message (`3999 127.0.0.1:6381`); an empty host is
/// the host of `from`, the node that answered.
fn slot_and_node(message: &str, from: &Addr) -> Option<(u16, Addr)> {
    let (slot, at) = message.split_once(' ')?;
    let (host, port) = at.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() {
        from.0.clone()
    } else {
        host.to_owned()
    };
    Some((slot.parse().ok()?, (host, port.parse().ok()?)))
}

fn redirect(r: &Reply, from: &Addr) -> Option<Redirect> {
    let Reply::Error(e) = r else { return None };
    match e.code.as_str() {
        "MOVED" => {
            let (slot, to) = slot_and_node(&e.message, from)?;
            Some(Redirect::Moved(slot, to))
        }
        "ASK" => Some(Redirect::Ask(slot_and_node(&e.message, from)?.1)),
        // Refused, not run: again after a pause (READONLY: the node was demoted under us, so
        // the map is asked for again too).
        "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" | "READONLY" => Some(Redirect::Retry),
        _ => None,
    }
}

/// The delay before try `n` of a refused command.
fn backoff(n: u32) -> Duration {
    Duration::from_millis((10u64 << n.min(4)).min(200))
}

impl Router {
    /// A router over the cluster whose map `slots` (a `CLUSTER SLOTS` reply) came from
    /// `first`, which joins the router's nodes.
    pub(crate) fn new(
        first: Arc<Node>,
        slots: &Reply,
        target: Target,
        opts: &Options,
        handle: tokio::runtime::Handle,
        counters: Arc<crate::stats::Counters>,
    ) -> Result<Arc<Router>> {
        let asked: Addr = match &first.wire_settings().endpoint.addr {
            redis::ConnectionAddr::Tcp(h, p)
            | redis::ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => (h.clone(), *p),
            _ => (String::new(), 0),
        };
        let map = SlotMap::parse(slots, &asked.0).inspect_err(|_| {
            first.close();
        })?;
        let seeds: Vec<String> = target.seeds.iter().map(show).collect();
        let router = Arc::new(Router {
            display: format!("cluster (seeds {})", seeds.join(",")),
            max_value_size: AtomicUsize::new(first.max_value_size.load(Ordering::Relaxed)),
            target,
            opts: opts.clone(),
            handle: handle.clone(),
            counters,
            map: RwLock::new(Arc::new(map)),
            nodes: Mutex::new(HashMap::from([(
                asked,
                Arc::new(OnceCell::new_with(Some(first))),
            )])),
            refreshing: AtomicBool::new(false),
            last_refresh: Mutex::new(Instant::now()),
            shutdown: watch::Sender::new(false),
            learned: Mutex::new(HashMap::new()),
            map_gen: watch::Sender::new(0),
            replicas_checked: Mutex::new(None),
            moves: Mutex::new(Moves::default()),
        });
        handle.spawn_task(periodic(
            Arc::downgrade(&router),
            router.shutdown.subscribe(),
        ));
        Ok(router)
    }

    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    pub(crate) fn max_value_size(&self) -> usize {
        self.max_value_size.load(Ordering::Relaxed)
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        self.opts.response_timeout
    }

    /// Every node of the slot map (the primaries by their first slot, each followed by its
    /// replicas), then any other node the client still has a connection to, with its
    /// statistics.
    pub(crate) fn node_stats(&self) -> Vec<crate::NodeStats> {
        let map = self.map();
        let ranges = map.ranges();
        let nodes: HashMap<Addr, Arc<Node>> = lock(&self.nodes)
            .iter()
            .filter_map(|(a, c)| c.get().map(|n| (a.clone(), n.clone())))
            .collect();
        let mut order: Vec<usize> = (0..map.primaries.len()).collect();
        order.sort_by_key(|&i| ranges[i].first().map_or(NONE, |r| r.0));
        let mut out: Vec<crate::NodeStats> = Vec::new();
        let mut one = |addr: &Addr, primary: bool, slots: &[(u16, u16)]| {
            let mut s = match nodes.get(addr) {
                Some(n) => n.stats(primary),
                None => {
                    crate::stats::NodeCounters::default().snapshot(String::new(), primary, false)
                }
            };
            s.addr = show(addr);
            s.slots = slots.to_vec();
            out.push(s);
        };
        for &i in &order {
            one(&map.primaries[i], true, &ranges[i]);
            for r in &map.replicas[i] {
                one(r, false, &ranges[i]);
            }
        }
        for (a, _) in nodes.iter() {
            if !map.primaries.contains(a) && !map.replicas.iter().any(|r| r.contains(a)) {
                one(a, false, &[]);
            }
        }
        out
    }

    /// A hash tag whose keys land on the primary at `addr` (`host:port`) now: the tag of
    /// its first slot.
    pub(crate) fn hash_tag_for_node(&self, addr: &str) -> Result<String> {
        let map = self.map();
        let ranges = map.ranges();
        let Some(i) = map
            .primaries
            .iter()
            .position(|p| show(p) == addr || format!("{}:{}", p.0, p.1) == addr)
        else {
            let known: Vec<String> = map.primaries.iter().map(show).collect();
            return Err(Error::invalid(format!(
                "hash_tag_for_node: {addr} is not a primary of the cluster (its primaries: {})",
                known.join(", ")
            )));
        };
        let Some(&(slot, _)) = ranges[i].first() else {
            return Err(Error::invalid(format!(
                "hash_tag_for_node: the primary {addr} serves no slot now"
            )));
        };
        crate::cluster::hash_tag_for_slot(slot)
            .map(str::to_string)
            .ok_or_else(|| Error::invalid(format!("hash_tag_for_node: no tag for slot {slot}")))
    }

    /// Whether a blocking caller's single commands may take their node's direct connection
    /// (plain endpoints: each node opens its own when first useful).
    pub(crate) fn direct_ready(&self) -> bool {
        self.target.tls.is_none()
    }

    fn map(&self) -> Arc<SlotMap> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn made_nodes(&self) -> Vec<Arc<Node>> {
        lock(&self.nodes)
            .values()
            .filter_map(|c| c.get().cloned())
            .collect()
    }

    /// Whether at least one node's connection is up.
    pub(crate) fn is_connected(&self) -> bool {
        self.made_nodes().iter().any(|n| n.is_connected())
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The primaries in the map now.
    pub(crate) fn primaries(&self) -> Vec<(String, u16)> {
        self.map().primaries.clone()
    }

    /// The primary owning `slot` in the map now.
    pub(crate) fn owner_of(&self, slot: u16) -> Option<(String, u16)> {
        self.map().owner(slot).cloned()
    }

    /// `f` of the primary owning `slot` in the map now (no copy of its address).
    pub(crate) fn with_owner<R>(&self, slot: u16, f: impl FnOnce(&Addr) -> R) -> Option<R> {
        self.map().owner(slot).map(f)
    }

    /// Whether connections of the caller's own can reach the nodes (not over TLS: an event
    /// loop drives plain sockets only, [`crate::LocalWire`]).
    pub(crate) fn plain(&self) -> bool {
        self.target.tls.is_none()
    }

    /// The one slot of a single command's keys when the router can say it now, for a
    /// connection the caller drives itself ([`crate::LocalWire`]); `None` when only the
    /// router can send it: no key, keys of several slots, a command whose keys it has not
    /// learned yet or that move with its arguments, reads from replicas.
    pub(crate) fn slot_now<A: AsRef<[u8]>>(&self, args: &[A]) -> Option<u16> {
        if self.opts.read_from_replicas {
            return None;
        }
        let name = args.first()?.as_ref();
        let spec = match key_spec(name) {
            KeySpec::Unknown => match *lock(&self.learned).get(&name.to_ascii_lowercase())? {
                Learned::Spec(s) => s,
                Learned::Movable => return None,
            },
            s => s,
        };
        let keys = key_positions(spec, args)?;
        let mut slots = keys.iter().map(|&i| keyslot(args[i].as_ref()));
        let first = slots.next()?;
        slots.all(|s| s == first).then_some(first)
    }

    /// The connection settings of the node at `addr`, once the router is connected to it
    /// (a connection of the caller's own to it has what the router's has: credentials,
    /// database, limits, counters).
    pub(crate) fn node_settings(&self, addr: &Addr) -> Option<crate::net::wire::WireSettings> {
        let nodes = lock(&self.nodes);
        let node = nodes.get(addr)?.get()?;
        node.is_connected().then(|| node.wire_settings().clone())
    }

    /// The reply of the node at `from` to a command that a connection of the caller's own
    /// sent it ([`crate::LocalWire`]): `true` when the node refused it without running it
    /// (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`, `READONLY`), for
    /// the caller to hand the command to the router, which follows the redirect or tries
    /// again. A `MOVED` patches the map at once (the next command goes to the new owner) and
    /// is counted as the router counts its own (an `ASK` is counted when the router follows
    /// it).
    pub(crate) fn refused_at(
        self: &Arc<Self>,
        reply: &Reply,
        from: &Addr,
        node: &crate::stats::NodeCounters,
    ) -> bool {
        match redirect(reply, from) {
            None => false,
            Some(Redirect::Moved(slot, to)) => {
                self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                node.redirects.fetch_add(1, Ordering::Relaxed);
                log::debug!(target: LOG_TARGET, "slot {slot} moved to {}", show(&to));
                self.patch(slot, to);
                true
            }
            Some(Redirect::Ask(_) | Redirect::Retry) => true,
        }
    }

    /// Changes whenever the map does.
    pub(crate) fn map_changes(&self) -> watch::Receiver<u64> {
        self.map_gen.subscribe()
    }

    pub(crate) fn close(&self) {
        self.shutdown.send_replace(true);
        for n in self.made_nodes() {
            n.close();
        }
    }

    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The connection to `addr`, opened on first use (by `deadline`).
    async fn node(&self, addr: &Addr, deadline: Instant) -> Result<Arc<Node>> {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let cell = {
            let mut nodes = lock(&self.nodes);
            match nodes.get(addr) {
                // The usual case: connected already.
                Some(c) => match c.get() {
                    Some(n) => return Ok(n.clone()),
                    None => c.clone(),
                },
                None => nodes.entry(addr.clone()).or_default().clone(),
            }
        };
        let open = cell.get_or_try_init(|| {
            let mut target = self.target.at(&addr.0, addr.1);
            // Reading from replicas: every node connection says READONLY (harmless on a
            // primary, and a replica promoted later stays usable).
            target.readonly = self.opts.read_from_replicas;
            Node::connect(
                target,
                &self.opts,
                self.handle.clone(),
                self.counters.clone(),
            )
        });
        let node = match tokio::time::timeout_at(deadline, open).await {
            Ok(Ok(n)) => n.clone(),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!(
                        "connect to {}: still connecting at the call's deadline",
                        show(addr)
                    ),
                ));
            }
        };
        if self.is_closed() {
            node.close();
            return Err(Error::closed());
        }
        Ok(node)
    }

    /// The node for `sel` now, and its address.
    fn pick(&self, sel: &Sel) -> Result<Addr> {
        let map = self.map();
        match sel {
            Sel::Addr(a) => Ok(a.clone()),
            Sel::Replica(s) if map.replica(*s).is_some() => {
                Ok(map.replica(*s).cloned().unwrap_or_default())
            }
            Sel::Slot(s) | Sel::Replica(s) => map.owner(*s).cloned().ok_or_else(|| {
                Error::new(
                    ErrorKind::Connection,
                    format!("slot {s} has no owner in the cluster's map"),
                )
            }),
            Sel::Any => {
                if map.primaries.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        "the cluster's map has no primary",
                    ));
                }
                let i = rand::random_range(0..map.primaries.len());
                Ok(map.primaries[i].clone())
            }
        }
    }

    /// A `MOVED` seen elsewhere (a blocking loop's dedicated connection): `slot host:port`.
    pub(crate) fn moved(self: &Arc<Self>, message: &str) {
        if let Some((slot, to)) = slot_and_node(message, &(String::new(), 0)) {
            self.patch(slot, to);
        }
    }

    fn patch(self: &Arc<Self>, slot: u16, addr: Addr) {
        {
            let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
            if map.owner(slot) != Some(&addr) {
                // The node the map named answered (or the one a blocking loop's connection
                // was routed to by it).
                if let Some(from) = map.owner(slot) {
                    lock(&self.moves).moved(slot, from.clone(), addr.clone());
                }
                *map = Arc::new(map.patched(slot, addr));
                self.map_gen.send_modify(|g| *g += 1);
            }
        }
        self.refresh_soon();
    }

    /// Refresh the map in the background (coalesced, at most every `REFRESH_GAP`).
    pub(crate) fn refresh_soon(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        self.handle.spawn_task(async move {
            let wait = {
                let Some(this) = weak.upgrade() else { return };
                let last = *lock(&this.last_refresh);
                let jitter = Duration::from_millis(rand::random_range(0..20));
                (last + REFRESH_GAP + jitter).saturating_duration_since(Instant::now())
            };
            tokio::time::sleep(wait).await;
            let Some(this) = weak.upgrade() else { return };
            this.refresh().await;
            *lock(&this.last_refresh) = Instant::now();
            this.refreshing.store(false, Ordering::Release);
        });
    }

    /// Ask the nodes (those up first, then the other known ones and the seeds) for the map
    /// until one answers; replace ours when it differs.
    async fn refresh(self: &Arc<Self>) {
        let deadline = Instant::now() + self.opts.response_timeout;
        let mut up = Vec::new();
        let mut others: Vec<Addr> = Vec::new();
        for (addr, cell) in lock(&self.nodes).iter() {
            match cell.get() {
                Some(n) if n.is_connected() => up.push((addr.clone(), n.clone())),
                _ => others.push(addr.clone()),
            }
        }
        for a in self.map().primaries.iter().chain(self.target.seeds.iter()) {
            if !others.contains(a) && !up.iter().any(|(u, _)| u == a) {
                others.push(a.clone());
            }
        }
        let mut slots = redis::cmd("CLUSTER");
        slots.arg("SLOTS");
        let bytes: Bytes = slots.get_packed_command().into();
        for (addr, node) in up {
            if self
                .refresh_from(&addr, &node, bytes.clone(), deadline)
                .await
            {
                return;
            }
        }
        for addr in others {
            if Instant::now() >= deadline || self.is_closed() {
                return;
            }
            let Ok(node) = self.node(&addr, deadline).await else {
                continue;
            };
            if self
                .refresh_from(&addr, &node, bytes.clone(), deadline)
                .await
            {
                return;
            }
        }
        log::debug!(target: LOG_TARGET, "{}: no node gave the slot map", self.display);
    }

    async fn refresh_from(
        &self,
        addr: &Addr,
        node: &Arc<Node>,
        bytes: Bytes,
        deadline: Instant,
    ) -> bool {
        let reply = match node
            .try_request(bytes, Expect::One, deadline, PATIENCE)
            .await
        {
            Ok(r) => r,
            Err(_) => return false,
        };
        let Ok(map) = SlotMap::parse(&reply, &addr.0) else {
            return false;
        };
        if map.owner.contains(&NONE) && map.primaries.is_empty() {
            return false;
        }
        let mut current = self.map.write().unwrap_or_else(|p| p.into_inner());
        let map = lock(&self.moves).apply(map);
        if **current != map {
            log::info!(
                target: LOG_TARGET,
                "{}: slot map changed ({} primaries: {})",
                self.display,
                map.primaries.len(),
                map.primaries.iter().map(show).collect::<Vec<_>>().join(", ")
            );
            let keep: Vec<Addr> = map.primaries.clone();
            *current = Arc::new(map);
            drop(current);
            self.map_gen.send_modify(|g| *g += 1);
            // Nodes no longer primaries are forgotten (their connections end when the
            // last user lets go of them).
            lock(&self.nodes).retain(|a, _| keep.contains(a));
        }
        true
    }

    /// The keys of a command, as positions among `args`.
    async fn keys_of(self: &Arc<Self>, args: &[&[u8]], deadline: Instant) -> Result<Vec<usize>> {
        let spec = match key_spec(args[0]) {
            KeySpec::Unknown => self.learn(args, deadline).await?,
            s => Learned::Spec(s),
        };
        match spec {
            Learned::Spec(s) => Ok(key_positions(s, args).unwrap_or_default()),
            Learned::Movable => self.getkeys(args, deadline).await,
        }
    }

    /// Ask any primary (`COMMAND INFO`, `COMMAND GETKEYS`).
    async fn ask_any(self: &Arc<Self>, cmd: &redis::Cmd, deadline: Instant) -> Result<Reply> {
        let bytes = cmd.get_packed_command().into();
        self.send_at(Sel::Any, bytes, Expect::One, deadline).await
    }

    /// What `COMMAND INFO` says of an unknown command's keys (asked once per name).
    async fn learn(self: &Arc<Self>, args: &[&[u8]], deadline: Instant) -> Result<Learned> {
        let name = args[0].to_ascii_lowercase();
        if let Some(l) = lock(&self.learned).get(&name) {
            return Ok(*l);
        }
        let mut cmd = redis::cmd("COMMAND");
        cmd.arg("INFO").arg(&name);
        let reply = self.ask_any(&cmd, deadline).await?;
        let info = reply
            .as_slice()
            .and_then(|v| v.first())
            .and_then(Reply::as_slice);
        let learned = match info {
            // Not a command the server knows: it will say so; no key to route by.
            None => Learned::Spec(KeySpec::None),
            Some(info) => {
                let int = |i: usize| match info.get(i) {
                    Some(Reply::Int(n)) => *n,
                    _ => 0i64,
                };
                let movable = info.get(2).and_then(Reply::as_slice).is_some_and(|flags| {
                    flags.iter().any(|f| f.as_bytes() == Some(b"movablekeys"))
                });
                let (first, last, step) = (int(3), int(4), int(5));
                if movable {
                    Learned::Movable
                } else if first <= 0 {
                    Learned::Spec(KeySpec::None)
                } else {
                    Learned::Spec(KeySpec::Range {
                        first: first as usize,
                        last: last as isize,
                        step: step.max(1) as usize,
                    })
                }
            }
        };
        lock(&self.learned).insert(name, learned);
        Ok(learned)
    }

    /// `COMMAND GETKEYS`: the keys the server finds in `args`.
    async fn getkeys(self: &Arc<Self>, args: &[&[u8]], deadline: Instant) -> Result<Vec<usize>> {
        let mut cmd = redis::cmd("COMMAND");
        cmd.arg("GETKEYS");
        for a in args {
            cmd.arg(*a);
        }
        let reply = self.ask_any(&cmd, deadline).await?;
        let keys: Vec<Vec<u8>> = match reply {
            Reply::Array(v) => v
                .into_iter()
                .filter_map(|k| k.as_bytes().map(<[u8]>::to_vec))
                .collect(),
            // "The command has no key arguments", or bad arguments the command itself
            // will report.
            _ => Vec::new(),
        };
        let mut used = vec![false; args.len()];
        let mut out = Vec::new();
        for k in keys {
            if let Some(i) = (1..args.len()).find(|&i| !used[i] && args[i] == k.as_slice()) {
                used[i] = true;
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Where a command goes.
    async fn dest(self: &Arc<Self>, args: &[&[u8]], deadline: Instant) -> Result<Dest> {
        let keys = self.keys_of(args, deadline).await?;
        if let Some(&k) = keys.first() {
            let first = keyslot(args[k]);
            if keys[1..].iter().all(|&k| keyslot(args[k]) == first) {
                return Ok(Dest::Slot(first));
            }
        }
        let upper = args[0].to_ascii_uppercase();
        if keys.is_empty() {
            let sub = args
                .get(1)
                .map(|a| a.to_ascii_uppercase())
                .unwrap_or_default();
            return Ok(match (upper.as_slice(), sub.as_slice()) {
                (b"FLUSHALL" | b"FLUSHDB", _)
                | (b"SCRIPT", b"LOAD" | b"FLUSH")
                | (b"CONFIG", b"SET" | b"RESETSTAT" | b"REWRITE")
                | (b"FUNCTION", b"LOAD" | b"DELETE" | b"FLUSH" | b"RESTORE") => {
                    Dest::All(Merge::First)
                }
                (b"KEYS", _) => Dest::All(Merge::Concat),
                (b"SCRIPT", b"EXISTS") => Dest::All(Merge::AllOf),
                (b"DBSIZE", _) => Dest::All(Merge::Sum),
                _ => Dest::Any,
            });
        }
        match upper.as_slice() {
            b"MGET" => Ok(Dest::Split(Merge::Concat)),
            b"DEL" | b"UNLINK" | b"EXISTS" | b"TOUCH" => Ok(Dest::Split(Merge::Sum)),
            _ => Err(cross_slot(args, &keys)),
        }
    }

    /// The node a dedicated connection for `cmd` goes to.
    pub(crate) async fn node_for_cmd(
        self: &Arc<Self>,
        cmd: Option<&redis::Cmd>,
    ) -> Result<Arc<Node>> {
        let deadline = Instant::now() + self.opts.connect_timeout.max(self.opts.response_timeout);
        let sel = match cmd {
            None => Sel::Any,
            Some(cmd) => {
                let args: Vec<&[u8]> = cmd
                    .args_iter()
                    .filter_map(|a| match a {
                        redis::Arg::Simple(a) => Some(a),
                        _ => None,
                    })
                    .collect();
                if args.is_empty() {
                    Sel::Any
                } else {
                    match self.dest(&args, deadline).await? {
                        Dest::Slot(s) => Sel::Slot(s),
                        _ => Sel::Any,
                    }
                }
            }
        };
        let addr = self.pick(&sel)?;
        self.node(&addr, deadline).await
    }

    /// Send packed commands, routed by their keys.
    pub(crate) async fn request(self: &Arc<Self>, bytes: Bytes, expect: Expect) -> Result<Reply> {
        let deadline = Instant::now() + self.opts.response_timeout;
        let cmds = unpack(&bytes)?;
        match expect {
            Expect::One if cmds.len() == 1 => {
                let args: Vec<&[u8]> = cmds[0].args.iter().map(|r| &bytes[r.clone()]).collect();
                if args.is_empty() {
                    return Err(Error::invalid("empty command"));
                }
                match self.dest(&args, deadline).await? {
                    Dest::Slot(s)
                        if self.opts.read_from_replicas && crate::cluster::is_readonly(args[0]) =>
                    {
                        self.send_at(Sel::Replica(s), bytes, expect, deadline).await
                    }
                    Dest::Slot(s) => self.send_at(Sel::Slot(s), bytes, expect, deadline).await,
                    Dest::Any => self.send_at(Sel::Any, bytes, expect, deadline).await,
                    Dest::All(merge) => self.send_all(bytes, merge, deadline).await,
                    Dest::Split(merge) => self.split(&args, merge, deadline).await,
                }
            }
            _ => self.pipeline(bytes, &cmds, deadline).await,
        }
    }

    /// Send one packed keyless command to the node at `addr` (not routed: a node's own
    /// settings, e.g. `CONFIG GET` on each primary), within the response timeout.
    pub(crate) async fn request_at(self: &Arc<Self>, addr: &Addr, bytes: Bytes) -> Result<Reply> {
        let deadline = Instant::now() + self.opts.response_timeout;
        self.send_at(Sel::Addr(addr.clone()), bytes, Expect::One, deadline)
            .await
    }

    /// Send `bytes` to the node `sel` names, following redirects, until `deadline`. `Many`
    /// is for a transaction sent whole: a redirect in any of its replies means `EXEC` was
    /// refused and nothing ran, so the whole goes again.
    async fn send_at(
        self: &Arc<Self>,
        sel: Sel,
        bytes: Bytes,
        expect: Expect,
        deadline: Instant,
    ) -> Result<Reply> {
        let mut redirects = 0;
        let mut tries = 0u32;
        let mut ask: Option<Addr> = None;
        let mut sel = sel;
        loop {
            let asking = ask.is_some();
            // Reading from replicas and none known for the slot (a node leaves replicas that
            // have no data yet out of CLUSTER SLOTS): look again, at most every 5 s.
            if let Sel::Replica(s) = sel
                && self.map().replica(s).is_none()
            {
                let mut checked = lock(&self.replicas_checked);
                if checked.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    *checked = Some(Instant::now());
                    drop(checked);
                    self.refresh_soon();
                }
            }
            let at = match ask.take() {
                Some(a) => Sel::Addr(a),
                None => sel.clone(),
            };
            let addr = match self.pick(&at) {
                Ok(a) => a,
                Err(e) => {
                    // No owner (the map is being rebuilt): look again shortly.
                    self.refresh_soon();
                    if !self.pause(&mut tries, deadline).await {
                        return Err(e);
                    }
                    continue;
                }
            };
            let node = match self.node(&addr, deadline).await {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Closed => return Err(e),
                Err(e) => {
                    self.refresh_soon();
                    if !self.pause(&mut tries, deadline).await {
                        return Err(e.context(where_(&sel, &addr)));
                    }
                    continue;
                }
            };
            let send = if asking {
                let mut b = bytes::BytesMut::with_capacity(bytes.len() + 20);
                b.extend_from_slice(b"*1\r\n$6\r\nASKING\r\n");
                b.extend_from_slice(&bytes);
                b.freeze()
            } else {
                bytes.clone()
            };
            let want = if asking { Expect::Many(2) } else { expect };
            let reply = match node.try_request(send, want, deadline, PATIENCE).await {
                Ok(Reply::Array(mut v)) if asking && v.len() == 2 => v.pop().unwrap_or(Reply::Nil),
                Ok(r) => r,
                Err(Tried::Down(e)) => {
                    self.refresh_soon();
                    if Instant::now() >= deadline {
                        return Err(e.context(where_(&sel, &addr)));
                    }
                    continue;
                }
                Err(Tried::Failed(e)) => {
                    if e.kind() == ErrorKind::Connection {
                        self.refresh_soon();
                    }
                    return Err(e.context(where_(&sel, &addr)));
                }
            };
            let found = match (&reply, expect) {
                (Reply::Array(v), Expect::Many(_)) => v.iter().find_map(|r| redirect(r, &addr)),
                (r, _) => redirect(r, &addr),
            };
            match found {
                None => return Ok(reply),
                Some(_) if redirects >= MAX_REDIRECTS => {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        format!(
                            "{}: more than {MAX_REDIRECTS} redirects (the cluster's slots keep moving)",
                            where_(&sel, &addr)
                        ),
                    ));
                }
                Some(Redirect::Moved(slot, to)) => {
                    redirects += 1;
                    self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                    node.counters().redirects.fetch_add(1, Ordering::Relaxed);
                    log::debug!(target: LOG_TARGET, "slot {slot} moved to {}", show(&to));
                    self.patch(slot, to.clone());
                    if !matches!(sel, Sel::Slot(_) | Sel::Replica(_)) {
                        sel = Sel::Addr(to);
                    }
                    if redirects > 4 && !self.pause(&mut tries, deadline).await {
                        return Ok(reply);
                    }
                }
                // One command: to the node importing the slot, this once.
                Some(Redirect::Ask(to)) if matches!(expect, Expect::One) => {
                    redirects += 1;
                    self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                    node.counters().redirects.fetch_add(1, Ordering::Relaxed);
                    ask = Some(to);
                }
                // A transaction whose keys are being migrated (ASKING would cover only
                // MULTI), or a refusal: again after a pause, until the deadline.
                Some(Redirect::Ask(_)) | Some(Redirect::Retry) => {
                    if matches!(&reply, Reply::Error(e) if e.code == "CLUSTERDOWN" || e.code == "READONLY")
                    {
                        self.refresh_soon();
                    }
                    if !self.pause(&mut tries, deadline).await {
                        return Ok(reply);
                    }
                }
            }
        }
    }

    /// Sleep before another try, unless that would pass `deadline`.
    async fn pause(&self, tries: &mut u32, deadline: Instant) -> bool {
        let d = backoff(*tries);
        *tries += 1;
        if Instant::now() + d >= deadline {
            return false;
        }
        tokio::time::sleep(d).await;
        true
    }

    /// Send to every primary; merge the replies.
    async fn send_all(
        self: &Arc<Self>,
        bytes: Bytes,
        merge: Merge,
        deadline: Instant,
    ) -> Result<Reply> {
        let primaries = self.map().primaries.clone();
        let sends = primaries
            .into_iter()
            .map(|a| (Sel::Addr(a), bytes.clone()))
            .collect();
        merged(self.send_each(sends, deadline).await?, merge)
    }

    /// Send each command to its node concurrently; the replies in the same order.
    async fn send_each(
        self: &Arc<Self>,
        sends: Vec<(Sel, Bytes)>,
        deadline: Instant,
    ) -> Result<Vec<Reply>> {
        let tasks: Vec<_> = sends
            .into_iter()
            .map(|(sel, b)| {
                let this = self.clone();
                crate::net::spawn::spawn_task(async move {
                    this.send_at(sel, b, Expect::One, deadline).await
                })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for t in tasks {
            replies.push(t.await.map_err(|e| {
                Error::new(ErrorKind::Connection, format!("a node's call failed: {e}"))
            })??);
        }
        Ok(replies)
    }

    /// A multi-key command over several slots, as one command per slot.
    async fn split(
        self: &Arc<Self>,
        args: &[&[u8]],
        merge: Merge,
        deadline: Instant,
    ) -> Result<Reply> {
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, key) in args.iter().enumerate().skip(1) {
            let s = keyslot(key);
            match groups.iter_mut().find(|(g, _)| *g == s) {
                Some((_, v)) => v.push(i),
                None => groups.push((s, vec![i])),
            }
        }
        let sends = groups
            .iter()
            .map(|(slot, idx)| {
                let mut cmd = redis::Cmd::new();
                cmd.arg(args[0]);
                for &i in idx {
                    cmd.arg(args[i]);
                }
                (Sel::Slot(*slot), Bytes::from(cmd.get_packed_command()))
            })
            .collect();
        let replies = self.send_each(sends, deadline).await?;
        if let Some(e) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
            return Ok(e.clone());
        }
        match merge {
            Merge::Concat => {
                // Values back in the keys' order.
                let mut out = vec![Reply::Nil; args.len() - 1];
                for ((_, idx), r) in groups.iter().zip(replies) {
                    let Reply::Array(v) = r else {
                        return Err(Error::new(ErrorKind::Protocol, "MGET: not an array"));
                    };
                    for (&i, value) in idx.iter().zip(v) {
                        out[i - 1] = value;
                    }
                }
                Ok(Reply::Array(out))
            }
            m => merged(replies, m),
        }
    }

    /// A pipeline (a transaction when it starts with `MULTI`): whole to one node when its
    /// commands share one, else split per node and the replies put back in order.
    async fn pipeline(
        self: &Arc<Self>,
        bytes: Bytes,
        cmds: &[Packed],
        deadline: Instant,
    ) -> Result<Reply> {
        let name = |p: &Packed| {
            p.args
                .first()
                .map(|r| bytes[r.clone()].to_ascii_uppercase())
                .unwrap_or_default()
        };
        let atomic = cmds.first().is_some_and(|c| name(c) == b"MULTI");
        let mut slots: Vec<Option<u16>> = Vec::with_capacity(cmds.len());
        for c in cmds {
            let args: Vec<&[u8]> = c.args.iter().map(|r| &bytes[r.clone()]).collect();
            if args.is_empty() {
                return Err(Error::invalid("empty command in a pipeline"));
            }
            slots.push(match self.dest(&args, deadline).await? {
                Dest::Slot(s) => Some(s),
                Dest::Any => None,
                Dest::All(_) | Dest::Split(_) => {
                    return Err(Error::invalid(format!(
                        "{}: in a batch on a cluster, a command must touch one slot (send it alone to have it split per slot or sent to every node)",
                        String::from_utf8_lossy(args[0]).to_uppercase()
                    )));
                }
            });
        }
        let mut distinct: Vec<u16> = slots.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if atomic {
            if distinct.len() > 1 {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "a transaction on a cluster must touch one slot; this one touches slots {} (give its keys one {{hash tag}}); nothing was sent",
                        distinct
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let sel = distinct.first().map_or(Sel::Any, |&s| Sel::Slot(s));
            return self
                .send_at(sel, bytes, Expect::Many(cmds.len()), deadline)
                .await;
        }
        // Which node each command goes to now.
        let map = self.map();
        let mut any: Option<Addr> = None;
        let mut to: Vec<Addr> = Vec::with_capacity(cmds.len());
        for s in &slots {
            let a = match s {
                Some(s) => map.owner(*s).cloned(),
                None => None,
            };
            let a = match a {
                Some(a) => a,
                None => match &any {
                    Some(a) => a.clone(),
                    None => {
                        let a = self.pick(&Sel::Any)?;
                        any = Some(a.clone());
                        a
                    }
                },
            };
            to.push(a);
        }
        // Per node, its commands in order, sent concurrently.
        let mut groups: Vec<(Addr, Vec<usize>)> = Vec::new();
        for (i, a) in to.iter().enumerate() {
            match groups.iter_mut().find(|(g, _)| g == a) {
                Some((_, v)) => v.push(i),
                None => groups.push((a.clone(), vec![i])),
            }
        }
        let mut tasks = Vec::new();
        for (addr, idx) in &groups {
            let mut b = bytes::BytesMut::new();
            for &i in idx {
                b.extend_from_slice(&bytes[cmds[i].range.clone()]);
            }
            let (this, b, addr, n) = (self.clone(), b.freeze(), addr.clone(), idx.len());
            tasks.push(crate::net::spawn::spawn_task(async move {
                let node = this.node(&addr, deadline).await?;
                match node
                    .try_request(b, Expect::Many(n), deadline, PATIENCE)
                    .await
                {
                    Ok(Reply::Array(v)) if v.len() == n => Ok(Some(v)),
                    Ok(_) => Err(Error::new(ErrorKind::Protocol, "pipeline replies lost")),
                    // Never written: each command goes again on its own below.
                    Err(Tried::Down(_)) => Ok(None),
                    Err(Tried::Failed(e)) => Err(e.context(show(&addr))),
                }
            }));
        }
        let mut out: Vec<Option<Reply>> = vec![None; cmds.len()];
        for ((_, idx), t) in groups.iter().zip(tasks) {
            let got = t.await.map_err(|e| {
                Error::new(ErrorKind::Connection, format!("a node's call failed: {e}"))
            })??;
            if let Some(v) = got {
                for (&i, r) in idx.iter().zip(v) {
                    out[i] = Some(r);
                }
            }
        }
        // Redirected, refused or unsent commands go again one by one, in order.
        let mut replies = Vec::with_capacity(cmds.len());
        for (i, r) in out.into_iter().enumerate() {
            let again = match &r {
                None => true,
                Some(r) => redirect(r, &to[i]).is_some(),
            };
            let r = match (again, r) {
                (false, Some(r)) => r,
                _ => {
                    let sel = slots[i].map_or(Sel::Any, Sel::Slot);
                    self.send_at(
                        sel,
                        bytes.slice(cmds[i].range.clone()),
                        Expect::One,
                        deadline,
                    )
                    .await?
                }
            };
            replies.push(r);
        }
        Ok(Reply::Array(replies))
    }
}

fn where_(sel: &Sel, addr: &Addr) -> String {
    match sel {
        Sel::Slot(s) | Sel::Replica(s) => format!("slot {s} at {}", show(addr)),
        _ => show(addr),
    }
}

/// The error for keys of several slots, naming them (the first few).
fn cross_slot(args: &[&[u8]], keys: &[usize]) -> Error {
    let shown: Vec<String> = keys
        .iter()
        .take(6)
        .map(|&k| {
            format!(
                "{} (slot {})",
                String::from_utf8_lossy(args[k]),
                keyslot(args[k])
            )
        })
        .collect();
    let more = if keys.len() > 6 { ", ..." } else { "" };
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{}: CROSSSLOT keys of different slots in one command on a cluster: {}{more}; give them one {{hash tag}}; nothing was sent",
            String::from_utf8_lossy(args[0]).to_uppercase(),
            shown.join(", ")
        ),
    )
}

fn merged(replies: Vec<Reply>, merge: Merge) -> Result<Reply> {
    if let Some(e) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
        return Ok(e.clone());
    }
    match merge {
        Merge::First => Ok(replies.into_iter().next().unwrap_or(Reply::Nil)),
        Merge::Sum => Ok(Reply::Int(
            replies
                .iter()
                .map(|r| match r {
                    Reply::Int(n) => *n,
                    _ => 0,
                })
                .sum(),
        )),
        Merge::Concat => Ok(Reply::Array(
            replies
                .into_iter()
                .flat_map(|r| match r {
                    Reply::Array(v) | Reply::Set(v) => v,
                    _ => Vec::new(),
                })
                .collect(),
        )),
        Merge::AllOf => {
            let mut out: Option<Vec<Reply>> = None;
            for r in replies {
                let Reply::Array(v) = r else { continue };
                out = Some(match out {
                    None => v,
                    Some(o) => o
                        .into_iter()
                        .zip(v)
                        .map(|(a, b)| match (a, b) {
                            (Reply::Int(a), Reply::Int(b)) => Reply::Int(a.min(b)),
                            (Reply::Bool(a), Reply::Bool(b)) => Reply::Bool(a && b),
                            (a, _) => a,
                        })
                        .collect(),
                });
            }
            Ok(Reply::Array(out.unwrap_or_default()))
        }
    }
}

/// Compare the map with the cluster's every `REFRESH_PERIOD` for as long as the router lives.
async fn periodic(weak: Weak<Router>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_PERIOD) => {}
            _ = shutdown.wait_for(|c| *c) => return,
        }
        let Some(this) = weak.upgrade() else { return };
        this.refresh_soon();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Addr {
        ("127.0.0.1".to_owned(), port)
    }

    /// Every slot on the node at `port`.
    fn all_at(port: u16) -> SlotMap {
        SlotMap {
            owner: vec![0; SLOTS as usize],
            primaries: vec![addr(port)],
            replicas: vec![Vec::new()],
        }
    }

    #[test]
    fn a_map_read_from_a_node_not_told_of_a_move_keeps_what_moved_said() {
        let mut moves = Moves::default();
        moves.moved(5, addr(1), addr(2));
        // The node read still gives slot 5 to the node that disclaimed it: kept at 2, and
        // remembered for the next read.
        let map = moves.apply(all_at(1));
        assert_eq!(map.owner(5), Some(&addr(2)));
        assert_eq!(map.owner(6), Some(&addr(1)));
        assert_eq!(moves.0.len(), 1);
        // A map that knows of the move settles it.
        let map = moves.apply(all_at(1).patched(5, addr(2)));
        assert_eq!(map.owner(5), Some(&addr(2)));
        assert!(moves.0.is_empty());
        // Once settled, a map giving the slot back to 1 is taken as it is (it moved back).
        assert_eq!(moves.apply(all_at(1)).owner(5), Some(&addr(1)));
    }

    #[test]
    fn a_map_naming_a_third_node_settles_the_slot_and_a_later_moved_replaces_the_first() {
        let mut moves = Moves::default();
        moves.moved(5, addr(1), addr(2));
        assert_eq!(moves.apply(all_at(3)).owner(5), Some(&addr(3)));
        assert!(moves.0.is_empty());
        moves.moved(7, addr(1), addr(2));
        moves.moved(7, addr(2), addr(1));
        assert_eq!(moves.apply(all_at(2)).owner(7), Some(&addr(1)));
        assert_eq!(moves.0.get(&7), Some(&(addr(2), addr(1))));
    }
}

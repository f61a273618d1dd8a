//! The pub/sub connection task: connect (RESP3), reconcile the registry with the server,
//! read and route messages to their subscriptions' queues, health-check with `PING`, and
//! reconnect with backoff, replaying the registry.

use crate::net::spawn::Spawn;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::registry::{ConnState, PubSub, ServerState, lock};
use super::{Event, Message, Settings, SubscriptionKind};
use crate::delivery::Delivery;
use crate::error::{Error, ErrorKind};
use crate::net::resp::{Incoming, MessageKind, PushMessage, Reader};
use crate::net::timer::WakeTimer;
use crate::net::wire::{Io, Moved, hello, io_error, master_moved, moved_watch, open_socket};
use crate::reply::Reply;

/// Create the multiplexer of a client and start its connection task on `handle`.
pub(crate) fn start(
    settings: Settings,
    mode: crate::delivery::Mode,
    handle: &tokio::runtime::Handle,
) -> Arc<PubSub> {
    let ps = Arc::new(PubSub::new(settings, mode));
    handle.spawn_task(run(ps.clone()));
    ps
}

// ---------------------------------------------------------------------------------------
// The connection task.

/// What a command sent on the connection is still waiting for.
enum InFlight {
    /// A (un)subscribe command: `remaining` confirmations, or one error reply.
    Sub {
        kind: SubscriptionKind,
        names: Vec<Bytes>,
        remaining: usize,
    },
    Ping,
}

/// The `log` target of the pub/sub connection's state changes.
const LOG_TARGET: &str = "redipc::pubsub";

async fn run(ps: Arc<PubSub>) {
    let mut attempt: u32 = 0;
    let mut ever_up = false;
    loop {
        if ps.closed.load(Ordering::Acquire) {
            return;
        }
        set_conn(&ps, ConnState::Connecting);
        // Subscriptions hear of an outage once, when the connection that was up breaks,
        // not again for every reconnect attempt that fails during it.
        let (err, was_up) = match connect(&ps.settings, attempt).await {
            Ok((io, reader, moved)) => {
                if ever_up {
                    ps.settings
                        .counters
                        .pubsub_reconnects
                        .fetch_add(1, Ordering::Relaxed);
                    log::info!(
                        target: LOG_TARGET,
                        "pub/sub connection to {} restored",
                        ps.settings.display
                    );
                } else {
                    log::debug!(target: LOG_TARGET, "pub/sub connected to {}", ps.settings.display);
                }
                ever_up = true;
                attempt = 0;
                set_conn(&ps, ConnState::Up);
                (session(&ps, io, reader, moved).await, true)
            }
            Err(e) => (e, false),
        };
        if ps.closed.load(Ordering::Acquire) {
            return;
        }
        if was_up {
            log::warn!(
                target: LOG_TARGET,
                "pub/sub connection to {} lost: {}; reconnecting",
                ps.settings.display,
                err.text()
            );
        } else {
            log::debug!(target: LOG_TARGET, "pub/sub reconnect failed: {}", err.text());
        }
        on_disconnect(&ps, &err, was_up);
        set_conn(&ps, ConnState::Down);
        let policy = &ps.settings.reconnect;
        if policy.max_attempts.is_some_and(|m| attempt >= m) {
            let err = Error::new(
                ErrorKind::Connection,
                format!(
                    "pub/sub: gave up reconnecting after {attempt} attempts: {}",
                    err.text()
                ),
            );
            log::error!(target: LOG_TARGET, "{}", err.text());
            on_disconnect(&ps, &err, true);
            return;
        }
        let delay = policy.delay(attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ps.closing.notified() => {}
        }
    }
}

fn set_conn(ps: &PubSub, state: ConnState) {
    lock(&ps.reg).conn = state;
    ps.changed.notify_waiters();
}

/// Tell every subscription the connection broke, and mark every name to be sent again.
fn on_disconnect(ps: &PubSub, err: &Error, tell: bool) {
    let mut guard = lock(&ps.reg);
    let reg = &mut *guard;
    // On a cluster, names the node connections carry are theirs (`lanes.rs`).
    let lanes = ps.settings.cluster.is_some();
    let ours = |kind: SubscriptionKind, name: &[u8]| !(lanes && super::node_routed(kind, name));
    for kind in SubscriptionKind::ALL {
        let i = kind.index();
        reg.names[i].retain(|name, e| {
            if !ours(kind, name) {
                return true;
            }
            e.server = ServerState::NotSent;
            !e.subs.is_empty()
        });
        let names: Vec<Bytes> = reg.names[i]
            .keys()
            .filter(|n| ours(kind, n))
            .cloned()
            .collect();
        reg.dirty[i].extend(names);
    }
    if tell {
        for sub in reg.subs.values() {
            if lanes && !sub.names.keys().any(|n| ours(sub.kind, n)) {
                continue;
            }
            sub.delivery
                .push_control(Event::Disconnected { error: err.clone() });
        }
    }
    drop(guard);
    ps.changed.notify_waiters();
}

/// Write all of `buf` and flush it (a TLS stream may keep encrypted bytes until flushed).
pub(super) async fn write_flush<W: AsyncWrite + Unpin + ?Sized>(
    wr: &mut W,
    buf: &[u8],
) -> std::io::Result<()> {
    wr.write_all(buf).await?;
    wr.flush().await
}

async fn connect(
    s: &Settings,
    attempt: u32,
) -> std::result::Result<(Box<dyn Io>, Reader, Moved), Error> {
    let (endpoint, display) = s.endpoint_for(attempt);
    connect_to(s, endpoint, &display).await
}

/// Connect to `endpoint` and say `HELLO 3` (with the credentials and the client name).
pub(super) async fn connect_to(
    s: &Settings,
    endpoint: crate::net::wire::Endpoint,
    display: &str,
) -> std::result::Result<(Box<dyn Io>, Reader, Moved), Error> {
    let what = format!("pub/sub connect to {display}");
    let deadline = tokio::time::Instant::now() + s.connect_timeout;
    let (mut io, master) = open_socket(&endpoint, deadline, s.connect_timeout, &what).await?;
    let moved = moved_watch(&endpoint, &master);
    // RESP3 lets pushes and replies share the connection (a PING health check while
    // subscribed gets a plain reply).
    let hello = hello(
        s.username.as_deref(),
        s.password.as_deref(),
        s.client_name.as_deref(),
    );
    let mut reader = Reader::new(s.limits);
    let handshake = async {
        let hello = hello.get_packed_command();
        s.counters.commands.fetch_add(1, Ordering::Relaxed);
        s.counters
            .bytes_out
            .fetch_add(hello.len() as u64, Ordering::Relaxed);
        write_flush(&mut io, &hello)
            .await
            .map_err(|e| Error::new(ErrorKind::Connection, io_error(&e)))?;
        let mut got = Vec::new();
        while got.is_empty() {
            let read = reader.fill(&mut io).await;
            if let Ok(n) = read {
                s.counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            }
            match read {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        "the server closed the connection during HELLO",
                    ));
                }
                Ok(_) => {
                    reader.decode(&mut got)?;
                }
                Err(e) => return Err(Error::new(ErrorKind::Connection, io_error(&e))),
            }
        }
        match got.swap_remove(0) {
            Incoming::Reply(Reply::Error(e)) => Err(Error::from(e)),
            Incoming::Reply(Reply::Map(_)) if got.is_empty() => Ok(()),
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("unexpected reply to HELLO: {other:?}"),
            )),
        }
    };
    match tokio::time::timeout(s.connect_timeout, handshake).await {
        Ok(Ok(())) => Ok((io, reader, moved)),
        Ok(Err(e)) => Err(e.context(what)),
        Err(_) => Err(Error::new(
            ErrorKind::Connection,
            format!("no HELLO reply within {:?}", s.connect_timeout),
        )
        .context(what)),
    }
}

/// Run one connection until it breaks or the client closes; returns why it ended.
async fn session(ps: &Arc<PubSub>, io: Box<dyn Io>, mut reader: Reader, mut moved: Moved) -> Error {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    // The health check: a PING once the connection has been quiet for the interval, and
    // the connection given up when nothing at all arrives within half an interval of it:
    // a dead socket is found within 1.5 intervals of the last byte. One timer (a `timerfd`,
    // `net/timer.rs`: tokio's wheel would wake for a long deadline twice, and once more
    // for nothing after each move), re-armed only when it fires or a PONG comes (not per
    // message), so an idle subscriber wakes twice per interval (the timer, the PONG);
    // none with the check off (`Duration::ZERO`, unix sockets).
    let interval = ps.settings.health_check_interval;
    let checking = !interval.is_zero();
    let answer_within = interval / 2;
    let timer = match WakeTimer::new() {
        Ok(t) => t,
        Err(e) => return Error::new(ErrorKind::Unsupported, format!("timerfd: {e}")),
    };
    let arm = |at: Instant| -> Result<(), Error> {
        timer
            .set(at)
            .map_err(|e| Error::new(ErrorKind::Unsupported, format!("timerfd: {e}")))
    };
    if checking && let Err(e) = arm(Instant::now() + interval) {
        return e;
    }
    let mut last_rx = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let mut incoming: Vec<Incoming> = Vec::new();
    let mut pending = Pending::default();
    let mut out = Vec::new();

    // Send whatever the registry says is missing (everything, after a reconnect).
    if let Err(e) = reconcile(ps, &mut inflight, &mut out, &mut wr).await {
        return e;
    }
    loop {
        if ps.closed.load(Ordering::Acquire) {
            let _ = wr.shutdown().await;
            return Error::closed();
        }
        // Subscription changes and the health check come before reading, so that a socket
        // that always has data cannot starve them.
        tokio::select! {
            biased;
            err = master_moved(&mut moved) => {
                let _ = wr.shutdown().await;
                return err;
            }
            _ = ps.wake.notified() => {
                if let Err(e) = reconcile(ps, &mut inflight, &mut out, &mut wr).await {
                    return e;
                }
            }
            fired = timer.wait(), if checking => {
                if let Err(e) = fired {
                    return Error::new(ErrorKind::Unsupported, format!("timerfd: {e}"));
                }
                let now = Instant::now();
                if let Some(sent) = ping_sent {
                    // Anything received since the PING shows the socket is alive.
                    let due = sent.max(last_rx) + answer_within;
                    if now < due {
                        if let Err(e) = arm(due) {
                            return e;
                        }
                        continue;
                    }
                    return Error::new(
                        ErrorKind::Connection,
                        format!("pub/sub health check: no answer to PING within {answer_within:?}"),
                    );
                }
                let due = last_rx + interval;
                if now < due {
                    if let Err(e) = arm(due) {
                        return e;
                    }
                    continue;
                }
                let ping = redis::cmd("PING").get_packed_command();
                ps.settings.counters.bytes_out.fetch_add(ping.len() as u64, Ordering::Relaxed);
                if let Err(e) = write_flush(&mut wr, &ping).await {
                    return Error::new(ErrorKind::Connection, io_error(&e));
                }
                inflight.push_back(InFlight::Ping);
                ps.settings.counters.commands.fetch_add(1, Ordering::Relaxed);
                ping_sent = Some(now);
                if let Err(e) = arm(now + answer_within) {
                    return e;
                }
            }
            read = reader.fill(&mut rd) => {
                match read {
                    Ok(0) => return Error::new(ErrorKind::Connection, "the server closed the pub/sub connection"),
                    Ok(n) => {
                        ps.settings.counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) => return Error::new(ErrorKind::Connection, io_error(&e)).context("pub/sub connection"),
                }
                // Everything this read completed: messages are routed under one registry
                // lock and queued per subscription in one go; each consumer is woken once.
                let shared_len = match reader.decode(&mut incoming) {
                    Ok(n) => n,
                    Err(e) => return e.context("pub/sub connection"),
                };
                let mut items = incoming.drain(..);
                let pinged = ping_sent.is_some();
                loop {
                    let stop = route_messages(ps, &mut items, &mut pending);
                    pending.flush(shared_len).await;
                    match stop {
                        Stop::Frame(frame) => handle_frame(ps, frame, &mut inflight, &mut ping_sent),
                        Stop::Full => {}
                        Stop::End => break,
                    }
                }
                last_rx = Instant::now();
                // The PONG came: the next PING is due an interval from now.
                if checking && pinged && ping_sent.is_none()
                    && let Err(e) = arm(last_rx + interval)
                {
                    return e;
                }
            }
        }
    }
}

/// Messages routed but not queued yet, per subscription queue, with the payload bytes each
/// queue got from the current read.
#[derive(Default)]
pub(super) struct Pending {
    queues: Vec<(Arc<Delivery<Event>>, Vec<Event>, usize)>,
    count: usize,
}

/// How many messages are routed before they are queued (bounds what waits outside the
/// queues when a queue is full under [`Overflow::Block`]).
const PENDING_MAX: usize = 4096;

/// Payloads up to this size may be copied out of the read buffer (see [`Pending::flush`]).
const COPY_MAX: usize = 4096;

impl Pending {
    fn add(&mut self, d: &Arc<Delivery<Event>>, event: Event, payload_len: usize) {
        self.count += 1;
        // Nearly always one queue, or a few: a linear search beats hashing.
        match self.queues.iter_mut().find(|(q, _, _)| Arc::ptr_eq(q, d)) {
            Some((_, events, bytes)) => {
                events.push(event);
                *bytes += payload_len;
            }
            None => self.queues.push((d.clone(), vec![event], payload_len)),
        }
    }

    /// Queue everything (waiting for room under [`Overflow::Block`]) and wake each consumer.
    ///
    /// Payloads and names are slices of the read buffer (`shared_len` bytes). A queue that
    /// got a small share of it gets its small messages copied instead: otherwise a slow
    /// subscriber's queue of a few messages per read, amid other traffic, would keep a whole
    /// read buffer alive per message. So queued payloads pin at most ~4× their own size.
    pub(super) async fn flush(&mut self, shared_len: usize) {
        for (d, events, bytes) in &mut self.queues {
            if *bytes * 4 < shared_len {
                for e in events.iter_mut() {
                    if let Event::Message(m) = e
                        && m.payload.len() <= COPY_MAX
                    {
                        m.payload = Bytes::copy_from_slice(&m.payload);
                        m.channel = Bytes::copy_from_slice(&m.channel);
                        if let Some(p) = &mut m.pattern {
                            *p = Bytes::copy_from_slice(p);
                        }
                    }
                }
            }
            d.push_all(events).await;
            d.flush();
        }
        self.queues.clear();
        self.count = 0;
    }
}

/// Why [`route_messages`] stopped.
pub(super) enum Stop {
    /// At a frame that is not a message (handle it after queueing what came before).
    Frame(Reply),
    /// Enough messages pending: queue them, then go on.
    Full,
    /// Nothing left.
    End,
}

/// Route messages to their subscriptions' pending lists under one registry lock, until a
/// frame that is not a message, the end, or [`PENDING_MAX`].
pub(super) fn route_messages(
    ps: &PubSub,
    items: &mut impl Iterator<Item = Incoming>,
    pending: &mut Pending,
) -> Stop {
    let reg = lock(&ps.reg);
    for item in items {
        let m = match item {
            Incoming::Message(m) => m,
            Incoming::Reply(r) => return Stop::Frame(r),
        };
        ps.settings
            .counters
            .pubsub_received
            .fetch_add(1, Ordering::Relaxed);
        let (kind, name) = match m.kind {
            MessageKind::Message => (SubscriptionKind::Channel, &m.channel),
            MessageKind::SMessage => (SubscriptionKind::Shard, &m.channel),
            MessageKind::PMessage => match &m.pattern {
                Some(p) => (SubscriptionKind::Pattern, p),
                None => continue,
            },
        };
        let Some(entry) = reg.names[kind.index()].get(&name[..]) else {
            continue;
        };
        // The last subscription gets the message's own strings, the others a (cheap) clone.
        if let Some(((_, last), others)) = entry.subs.split_last() {
            for (_, d) in others {
                let copy = Message {
                    kind,
                    channel: m.channel.clone(),
                    pattern: m.pattern.clone(),
                    payload: m.payload.clone(),
                };
                pending.add(d, Event::Message(copy), m.payload.len());
            }
            let PushMessage {
                channel,
                pattern,
                payload,
                ..
            } = m;
            let len = payload.len();
            pending.add(
                last,
                Event::Message(Message {
                    kind,
                    channel,
                    pattern,
                    payload,
                }),
                len,
            );
        }
        if pending.count >= PENDING_MAX {
            return Stop::Full;
        }
    }
    Stop::End
}

/// Send the (un)subscribe commands the registry's dirty names need.
async fn reconcile<W: AsyncWrite + Unpin>(
    ps: &PubSub,
    inflight: &mut VecDeque<InFlight>,
    out: &mut Vec<u8>,
    wr: &mut W,
) -> std::result::Result<(), Error> {
    const CHUNK: usize = 512;
    out.clear();
    {
        let mut guard = lock(&ps.reg);
        let reg = &mut *guard;
        for kind in SubscriptionKind::ALL {
            let i = kind.index();
            if reg.dirty[i].is_empty() {
                continue;
            }
            let mut to_sub = Vec::new();
            let mut to_unsub = Vec::new();
            let lanes = ps.settings.cluster.is_some();
            for name in reg.dirty[i].drain() {
                // On a cluster, the node connections (`lanes.rs`) carry these.
                if lanes && super::node_routed(kind, &name) {
                    continue;
                }
                let Some(entry) = reg.names[i].get_mut(&name) else {
                    continue;
                };
                match (entry.subs.is_empty(), entry.server) {
                    (false, ServerState::NotSent) => {
                        entry.server = ServerState::Subscribing;
                        entry.error = None;
                        to_sub.push(name);
                    }
                    (true, ServerState::Active) => {
                        entry.server = ServerState::Unsubscribing;
                        to_unsub.push(name);
                    }
                    (true, ServerState::NotSent) => {
                        reg.names[i].remove(&name);
                    }
                    // In flight: the confirmation re-checks the entry.
                    _ => {}
                }
            }
            let (sub_cmd, unsub_cmd) = kind.commands();
            for (cmd_name, list) in [(sub_cmd, to_sub), (unsub_cmd, to_unsub)] {
                for chunk in list.chunks(CHUNK) {
                    let mut cmd = redis::cmd(cmd_name);
                    for n in chunk {
                        cmd.arg(&n[..]);
                    }
                    cmd.write_packed_command(out);
                    ps.settings
                        .counters
                        .commands
                        .fetch_add(1, Ordering::Relaxed);
                    inflight.push_back(InFlight::Sub {
                        kind,
                        names: chunk.to_vec(),
                        remaining: chunk.len(),
                    });
                }
            }
        }
    }
    if out.is_empty() {
        return Ok(());
    }
    ps.settings
        .counters
        .bytes_out
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    let write = write_flush(wr, out);
    match tokio::time::timeout(ps.settings.response_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Connection, io_error(&e)).context("pub/sub write")),
        Err(_) => {
            Err(Error::new(ErrorKind::Timeout, "pub/sub write stalled").context("pub/sub write"))
        }
    }
}

/// A frame other than a message: a (un)subscribe confirmation, or a reply to a PING or an
/// error for a (un)subscribe command.
fn handle_frame(
    ps: &PubSub,
    frame: Reply,
    inflight: &mut VecDeque<InFlight>,
    ping_sent: &mut Option<Instant>,
) {
    let (kind, data) = match frame {
        Reply::Push { kind, data } => (kind, data),
        other => {
            match inflight.pop_front() {
                Some(InFlight::Ping) => *ping_sent = None,
                Some(InFlight::Sub { kind, names, .. }) => {
                    let err = match other {
                        Reply::Error(e) => Error::from(e),
                        v => Error::new(ErrorKind::Protocol, format!("unexpected reply {v:?}")),
                    };
                    // Named, so that an error such as NOPERM says which names it refused.
                    let mut what = kind.commands().0.to_owned();
                    for n in names.iter().take(3) {
                        what.push(' ');
                        what.push_str(&String::from_utf8_lossy(n));
                    }
                    if names.len() > 3 {
                        what.push_str(&format!(" (and {} more)", names.len() - 3));
                    }
                    sub_failed(ps, kind, &names, err.context(what));
                }
                None => {}
            }
            return;
        }
    };
    let Some((sk, subscribed, name)) = confirmation(&kind, data) else {
        return;
    };
    confirmed(ps, sk, name, subscribed);
    // Count the confirmation against the command it answers; waiters are woken
    // once per command, not once per name (a command carries up to 512 names).
    let mut wake_waiters = true;
    if let Some(InFlight::Sub {
        kind: k, remaining, ..
    }) = inflight.front_mut()
        && *k == sk
    {
        *remaining -= 1;
        if *remaining == 0 {
            inflight.pop_front();
        } else {
            wake_waiters = false;
        }
    }
    if wake_waiters {
        ps.changed.notify_waiters();
    }
}

/// A (un)subscribe confirmation push: its kind, whether it subscribed, the name. `None` for
/// other pushes (a message with an unusual shape; client tracking): not ours.
pub(super) fn confirmation(
    kind: &str,
    data: Vec<Reply>,
) -> Option<(SubscriptionKind, bool, Bytes)> {
    let (sk, subscribed) = match kind {
        "subscribe" => (SubscriptionKind::Channel, true),
        "psubscribe" => (SubscriptionKind::Pattern, true),
        "ssubscribe" => (SubscriptionKind::Shard, true),
        "unsubscribe" => (SubscriptionKind::Channel, false),
        "punsubscribe" => (SubscriptionKind::Pattern, false),
        "sunsubscribe" => (SubscriptionKind::Shard, false),
        _ => return None,
    };
    let name = match data.into_iter().next() {
        Some(Reply::Bulk(b)) => Bytes::from(b),
        Some(Reply::Status(s)) => Bytes::from(s),
        _ => return None,
    };
    Some((sk, subscribed, name))
}

fn confirmed(ps: &PubSub, kind: SubscriptionKind, name: Bytes, subscribed: bool) {
    let mut guard = lock(&ps.reg);
    let reg = &mut *guard;
    let i = kind.index();
    let Some(entry) = reg.names[i].get_mut(&name) else {
        return;
    };
    if subscribed {
        entry.server = ServerState::Active;
        let unwanted = entry.subs.is_empty();
        reg.announce_active(kind, &name);
        if unwanted {
            reg.dirty[i].insert(name);
            ps.wake.notify_one();
        }
    } else {
        entry.server = ServerState::NotSent;
        // Re-added meanwhile (or unsubscribed by the server): subscribe again.
        reg.dirty[i].insert(name);
        ps.wake.notify_one();
    }
    drop(guard);
}

fn sub_failed(ps: &PubSub, kind: SubscriptionKind, names: &[Bytes], err: Error) {
    let mut reg = lock(&ps.reg);
    for name in names {
        if let Some(entry) = reg.names[kind.index()].get_mut(name) {
            entry.server = ServerState::NotSent;
            entry.error = Some(err.clone());
        }
    }
    drop(reg);
    ps.changed.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Mode, Overflow};
    use std::sync::atomic::AtomicBool;

    fn queue() -> Arc<Delivery<Event>> {
        Delivery::new(
            100,
            Overflow::Block,
            None,
            Mode::Inline,
            crate::report::Reporter::default(),
            Arc::new(AtomicBool::new(false)),
        )
    }

    fn message(payload: Bytes) -> Event {
        Event::Message(Message {
            kind: SubscriptionKind::Channel,
            channel: Bytes::from_static(b"ch"),
            pattern: None,
            payload,
        })
    }

    fn payload_of(d: &Delivery<Event>) -> Bytes {
        match d.try_next().unwrap() {
            Some(Event::Message(m)) => m.payload,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_queue_with_a_small_share_of_a_read_gets_copies_not_slices() {
        // One 64 KiB read: the busy queue's payloads are most of it, the quiet queue's one
        // small payload is not. Only the quiet one is copied out (it would otherwise keep
        // the whole buffer alive for as long as it sits in its queue).
        let read = Bytes::from(vec![7u8; 64 * 1024]);
        let inside = |b: &Bytes| {
            let base = read.as_ptr() as usize;
            (base..base + read.len()).contains(&(b.as_ptr() as usize))
        };
        let (busy, quiet) = (queue(), queue());
        let mut p = Pending::default();
        for i in 0..60 {
            let slice = read.slice(i * 1000..i * 1000 + 900);
            p.add(&busy, message(slice), 900);
        }
        p.add(&quiet, message(read.slice(60_000..60_064)), 64);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(p.flush(read.len()));
        assert!(
            inside(&payload_of(&busy)),
            "the busy queue keeps zero-copy slices"
        );
        let q = payload_of(&quiet);
        assert!(!inside(&q), "the quiet queue's payload is a copy");
        assert_eq!(&q[..], &[7u8; 64][..]);
    }
}

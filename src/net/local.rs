//! [`LocalWire`]: a command connection driven by its owner's own event loop (Python's
//! asyncio), for the calls where a hop to the library's runtime and back would cost more
//! than the round trip itself.
//!
//! A call through the runtime ([`crate::blocking::Client::spawn_into`]) wakes a runtime
//! thread to write, that thread wakes again for the reply, and it wakes the event loop
//! through [`Completions`]: three thread switches per awaited command. A `LocalWire` owns a
//! non-blocking socket of its own that the event loop's thread writes and reads itself: the
//! command is written during the call (or, when others are in flight, by one flush at the
//! end of the loop's iteration, so concurrent calls share one write), and the reply is read
//! when the loop sees the descriptor readable. One thread, one write and one read per
//! command, like a hand-written asyncio client, with the library's parser.
//!
//! The descriptor the loop watches ([`LocalWire::fd`]) is an epoll set holding the socket
//! and the owner's [`Completions`] queue, so it never changes, whatever reconnects happen.
//!
//! **On a cluster** there is one such connection (a line) per primary the loop's commands
//! went to, their sockets all in the one epoll set the loop watches. A single
//! command whose keys are in one slot goes to the line of the slot's owner in the router's
//! map (`Router::slot_now`, `with_owner`); a line is made when the router has connected to
//! that node, and dialled on the runtime when its first command comes (until then its
//! commands take the router). Everything the router must decide takes the router: no key,
//! keys of several slots, a command whose keys it has not learned, reads from replicas, a
//! cluster over TLS. A line keeps each command's bytes until its reply: a node that
//! refuses one without running it (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`,
//! `MASTERDOWN`, `READONLY`) has it sent by the router, which follows the redirect or
//! tries again; a `MOVED` patches the map first (`Router::refused_at`), so the next
//! commands go to the new owner's line.
//!
//! **Failures.** A connection that fails (or stays silent for the response timeout while a
//! reply is due) is dropped: the commands written on it fail with a connection error (they
//! may have run, as on the shared connection); the ones still unwritten go through the
//! shared connection instead, which cannot run them twice. While it is down, calls take
//! the shared connection (its reconnects and retries) and the local one is dialled again
//! on the runtime, at most once a second. Only plain TCP and unix-socket endpoints get one
//! (TLS and sentinel clients always use the shared connection, a cluster's lines its
//! router); commands that are not for
//! the shared connection (blocking ones, refused ones) take the ordinary path too.
//!
//! **Order.** Calls on the local connection are answered in order, as on the shared
//! connection. Calls started while it switches (down → shared → up again) are not ordered
//! against each other: await one before relying on its effect.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};

use crate::client::{SetOptions, describe};
use crate::error::{Error, ErrorKind, Result};
use crate::net::cluster::Router;
use crate::net::plain::{Sock, dial_owned};
use crate::net::resp::{Scan, decode_reply};
use crate::net::wire::{WireSettings, io_error};
use crate::reply::Reply;
use crate::taken::Taken;
use crate::{Completions, blocking};

/// How long a failed local connection waits before it is dialled again.
const REDIAL: Duration = Duration::from_secs(1);

/// Most lines of a [`LocalWire`] on a cluster (nodes beyond take the router).
const MAX_LINES: usize = 64;

/// A node's address.
type Addr = (String, u16);

/// A finished call: its token and its outcome (a server error reply is an `Err`).
pub type Finished<T> = (T, Result<Reply>);

/// What the owner must arrange after [`LocalWire::send`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Sent {
    /// The call went through the shared connection on the runtime: cancel it with this
    /// when its caller gives up (a blocking command would hold its connection otherwise).
    pub abort: Option<crate::Abort>,
    /// Call [`LocalWire::flush`] soon (at the end of the loop's iteration): the command
    /// waits in the write buffer behind others.
    pub flush: bool,
    /// Call [`LocalWire::expire`] after this long (no timer is armed now).
    pub arm: Option<Duration>,
}

/// A dial in progress on the runtime: its result, once there.
type Dialing = Arc<Mutex<Option<Result<Sock>>>>;

enum Link {
    Up(Sock),
    Down { retry: Instant },
    Dialing(Dialing),
    Closed,
}

/// A command written (or queued to be) and not answered yet.
struct Slot<T> {
    /// `None` once it timed out (its reply, still to come, is dropped).
    token: Option<T>,
    /// Where its bytes end in the connection's output stream.
    end: u64,
    /// Where they start.
    start: u64,
    deadline: Instant,
    began: Instant,
    what: String,
    /// The command's bytes, on a cluster node's line (see [`Line::cluster`]).
    packed: Option<bytes::Bytes>,
}

/// One server's connection driven by the owner's event loop (a [`LocalWire`] has one, or
/// one per cluster primary).
struct Line<T, D> {
    client: blocking::Client,
    done: Arc<Completions<D>>,
    wrap: fn(T, Result<Taken>) -> D,
    settings: WireSettings,
    response_timeout: Duration,
    /// The epoll set its socket is in: the one the owner's loop watches (shared by a
    /// cluster's lines).
    epoll: Arc<OwnedFd>,
    link: Link,
    slots: VecDeque<Slot<T>>,
    /// Bytes not written yet start at `wbuf[written - base]`; `wbuf[0]` is byte `base`.
    wbuf: Vec<u8>,
    base: u64,
    written: u64,
    queued: u64,
    /// The socket is registered for writability (a write would have blocked).
    want_write: bool,
    flush_scheduled: bool,
    armed: bool,
    last_read: Instant,
    rbuf: BytesMut,
    scan: Scan,
    /// A cluster node's line: each command's bytes are kept until its reply, so that one the
    /// node refused (`MOVED`, `ASK`, `TRYAGAIN`, ...: not run) goes to the router instead.
    cluster: Option<(Arc<Router>, Addr)>,
}

fn sys(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Connection, format!("{what}: {}", io_error(&e)))
}

fn epoll_ctl(ep: &OwnedFd, op: i32, fd: RawFd, events: u32) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ep` is an epoll descriptor we own; `ev` lives across the call.
    if unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether connections of the caller's own can reach `settings`' server (plain TCP and
/// unix sockets; not TLS, not through sentinels).
fn plain(settings: &WireSettings) -> bool {
    let ep = &settings.endpoint;
    ep.tls.is_none()
        && ep.sentinel.is_none()
        && matches!(
            ep.addr,
            redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::Unix(_)
        )
}

fn new_epoll() -> Result<OwnedFd> {
    // SAFETY: plain syscall; the descriptor is owned below.
    let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if raw < 0 {
        return Err(sys("epoll_create1")(std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Send `args` through the client's shared connection (a cluster's router), its outcome
/// pushed into `done` as `wrap(token, outcome)`.
fn through_shared<T: Send + 'static, D: Send + 'static, A: AsRef<[u8]>>(
    client: &blocking::Client,
    done: &Arc<Completions<D>>,
    wrap: fn(T, Result<Taken>) -> D,
    args: &[A],
    token: T,
) -> Result<Sent> {
    let owned: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
    let c = client.as_async().clone();
    let abort = client.spawn_into(
        done,
        async move { c.command_taken(&owned).await },
        move |r| wrap(token, r),
    )?;
    Ok(Sent {
        abort: Some(abort),
        ..Sent::default()
    })
}

impl<T, D> Line<T, D> {
    fn is_up(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }
}

impl<T: Send + 'static, D: Send + 'static> Line<T, D> {
    /// A line to `settings`' server, down until [`tend`](Self::tend) dials it; `epoll`
    /// watches its socket.
    fn down(
        client: &blocking::Client,
        done: Arc<Completions<D>>,
        wrap: fn(T, Result<Taken>) -> D,
        settings: WireSettings,
        epoll: Arc<OwnedFd>,
        cluster: Option<(Arc<Router>, Addr)>,
    ) -> Line<T, D> {
        Line {
            client: client.clone(),
            done,
            wrap,
            response_timeout: client.as_async().conn().response_timeout(),
            settings,
            epoll,
            link: Link::Down {
                retry: Instant::now(),
            },
            slots: VecDeque::new(),
            wbuf: Vec::new(),
            base: 0,
            written: 0,
            queued: 0,
            want_write: false,
            flush_scheduled: false,
            armed: false,
            last_read: Instant::now(),
            rbuf: BytesMut::new(),
            scan: Scan::default(),
            cluster,
        }
    }

    /// Dial now, waiting for it (bounded by the connect timeout); a failed dial leaves the
    /// line down until a redial works.
    fn dial_now(&mut self) -> Result<()> {
        match self
            .client
            .wait(async { Ok(dial_owned(self.settings.clone(), true).await) })
        {
            Ok(Ok(sock)) => self.install(sock)?,
            Ok(Err(e)) | Err(e) => {
                log::debug!(target: crate::net::conn::LOG_TARGET,
                    "local connection to {} not made ({e}); calls take the shared connection",
                    self.settings.display);
            }
        }
        Ok(())
    }

    fn install(&mut self, sock: Sock) -> Result<()> {
        epoll_ctl(
            &self.epoll,
            libc::EPOLL_CTL_ADD,
            sock.fd(),
            libc::EPOLLIN as u32,
        )
        .map_err(sys("epoll_ctl"))?;
        self.want_write = false;
        self.rbuf.clear();
        if self.rbuf.capacity() == 0 {
            self.rbuf.reserve(16 * 1024);
        }
        self.scan = Scan::new(self.settings.limits);
        self.last_read = Instant::now();
        self.link = Link::Up(sock);
        Ok(())
    }

    /// Pick up a finished dial; start one when down and due.
    fn tend(&mut self) {
        match &self.link {
            Link::Dialing(slot) => {
                let got = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                let installed = match got {
                    None => return,
                    Some(Ok(sock)) => self.install(sock).is_ok(),
                    Some(Err(_)) => false,
                };
                if !installed {
                    self.link = Link::Down {
                        retry: Instant::now() + REDIAL,
                    }
                }
            }
            Link::Down { retry } if Instant::now() >= *retry && !self.client.is_closed() => {
                let slot: Dialing = Arc::new(Mutex::new(None));
                let put = slot.clone();
                let settings = self.settings.clone();
                self.client.spawn_detached(async move {
                    let r = dial_owned(settings, true).await;
                    *put.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                });
                self.link = Link::Dialing(slot);
            }
            _ => {}
        }
    }

    /// Send one command. It goes on the local connection when that is up (written now
    /// when nothing else is in flight, else at the next [`flush`](Self::flush)), otherwise
    /// through the shared connection (its outcome then arrives in the completions queue).
    /// An invalid command is an error at once (the token is dropped).
    fn send<A: AsRef<[u8]>>(&mut self, args: &[A], token: T) -> Result<Sent> {
        let cmd = self.client.as_async().build(args)?;
        if !matches!(self.link, Link::Up(_)) {
            self.tend();
        }
        let c = self.client.as_async();
        if !matches!(self.link, Link::Up(_)) || !c.shared_route(args) {
            return through_shared(&self.client, &self.done, self.wrap, args, token);
        }
        let before = self.wbuf.len();
        cmd.write_packed_command(&mut self.wbuf);
        let len = (self.wbuf.len() - before) as u64;
        let packed = self
            .cluster
            .as_ref()
            .map(|_| bytes::Bytes::copy_from_slice(&self.wbuf[before..]));
        let now = Instant::now();
        c.counters().begin();
        c.counters()
            .commands
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.settings
            .node_counters
            .commands
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.slots.push_back(Slot {
            token: Some(token),
            start: self.queued,
            end: self.queued + len,
            deadline: now + self.response_timeout,
            began: now,
            what: describe(args),
            packed,
        });
        self.queued += len;
        let mut sent = Sent::default();
        if !self.armed {
            self.armed = true;
            sent.arm = Some(self.response_timeout);
        }
        if self.slots.len() == 1 && !self.want_write {
            // Nothing else in flight: write now (a lone caller's round trip).
            let mut lost = Vec::new();
            self.write_out(&mut lost);
            for (t, r) in lost {
                // Only the command just queued can be here (a write that failed part-way
                // sends it through the shared connection instead): its outcome goes
                // through the completions queue, like every other.
                if let Some(slot) = self.done.enter() {
                    slot.push((self.wrap)(t, r.map(Taken::plain)));
                }
            }
        } else if !self.flush_scheduled && !self.want_write {
            self.flush_scheduled = true;
            sent.flush = true;
        }
        Ok(sent)
    }

    /// Write what waits in the write buffer (the owner's end-of-iteration flush).
    fn flush(&mut self) -> Vec<Finished<T>> {
        self.flush_scheduled = false;
        let mut out = Vec::new();
        self.write_out(&mut out);
        out
    }

    /// The descriptor was readable: read the replies that came (and write what waited for
    /// writability); the finished calls, oldest first. Drain the completions queue too.
    fn ready(&mut self) -> Vec<Finished<T>> {
        let mut out = Vec::new();
        if self.want_write {
            self.write_out(&mut out);
        }
        self.read_in(&mut out);
        if !matches!(self.link, Link::Up(_)) {
            self.tend();
        }
        out
    }

    /// The timer armed by [`send`](Self::send) (or by a previous `expire`) fired: calls
    /// past the response timeout fail with a timeout error (their replies, if they come,
    /// are dropped); a connection that stayed silent all that time is dropped. When to call
    /// again (`None`: no timer needed until a `send` says so).
    fn expire(&mut self) -> (Vec<Finished<T>>, Option<Duration>) {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut silent = false;
        for s in self.slots.iter_mut() {
            if s.token.is_none() {
                continue;
            }
            if s.deadline > now {
                break;
            }
            if self.last_read < s.began {
                silent = true;
            }
            let t = s.token.take().expect("checked");
            let e = Error::new(
                ErrorKind::Timeout,
                format!(
                    "no reply from {} within the response timeout of {:?}",
                    self.settings.display, self.response_timeout
                ),
            )
            .context(&s.what);
            self.client
                .as_async()
                .counters()
                .end(s.began, &Err::<(), _>(e.clone()));
            out.push((t, Err(e)));
        }
        if silent {
            self.drop_link(
                Error::new(
                    ErrorKind::Connection,
                    format!(
                        "connection lost: no byte from {} within the response timeout",
                        self.settings.display
                    ),
                ),
                &mut out,
            );
        }
        let next = self
            .slots
            .iter()
            .find(|s| s.token.is_some())
            .map(|s| s.deadline.saturating_duration_since(now));
        self.armed = next.is_some();
        (out, next)
    }

    /// Close: every call in flight fails with a `Closed` error; later sends take the
    /// shared connection (which then refuses them as closed).
    fn close(&mut self) -> Vec<Finished<T>> {
        let mut out = Vec::new();
        for s in self.slots.drain(..) {
            if let Some(t) = s.token {
                let e = Error::closed().context(&s.what);
                self.client
                    .as_async()
                    .counters()
                    .end(s.began, &Err::<(), _>(e.clone()));
                out.push((t, Err(e)));
            }
        }
        if let Link::Up(sock) = &self.link {
            let _ = epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, sock.fd(), 0);
        }
        self.link = Link::Closed;
        self.reset_buffers();
        out
    }

    fn reset_buffers(&mut self) {
        self.wbuf.clear();
        self.base = self.queued;
        self.written = self.queued;
        self.want_write = false;
    }

    fn write_out(&mut self, out: &mut Vec<Finished<T>>) {
        let Link::Up(sock) = &self.link else {
            return;
        };
        let mut failed = None;
        let before = self.written;
        while self.written < self.queued {
            let from = (self.written - self.base) as usize;
            match sock.write(&self.wbuf[from..]) {
                Ok(0) => {
                    failed = Some(std::io::Error::from(std::io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => self.written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            let err = Error::new(
                ErrorKind::Connection,
                format!("connection lost: {}", io_error(&e)),
            );
            self.drop_link(err, out);
            return;
        }
        let n = self.written - before;
        self.client
            .as_async()
            .counters()
            .bytes_out
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.settings
            .node_counters
            .bytes_out
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let fd = sock.fd();
        let pending = self.written < self.queued;
        if pending != self.want_write {
            let ev = if pending {
                (libc::EPOLLIN | libc::EPOLLOUT) as u32
            } else {
                libc::EPOLLIN as u32
            };
            let _ = epoll_ctl(&self.epoll, libc::EPOLL_CTL_MOD, fd, ev);
            self.want_write = pending;
        }
        if pending {
            // Keep the bytes (a failure must find the unwritten commands).
            return;
        }
        self.wbuf.clear();
        self.base = self.written;
        if self.wbuf.capacity() > 1 << 20 {
            self.wbuf = Vec::new();
        }
    }

    fn read_in(&mut self, out: &mut Vec<Finished<T>>) {
        loop {
            let Link::Up(sock) = &self.link else {
                return;
            };
            let want = (16 * 1024).max(self.rbuf.len());
            if self.rbuf.capacity() - self.rbuf.len() < want / 2 {
                self.rbuf.reserve(want);
            }
            let spare = self.rbuf.spare_capacity_mut();
            // SAFETY: reading into the spare capacity as bytes; only the `n` bytes the
            // kernel wrote are marked initialised below.
            let buf = unsafe {
                std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), spare.len())
            };
            let room = buf.len();
            match sock.read(buf) {
                Ok(0) => {
                    let e = Error::new(
                        ErrorKind::Connection,
                        "connection lost: the server closed the connection",
                    );
                    self.drop_link(e, out);
                    return;
                }
                Ok(n) => {
                    // SAFETY: the kernel initialised `n` bytes of the spare capacity.
                    unsafe { self.rbuf.set_len(self.rbuf.len() + n) };
                    self.last_read = Instant::now();
                    self.client
                        .as_async()
                        .counters()
                        .bytes_in
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    self.settings
                        .node_counters
                        .bytes_in
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    if let Err(e) = self.answer(out) {
                        self.drop_link(e, out);
                        return;
                    }
                    if n < room {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    let e = Error::new(
                        ErrorKind::Connection,
                        format!("connection lost: {}", io_error(&e)),
                    );
                    self.drop_link(e, out);
                    return;
                }
            }
        }
    }

    fn answer(&mut self, out: &mut Vec<Finished<T>>) -> Result<()> {
        while let Some(len) = self.scan.complete(&self.rbuf)? {
            if self.rbuf[0] == b'>' {
                self.rbuf.advance(len);
                continue;
            }
            let (reply, _) = decode_reply(&self.rbuf[..len], 0)?;
            self.rbuf.advance(len);
            let Some(s) = self.slots.pop_front() else {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "a reply arrived that no request was waiting for",
                ));
            };
            let Some(t) = s.token else { continue };
            if let (Some((router, addr)), Some(bytes)) = (&self.cluster, s.packed)
                && matches!(reply, Reply::Error(_))
                && router.refused_at(&reply, addr, &self.settings.node_counters)
            {
                self.reroute(t, bytes, s.what);
                continue;
            }
            let r = match reply {
                Reply::Error(e) => Err(Error::from(e).context(&s.what)),
                r => Ok(r),
            };
            self.client.as_async().counters().end(s.began, &r);
            out.push((t, r));
        }
        Ok(())
    }

    /// Send a command this line will not answer (not run: never wholly written, or
    /// refused by a cluster node) through the shared connection (a cluster's router); its
    /// outcome arrives in the completions queue.
    fn reroute(&self, t: T, bytes: bytes::Bytes, what: String) {
        let c = self.client.as_async().clone();
        c.counters().end_quietly();
        let wrap = self.wrap;
        // An error means closed meanwhile: the token went with the future, and the owner
        // fails its waiters on close.
        let _ = self.client.spawn_into(
            &self.done,
            async move {
                c.send_packed(bytes)
                    .await
                    .map(Taken::plain)
                    .map_err(|e| e.context(&what))
            },
            move |r| wrap(t, r),
        );
    }

    /// The connection failed: written commands fail with `err` (they may have run);
    /// unwritten ones go through the shared connection; the link is down until a redial.
    fn drop_link(&mut self, err: Error, out: &mut Vec<Finished<T>>) {
        if let Link::Up(sock) = &self.link {
            let _ = epoll_ctl(&self.epoll, libc::EPOLL_CTL_DEL, sock.fd(), 0);
        }
        log::debug!(target: crate::net::conn::LOG_TARGET,
            "local connection to {} dropped: {err}", self.settings.display);
        self.link = Link::Down {
            retry: Instant::now(),
        };
        for s in std::mem::take(&mut self.slots) {
            let Some(t) = s.token else { continue };
            if s.end <= self.written {
                let e = err.clone().context(&s.what);
                self.client
                    .as_async()
                    .counters()
                    .end(s.began, &Err::<(), _>(e.clone()));
                out.push((t, Err(e)));
                continue;
            }
            // Never (wholly) written: it cannot have run; the shared connection sends it.
            let from = (s.start - self.base) as usize;
            let to = (s.end - self.base) as usize;
            let bytes = bytes::Bytes::copy_from_slice(&self.wbuf[from..to]);
            self.reroute(t, bytes, s.what);
        }
        self.rbuf.clear();
        self.reset_buffers();
        // The armed timer stays armed: it fires before any new call's deadline and finds
        // what is due then.
    }
}

/// A command connection driven by the owner's event loop; see the module docs. `T` is the
/// owner's token for a call (handed back with its outcome); `D` is what its
/// [`Completions`] queue carries, made by `wrap` for calls that took the shared connection.
pub struct LocalWire<T, D>(Kind<T, D>);

// One per client, and the common variant kept inline (no pointer to follow per call).
#[allow(clippy::large_enum_variant)]
enum Kind<T, D> {
    One(Line<T, D>),
    Cluster(Lines<T, D>),
}

/// A cluster's lines: one per primary the loop's commands went to, dialled (on the
/// runtime) when the first command for its node comes; that command, and those after it
/// until the dial is done, take the router.
struct Lines<T, D> {
    router: Arc<Router>,
    client: blocking::Client,
    done: Arc<Completions<D>>,
    wrap: fn(T, Result<Taken>) -> D,
    /// Watches every line's socket and the completions queue.
    epoll: Arc<OwnedFd>,
    lines: Vec<(Addr, Line<T, D>)>,
    armed: bool,
    flush_scheduled: bool,
    closed: bool,
}

impl<T, D> std::fmt::Debug for LocalWire<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (up, in_flight) = match &self.0 {
            Kind::One(l) => (usize::from(matches!(l.link, Link::Up(_))), l.slots.len()),
            Kind::Cluster(c) => c.lines.iter().fold((0, 0), |(u, n), (_, l)| {
                (
                    u + usize::from(matches!(l.link, Link::Up(_))),
                    n + l.slots.len(),
                )
            }),
        };
        f.debug_struct("LocalWire")
            .field("up", &up)
            .field("in_flight", &in_flight)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, D: Send + 'static> LocalWire<T, D> {
    /// A local connection for `client`, whose calls that take the shared connection push
    /// `wrap(token, outcome)` into `done`; `None` when the client's endpoint cannot have
    /// one (TLS, sentinels). A server's is dialled at once (bounded by the connect
    /// timeout); a failed dial leaves it down, and the calls take the shared connection
    /// until a redial works. On a cluster, each primary's is dialled when the first
    /// command for it comes.
    pub fn new(
        client: &blocking::Client,
        done: Arc<Completions<D>>,
        wrap: fn(T, Result<Taken>) -> D,
    ) -> Result<Option<LocalWire<T, D>>> {
        let conn = client.as_async().conn();
        if let Some(router) = conn.cluster() {
            if !router.plain() {
                return Ok(None);
            }
            let epoll = new_epoll()?;
            epoll_ctl(&epoll, libc::EPOLL_CTL_ADD, done.fd(), libc::EPOLLIN as u32)
                .map_err(sys("epoll_ctl"))?;
            return Ok(Some(LocalWire(Kind::Cluster(Lines {
                router: router.clone(),
                client: client.clone(),
                done,
                wrap,
                epoll: Arc::new(epoll),
                lines: Vec::new(),
                armed: false,
                flush_scheduled: false,
                closed: false,
            }))));
        }
        let Some(settings) = conn.wire_settings().cloned() else {
            return Ok(None);
        };
        if !plain(&settings) {
            return Ok(None);
        }
        let epoll = new_epoll()?;
        epoll_ctl(&epoll, libc::EPOLL_CTL_ADD, done.fd(), libc::EPOLLIN as u32)
            .map_err(sys("epoll_ctl"))?;
        let mut line = Line::down(client, done, wrap, settings, Arc::new(epoll), None);
        line.dial_now()?;
        Ok(Some(LocalWire(Kind::One(line))))
    }

    /// The descriptor the loop watches for readability: the sockets' replies, the
    /// completions queue, and writability while a write waits. Call [`ready`](Self::ready)
    /// and drain the completions queue when it is readable.
    pub fn fd(&self) -> RawFd {
        match &self.0 {
            Kind::One(l) => l.epoll.as_raw_fd(),
            Kind::Cluster(c) => c.epoll.as_raw_fd(),
        }
    }

    /// Whether a local connection is up now (on a cluster: one to any node).
    pub fn is_up(&self) -> bool {
        match &self.0 {
            Kind::One(l) => l.is_up(),
            Kind::Cluster(c) => c.lines.iter().any(|(_, l)| l.is_up()),
        }
    }

    /// How many local connections are up now (on a cluster, one per node it has used).
    pub fn connections_up(&self) -> usize {
        match &self.0 {
            Kind::One(l) => usize::from(l.is_up()),
            Kind::Cluster(c) => c.lines.iter().filter(|(_, l)| l.is_up()).count(),
        }
    }

    /// Commands written or queued and not answered (timed-out ones included).
    pub fn in_flight(&self) -> usize {
        match &self.0 {
            Kind::One(l) => l.slots.len(),
            Kind::Cluster(c) => c.lines.iter().map(|(_, l)| l.slots.len()).sum(),
        }
    }

    /// Send one command. It goes on the local connection when that is up (written now
    /// when nothing else is in flight there, else at the next [`flush`](Self::flush)),
    /// otherwise through the shared connection (its outcome then arrives in the
    /// completions queue). On a cluster, the local connection is that of the primary
    /// owning the command's keys' one slot; a command without a key, with keys of several
    /// slots, or refused by its node (`MOVED`, `ASK`, `TRYAGAIN`, ...) goes through the
    /// router. An invalid command is an error at once (the token is dropped).
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A], token: T) -> Result<Sent> {
        let client = match &self.0 {
            Kind::One(l) => &l.client,
            Kind::Cluster(c) => &c.client,
        };
        if client.inherited() {
            // Its sockets are the parent's (`crate::fork`).
            return Err(crate::fork::inherited());
        }
        match &mut self.0 {
            Kind::One(l) => l.send(args, token),
            Kind::Cluster(c) => c.send(args, token),
        }
    }

    /// `GET key` (see [`send`](Self::send)).
    pub fn get(&mut self, key: impl AsRef<[u8]>, token: T) -> Result<Sent> {
        self.send(&[b"GET".as_slice(), key.as_ref()], token)
    }

    /// `SET key value [PX ms] [NX|XX]` (see [`send`](Self::send)); the reply is nil when a
    /// condition kept the value from being set.
    pub fn set_with(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: SetOptions,
        token: T,
    ) -> Result<Sent> {
        let args = crate::client::set_args(key.as_ref(), value.as_ref(), &opts)?;
        self.send(&args, token)
    }

    /// `name key...` for `DEL`/`EXISTS`-like commands (at least one key).
    pub fn keys(&mut self, name: &str, keys: &[impl AsRef<[u8]>], token: T) -> Result<Sent> {
        if keys.is_empty() {
            return Err(Error::invalid(format!("{name}: give at least one key")));
        }
        let mut args: Vec<&[u8]> = vec![name.as_bytes()];
        args.extend(keys.iter().map(|k| k.as_ref()));
        self.send(&args, token)
    }

    /// `INCRBY key by` (see [`send`](Self::send)).
    pub fn incr_by(&mut self, key: impl AsRef<[u8]>, by: i64, token: T) -> Result<Sent> {
        let by = by.to_string();
        self.send(&[b"INCRBY".as_slice(), key.as_ref(), by.as_bytes()], token)
    }

    /// `PUBLISH channel message` (see [`send`](Self::send)).
    pub fn publish(
        &mut self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
        token: T,
    ) -> Result<Sent> {
        self.send(
            &[b"PUBLISH".as_slice(), channel.as_ref(), message.as_ref()],
            token,
        )
    }

    /// `PEXPIRE key ms` (see [`send`](Self::send)); the reply is 1 when the timeout was set.
    pub fn pexpire(&mut self, key: impl AsRef<[u8]>, ttl: Duration, token: T) -> Result<Sent> {
        let ms = ttl.as_millis().to_string();
        self.send(&[b"PEXPIRE".as_slice(), key.as_ref(), ms.as_bytes()], token)
    }

    /// `HGET key field` (see [`send`](Self::send)).
    pub fn hget(
        &mut self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        token: T,
    ) -> Result<Sent> {
        self.send(&[b"HGET".as_slice(), key.as_ref(), field.as_ref()], token)
    }

    /// `HSET key field value [field value ...]` (at least one field; see
    /// [`send`](Self::send)).
    pub fn hset(
        &mut self,
        key: impl AsRef<[u8]>,
        fields: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)],
        token: T,
    ) -> Result<Sent> {
        let args = crate::client::hset_args(key.as_ref(), fields)?;
        self.send(&args, token)
    }

    /// `HDEL key field...` (at least one field; see [`send`](Self::send)).
    pub fn hdel(
        &mut self,
        key: impl AsRef<[u8]>,
        fields: &[impl AsRef<[u8]>],
        token: T,
    ) -> Result<Sent> {
        let args = crate::client::key_items_args("HDEL", key.as_ref(), fields, "field")?;
        self.send(&args, token)
    }

    /// `HGETALL key` (see [`send`](Self::send)).
    pub fn hgetall(&mut self, key: impl AsRef<[u8]>, token: T) -> Result<Sent> {
        self.send(&[b"HGETALL".as_slice(), key.as_ref()], token)
    }

    /// `LPUSH key value...` (at least one value; see [`send`](Self::send)).
    pub fn lpush(
        &mut self,
        key: impl AsRef<[u8]>,
        values: &[impl AsRef<[u8]>],
        token: T,
    ) -> Result<Sent> {
        let args = crate::client::key_items_args("LPUSH", key.as_ref(), values, "value")?;
        self.send(&args, token)
    }

    /// `RPUSH key value...` (at least one value; see [`send`](Self::send)).
    pub fn rpush(
        &mut self,
        key: impl AsRef<[u8]>,
        values: &[impl AsRef<[u8]>],
        token: T,
    ) -> Result<Sent> {
        let args = crate::client::key_items_args("RPUSH", key.as_ref(), values, "value")?;
        self.send(&args, token)
    }

    /// `LPOP key` (see [`send`](Self::send)).
    pub fn lpop(&mut self, key: impl AsRef<[u8]>, token: T) -> Result<Sent> {
        self.send(&[b"LPOP".as_slice(), key.as_ref()], token)
    }

    /// `RPOP key` (see [`send`](Self::send)).
    pub fn rpop(&mut self, key: impl AsRef<[u8]>, token: T) -> Result<Sent> {
        self.send(&[b"RPOP".as_slice(), key.as_ref()], token)
    }

    /// `LLEN key` (see [`send`](Self::send)).
    pub fn llen(&mut self, key: impl AsRef<[u8]>, token: T) -> Result<Sent> {
        self.send(&[b"LLEN".as_slice(), key.as_ref()], token)
    }

    /// `PING` (see [`send`](Self::send)).
    pub fn ping(&mut self, token: T) -> Result<Sent> {
        self.send(&[b"PING".as_slice()], token)
    }

    /// `SPUBLISH channel message` (see [`send`](Self::send)).
    pub fn spublish(
        &mut self,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
        token: T,
    ) -> Result<Sent> {
        self.send(
            &[b"SPUBLISH".as_slice(), channel.as_ref(), message.as_ref()],
            token,
        )
    }

    /// Write what waits in the write buffer (the owner's end-of-iteration flush).
    pub fn flush(&mut self) -> Vec<Finished<T>> {
        match &mut self.0 {
            Kind::One(l) => l.flush(),
            Kind::Cluster(c) => {
                c.flush_scheduled = false;
                let mut out = Vec::new();
                for (_, l) in &mut c.lines {
                    if l.flush_scheduled {
                        out.extend(l.flush());
                    }
                }
                out
            }
        }
    }

    /// The descriptor was readable: read the replies that came (and write what waited for
    /// writability); the finished calls, oldest first. Drain the completions queue too.
    pub fn ready(&mut self) -> Vec<Finished<T>> {
        match &mut self.0 {
            Kind::One(l) => l.ready(),
            Kind::Cluster(c) => c.ready(),
        }
    }

    /// The timer armed by [`send`](Self::send) (or by a previous `expire`) fired: calls
    /// past the response timeout fail with a timeout error (their replies, if they come,
    /// are dropped); a connection that stayed silent all that time is dropped. When to call
    /// again (`None`: no timer needed until a `send` says so).
    pub fn expire(&mut self) -> (Vec<Finished<T>>, Option<Duration>) {
        match &mut self.0 {
            Kind::One(l) => l.expire(),
            Kind::Cluster(c) => {
                let mut out = Vec::new();
                let mut next: Option<Duration> = None;
                for (_, l) in &mut c.lines {
                    let (o, n) = l.expire();
                    out.extend(o);
                    next = match (next, n) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                c.armed = next.is_some();
                (out, next)
            }
        }
    }

    /// Close: every call in flight fails with a `Closed` error; later sends take the
    /// shared connection (which then refuses them as closed).
    pub fn close(&mut self) -> Vec<Finished<T>> {
        match &mut self.0 {
            Kind::One(l) => l.close(),
            Kind::Cluster(c) => {
                c.closed = true;
                c.lines.iter_mut().flat_map(|(_, l)| l.close()).collect()
            }
        }
    }
}

impl<T: Send + 'static, D: Send + 'static> Lines<T, D> {
    fn send<A: AsRef<[u8]>>(&mut self, args: &[A], token: T) -> Result<Sent> {
        let line = if self.closed {
            None
        } else {
            // The owner's line when there is one (no copy of its address per command).
            let lines = &self.lines;
            match self.router.slot_now(args).and_then(|slot| {
                self.router.with_owner(slot, |addr| {
                    lines
                        .iter()
                        .position(|(a, _)| a == addr)
                        .ok_or_else(|| addr.clone())
                })
            }) {
                None => None,
                Some(Ok(i)) => Some(i),
                Some(Err(addr)) => self.line(addr),
            }
        };
        let Some(i) = line else {
            // Refused at once when invalid, as on a line.
            self.client.as_async().build(args)?;
            return through_shared(&self.client, &self.done, self.wrap, args, token);
        };
        let mut sent = self.lines[i].1.send(args, token)?;
        // One timer and one flush for all the lines: the timer, armed for an earlier
        // deadline, expires every line; the flush writes every line that waits for one.
        if sent.arm.is_some() {
            if self.armed {
                sent.arm = None;
            } else {
                self.armed = true;
            }
        }
        if sent.flush {
            if self.flush_scheduled {
                sent.flush = false;
            } else {
                self.flush_scheduled = true;
            }
        }
        Ok(sent)
    }

    /// A new line to the node at `addr` (down: its first command dials it), when the router
    /// is connected to the node; `None`: the router sends the command.
    fn line(&mut self, addr: Addr) -> Option<usize> {
        if self.lines.len() >= MAX_LINES {
            return None;
        }
        let settings = self.router.node_settings(&addr)?;
        if !plain(&settings) {
            return None;
        }
        let line = Line::down(
            &self.client,
            self.done.clone(),
            self.wrap,
            settings,
            self.epoll.clone(),
            Some((self.router.clone(), addr.clone())),
        );
        self.lines.push((addr, line));
        Some(self.lines.len() - 1)
    }

    /// The lines whose sockets are ready (one `epoll_wait` that does not wait).
    fn ready(&mut self) -> Vec<Finished<T>> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: `events` has room for 16 entries; the descriptor is ours.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                0,
            )
        };
        let mut out = Vec::new();
        for ev in &events[..n.max(0) as usize] {
            let fd = ev.u64 as RawFd;
            if let Some((_, l)) = self
                .lines
                .iter_mut()
                .find(|(_, l)| matches!(&l.link, Link::Up(sock) if sock.fd() == fd))
            {
                out.extend(l.ready());
            }
        }
        out
    }
}

//! [`Direct`]: one server's connections that blocking callers write and read on their own
//! threads, for their single commands.
//!
//! A blocking call through the runtime costs more than the round trip's two syscalls: the
//! caller enters the runtime, its request goes to the connection's task, the task writes,
//! the runtime parks in `epoll_wait`, the reader wakes, completes the caller's future, and
//! the caller leaves (and, when another thread drives, two thread switches besides). On an
//! idle machine that is 5–7 µs per call more than hiredis's `write` + `read`. A direct
//! connection is hiredis's path inside the client: a blocking socket (timeouts set on it),
//! one `write` and one `read` per command, the library's parser.
//!
//! **Who uses it.** Only a call made by a blocking caller ([`crate::blocking::Client`], the C
//! and the Python sync bindings): the caller polls its call's future once on its own
//! thread, outside the runtime ([`inline`]), and a single command that reaches a
//! [`Node`](crate::net::node::Node) then takes the first of its direct connections nobody
//! else holds (`try_lock`). There are up to `Options::direct_connections` per server
//! (default 16), opened as callers overlap: a lone caller has one; a second one is dialled
//! only when a call found every open one in use, and so on — N concurrent threads up to
//! that many each write and read their own socket, like N hiredis connections (0: none,
//! every call shares the one connection). Everything else takes the shared
//! connection, where concurrent callers' commands share writes (auto-pipelining wins when
//! many callers overlap): pipelines, blocking commands, calls while every direct connection
//! is in use or down, calls of async code. The runtime is never held while a caller waits
//! on its socket.
//!
//! **Failures.** Dialled lazily, on the runtime (a client that never makes a blocking call
//! never opens one), and again at most once a second after a failed dial; meanwhile calls
//! take the shared connection. Before a command goes out on a connection idle for a while,
//! it is checked for an end-of-file the server sent meanwhile (restart, `CLIENT KILL`, idle
//! timeout): the command then takes the shared connection instead of failing. A command
//! not wholly written cannot have run and takes the shared connection too; one written and
//! not answered fails with a connection error (it may have run: at most once, as on the
//! shared connection), or with a timeout after the response timeout; the connection is
//! dropped then (a late reply must not answer the next command). [`Direct::close`] shuts
//! the sockets down, which ends a caller's wait at once with a `Closed` error.
//!
//! TCP (plain or TLS) and unix-socket endpoints; not through sentinels (the master's
//! address changes under them). Over TLS the handshake is done on the runtime and the
//! caller then drives rustls over the blocking socket (`TlsSock`).

use crate::net::spawn::Spawn;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};

use crate::error::{Error, ErrorKind, Result};
use crate::net::plain::{Sock, dial_owned};
use crate::net::resp::{Scan, decode_reply};
use crate::net::wire::{WireSettings, io_error};
use crate::reply::Reply;

/// How long a failed connection waits before it is dialled again.
const REDIAL: Duration = Duration::from_secs(1);

/// A connection idle for longer than this is checked for an end-of-file before a write.
const CHECK_AFTER: Duration = Duration::from_millis(10);

thread_local! {
    /// Set while a blocking caller polls its call on its own thread ([`inline`]).
    static CALLER: Cell<bool> = const { Cell::new(false) };
}

/// Poll `fut` once on the calling thread, outside the runtime (with its context entered,
/// for timers and spawns), as a blocking caller: single commands it sends may take a
/// [`Direct`] connection there. `Some` when it finished; otherwise the caller goes on
/// waiting for it on the runtime (a future may be polled again with another waker).
pub(crate) fn inline<F: Future + ?Sized>(
    handle: &tokio::runtime::Handle,
    mut fut: Pin<&mut F>,
) -> Option<F::Output> {
    let mut out = None;
    poll_as_caller(handle, &mut |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            out = Some(v);
        }
    });
    out
}

/// [`inline`]'s part that does not depend on the future's type (instantiated once).
#[inline(never)]
fn poll_as_caller(handle: &tokio::runtime::Handle, poll: &mut dyn FnMut(&mut Context<'_>)) {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            CALLER.with(|c| c.set(self.0));
        }
    }
    let _ctx = handle.enter();
    let _reset = Reset(CALLER.with(|c| c.replace(true)));
    poll(&mut Context::from_waker(Waker::noop()));
}

fn on_caller() -> bool {
    CALLER.with(Cell::get)
}

/// A dial in progress on the runtime: its result, once there.
type Dialing = Arc<Mutex<Option<Result<Sock>>>>;

enum Link {
    Up(Arc<Sock>),
    Down { retry: Instant },
    Dialing(Dialing),
    Closed,
}

struct State {
    link: Link,
    rbuf: BytesMut,
    scan: Scan,
    /// When the last reply was read (`None`: never used since it was installed).
    last_use: Option<Instant>,
}

/// What [`Direct::call`] did.
pub(crate) enum Taken {
    /// Not sent here (busy, down, not a blocking caller, or it could not be written): send
    /// it on the shared connection.
    No,
    /// Sent here: its reply (a server error is `Ok(Reply::Error)`), or why there is none.
    Done(Result<Reply>),
}

/// The direct connections to one server, opened as concurrent blocking callers need them
/// (see the module docs).
pub(crate) struct Direct {
    lines: Vec<Line>,
}

impl Direct {
    /// Up to `lines` direct connections for `settings`, when its endpoint can have them
    /// (plain TCP or a unix socket, no TLS, no sentinels) and `lines` is not 0. None is
    /// dialled yet.
    ///
    /// The default of 16 was chosen by measurement on 2 CPUs (GETs from N threads vs N
    /// hiredis connections): with 4, 8 and 16 threads took 0.81–0.84×; with 16, 0.96–1.05×
    /// at every N (docs/PERFORMANCE.md).
    pub(crate) fn new(
        settings: &WireSettings,
        response_timeout: Duration,
        lines: usize,
    ) -> Option<Direct> {
        let ep = &settings.endpoint;
        if lines == 0 || ep.sentinel.is_some() {
            return None;
        }
        if !matches!(
            ep.addr,
            redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::Unix(_)
        ) {
            return None;
        }
        Some(Direct {
            lines: (0..lines)
                .map(|_| Line::new(settings, response_timeout))
                .collect(),
        })
    }

    /// Whether a blocking caller's call could take a direct connection now (one is up and
    /// free). Starts a dial on `handle` when one is due (for the calls after this one).
    pub(crate) fn ready(&self, handle: &tokio::runtime::Handle) -> bool {
        if self.lines.iter().any(|l| l.free.load(Ordering::Relaxed)) {
            return true;
        }
        // The first line not in use: pick up its dial, or start one (every line before it
        // is in use).
        for l in &self.lines {
            if let Ok(mut st) = l.state.try_lock() {
                l.tend(&mut st, handle, true);
                return matches!(st.link, Link::Up(_));
            }
        }
        false
    }

    /// Send one packed command on a free direct connection and wait for its reply, when
    /// the calling thread is a blocking caller inside [`inline`]; see [`Taken`]. The first
    /// free one takes it; a line is dialled only when every line before it is in use (so a
    /// lone caller has one, and N concurrent callers as many as there are lines).
    pub(crate) fn call(&self, bytes: &[u8], handle: &tokio::runtime::Handle) -> Taken {
        if !on_caller() {
            return Taken::No;
        }
        let mut busy_before = true;
        for l in &self.lines {
            let Ok(mut st) = l.state.try_lock() else {
                continue;
            };
            if !matches!(st.link, Link::Up(_)) {
                l.tend(&mut st, handle, busy_before);
                busy_before = false;
            }
            let Link::Up(sock) = &st.link else {
                continue;
            };
            let sock = sock.clone();
            l.free.store(false, Ordering::Relaxed);
            let out = l.round_trip(&mut st, &sock, bytes);
            if matches!(st.link, Link::Up(_)) {
                st.last_use = Some(Instant::now());
                l.free.store(true, Ordering::Relaxed);
            }
            return out;
        }
        Taken::No
    }

    /// Close: a caller waiting on a socket gets a `Closed` error at once; later calls take
    /// the shared connection (which refuses them as closed).
    pub(crate) fn close(&self) {
        for l in &self.lines {
            l.close();
        }
    }
}

/// One direct connection.
struct Line {
    settings: WireSettings,
    response_timeout: Duration,
    state: Mutex<State>,
    /// Up and not in use: whether a blocking caller should try the inline path.
    free: AtomicBool,
    /// The socket in use, for [`close`](Direct::close) to shut it down under a caller.
    sock: Mutex<Option<Arc<Sock>>>,
    closed: AtomicBool,
}

impl Line {
    fn new(settings: &WireSettings, response_timeout: Duration) -> Line {
        Line {
            settings: settings.clone(),
            response_timeout,
            state: Mutex::new(State {
                link: Link::Down {
                    retry: Instant::now(),
                },
                rbuf: BytesMut::new(),
                scan: Scan::new(settings.limits),
                last_use: None,
            }),
            free: AtomicBool::new(false),
            sock: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.free.store(false, Ordering::SeqCst);
        if let Some(s) = self.sock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            s.shutdown();
        }
        if let Ok(mut st) = self.state.try_lock() {
            st.link = Link::Closed;
        }
    }

    /// Pick up a finished dial; start one when down and due and `start`.
    fn tend(&self, st: &mut State, handle: &tokio::runtime::Handle, start: bool) {
        if self.closed.load(Ordering::SeqCst) {
            st.link = Link::Closed;
            return;
        }
        match &st.link {
            Link::Dialing(slot) => {
                let got = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                match got {
                    None => {}
                    Some(Ok(sock)) => match self.install(st, sock) {
                        Ok(()) => {}
                        Err(e) => self.down(st, &e, REDIAL),
                    },
                    Some(Err(e)) => self.down(st, &e, REDIAL),
                }
            }
            Link::Down { retry } if start && Instant::now() >= *retry => {
                let slot: Dialing = Arc::new(Mutex::new(None));
                let put = slot.clone();
                let settings = self.settings.clone();
                drop(handle.spawn_task(async move {
                    let r = dial_owned(settings, false).await;
                    *put.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }));
                st.link = Link::Dialing(slot);
            }
            _ => {}
        }
    }

    fn install(&self, st: &mut State, sock: Sock) -> std::io::Result<()> {
        sock.set_blocking(self.response_timeout)?;
        let sock = Arc::new(sock);
        *self.sock.lock().unwrap_or_else(|p| p.into_inner()) = Some(sock.clone());
        if self.closed.load(Ordering::SeqCst) {
            // Closed while dialling: `close` found no socket to shut down.
            sock.shutdown();
            st.link = Link::Closed;
            return Ok(());
        }
        st.rbuf.clear();
        st.scan = Scan::new(self.settings.limits);
        // Checked before its first use: the server may have closed it since the dial.
        st.last_use = None;
        st.link = Link::Up(sock);
        self.free.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Drop the connection (a redial after `after`).
    fn down(&self, st: &mut State, why: &dyn std::fmt::Display, after: Duration) {
        // The command connection's log target (net/node.rs, which sits above this file).
        log::debug!(target: "redipc::connection",
            "direct connection to {} dropped: {why}", self.settings.display);
        self.free.store(false, Ordering::Relaxed);
        self.sock.lock().unwrap_or_else(|p| p.into_inner()).take();
        st.link = if self.closed.load(Ordering::SeqCst) {
            Link::Closed
        } else {
            Link::Down {
                retry: Instant::now() + after,
            }
        };
        st.rbuf.clear();
    }

    /// The connection failed with a command written: it may have run.
    fn lost(&self, st: &mut State, why: &str) -> Taken {
        let err = if self.closed.load(Ordering::SeqCst) {
            Error::closed()
        } else {
            Error::new(ErrorKind::Connection, format!("connection lost: {why}"))
        };
        self.down(st, &err, Duration::ZERO);
        Taken::Done(Err(err))
    }

    fn round_trip(&self, st: &mut State, sock: &Sock, bytes: &[u8]) -> Taken {
        let began = Instant::now();
        // An end-of-file (or anything) the server sent while the connection was idle: the
        // connection is gone; the shared one (reconnected meanwhile) takes the command.
        let idle = st
            .last_use
            .is_none_or(|at| began.duration_since(at) > CHECK_AFTER);
        if idle && !sock.quiet() {
            self.down(st, &"the server closed it while idle", Duration::ZERO);
            return Taken::No;
        }
        let counters = &self.settings.counters;
        let mut written = 0;
        while written < bytes.len() {
            match sock.write(&bytes[written..]) {
                Ok(0) => {
                    self.down(st, &"write returned 0", Duration::ZERO);
                    return Taken::No;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => {
                    let err = self.timeout();
                    self.down(st, &err, Duration::ZERO);
                    return Taken::Done(Err(err));
                }
                Err(e) => {
                    // Never wholly written: it cannot have run.
                    self.down(st, &io_error(&e), Duration::ZERO);
                    return Taken::No;
                }
            }
        }
        let node = &self.settings.node_counters;
        counters
            .bytes_out
            .fetch_add(written as u64, Ordering::Relaxed);
        counters.commands.fetch_add(1, Ordering::Relaxed);
        node.bytes_out.fetch_add(written as u64, Ordering::Relaxed);
        node.commands.fetch_add(1, Ordering::Relaxed);
        let deadline = began + self.response_timeout;
        let mut shortened = false;
        let out = loop {
            match st.scan.complete(&st.rbuf) {
                Ok(Some(len)) if st.rbuf[0] == b'>' => {
                    st.rbuf.advance(len);
                    continue;
                }
                Ok(Some(len)) => {
                    let decoded = decode_reply(&st.rbuf[..len], 0);
                    st.rbuf.advance(len);
                    match decoded {
                        Ok((reply, _)) => break Taken::Done(Ok(reply)),
                        Err(e) => {
                            self.down(st, &e, Duration::ZERO);
                            return Taken::Done(Err(e));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.down(st, &e, Duration::ZERO);
                    return Taken::Done(Err(e));
                }
            }
            if !st.rbuf.is_empty() {
                // Part of a reply is in: bound the next read by what is left of the
                // deadline (the socket's own timeout is the whole response timeout).
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || sock.read_timeout(left).is_err() {
                    let err = self.timeout();
                    self.down(st, &err, Duration::ZERO);
                    return Taken::Done(Err(err));
                }
                shortened = true;
            }
            if st.rbuf.capacity() - st.rbuf.len() < 4096 {
                st.rbuf.reserve((16 * 1024).max(st.rbuf.len()));
            }
            let spare = st.rbuf.spare_capacity_mut();
            // SAFETY: reading into the spare capacity as bytes; only the `n` bytes the
            // kernel wrote are marked initialised below.
            let buf = unsafe {
                std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), spare.len())
            };
            match sock.read(buf) {
                Ok(0) => return self.lost(st, "the server closed the connection"),
                Ok(n) => {
                    // SAFETY: the kernel initialised `n` bytes of the spare capacity.
                    unsafe { st.rbuf.set_len(st.rbuf.len() + n) };
                    counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    node.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => {
                    let err = if self.closed.load(Ordering::SeqCst) {
                        Error::closed()
                    } else {
                        self.timeout()
                    };
                    self.down(st, &err, Duration::ZERO);
                    return Taken::Done(Err(err));
                }
                Err(e) => return self.lost(st, &io_error(&e)),
            }
        };
        if shortened && sock.read_timeout(self.response_timeout).is_err() {
            self.down(st, &"cannot reset the read timeout", Duration::ZERO);
        }
        if st.rbuf.is_empty() && st.rbuf.capacity() > 1 << 20 {
            // A big reply's buffer is not kept for the small ones after it.
            st.rbuf = BytesMut::new();
        }
        if !st.rbuf.is_empty() {
            // Bytes beyond the one reply a lone command has (push messages aside): the
            // stream is out of step; start again on a new connection.
            let extra = loop {
                match st.scan.complete(&st.rbuf) {
                    Ok(Some(len)) if st.rbuf[0] == b'>' => st.rbuf.advance(len),
                    _ => break !st.rbuf.is_empty(),
                }
            };
            if extra {
                self.down(st, &"bytes beyond the reply", Duration::ZERO);
            }
        }
        out
    }

    fn timeout(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "no reply from {} within the response timeout of {:?}",
                self.settings.display, self.response_timeout
            ),
        )
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// A socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`) expired.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

impl Sock {
    /// Blocking from now on, with `timeout` on every read and write.
    fn set_blocking(&self, timeout: Duration) -> std::io::Result<()> {
        let t = Some(timeout);
        let tcp = match self {
            Sock::Tcp(s) => s,
            Sock::Tls(s) => s.tcp(),
            Sock::Unix(s) => {
                s.set_nonblocking(false)?;
                s.set_write_timeout(t)?;
                return s.set_read_timeout(t);
            }
        };
        tcp.set_nonblocking(false)?;
        tcp.set_write_timeout(t)?;
        tcp.set_read_timeout(t)
    }

    fn read_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_read_timeout(Some(timeout)),
            Sock::Unix(s) => s.set_read_timeout(Some(timeout)),
            Sock::Tls(s) => s.tcp().set_read_timeout(Some(timeout)),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Sock::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Sock::Tls(s) => s.tcp().shutdown(std::net::Shutdown::Both),
        };
    }

    /// Nothing to read and no end-of-file: the server sent nothing since the last reply.
    fn quiet(&self) -> bool {
        let mut b = [0u8; 1];
        // SAFETY: a one-byte peek into a buffer on the stack.
        let n = unsafe {
            libc::recv(
                self.fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
        }
        match self {
            // Bytes in: over TLS they may be records without data (a session ticket).
            Sock::Tls(s) if n > 0 => s.quiet(),
            _ => false,
        }
    }
}

//! A command connection: one socket whose requests are pipelined by a driver task.
//!
//! Callers on any thread hand a request (the command's bytes and how many replies it gets)
//! to the driver over a channel and wait for its reply on a oneshot. The driver writes every
//! request waiting at that moment in one write (auto-pipelining), reads replies straight into
//! [`Reply`] values (resumable scan, then one decoding pass: no intermediate value tree) and
//! answers the requests in order. When the socket fails, every request in flight or queued
//! fails with a connection error, and the `on_down` hook (the shared connection's reconnect)
//! is told why.
//!
//! RESP3 pushes (`>`) arriving on a command connection are out-of-band and skipped.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, ErrorKind, Result};
use crate::net::resp::{Scan, decode_reply};
use crate::reply::Reply;

/// How to open a connection.
#[derive(Clone)]
pub(crate) struct WireSettings {
    /// Send `READONLY` after the handshake (reads from a cluster replica).
    pub readonly: bool,
    pub endpoint: Endpoint,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub client_name: Option<String>,
    pub resp3: bool,
    pub connect_timeout: Duration,
    /// `host:port` or socket path, for messages.
    pub display: String,
    /// What a reply may announce and take.
    pub limits: crate::net::resp::Limits,
    /// The client's statistics (bytes in and out are counted here).
    pub counters: std::sync::Arc<crate::stats::Counters>,
    /// This server's share of them.
    pub node_counters: std::sync::Arc<crate::stats::NodeCounters>,
}

/// Told once why the connection ended (not when it ends because every handle was dropped).
pub(crate) type DownHook = Box<dyn FnOnce(Error) + Send>;

/// Why a request failed.
pub(crate) enum Failure {
    /// It never reached the socket (the connection was gone first): sending it again, on
    /// another connection, cannot run it twice. Its bytes come back for that.
    NotSent(Error, bytes::Bytes),
    /// It was written, or may have been: it may have run on the server.
    Sent(Error),
}

impl Failure {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::NotSent(e, _) | Failure::Sent(e) => e,
        }
    }
}

/// What a request gets.
pub(crate) type Outcome = std::result::Result<Reply, Failure>;

/// A request handed to the driver ([`Wire::send`]): completes with its outcome.
pub(crate) struct Pending {
    rx: oneshot::Receiver<Outcome>,
    ended: std::sync::Arc<std::sync::OnceLock<Error>>,
}

impl std::future::Future for Pending {
    type Output = Outcome;

    #[allow(clippy::result_large_err)]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Outcome> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                let why = self.ended.get().cloned();
                Err(Failure::Sent(why.unwrap_or_else(|| {
                    lost("the connection ended before the reply")
                })))
            })
        })
    }
}

/// How many replies a request gets.
#[derive(Clone, Copy)]
pub(crate) enum Expect {
    /// One reply, returned as it is.
    One,
    /// `n` replies, returned as [`Reply::Array`].
    Many(usize),
}

struct Request {
    bytes: bytes::Bytes,
    expect: Expect,
    reply: oneshot::Sender<Outcome>,
}

struct Waiting {
    expect: Expect,
    got: Vec<Reply>,
    reply: oneshot::Sender<Outcome>,
}

/// A handle on one connection (cheap to clone; the connection closes when the last handle
/// is dropped).
#[derive(Clone)]
pub(crate) struct Wire {
    tx: mpsc::UnboundedSender<Request>,
    /// Why the driver ended, set before it stops taking requests: a request refused
    /// afterwards says why (a TLS alert, the server closing) rather than only "closed".
    ended: std::sync::Arc<std::sync::OnceLock<Error>>,
    /// The server's id of this connection (`CLIENT ID`), once asked (`None`: refused, by
    /// ACLs): a blocking command whose caller gave up is ended with `CLIENT UNBLOCK`
    /// (`crate::taken`).
    id: std::sync::Arc<std::sync::OnceLock<Option<i64>>>,
}

pub(crate) use crate::net::dial::{Io, connect_timed_out, hello, io_error, open_addr};

/// Where a connection goes: an address, or the master the sentinels name (then `addr` is
/// not used); TLS when the URL is `rediss://` or `rediss-sentinel://`.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub addr: redis::ConnectionAddr,
    pub tls: Option<std::sync::Arc<crate::net::tls::Tls>>,
    pub sentinel: Option<std::sync::Arc<crate::net::sentinel::Sentinel>>,
}

/// The handshake's commands (`HELLO 3` or `AUTH` and `CLIENT SETNAME`, then `SELECT`), each
/// with its name for messages.
pub(crate) fn handshake_steps(s: &WireSettings) -> Vec<(redis::Cmd, &'static str)> {
    let mut steps: Vec<(redis::Cmd, &'static str)> = Vec::new();
    if s.resp3 {
        let hello = hello(
            s.username.as_deref(),
            s.password.as_deref(),
            s.client_name.as_deref(),
        );
        steps.push((hello, "HELLO"));
    } else {
        if let Some(pass) = &s.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &s.username {
                auth.arg(user);
            }
            auth.arg(pass);
            steps.push((auth, "AUTH"));
        }
        if let Some(name) = &s.client_name {
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("SETNAME").arg(name);
            steps.push((cmd, "CLIENT SETNAME"));
        }
    }
    if s.readonly {
        steps.push((redis::cmd("READONLY"), "READONLY"));
    }
    if s.db != 0 {
        let mut cmd = redis::cmd("SELECT");
        cmd.arg(s.db);
        steps.push((cmd, "SELECT"));
    }
    steps
}

/// Connect a socket to the endpoint by `deadline` (`dial::open_addr`); for a sentinel
/// endpoint the sentinels are asked first, and the master's address comes back.
pub(crate) async fn open_socket(
    ep: &Endpoint,
    deadline: tokio::time::Instant,
    limit: Duration,
    what: &str,
) -> Result<(Box<dyn Io>, Option<crate::net::sentinel::Addr>)> {
    let resolved = match &ep.sentinel {
        Some(s) => Some(
            tokio::time::timeout_at(deadline, s.resolve(deadline))
                .await
                .map_err(|_| connect_timed_out(limit, what))?
                .map_err(|e| e.context(what))?,
        ),
        None => None,
    };
    let (addr, what) = match &resolved {
        Some((host, port)) => (
            redis::ConnectionAddr::Tcp(host.clone(), *port),
            format!("{what} (master at {host}:{port})"),
        ),
        None => (ep.addr.clone(), what.to_owned()),
    };
    let io = open_addr(&addr, ep.tls.as_deref(), deadline, limit, &what).await?;
    Ok((io, resolved))
}

/// What a connection to `master` (found through the endpoint's sentinels) watches.
pub(crate) fn moved_watch(ep: &Endpoint, master: &Option<crate::net::sentinel::Addr>) -> Moved {
    match (&ep.sentinel, master) {
        (Some(sentinel), Some(addr)) => Some((sentinel.moved(), addr.clone())),
        _ => None,
    }
}

fn lost(why: &str) -> Error {
    Error::new(ErrorKind::Connection, format!("connection lost: {why}"))
}

impl Wire {
    /// Connect, start the driver, and run the handshake (`HELLO 3` or `AUTH`, the client
    /// name, `SELECT`), all within the connect timeout.
    /// When `shutdown` turns true the connection ends at once: calls in flight or queued
    /// on it fail with a `Closed` error (the client was closed).
    pub(crate) async fn connect(
        s: &WireSettings,
        on_down: Option<DownHook>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Wire> {
        let what = || format!("connect to {}", s.display);
        let deadline = tokio::time::Instant::now() + s.connect_timeout;
        let (io, master) = open_socket(&s.endpoint, deadline, s.connect_timeout, &what()).await?;
        // A connection to a master found by the sentinels ends when the master moves.
        let moved = moved_watch(&s.endpoint, &master);
        let (tx, rx) = mpsc::unbounded_channel();
        let ended = std::sync::Arc::new(std::sync::OnceLock::new());
        let ends = Ends {
            ended: ended.clone(),
            moved,
            on_down,
            shutdown,
        };
        crate::net::spawn::spawn_task(drive(
            io,
            rx,
            ends,
            s.limits,
            s.counters.clone(),
            s.node_counters.clone(),
        ));
        let wire = Wire {
            tx,
            ended,
            id: Default::default(),
        };
        let handshake = async {
            let mut steps = handshake_steps(s);
            // The sentinels' answer may be stale (a failover under way): check the role.
            if master.is_some() {
                steps.push((redis::cmd("ROLE"), "ROLE"));
            }
            for (cmd, name) in &steps {
                match wire.command(cmd).await {
                    Ok(Reply::Error(e)) => return Err(Error::from(e).context(*name)),
                    Ok(r) if *name == "ROLE" => is_master(&r)?,
                    Ok(_) => {}
                    Err(e) => return Err(e.context(*name)),
                }
            }
            Ok(())
        };
        match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(())) => Ok(wire),
            Ok(Err(e)) => Err(e.context(what())),
            Err(_) => Err(connect_timed_out(s.connect_timeout, what())),
        }
    }

    /// Send `bytes` (one command, or a pipeline of them) and wait for the replies. A
    /// failure says whether the bytes may have reached the server.
    // The error side carries the request's bytes back (`NotSent`), once per failed call.
    #[allow(clippy::result_large_err)]
    pub(crate) async fn request(&self, bytes: bytes::Bytes, expect: Expect) -> Outcome {
        self.send(bytes, expect)?.await
    }

    /// Hand `bytes` to the driver now; the outcome comes through the [`Pending`] future,
    /// which may be awaited elsewhere (by a task that takes over from a caller that gave up).
    #[allow(clippy::result_large_err)]
    pub(crate) fn send(
        &self,
        bytes: bytes::Bytes,
        expect: Expect,
    ) -> std::result::Result<Pending, Failure> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(r)) = self.tx.send(Request {
            bytes,
            expect,
            reply,
        }) {
            let why = self.ended.get().cloned();
            return Err(Failure::NotSent(
                why.unwrap_or_else(|| lost("the connection is closed")),
                r.bytes,
            ));
        }
        Ok(Pending {
            rx,
            ended: self.ended.clone(),
        })
    }

    /// Whether the connection has ended (its driver is gone: the socket failed or closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The server's id of this connection: `None` before it was asked ([`Wire::set_id`]),
    /// `Some(None)` when the server refused to say.
    pub(crate) fn id(&self) -> Option<Option<i64>> {
        self.id.get().copied()
    }

    pub(crate) fn set_id(&self, id: Option<i64>) {
        let _ = self.id.set(id);
    }

    /// Send one command; its reply (a server error is `Ok(Reply::Error)`).
    pub(crate) async fn command(&self, cmd: &redis::Cmd) -> Result<Reply> {
        self.request(cmd.get_packed_command().into(), Expect::One)
            .await
            .map_err(Failure::into_error)
    }

    /// Send a pipeline in one write (an atomic one wrapped in `MULTI`/`EXEC`); every reply,
    /// `MULTI`'s and `EXEC`'s included.
    pub(crate) async fn pipeline(&self, pipe: &redis::Pipeline) -> Result<Vec<Reply>> {
        let n = pipe.len() + if pipe.is_transaction() { 2 } else { 0 };
        if n == 0 {
            return Ok(Vec::new());
        }
        match self
            .request(pipe.get_packed_pipeline().into(), Expect::Many(n))
            .await
            .map_err(Failure::into_error)?
        {
            Reply::Array(v) => Ok(v),
            _ => Err(Error::new(ErrorKind::Protocol, "pipeline replies lost")),
        }
    }
}

/// Whether `e` says the sentinels named a server that is not the master (yet, or any
/// more): worth asking again, unlike a refused password or an unknown master name.
pub(crate) fn stale_master(e: &Error) -> bool {
    e.message().contains(STALE)
}

const STALE: &str = "the sentinels' answer was stale";

/// `ROLE`'s answer is a master's (`["master", ...]`), or the error saying what it is.
fn is_master(role: &Reply) -> Result<()> {
    let role = role
        .as_slice()
        .and_then(|v| v.first())
        .and_then(Reply::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| format!("{role:?}"));
    if role == "master" {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Connection,
        format!("the server is a {role}, not the master: {STALE} (a failover under way?)"),
    ))
}

/// For a connection to a master found by the sentinels: where the sentinels say the master
/// is, and where this connection went.
pub(crate) type Moved = Option<(
    watch::Receiver<Option<crate::net::sentinel::Addr>>,
    crate::net::sentinel::Addr,
)>;

/// Ends when the master (found by the sentinels) moves away from `at`; never without one.
pub(crate) async fn master_moved(moved: &mut Moved) -> Error {
    let Some((rx, at)) = moved else {
        return std::future::pending().await;
    };
    let now = rx
        .wait_for(|now| now.as_ref().is_some_and(|now| now != at))
        .await
        .map(|now| now.clone());
    match now {
        Ok(Some((host, port))) => lost(&format!("the master moved to {host}:{port} (sentinel)")),
        _ => std::future::pending().await,
    }
}

/// What ends a connection besides its socket, and who is told why.
struct Ends {
    /// Why it ended, for requests refused after it.
    ended: std::sync::Arc<std::sync::OnceLock<Error>>,
    /// The master moving away (sentinels).
    moved: Moved,
    /// The shared connection's reconnect.
    on_down: Option<DownHook>,
    /// The client closing.
    shutdown: watch::Receiver<bool>,
}

/// Run one connection until it fails or every handle is gone.
async fn drive(
    io: Box<dyn Io>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    ends: Ends,
    limits: crate::net::resp::Limits,
    counters: std::sync::Arc<crate::stats::Counters>,
    node: std::sync::Arc<crate::stats::NodeCounters>,
) {
    let Ends {
        ended,
        mut moved,
        on_down,
        mut shutdown,
    } = ends;
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut inflight: VecDeque<Waiting> = VecDeque::new();
    let mut wbuf: Vec<u8> = Vec::new();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut scan = Scan::new(limits);
    let mut batch: Vec<Request> = Vec::new();
    let err = loop {
        tokio::select! {
            biased;
            () = async { drop(shutdown.wait_for(|closed| *closed).await) } => {
                let _ = wr.shutdown().await;
                break Error::closed();
            }
            err = master_moved(&mut moved) => {
                let _ = wr.shutdown().await;
                break err;
            }
            read = fill(&mut rd, &mut rbuf) => {
                match read {
                    Ok(0) => break lost("the server closed the connection"),
                    Ok(n) => {
                        counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        node.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) => break lost(&io_error(&e)),
                }
                if let Err(e) = answer(&mut rbuf, &mut scan, &mut inflight) {
                    break e;
                }
            }
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    // Every handle dropped: close quietly.
                    let _ = wr.shutdown().await;
                    return;
                }
                let (result, written) = if batch.len() == 1 {
                    write_counting(&mut wr, &batch[0].bytes).await
                } else {
                    wbuf.clear();
                    for r in &batch {
                        wbuf.extend_from_slice(&r.bytes);
                    }
                    write_counting(&mut wr, &wbuf).await
                };
                counters.bytes_out.fetch_add(written as u64, Ordering::Relaxed);
                node.bytes_out.fetch_add(written as u64, Ordering::Relaxed);
                if wbuf.capacity() > 1 << 20 {
                    wbuf = Vec::new();
                }
                // A request whose bytes were not all written cannot have run (the server
                // runs only whole commands): it fails as not sent, so it can be sent again.
                let failed = result.err().map(|e| lost(&io_error(&e)));
                let mut end = 0;
                for r in batch.drain(..) {
                    end += r.bytes.len();
                    if let Some(err) = &failed
                        && end > written
                    {
                        let _ = r.reply.send(Err(Failure::NotSent(err.clone(), r.bytes)));
                        continue;
                    }
                    let got = match r.expect {
                        Expect::One => Vec::new(),
                        Expect::Many(n) => Vec::with_capacity(n),
                    };
                    let n = match r.expect {
                        Expect::One => 1,
                        Expect::Many(n) => n as u64,
                    };
                    counters.commands.fetch_add(n, Ordering::Relaxed);
                    node.commands.fetch_add(n, Ordering::Relaxed);
                    inflight.push_back(Waiting { expect: r.expect, got, reply: r.reply });
                }
                if let Some(err) = failed {
                    break err;
                }
            }
        }
    };
    for w in inflight.drain(..) {
        let _ = w.reply.send(Err(Failure::Sent(err.clone())));
    }
    let _ = ended.set(err.clone());
    rx.close();
    while let Ok(r) = rx.try_recv() {
        // Never written: the caller may send it again elsewhere.
        let _ = r.reply.send(Err(Failure::NotSent(err.clone(), r.bytes)));
    }
    if let Some(hook) = on_down {
        hook(err);
    }
}

/// Write all of `buf`; on an error, also how many bytes were written before it.
async fn write_counting<W: AsyncWrite + Unpin>(
    wr: &mut W,
    buf: &[u8],
) -> (std::io::Result<()>, usize) {
    let mut written = 0;
    while written < buf.len() {
        match wr.write(&buf[written..]).await {
            Ok(0) => return (Err(std::io::ErrorKind::WriteZero.into()), written),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), written),
        }
    }
    // A TLS stream may keep encrypted bytes until flushed (a no-op on a plain socket).
    (wr.flush().await, written)
}

async fn fill<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    // Grow by the buffer's own size at least, so a large reply costs O(n) copies.
    let want = (16 * 1024).max(buf.len());
    if buf.capacity() - buf.len() < want / 2 {
        buf.reserve(want);
    }
    rd.read_buf(buf).await
}

/// Answer waiting requests with every complete reply in `buf`.
fn answer(
    buf: &mut BytesMut,
    scan: &mut Scan,
    inflight: &mut VecDeque<Waiting>,
) -> std::result::Result<(), Error> {
    while let Some(len) = scan.complete(buf)? {
        if buf[0] == b'>' {
            buf.advance(len);
            continue;
        }
        let (reply, _) = decode_reply(&buf[..len], 0)?;
        buf.advance(len);
        let Some(w) = inflight.front_mut() else {
            return Err(Error::new(
                ErrorKind::Protocol,
                "a reply arrived that no request was waiting for",
            ));
        };
        let done = match w.expect {
            Expect::One => Some(reply),
            Expect::Many(n) => {
                w.got.push(reply);
                (w.got.len() == n).then(|| Reply::Array(std::mem::take(&mut w.got)))
            }
        };
        if let Some(reply) = done
            && let Some(w) = inflight.pop_front()
        {
            // The caller may have given up (timeout): then nobody wants it.
            let _ = w.reply.send(Ok(reply));
        }
    }
    Ok(())
}

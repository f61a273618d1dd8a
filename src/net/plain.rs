//! A socket (TCP or unix; TLS over TCP for a blocking caller's) opened and set up (the
//! handshake) on the runtime, then handed to an owner that drives it itself: an event
//! loop's [`LocalWire`] (plain sockets only: it waits for readiness of the descriptor,
//! which says nothing of what rustls has buffered) or a blocking caller's [`Direct`]
//! connection.
//!
//! [`LocalWire`]: crate::net::local::LocalWire
//! [`Direct`]: crate::net::direct::Direct

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, ErrorKind, Result};
use crate::net::resp::{Scan, decode_reply};
use crate::net::tls::TlsSock;
use crate::net::wire::{WireSettings, handshake_steps, io_error};
use crate::reply::Reply;

/// A connected socket.
pub(crate) enum Sock {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    /// TLS over TCP (blocking callers only, see the module docs).
    Tls(Box<TlsSock>),
}

impl Sock {
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
            Sock::Tls(s) => s.tcp().as_raw_fd(),
        }
    }
    pub(crate) fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).read(buf),
            Sock::Unix(s) => (&*s).read(buf),
            Sock::Tls(s) => s.read(buf),
        }
    }
    pub(crate) fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).write(buf),
            Sock::Unix(s) => (&*s).write(buf),
            Sock::Tls(s) => s.write(buf),
        }
    }
}

/// Open a socket to the endpoint (with the TLS handshake when it has TLS) and run the
/// handshake on it, within the connect timeout; the socket comes back non-blocking.
/// `count`: the setup commands count in the client's statistics.
pub(crate) async fn dial_owned(s: WireSettings, count: bool) -> Result<Sock> {
    let what = format!("connect to {}", s.display);
    let work = async {
        let failed = |e: std::io::Error| Error::new(ErrorKind::Connection, io_error(&e));
        match &s.endpoint.addr {
            redis::ConnectionAddr::Tcp(host, port) => {
                let mut st = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(failed)?;
                st.set_nodelay(true).map_err(failed)?;
                match &s.endpoint.tls {
                    None => {
                        handshake(&mut st, &s, count).await?;
                        Ok(Sock::Tcp(st.into_std().map_err(failed)?))
                    }
                    Some(tls) => {
                        let mut st = tls.handshake(st, host).await.map_err(failed)?;
                        handshake(&mut st, &s, count).await?;
                        Ok(Sock::Tls(Box::new(
                            TlsSock::from_stream(st).map_err(failed)?,
                        )))
                    }
                }
            }
            redis::ConnectionAddr::Unix(path) => {
                let mut st = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(failed)?;
                handshake(&mut st, &s, count).await?;
                Ok(Sock::Unix(st.into_std().map_err(failed)?))
            }
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                "a local connection needs a TCP or unix-socket endpoint",
            )),
        }
    };
    match tokio::time::timeout(s.connect_timeout, work).await {
        Ok(r) => r.map_err(|e| e.context(&what)),
        Err(_) => Err(crate::net::wire::connect_timed_out(s.connect_timeout, what)),
    }
}

async fn handshake<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    st: &mut S,
    s: &WireSettings,
    count: bool,
) -> Result<()> {
    let failed = |e: std::io::Error| Error::new(ErrorKind::Connection, io_error(&e));
    let steps = handshake_steps(s);
    let mut out = Vec::new();
    for (cmd, _) in &steps {
        cmd.write_packed_command(&mut out);
    }
    st.write_all(&out).await.map_err(failed)?;
    if count {
        let n = steps.len() as u64;
        s.counters
            .commands
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        s.node_counters
            .commands
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    let mut buf = BytesMut::with_capacity(4096);
    let mut scan = Scan::new(s.limits);
    for (_, name) in &steps {
        let len = loop {
            if let Some(len) = scan.complete(&buf)? {
                break len;
            }
            if st.read_buf(&mut buf).await.map_err(failed)? == 0 {
                return Err(Error::new(
                    ErrorKind::Connection,
                    "connection lost: the server closed the connection",
                )
                .context(*name));
            }
        };
        let (reply, _) = decode_reply(&buf[..len], 0)?;
        buf.advance(len);
        if let Reply::Error(e) = reply {
            return Err(Error::from(e).context(*name));
        }
    }
    Ok(())
}

//! Opening a socket: TCP (`TCP_NODELAY`) or a unix socket, then the TLS handshake when the
//! client has TLS; the connection setup command (`HELLO`); the messages of connect
//! failures. Used by `wire` (command connections) and `sentinel` (connections to
//! sentinels), below both.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, ErrorKind, Result};
use crate::net::tls::Tls;

/// A connected socket (TCP or unix).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Connect a socket to `addr` (TCP with `TCP_NODELAY`, then the TLS handshake when `tls`
/// is given; or a unix socket) by `deadline`; `limit` and `what` are for the messages.
pub(crate) async fn open_addr(
    addr: &redis::ConnectionAddr,
    tls: Option<&Tls>,
    deadline: tokio::time::Instant,
    limit: Duration,
    what: &str,
) -> Result<Box<dyn Io>> {
    let failed = |e: std::io::Error| Error::new(ErrorKind::Connection, io_error(&e)).context(what);
    let timed_out = || connect_timed_out(limit, what);
    let within = |f| tokio::time::timeout_at(deadline, f);
    Ok(match addr {
        redis::ConnectionAddr::Tcp(host, port) => {
            let stream = within(tokio::net::TcpStream::connect((host.as_str(), *port)))
                .await
                .map_err(|_| timed_out())?
                .map_err(failed)?;
            stream.set_nodelay(true).map_err(failed)?;
            match tls {
                Some(tls) => Box::new(
                    tokio::time::timeout_at(deadline, tls.handshake(stream, host))
                        .await
                        .map_err(|_| {
                            Error::new(
                                ErrorKind::Connection,
                                format!(
                                    "the TLS handshake did not finish within the connect timeout of {limit:?} (is this the server's TLS port?)"
                                ),
                            )
                            .context(what)
                        })?
                        .map_err(failed)?,
                ),
                None => Box::new(stream),
            }
        }
        redis::ConnectionAddr::Unix(path) => Box::new(
            tokio::time::timeout_at(deadline, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| timed_out())?
                .map_err(failed)?,
        ),
        other => {
            return Err(Error::new(
                ErrorKind::Connection,
                format!("unsupported address {other}"),
            ));
        }
    })
}

/// The message of a connection's I/O error (a TLS failure says why in words).
pub(crate) fn io_error(e: &std::io::Error) -> String {
    crate::net::tls::describe(e, None)
}

/// `HELLO 3 [AUTH user pass] [SETNAME name]`.
pub(crate) fn hello(
    username: Option<&str>,
    password: Option<&str>,
    client_name: Option<&str>,
) -> redis::Cmd {
    let mut hello = redis::cmd("HELLO");
    hello.arg(3);
    if let Some(pass) = password {
        hello
            .arg("AUTH")
            .arg(username.unwrap_or("default"))
            .arg(pass);
    }
    if let Some(name) = client_name {
        hello.arg("SETNAME").arg(name);
    }
    hello
}

/// The error for a connect that did not finish within `limit`.
pub(crate) fn connect_timed_out(limit: Duration, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Connection,
        format!("no connection within the connect timeout of {limit:?}"),
    )
    .context(what)
}

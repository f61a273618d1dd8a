//! Built without the `tls` feature: TLS settings are accepted by the API, and a
//! `rediss://` URL is refused when the client is made.

use super::TlsOptions;
use crate::error::{Error, ErrorKind, Result};

/// Never made: [`Tls::new`] refuses.
pub(crate) struct Tls {
    _never: std::convert::Infallible,
}

impl Tls {
    pub(crate) fn new(_opts: &TlsOptions, _host: Option<&str>) -> Result<std::sync::Arc<Tls>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "TLS (rediss://) is not built into this library (built without the `tls` feature)",
        ))
    }

    pub(crate) async fn handshake(
        &self,
        _tcp: tokio::net::TcpStream,
        _host: &str,
    ) -> std::io::Result<tokio::net::TcpStream> {
        match self._never {}
    }
}

/// The message of a connection's I/O error.
pub(crate) fn describe(e: &std::io::Error, _name: Option<&str>) -> String {
    e.to_string()
}

/// The stream a handshake would give (never made).
pub(crate) type TlsStream = tokio::net::TcpStream;

/// A blocking caller's TLS connection (never made).
pub(crate) struct TlsSock {
    never: std::convert::Infallible,
}

impl TlsSock {
    pub(crate) fn from_stream(_s: TlsStream) -> std::io::Result<TlsSock> {
        Err(std::io::Error::other("TLS is not built into this library"))
    }

    pub(crate) fn tcp(&self) -> &std::net::TcpStream {
        match self.never {}
    }

    pub(crate) fn quiet(&self) -> bool {
        match self.never {}
    }

    pub(crate) fn read(&self, _buf: &mut [u8]) -> std::io::Result<usize> {
        match self.never {}
    }

    pub(crate) fn write(&self, _buf: &[u8]) -> std::io::Result<usize> {
        match self.never {}
    }
}

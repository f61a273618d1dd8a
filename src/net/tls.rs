//! TLS (`rediss://`): rustls with the ring provider, chosen here so that no process-wide
//! provider has to be installed (C and Python programs cannot). The settings are read and
//! checked once, when the client is created; every connection the client opens (commands,
//! pub/sub, dedicated ones, reconnects) goes through the same [`Tls`].

use std::path::PathBuf;

use crate::error::{Error, Result};

// The `tls` feature (on by default) builds rustls in; without it a `rediss://` URL is an
// `Unsupported` error (a smaller library for boards that talk to a local server).
#[cfg(feature = "tls")]
mod rustls_backend;
#[cfg(feature = "tls")]
pub(crate) use rustls_backend::{Tls, TlsSock, describe};
#[cfg(not(feature = "tls"))]
mod none;
#[cfg(not(feature = "tls"))]
pub(crate) use none::{Tls, TlsSock, describe};

/// PEM data: a file to read, or the PEM text itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file holding PEM (read when the client is created).
    File(PathBuf),
    /// PEM text (`-----BEGIN CERTIFICATE-----` ...).
    Data(Vec<u8>),
}

impl Pem {
    /// PEM read from the file at `path` when the client is created.
    pub fn file(path: impl Into<PathBuf>) -> Pem {
        Pem::File(path.into())
    }

    /// PEM given as text or bytes.
    pub fn data(pem: impl Into<Vec<u8>>) -> Pem {
        Pem::Data(pem.into())
    }

    /// What it is, for messages (never the PEM itself).
    pub(crate) fn describe(&self) -> String {
        match self {
            Pem::File(p) => format!("file {}", p.display()),
            Pem::Data(d) => format!("PEM data ({} bytes)", d.len()),
        }
    }

    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn read(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p).map_err(|e| {
                Error::invalid(format!("TLS {what}: cannot read {}: {e}", self.describe()))
            }),
            Pem::Data(d) => Ok(d.clone()),
        }
    }
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// TLS settings of a client: they apply when its URL is `rediss://`. Start from
/// [`TlsOptions::default`] (the system's root certificates, the URL's host as the name to
/// check) and chain the builder methods. `Debug` does not show a private key.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// CA certificates that may sign the server's certificate; `None`: the system's roots.
    pub ca: Option<Pem>,
    /// Our certificate (chain), for servers that ask for one (mutual TLS).
    pub cert: Option<Pem>,
    /// The private key of `cert`.
    pub key: Option<Pem>,
    /// The name the server's certificate must carry, instead of the URL's host (cluster
    /// nodes and sentinels announce IP addresses that certificates rarely hold).
    pub server_name: Option<String>,
    /// Accept any server certificate: **no protection against a man in the middle**. For
    /// tests and diagnosis only; off by default.
    pub insecure: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key.as_ref().map(|_| "<hidden>"))
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsOptions {
    /// Trust the CA certificates in `ca` (instead of the system's roots).
    pub fn ca(mut self, ca: Pem) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Present this certificate and key (mutual TLS).
    pub fn client_cert(mut self, cert: Pem, key: Pem) -> Self {
        self.cert = Some(cert);
        self.key = Some(key);
        self
    }

    /// Check the server's certificate against `name` instead of the URL's host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Accept any server certificate (tests only: see [`TlsOptions::insecure`]).
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Whether anything differs from the defaults (TLS options on a `redis://` URL are a
    /// mistake the client reports).
    pub(crate) fn is_set(&self) -> bool {
        *self != TlsOptions::default()
    }
}

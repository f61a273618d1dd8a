//! The TLS of a client, with rustls and the ring provider.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::{Pem, TlsOptions};
use crate::error::{Error, Result};

/// A client's TLS: the connector, built once, and the server name override.
pub(crate) struct Tls {
    connector: tokio_rustls::TlsConnector,
    /// The name to check instead of the host connected to.
    server_name: Option<String>,
}

/// `name` as rustls checks it (a DNS name or an IP address).
fn server_name(name: &str) -> Result<ServerName<'static>> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| {
        Error::invalid(format!(
            "TLS: {name:?} is not a valid server name to check the certificate against"
        ))
    })
}

/// ring rather than aws-lc-rs: a fraction of the size and no cmake for the small boards the
/// C library ships to. rustls deprecates ring's provider for lacking post-quantum key
/// exchange, which the Redis servers of today (OpenSSL 3.0 builds) do not offer either.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's root certificates, read once per process.
fn system_roots() -> Result<Arc<rustls::RootCertStore>> {
    static ROOTS: OnceLock<std::result::Result<Arc<rustls::RootCertStore>, String>> =
        OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = rustls::RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), |e| e.to_string());
                return Err(format!(
                    "TLS: no CA given and the system's root certificates cannot be used ({why}); set the CA bundle"
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
        .map_err(Error::invalid)
}

fn certificates(pem: &Pem, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let data = pem.read(what)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(format!(
                "TLS {what}: {} is not valid PEM ({e})",
                pem.describe()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "TLS {what}: {} holds no certificate",
            pem.describe()
        )));
    }
    Ok(certs)
}

impl Tls {
    /// Read and check the settings; `host` is the URL's host (checked now when no
    /// `server_name` is set; sentinels' masters are checked as they are found).
    pub(crate) fn new(opts: &TlsOptions, host: Option<&str>) -> Result<Arc<Tls>> {
        let shown_name = opts
            .server_name
            .clone()
            .or_else(|| host.map(str::to_owned))
            .unwrap_or_default();
        if opts.server_name.is_some() || host.is_some() {
            server_name(&shown_name)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid(format!("TLS: {e}")))?;
        let builder = if opts.insecure {
            log::warn!(
                target: "redipc::connection",
                "TLS to {shown_name}: certificate checks are off (insecure): no protection against a man in the middle"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
        } else {
            let roots = match &opts.ca {
                None => system_roots()?,
                Some(ca) => {
                    let mut store = rustls::RootCertStore::empty();
                    for cert in certificates(ca, "CA")? {
                        store.add(cert).map_err(|e| {
                            Error::invalid(format!(
                                "TLS CA: a certificate in {} cannot be used: {e}",
                                ca.describe()
                            ))
                        })?;
                    }
                    Arc::new(store)
                }
            };
            builder.with_root_certificates(roots)
        };
        let config = match (&opts.cert, &opts.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "client certificate")?;
                let data = key.read("client key")?;
                let key_der = PrivateKeyDer::from_pem_slice(&data).map_err(|_| {
                    Error::invalid(format!(
                        "TLS client key: {} holds no private key in PEM",
                        key.describe()
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| match e {
                        rustls::Error::InconsistentKeys(_) => Error::invalid(format!(
                            "TLS client certificate: {} does not go with the key in {}",
                            cert.describe(),
                            key.describe()
                        )),
                        other => Error::invalid(format!(
                            "TLS client key: {} cannot be used ({other})",
                            key.describe()
                        )),
                    })?
            }
            _ => {
                return Err(Error::invalid(
                    "TLS: a client certificate needs its key and a key needs its certificate",
                ));
            }
        };
        Ok(Arc::new(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: opts.server_name.clone(),
        }))
    }

    /// Run the TLS handshake over a socket connected to `host`.
    pub(crate) async fn handshake(
        &self,
        tcp: tokio::net::TcpStream,
        host: &str,
    ) -> std::io::Result<TlsStream> {
        let shown = self.server_name.as_deref().unwrap_or(host);
        let name = server_name(shown)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.text()))?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), describe(&e, Some(shown))))
    }
}

/// The stream of a TLS handshake done on the runtime.
pub(crate) type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection set up on the runtime, then driven by one blocking caller at a time
/// (a direct connection, `net/direct.rs`): the socket (blocking, with timeouts) and
/// rustls's state. The line's own lock keeps callers apart; this mutex is never contended.
pub(crate) struct TlsSock {
    tcp: std::net::TcpStream,
    conn: Mutex<rustls::ClientConnection>,
}

impl TlsSock {
    /// Take over a handshaken stream (what rustls read ahead stays in its state).
    pub(crate) fn from_stream(s: TlsStream) -> std::io::Result<TlsSock> {
        let (tcp, conn) = s.into_inner();
        Ok(TlsSock {
            tcp: tcp.into_std()?,
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn tcp(&self) -> &std::net::TcpStream {
        &self.tcp
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rustls::ClientConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read plaintext (records that carry none, such as session tickets, are taken in
    /// on the way). An end of the connection, with or without `close_notify`, is `Ok(0)`.
    pub(crate) fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut c = self.conn();
        let mut tcp = &self.tcp;
        match rustls::Stream::new(&mut *c, &mut tcp).read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }

    /// Whether nothing but records without data (session tickets) came since the last
    /// reply: takes such records in without blocking; data or an end is not quiet.
    pub(crate) fn quiet(&self) -> bool {
        if self.tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let r = self.read(&mut b);
        self.tcp.set_nonblocking(false).is_ok()
            && matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Encrypt `buf` and write it out; unlike `rustls::Stream`, a failed write is an
    /// error here (the caller must know whether the command went out whole).
    pub(crate) fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        let mut c = self.conn();
        let mut tcp = &self.tcp;
        let n = c.writer().write(buf)?;
        while c.wants_write() {
            if c.write_tls(&mut tcp)? == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
        }
        Ok(n)
    }
}

/// The message for an I/O error of a connection: a TLS failure named by its reason.
pub(crate) fn describe(e: &std::io::Error, name: Option<&str>) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    use rustls::AlertDescription as A;
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "TLS: the server's certificate is not signed by a trusted CA (unknown issuer; give the CA that signed it)".to_owned(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "TLS: the server's certificate is not valid for the name {} (name mismatch; set the server name to one the certificate holds)",
                name.unwrap_or("checked")
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS: the server's certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS: the server's certificate is not valid yet (check the clock)".to_owned()
            }
            other => format!("TLS: the server's certificate is refused: {other:?}"),
        },
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "TLS: the server requires a client certificate (mutual TLS): give a certificate and key".to_owned()
        }
        rustls::Error::AlertReceived(
            a @ (A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied),
        ) => format!("TLS: the server refused our client certificate ({a:?})"),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "TLS: the server did not answer in TLS (is this its TLS port?)".to_owned()
        }
        other => format!("TLS: {other}"),
    }
}

/// The verifier of `insecure`: any certificate, signatures still checked.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

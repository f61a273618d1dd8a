//! The one error type of redipc, with a [`ErrorKind`] and predicates.

use std::fmt;
use std::sync::Arc;

/// What went wrong, in groups that callers act on differently.
///
/// The C API maps each kind to one `ipc_result` code and Python to one exception class;
/// a kind is never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server could not be reached, or the connection broke (it is being re-established).
    Connection,
    /// No reply came within the response (or connect) timeout.
    Timeout,
    /// The server answered with an error reply (`WRONGTYPE`, `ERR`, ...); see [`Error::code`].
    Server,
    /// The server's reply could not be understood, or did not have the expected shape.
    Protocol,
    /// The caller passed something unusable: an invalid URL, an empty command, a value over
    /// the size limit, a wrong type.
    InvalidArgument,
    /// The client (or the handle) was closed.
    Closed,
    /// A feature that is not built into this library yet (for example TLS).
    Unsupported,
    /// A `WATCH`ed key changed and the optimistic transaction gave up after its retries.
    Watch,
    /// The remote side (an RPC handler) reported an error; the message is its text.
    Remote,
    /// No server of the called RPC service is running.
    NoServer,
    /// A user's handler failed: it returned an error or panicked. What handlers return to
    /// say "this one failed" (retried or dead-lettered by the handle that ran them), and
    /// what reports of such failures carry.
    Handler,
    /// The user's function gave up a transaction ([`crate::Client::transaction`]): nothing
    /// queued ran.
    Aborted,
}

impl ErrorKind {
    /// A short stable name: `"connection"`, `"timeout"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Server => "server",
            ErrorKind::Protocol => "protocol",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Closed => "closed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Watch => "watch",
            ErrorKind::Remote => "remote",
            ErrorKind::NoServer => "no server",
            ErrorKind::Handler => "handler",
            ErrorKind::Aborted => "aborted",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from redipc: a [`kind`](Error::kind), a message that says what was being done,
/// for server replies the server's error code (such as `WRONGTYPE`), and optionally the
/// user's own error that caused it ([`with_source`](Error::with_source)).
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    code: Option<String>,
    message: String,
    /// What was being done (`GET mykey`), outermost first.
    context: Option<String>,
    /// The user's error behind it (a binding's exception, a handler's own error type).
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// `Result<T, redipc::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            code: None,
            message: message.into(),
            context: None,
            source: None,
        }
    }

    /// A server error reply: `code` is its first word (`WRONGTYPE`), `message` the rest.
    pub fn server(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Server,
            code: Some(code.into()),
            message: message.into(),
            context: None,
            source: None,
        }
    }

    /// A handler's failure ([`ErrorKind::Handler`]) with `message`: what a request,
    /// stream entry or RPC handler returns to say it failed.
    pub fn handler(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Handler, message.to_string())
    }

    /// A transaction given up by the user's function ([`ErrorKind::Aborted`]).
    pub fn aborted(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Aborted, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn closed() -> Self {
        Error::new(ErrorKind::Closed, "the client is closed")
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's error code (`WRONGTYPE`, `ERR`, `NOSCRIPT`, ...) for [`ErrorKind::Server`].
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The message itself, without the kind, the code or the context (for a server error:
    /// the server's text after its code).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Context, code and message, without the kind: `GET k: WRONGTYPE Operation ...`.
    pub fn text(&self) -> String {
        let s = self.to_string();
        let prefix = format!("{} error: ", self.kind);
        s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
    }

    /// What was being done when it failed (`GET mykey`), if known.
    pub fn context_str(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Whether the connection failed or broke.
    pub fn is_connection(&self) -> bool {
        self.kind == ErrorKind::Connection
    }

    /// Whether a timeout elapsed.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether the server answered with an error reply.
    pub fn is_server(&self) -> bool {
        self.kind == ErrorKind::Server
    }

    /// Whether the caller passed an unusable argument.
    pub fn is_invalid_argument(&self) -> bool {
        self.kind == ErrorKind::InvalidArgument
    }

    /// Whether the client was closed.
    pub fn is_closed(&self) -> bool {
        self.kind == ErrorKind::Closed
    }

    /// Attach the error that caused this one (a handler's own error type, a binding's
    /// exception), to be found again with [`source_error`](Error::source_error) and
    /// `std::error::Error::source`; the message stays this error's own.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The error attached with [`with_source`](Error::with_source), for downcasting.
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// Add what was being done (`GET mykey`), keeping kind, code and message; an outer
    /// context goes before an inner one.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.context = Some(match self.context.take() {
            Some(inner) => format!("{what}: {inner}"),
            None => what.to_string(),
        });
        self
    }
}

/// A handler's failure ([`ErrorKind::Handler`]) with this message, so that a handler can
/// write `Err("bad input".into())`.
impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::handler(message)
    }
}

/// A handler's failure ([`ErrorKind::Handler`]) with this message.
impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(ErrorKind::Handler, message)
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        use redis::ErrorKind as K;
        if let Some(code) = err.code() {
            // A server error reply: keep its code and the server's own text.
            let detail = err.detail().unwrap_or("").to_string();
            return Error::server(code, detail);
        }
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
        {
            ErrorKind::Connection
        } else {
            match err.kind() {
                K::InvalidClientConfig => ErrorKind::InvalidArgument,
                K::Parse | K::UnexpectedReturnType => ErrorKind::Protocol,
                K::Io => ErrorKind::Connection,
                _ => ErrorKind::Protocol,
            }
        };
        Error::new(kind, err.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: ", self.kind)?;
        if let Some(ctx) = &self.context {
            write!(f, "{ctx}: ")?;
        }
        match &self.code {
            Some(code) => write!(f, "{code} {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A short description of a command for error messages: its name and first argument.
pub(crate) fn describe<A: AsRef<[u8]>>(args: &[A]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().take(2).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let a = a.as_ref();
        let shown = &a[..a.len().min(64)];
        let text = String::from_utf8_lossy(shown);
        if i == 0 {
            out.push_str(&text.to_uppercase());
        } else {
            out.push_str(&text);
        }
        if a.len() > 64 {
            out.push_str("...");
        }
    }
    out
}

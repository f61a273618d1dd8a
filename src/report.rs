//! Typed reports: what a handle that runs user handlers tells its owner besides the
//! handler's own results (a handler failed, a request was dead-lettered, the loop lost its
//! connection and got it back, a watcher's read failed, ...).
//!
//! A [`Report`] carries its [`ReportKind`], the [`ReportSource`] (which handle and which
//! queue, stream, hash, channel or pattern), the attempt counts where they apply, and the
//! [`Error`]. Every report is logged (the `log` crate, target `redipc::report`, at [`ReportKind::level`]) with its `Display` as the message; a hook gets it too. The
//! bindings map reports by their kind (C: `ipc_report`; Python: `logging` levels), never by
//! their text.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;

/// What a [`Report`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportKind {
    /// A handler returned an error or panicked ([`Report::error`](Report#structfield.error) has its message, kind
    /// [`crate::ErrorKind::Handler`]). Whether the item is retried depends on the source:
    /// see [`Report::attempt`](Report#structfield.attempt) and [`Report::max_attempts`](Report#structfield.max_attempts).
    HandlerFailed,
    /// Items were moved to the dead letters ([`Report::count`](Report#structfield.count) of them) after their last
    /// attempt.
    DeadLettered,
    /// Items of a consumer that died were put back into their queue ([`Report::count`](Report#structfield.count)).
    Recovered,
    /// An operation of the handle's loop failed (the connection broke, the server refused,
    /// a timeout); the loop retries with backoff. [`Report::error`](Report#structfield.error) says what failed.
    ConnectionLost,
    /// After [`ConnectionLost`](ReportKind::ConnectionLost), the loop's next operation
    /// succeeded.
    ConnectionRestored,
    /// A watcher could not read the state it watches; it reads it again, whole, with
    /// backoff, so no change is missed.
    ReadFailed,
}

impl ReportKind {
    /// A short stable name: `"handler failed"`, `"dead lettered"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::HandlerFailed => "handler failed",
            ReportKind::DeadLettered => "dead lettered",
            ReportKind::Recovered => "recovered",
            ReportKind::ConnectionLost => "connection lost",
            ReportKind::ConnectionRestored => "connection restored",
            ReportKind::ReadFailed => "read failed",
        }
    }

    /// The level the report is logged at (target `redipc::report`): dead letters are
    /// errors, recoveries and restored connections information, the rest warnings.
    pub fn level(self) -> log::Level {
        match self {
            ReportKind::DeadLettered => log::Level::Error,
            ReportKind::Recovered | ReportKind::ConnectionRestored => log::Level::Info,
            ReportKind::HandlerFailed | ReportKind::ConnectionLost | ReportKind::ReadFailed => {
                log::Level::Warn
            }
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of handle made a [`Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportSource {
    /// A request worker ([`crate::Worker`]); the name is the queue.
    Worker,
    /// An RPC server ([`crate::RpcServer`]); the name is the service.
    RpcServer,
    /// A stream group consumer ([`crate::StreamConsumer`]); the name is the stream, the
    /// group is set.
    StreamConsumer,
    /// A hash watcher ([`crate::HashWatcher`]); the name is the hash.
    HashWatcher,
    /// A keyspace watch ([`crate::KeyspaceWatch`]); the name is the key pattern.
    KeyspaceWatch,
    /// A subscription's handler; the name is the channel or pattern when known.
    Subscription,
}

impl ReportSource {
    /// A short stable name: `"worker"`, `"rpc server"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ReportSource::Worker => "worker",
            ReportSource::RpcServer => "rpc server",
            ReportSource::StreamConsumer => "stream consumer",
            ReportSource::HashWatcher => "hash watcher",
            ReportSource::KeyspaceWatch => "keyspace watch",
            ReportSource::Subscription => "subscription",
        }
    }
}

impl fmt::Display for ReportSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a handle that runs user handlers reports besides its handlers' results: its
/// kind, which handle, the queue/stream/hash/channel, attempt counts and the error. Its
/// `Display` is the line that is logged.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// What happened.
    pub kind: ReportKind,
    /// Which kind of handle reports it.
    pub source: ReportSource,
    /// The queue, service, stream, hash, channel or key pattern (empty when none applies).
    pub name: Bytes,
    /// The consumer group (stream consumers).
    pub group: Option<Bytes>,
    /// The item it is about: a stream entry id.
    pub item: Option<String>,
    /// How many times the item was handed to a handler, this time included (1 the first
    /// time; for streams, the delivery count); 0 when it does not apply.
    pub attempt: u32,
    /// After how many attempts an item is dead-lettered; 0 when it is never retried (plain
    /// queues, RPC) or it does not apply.
    pub max_attempts: u32,
    /// How many items (dead letters, recovered requests); 0 when it does not apply.
    pub count: u64,
    /// The error: the handler's failure, or what the loop's operation got.
    pub error: Option<Error>,
    /// What was being done when a loop's operation failed (`"claiming the lease"`).
    pub during: Option<&'static str>,
}

impl Report {
    /// A report of `kind` from `source` about `name`.
    pub fn new(kind: ReportKind, source: ReportSource, name: impl Into<Bytes>) -> Self {
        Report {
            kind,
            source,
            name: name.into(),
            group: None,
            item: None,
            attempt: 0,
            max_attempts: 0,
            count: 0,
            error: None,
            during: None,
        }
    }

    pub(crate) fn error(mut self, e: Error) -> Self {
        self.error = Some(e);
        self
    }

    pub(crate) fn during(mut self, what: &'static str) -> Self {
        self.during = Some(what);
        self
    }

    pub(crate) fn attempts(mut self, attempt: u32, max: u32) -> Self {
        self.attempt = attempt;
        self.max_attempts = max;
        self
    }

    pub(crate) fn count(mut self, n: u64) -> Self {
        self.count = n;
        self
    }

    pub(crate) fn group(mut self, g: Bytes) -> Self {
        self.group = Some(g);
        self
    }

    pub(crate) fn item(mut self, id: impl Into<String>) -> Self {
        self.item = Some(id.into());
        self
    }

    fn name_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

impl fmt::Display for Report {
    /// One line, as logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name_text();
        write!(f, "redipc {}: ", self.source)?;
        let err = |f: &mut fmt::Formatter<'_>| match &self.error {
            Some(e) => write!(f, ": {}", e.text()),
            None => Ok(()),
        };
        match (self.kind, self.source) {
            (ReportKind::HandlerFailed, ReportSource::StreamConsumer) => write!(
                f,
                "handler failed on {} (delivery {}); it stays pending",
                self.item.as_deref().unwrap_or("?"),
                self.attempt
            )?,
            (ReportKind::HandlerFailed, ReportSource::Worker) if self.max_attempts > 0 => write!(
                f,
                "handler failed on queue {name} (attempt {} of {})",
                self.attempt, self.max_attempts
            )?,
            (ReportKind::HandlerFailed, ReportSource::Worker) => write!(
                f,
                "handler failed on queue {name} (plain mode: not retried)"
            )?,
            (ReportKind::HandlerFailed, ReportSource::RpcServer) => write!(
                f,
                "handler failed on service {name} (returned to the caller)"
            )?,
            (ReportKind::HandlerFailed, _) if name.is_empty() => f.write_str("handler failed")?,
            (ReportKind::HandlerFailed, _) => write!(f, "handler failed on {name}")?,
            (ReportKind::DeadLettered, ReportSource::StreamConsumer) => write!(
                f,
                "entry {} of {name} was delivered {} times; moved to {name}:dead",
                self.item.as_deref().unwrap_or("?"),
                self.attempt
            )?,
            (ReportKind::DeadLettered, _) => write!(
                f,
                "{} request(s) on queue {name} moved to the dead letters after {} attempts",
                self.count, self.attempt
            )?,
            (ReportKind::Recovered, _) => write!(
                f,
                "{} request(s) of a dead worker put back into queue {name}",
                self.count
            )?,
            (ReportKind::ConnectionLost, _) => {
                write!(f, "{name}")?;
                if let Some(d) = self.during {
                    write!(f, ": {d}")?;
                }
                write!(f, " failed; retrying")?;
            }
            (ReportKind::ConnectionRestored, _) => write!(f, "{name}: working again")?,
            (ReportKind::ReadFailed, _) => {
                write!(f, "reading {name} failed; it is read again, whole")?
            }
        }
        err(f)
    }
}

/// The `log` target of reports.
pub const LOG_TARGET: &str = "redipc::report";

/// Receives the [`Report`]s of a handle (its own hook, else the client's; every report is logged as well).
pub type ErrorHook = Arc<dyn Fn(&Report) + Send + Sync>;

/// Where a handle's reports go: the log, and its own hook, else the client's.
#[derive(Clone, Default)]
pub(crate) struct Reporter {
    hook: Option<ErrorHook>,
}

impl Reporter {
    /// The handle's `own` hook, else the client's `fallback`.
    pub(crate) fn new(own: Option<&ErrorHook>, fallback: Option<&ErrorHook>) -> Self {
        Reporter {
            hook: own.or(fallback).cloned(),
        }
    }

    /// Log `report` (target [`LOG_TARGET`]) and hand it to the hook, if any (a panicking
    /// hook is contained).
    pub(crate) fn report(&self, report: Report) {
        log::log!(target: LOG_TARGET, report.kind.level(), "{report}");
        if let Some(h) = &self.hook {
            let _ = catch_unwind(AssertUnwindSafe(|| h(&report)));
        }
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// The text of a caught panic (`panic!("...")` payloads are `&str` or `String`).
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Run a user handler: its result, with a panic turned into a [`crate::ErrorKind::Handler`]
/// error (`handler panicked: ...`) and any other error of it kept as it is.
pub(crate) fn call_handler<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::handler(format!(
            "handler panicked: {}",
            panic_text(&*p)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_as_before() {
        let r = Report::new(ReportKind::HandlerFailed, ReportSource::Worker, "jobs")
            .attempts(1, 3)
            .error(Error::handler("boom"));
        assert_eq!(
            r.to_string(),
            "redipc worker: handler failed on queue jobs (attempt 1 of 3): boom"
        );
        let r = Report::new(
            ReportKind::ConnectionLost,
            ReportSource::StreamConsumer,
            "s",
        )
        .during("reading new entries")
        .error(Error::new(crate::ErrorKind::Connection, "gone"));
        assert_eq!(
            r.to_string(),
            "redipc stream consumer: s: reading new entries failed; retrying: gone"
        );
    }

    #[test]
    fn a_panic_in_a_handler_is_a_handler_error() {
        let e = call_handler::<()>(|| panic!("nope")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Handler);
        assert_eq!(e.message(), "handler panicked: nope");
    }
}

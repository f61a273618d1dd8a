//! The core's reports ([`redipc::Report`]: a handler failed, requests were dead-lettered,
//! a loop lost its connection ...) for Python: each goes to the `redipc` logger at a level
//! chosen from its kind, with its fields on the `LogRecord` (`record.redipc_kind` ...), or
//! to the client's `on_report` as a [`Report`].

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use redipc::ReportKind;

use crate::errors::{raised, to_pyerr};
use crate::guard;

/// A report of the core, as `on_report` gets it (and `record.redipc_report`).
#[pyclass(frozen, get_all, module = "redipc._native")]
pub(crate) struct Report {
    /// `"handler_failed"`, `"dead_lettered"`, `"recovered"`, `"connection_lost"`,
    /// `"connection_restored"` or `"read_failed"`.
    kind: String,
    /// `"worker"`, `"rpc_server"`, `"stream_consumer"`, `"hash_watcher"`,
    /// `"keyspace_watch"` or `"subscription"`.
    source: String,
    /// The queue, service, stream, hash, channel or key pattern.
    name: Bytes,
    /// The consumer group (stream consumers).
    group: Option<Bytes>,
    /// The item it is about (a stream entry id).
    item: Option<String>,
    /// How many times the item was handed to a handler, this time included; 0: n/a.
    attempt: u32,
    /// After how many attempts an item is dead-lettered; 0: n/a.
    max_attempts: u32,
    /// How many items (dead letters, recovered requests); 0: n/a.
    count: u64,
    /// The exception: the handler's own, or the `RedipcError` of what failed.
    error: Option<Py<PyAny>>,
    /// What the loop was doing when it failed.
    during: Option<&'static str>,
    /// The one-line text.
    text: String,
}

#[pymethods]
impl Report {
    fn __str__(&self) -> &str {
        &self.text
    }

    fn __repr__(&self) -> String {
        format!("<redipc.Report {}: {}>", self.kind, self.text)
    }
}

/// The `logging` level of a report, from its kind: a handler failure whose exception the
/// user's `on_error` saw already is DEBUG.
fn level(r: &redipc::Report) -> u32 {
    let (debug, info, warning, error) = (10, 20, 30, 40);
    match r.kind {
        ReportKind::HandlerFailed if r.error.as_ref().and_then(raised).is_some_and(|e| e.told) => {
            debug
        }
        ReportKind::DeadLettered => error,
        ReportKind::Recovered | ReportKind::ConnectionRestored => info,
        _ => warning,
    }
}

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The client's report hook: to `on_report`, else to the `redipc` logger; printed to
/// stderr once the interpreter exits.
pub(crate) fn hook(on_report: Option<Py<PyAny>>) -> impl Fn(&redipc::Report) + Send + Sync {
    move |r| {
        let done = guard::attach(|py| {
            if let Err(e) = deliver(py, r, on_report.as_ref()) {
                e.write_unraisable(py, on_report.as_ref().map(|f| f.bind(py)));
            }
        });
        if done.is_none() {
            eprintln!("{r}");
        }
    }
}

fn deliver(py: Python<'_>, r: &redipc::Report, on_report: Option<&Py<PyAny>>) -> PyResult<()> {
    let error = r
        .error
        .clone()
        .map(|e| to_pyerr(py, e).into_value(py).into_any());
    let report = Bound::new(
        py,
        Report {
            kind: r.kind.as_str().replace(' ', "_"),
            source: r.source.as_str().replace(' ', "_"),
            name: r.name.clone(),
            group: r.group.clone(),
            item: r.item.clone(),
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            count: r.count,
            error: error.as_ref().map(|e| e.clone_ref(py)),
            during: r.during,
            text: r.to_string(),
        },
    )?;
    if let Some(f) = on_report {
        return f.bind(py).call1((report,)).map(drop);
    }
    let logger = LOGGER.get_or_try_init(py, || {
        py.import("logging")?
            .call_method1("getLogger", ("redipc",))
            .map(Bound::unbind)
    })?;
    let extra = PyDict::new(py);
    {
        let rep = report.get();
        extra.set_item("redipc_kind", &rep.kind)?;
        extra.set_item("redipc_source", &rep.source)?;
        extra.set_item("redipc_name", &rep.name)?;
        extra.set_item("redipc_group", &rep.group)?;
        extra.set_item("redipc_item", &rep.item)?;
        extra.set_item("redipc_attempt", rep.attempt)?;
        extra.set_item("redipc_max_attempts", rep.max_attempts)?;
        extra.set_item("redipc_count", rep.count)?;
        extra.set_item("redipc_error", &error)?;
        extra.set_item("redipc_during", rep.during)?;
    }
    extra.set_item("redipc_report", &report)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("extra", extra)?;
    // A handler's own exception comes with its traceback.
    let handler_exception = r
        .error
        .as_ref()
        .and_then(raised)
        .map(|e| e.err.clone_ref(py).into_value(py));
    kwargs.set_item("exc_info", handler_exception)?;
    logger
        .bind(py)
        .call_method("log", (level(r), report.get().text.as_str()), Some(&kwargs))
        .map(drop)
}

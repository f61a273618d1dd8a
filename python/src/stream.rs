//! Event streams for Python: `Client.stream_*`, `StreamEntry`, `StreamFollower`,
//! `StreamConsumer` (a consumer-group worker whose handler is a Python function),
//! `PendingInfo` and `ConsumerStats`.
//!
//! A consumer's handler runs on the core's consumer thread: it takes the GIL for each
//! entry and is counted as [`Busy`] while it runs, so the interpreter's exit waits for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use redipc::{ConsumerOptions, blocking};

use crate::client::Client;
use crate::convert::{Arg, arg, duration, type_name};
use crate::errors::{closed_error, invalid_argument, to_pyerr};
use crate::pubsub::{Busy, release_later, report};
use crate::wait::{lock, sliced};

/// `{method}(): argument '{name}'`, for `TypeError` messages.
pub(crate) fn named(method: &'static str, name: &'static str) -> impl Fn() -> String {
    move || format!("{method}(): argument '{name}'")
}

/// The field/value pairs of a mapping (a `dict`, or anything with `items()`), in its order.
pub(crate) fn pairs(obj: &Bound<'_, PyAny>, method: &str, name: &str) -> PyResult<Vec<(Arg, Arg)>> {
    let py = obj.py();
    let items = match obj.cast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) => obj.call_method0(pyo3::intern!(py, "items")).map_err(|_| {
            PyTypeError::new_err(format!(
                "{method}(): argument '{name}' must be a mapping, not {}",
                type_name(obj)
            ))
        })?,
    };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        out.push((
            arg(&k, &|| format!("{method}(): a key of '{name}'"))?,
            arg(&v, &|| format!("{method}(): a value of '{name}'"))?,
        ));
    }
    Ok(out)
}

/// A count argument that must be at least 1.
fn positive(py: Python<'_>, n: i64, what: &str) -> PyResult<usize> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid_argument(py, format!("{what} must be >= 1, not {n}")))
}

// ---------------------------------------------------------------------------------------
// StreamEntry

/// One entry of a stream.
#[pyclass(frozen, module = "redipc._native", name = "StreamEntry")]
pub(crate) struct StreamEntry {
    /// The entry's id, `"1700000000000-0"`.
    #[pyo3(get)]
    id: Py<PyString>,
    /// Its fields, in order (`bytes` to `bytes`).
    #[pyo3(get)]
    fields: Py<PyDict>,
    /// How many times it was delivered to a group consumer (0 outside consumer groups).
    #[pyo3(get)]
    deliveries: u64,
}

impl StreamEntry {
    pub(crate) fn new<'py>(
        py: Python<'py>,
        e: &redipc::StreamEntry,
    ) -> PyResult<Bound<'py, StreamEntry>> {
        let fields = PyDict::new(py);
        for (k, v) in &e.fields {
            let k = PyBytes::new(py, k);
            // The first of a repeated field name wins, as with the core's `get`.
            if !fields.contains(&k)? {
                fields.set_item(k, PyBytes::new(py, v))?;
            }
        }
        Bound::new(
            py,
            StreamEntry {
                id: PyString::new(py, &e.id).unbind(),
                fields: fields.unbind(),
                deliveries: e.deliveries,
            },
        )
    }

    fn list<'py>(py: Python<'py>, entries: &[redipc::StreamEntry]) -> PyResult<Bound<'py, PyList>> {
        let items = entries
            .iter()
            .map(|e| StreamEntry::new(py, e))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn key<'py>(py: Python<'py>, name: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let name = arg(name, &|| "a field name".to_string())?;
        Ok(PyBytes::new(py, name.as_ref()))
    }
}

#[pymethods]
impl StreamEntry {
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = Self::key(py, name)?;
        match self.fields.bind(py).get_item(&key)? {
            Some(v) => Ok(v),
            None => Err(PyKeyError::new_err(key.unbind())),
        }
    }

    /// The value of field `name` (`bytes` or `str`), or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let key = Self::key(py, name)?;
        Ok(self.fields.bind(py).get_item(&key)?.or(default))
    }

    fn __contains__(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = Self::key(py, name)?;
        self.fields.bind(py).contains(key)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.fields.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let fields = self.fields.bind(py).repr()?;
        let mut out = format!("StreamEntry(id='{}', fields={fields}", self.id.bind(py));
        if self.deliveries > 0 {
            out.push_str(&format!(", deliveries={}", self.deliveries));
        }
        out.push(')');
        Ok(out)
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<StreamEntry>() else {
            return Ok(false);
        };
        let o = other.get();
        Ok(self.id.bind(py).as_any().eq(o.id.bind(py))?
            && self.deliveries == o.deliveries
            && self.fields.bind(py).eq(o.fields.bind(py))?)
    }
}

// ---------------------------------------------------------------------------------------
// PendingInfo, ConsumerStats

/// Pending (delivered, not acknowledged) entries of a consumer group.
#[pyclass(frozen, module = "redipc._native", name = "PendingInfo")]
pub(crate) struct PendingInfo {
    /// How many entries are pending.
    #[pyo3(get)]
    count: u64,
    /// How many per consumer name.
    #[pyo3(get)]
    consumers: Py<PyDict>,
}

#[pymethods]
impl PendingInfo {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "PendingInfo(count={}, consumers={})",
            self.count,
            self.consumers.bind(py).repr()?
        ))
    }
}

/// Counters of a group consumer.
#[pyclass(frozen, module = "redipc._native", name = "ConsumerStats")]
pub(crate) struct ConsumerStats {
    /// Entries handled and acknowledged.
    #[pyo3(get)]
    acked: u64,
    /// Handler failures (each leaves its entry pending).
    #[pyo3(get)]
    failed: u64,
    /// Entries taken over from idle consumers, or retried after failing.
    #[pyo3(get)]
    claimed: u64,
    /// Entries moved to the dead-letter stream.
    #[pyo3(get)]
    dead_lettered: u64,
}

impl From<redipc::ConsumerStats> for ConsumerStats {
    fn from(s: redipc::ConsumerStats) -> Self {
        ConsumerStats {
            acked: s.acked,
            failed: s.failed,
            claimed: s.claimed,
            dead_lettered: s.dead_lettered,
        }
    }
}

impl ConsumerStats {
    fn tuple(&self) -> (u64, u64, u64, u64) {
        (self.acked, self.failed, self.claimed, self.dead_lettered)
    }
}

#[pymethods]
impl ConsumerStats {
    fn __repr__(&self) -> String {
        format!(
            "ConsumerStats(acked={}, failed={}, claimed={}, dead_lettered={})",
            self.acked, self.failed, self.claimed, self.dead_lettered
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<ConsumerStats>()
            .is_ok_and(|o| o.get().tuple() == self.tuple())
    }

    /// The counters as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("acked", self.acked)?;
        d.set_item("failed", self.failed)?;
        d.set_item("claimed", self.claimed)?;
        d.set_item("dead_lettered", self.dead_lettered)?;
        Ok(d)
    }
}

// ---------------------------------------------------------------------------------------
// StreamFollower

/// Follows a stream from a position; an iterator of `StreamEntry`.
#[pyclass(frozen, module = "redipc._native", name = "StreamFollower")]
pub(crate) struct StreamFollower {
    /// Locked only with the GIL released (a wait holds it).
    inner: Mutex<Option<blocking::StreamFollower>>,
    /// The position after the last entry returned; never held while waiting.
    position: Mutex<String>,
}

/// How a follower's wait ended.
enum Pulled {
    Entry(redipc::StreamEntry),
    TimedOut,
    Closed,
}

impl StreamFollower {
    /// The next entry within `timeout` (`None`: no limit), in slices with signals checked.
    fn pull(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Pulled> {
        let inner = &self.inner;
        let position = &self.position;
        let got = sliced(py, timeout, |slice| {
            let mut guard = lock(inner);
            let Some(f) = guard.as_mut() else {
                return Ok(Some(Pulled::Closed));
            };
            match f.next(slice.max(Duration::from_millis(1))) {
                Ok(Some(e)) => {
                    *lock(position) = f.position().to_string();
                    Ok(Some(Pulled::Entry(e)))
                }
                Ok(None) => Ok(None),
                Err(e) if e.is_closed() => Ok(Some(Pulled::Closed)),
                Err(e) => Err(e),
            }
        })?;
        Ok(got.unwrap_or(Pulled::TimedOut))
    }
}

#[pymethods]
impl StreamFollower {
    /// The id of the last entry returned (at first: the starting position).
    #[getter]
    fn position(&self) -> String {
        lock(&self.position).clone()
    }

    /// The next entry, waiting up to `timeout` seconds (`None`: no limit); `None` when
    /// the time passed.
    #[pyo3(signature = (timeout = None))]
    fn next<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, StreamEntry>>> {
        let timeout = match timeout {
            Some(t) if !t.is_none() => Some(duration(t, "next(): timeout")?),
            _ => None,
        };
        match self.pull(py, timeout)? {
            Pulled::Entry(e) => StreamEntry::new(py, &e).map(Some),
            Pulled::TimedOut => Ok(None),
            Pulled::Closed => Err(closed_error(py, "the stream follower is closed")),
        }
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, StreamEntry>>> {
        loop {
            match self.pull(py, None)? {
                Pulled::Entry(e) => return StreamEntry::new(py, &e).map(Some),
                Pulled::TimedOut => {}
                // Closed (the follower or its client): the iteration ends.
                Pulled::Closed => return Ok(None),
            }
        }
    }

    /// Close the follower (its connection); `next()` raises `ClosedError` afterwards.
    fn close(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.detach(|| drop(lock(inner).take()));
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!("<redipc.StreamFollower at {}>", lock(&self.position))
    }
}

// ---------------------------------------------------------------------------------------
// StreamConsumer

/// What the consumer's handler and the Python object share.
struct ConsumerShared {
    /// Set by `stop()` called from inside the handler: later entries are not handled.
    stopped: AtomicBool,
    /// The consumer thread (known after its first entry).
    thread: Mutex<Option<ThreadId>>,
}

/// A running consumer of a consumer group (`Client.stream_consume`).
#[pyclass(frozen, module = "redipc._native", name = "StreamConsumer")]
pub(crate) struct StreamConsumer {
    /// Locked only with the GIL released (`stop` holds it while it waits).
    inner: Mutex<Option<redipc::StreamConsumer>>,
    final_stats: Mutex<Option<redipc::ConsumerStats>>,
    shared: Arc<ConsumerShared>,
    stream: String,
    group: String,
    consumer: String,
}

/// The text recorded for a failed entry: `str(exc)`, or the exception's class name when
/// that is empty.
fn failure_text(py: Python<'_>, err: &PyErr) -> String {
    let text = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if text.is_empty() {
        err.get_type(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "exception".to_string())
    } else {
        text
    }
}

/// Where the core's own reports of a consumer go: the `redipc` logger (a handler failure
/// at INFO, since its exception went to `on_error`/`sys.unraisablehook` already; anything
/// else, such as a lost connection or a dead-lettered entry, at WARNING).
fn log_report(r: &redipc::Report) {
    let text = r.to_string();
    let Some(_busy) = Busy::enter() else { return };
    let _ = Python::try_attach(|py| {
        let level = if r.kind == redipc::ReportKind::HandlerFailed {
            20
        } else {
            30
        };
        let logged = py
            .import("logging")
            .and_then(|m| m.call_method1("getLogger", ("redipc",)))
            .and_then(|logger| logger.call_method1("log", (level, text)));
        if let Err(e) = logged {
            e.write_unraisable(py, None);
        }
    });
}

impl StreamConsumer {
    fn stop_inner(&self, py: Python<'_>, timeout: Duration) -> PyResult<()> {
        let on_own_thread = *lock(&self.shared.thread) == Some(std::thread::current().id());
        if on_own_thread {
            // From inside the handler: the core would wait for this very thread. Tell it
            // to stop (it does after this handler returns) and skip the rest of the batch.
            self.shared.stopped.store(true, Ordering::Release);
            let inner = &self.inner;
            py.detach(|| {
                // Held by a `stop()` of another thread: that one told the core already.
                if let Ok(mut guard) = inner.try_lock()
                    && let Some(c) = guard.as_mut()
                {
                    let _ = c.stop(Duration::ZERO);
                }
            });
            return Ok(());
        }
        let inner = &self.inner;
        let final_stats = &self.final_stats;
        let _busy = Busy::enter();
        py.detach(|| {
            let mut guard = lock(inner);
            let Some(c) = guard.as_mut() else {
                return Ok(());
            };
            c.stop(timeout)?;
            *lock(final_stats) = Some(c.stats());
            drop(guard.take());
            Ok(())
        })
        .map_err(|e| to_pyerr(py, e))
    }
}

impl Drop for StreamConsumer {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = inner.take() {
            // Its drop stops it and waits for the handler, which may need the GIL.
            release_later(Box::new(c));
        }
    }
}

#[pymethods]
impl StreamConsumer {
    /// Stop reading and wait up to `timeout` seconds for the running handler.
    #[pyo3(signature = (timeout = None), text_signature = "($self, timeout=10.0)")]
    fn stop(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let timeout = match timeout {
            Some(t) if !t.is_none() => duration(t, "stop(): timeout")?,
            _ => Duration::from_secs(10),
        };
        self.stop_inner(py, timeout)
    }

    /// Whether the consumer was stopped.
    #[getter]
    fn stopped(&self, py: Python<'_>) -> bool {
        let inner = &self.inner;
        self.shared.stopped.load(Ordering::Acquire) || py.detach(|| lock(inner).is_none())
    }

    /// The counters so far.
    fn stats(&self, py: Python<'_>) -> ConsumerStats {
        let inner = &self.inner;
        let final_stats = &self.final_stats;
        py.detach(|| match lock(inner).as_ref() {
            Some(c) => c.stats(),
            None => lock(final_stats).unwrap_or_default(),
        })
        .into()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.stop_inner(py, Duration::from_secs(10))?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.stopped(py) { " stopped" } else { "" };
        format!(
            "<redipc.StreamConsumer {:?} group {:?} as {:?}{state}>",
            self.stream, self.group, self.consumer
        )
    }
}

// ---------------------------------------------------------------------------------------
// Client methods

/// The id `"$"` stands for when a read is split into several: the stream's last id now
/// (`"0-0"` for an empty or missing stream), so that nothing published between two reads
/// is missed.
fn resolve_dollar(c: &blocking::Client, stream: &[u8], from_id: &str) -> redipc::Result<String> {
    if from_id != "$" {
        return Ok(from_id.to_string());
    }
    Ok(c.stream_last(stream)?
        .map(|e| e.id)
        .unwrap_or_else(|| "0-0".to_string()))
}

#[pymethods]
impl Client {
    /// `XADD stream [MAXLEN ~ n] * field value ...`: the new entry's id.
    #[pyo3(signature = (stream, fields = None, *, payload = None, maxlen = None))]
    fn stream_publish(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        fields: Option<&Bound<'_, PyAny>>,
        payload: Option<&Bound<'_, PyAny>>,
        maxlen: Option<i64>,
    ) -> PyResult<String> {
        let stream = arg(stream, &named("stream_publish", "stream"))?;
        let pairs = match (fields, payload) {
            (Some(f), None) => pairs(f, "stream_publish", "fields")?,
            (None, Some(p)) => vec![(
                Arg::Owned(b"payload".to_vec()),
                arg(p, &named("stream_publish", "payload"))?,
            )],
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err(
                    "stream_publish(): give fields or payload=, not both",
                ));
            }
            (None, None) => {
                return Err(PyTypeError::new_err(
                    "stream_publish(): give fields (a mapping) or payload=",
                ));
            }
        };
        let maxlen = match maxlen {
            None => None,
            Some(n) => Some(usize::try_from(n).map_err(|_| {
                invalid_argument(
                    py,
                    format!("stream_publish(): maxlen must be >= 0 (0: unbounded), not {n}"),
                )
            })?),
        };
        self.run(py, |c| c.stream_publish(&stream, &pairs, maxlen))
    }

    /// `XREAD`: up to `count` entries after `from_id`; see the stubs.
    #[pyo3(signature = (stream, from_id = "0", count = 100, block = None))]
    fn stream_read<'py>(
        &self,
        py: Python<'py>,
        stream: &Bound<'py, PyAny>,
        from_id: &str,
        count: i64,
        block: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let stream = arg(stream, &named("stream_read", "stream"))?;
        let count = positive(py, count, "stream_read(): count")?;
        let block = match block {
            Some(b) if !b.is_none() => Some(duration(b, "stream_read(): block")?),
            _ => None,
        };
        let entries = match block {
            None => self.run(py, |c| c.stream_read(&stream, from_id, count, None))?,
            Some(total) => {
                // Validate the arguments (no I/O), then pin "$" (see resolve_dollar).
                let from = self.run(py, |c| {
                    drop(c.stream_follow(&stream, from_id)?);
                    resolve_dollar(c, stream.as_ref(), from_id)
                })?;
                let c = &self.inner;
                sliced(py, Some(total), |slice| {
                    let got = c.stream_read(
                        &stream,
                        &from,
                        count,
                        Some(slice.max(Duration::from_millis(1))),
                    )?;
                    Ok((!got.is_empty()).then_some(got))
                })?
                .unwrap_or_default()
            }
        };
        StreamEntry::list(py, &entries)
    }

    /// Follow a stream from `from_id`; see the stubs.
    #[pyo3(signature = (stream, from_id = "$"))]
    fn stream_follow(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        from_id: &str,
    ) -> PyResult<StreamFollower> {
        let stream = arg(stream, &named("stream_follow", "stream"))?;
        let follower = self.run(py, |c| {
            // Validate first, then pin "$" to the last id now: the core's follower would
            // send "$" again with every read until the first entry, missing what was
            // published in between.
            drop(c.stream_follow(&stream, from_id)?);
            let from = resolve_dollar(c, stream.as_ref(), from_id)?;
            c.stream_follow(&stream, &from)
        })?;
        let position = follower.position().to_string();
        Ok(StreamFollower {
            inner: Mutex::new(Some(follower)),
            position: Mutex::new(position),
        })
    }

    /// The last entry of a stream, or `None`.
    fn stream_last<'py>(
        &self,
        py: Python<'py>,
        stream: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, StreamEntry>>> {
        let stream = arg(stream, &named("stream_last", "stream"))?;
        let e = self.run(py, |c| c.stream_last(&stream))?;
        e.map(|e| StreamEntry::new(py, &e)).transpose()
    }

    /// `XLEN stream`.
    fn stream_len(&self, py: Python<'_>, stream: &Bound<'_, PyAny>) -> PyResult<u64> {
        let stream = arg(stream, &named("stream_len", "stream"))?;
        self.run(py, |c| c.stream_len(&stream))
    }

    /// Create a consumer group (and the stream); `False` if it existed.
    #[pyo3(signature = (stream, group, from_id = "$"))]
    fn stream_group_create(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        from_id: &str,
    ) -> PyResult<bool> {
        let stream = arg(stream, &named("stream_group_create", "stream"))?;
        let group = arg(group, &named("stream_group_create", "group"))?;
        self.run(py, |c| c.stream_group_create(&stream, &group, from_id))
    }

    /// Pending entries of a group.
    fn stream_pending(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
    ) -> PyResult<PendingInfo> {
        let stream = arg(stream, &named("stream_pending", "stream"))?;
        let group = arg(group, &named("stream_pending", "group"))?;
        let info = self.run(py, |c| c.stream_pending(&stream, &group))?;
        let consumers = PyDict::new(py);
        for (name, n) in &info.consumers {
            consumers.set_item(name, n)?;
        }
        Ok(PendingInfo {
            count: info.count,
            consumers: consumers.unbind(),
        })
    }

    /// Consume a group with a Python handler on a thread of its own; see the stubs.
    #[pyo3(signature = (
        stream, group, consumer, handler, *,
        count = 10, block = None, min_idle = None, max_deliveries = 5,
        claim_interval = None, on_error = None,
    ))]
    #[pyo3(
        text_signature = "($self, stream, group, consumer, handler, *, count=10, block=1.0, \
        min_idle=30.0, max_deliveries=5, claim_interval=None, on_error=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn stream_consume(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        group: &Bound<'_, PyAny>,
        consumer: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
        count: i64,
        block: Option<&Bound<'_, PyAny>>,
        min_idle: Option<&Bound<'_, PyAny>>,
        max_deliveries: i64,
        claim_interval: Option<&Bound<'_, PyAny>>,
        on_error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<StreamConsumer> {
        let stream = arg(stream, &named("stream_consume", "stream"))?;
        let group = arg(group, &named("stream_consume", "group"))?;
        let consumer = arg(consumer, &named("stream_consume", "consumer"))?;
        if !handler.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "stream_consume(): handler must be callable, not {}",
                type_name(handler)
            )));
        }
        let on_error = match on_error {
            Some(f) if f.is_none() => None,
            Some(f) if !f.is_callable() => {
                return Err(PyTypeError::new_err(format!(
                    "stream_consume(): on_error must be callable, not {}",
                    type_name(f)
                )));
            }
            f => f.map(|f| f.clone().unbind()),
        };
        let mut opts = ConsumerOptions::default()
            .count(positive(py, count, "stream_consume(): count")?)
            .max_deliveries(
                positive(py, max_deliveries, "stream_consume(): max_deliveries")? as u64,
            )
            .error_hook(log_report);
        let seconds = |v: Option<&Bound<'_, PyAny>>, what: &str| -> PyResult<Option<Duration>> {
            match v {
                Some(v) if !v.is_none() => duration(v, what).map(Some),
                _ => Ok(None),
            }
        };
        if let Some(b) = seconds(block, "stream_consume(): block")? {
            opts = opts.block(b.max(Duration::from_millis(1)));
        }
        if let Some(t) = seconds(min_idle, "stream_consume(): min_idle")? {
            opts = opts.min_idle(t);
        }
        if let Some(t) = seconds(claim_interval, "stream_consume(): claim_interval")? {
            opts = opts.claim_interval(t);
        }
        let shared = Arc::new(ConsumerShared {
            stopped: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let s = shared.clone();
        let handler = handler.clone().unbind();
        let call0 = move |entry: &redipc::StreamEntry| -> Result<(), String> {
            if s.stopped.load(Ordering::Acquire) {
                return Err("the consumer was stopped before handling it".to_string());
            }
            {
                let mut t = lock(&s.thread);
                if t.is_none() {
                    *t = Some(std::thread::current().id());
                }
            }
            let Some(_busy) = Busy::enter() else {
                return Err("the Python interpreter is exiting".to_string());
            };
            Python::try_attach(|py| {
                let f = handler.bind(py);
                let result = StreamEntry::new(py, entry).and_then(|e| f.call1((e,)));
                match result {
                    Ok(_) => Ok(()),
                    Err(err) => {
                        let text = failure_text(py, &err);
                        report(py, err, f, on_error.as_ref());
                        Err(text)
                    }
                }
            })
            .unwrap_or_else(|| Err("the Python interpreter is not available".to_string()))
        };
        let call = move |e: &redipc::StreamEntry| call0(e).map_err(redipc::Error::from);
        let core = self.run(py, |c| {
            c.stream_consume(&stream, &group, &consumer, call, opts)
        })?;
        let text = |a: &Arg| String::from_utf8_lossy(a.as_ref()).into_owned();
        Ok(StreamConsumer {
            inner: Mutex::new(Some(core)),
            final_stats: Mutex::new(None),
            shared,
            stream: text(&stream),
            group: text(&group),
            consumer: text(&consumer),
        })
    }

    /// The dead letters of a stream (`<stream>:dead`), oldest first.
    #[pyo3(signature = (stream, count = 100))]
    fn stream_dead_letters<'py>(
        &self,
        py: Python<'py>,
        stream: &Bound<'py, PyAny>,
        count: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let stream = arg(stream, &named("stream_dead_letters", "stream"))?;
        let count = positive(py, count, "stream_dead_letters(): count")?;
        let entries = self.run(py, |c| c.stream_dead_letters(&stream, count))?;
        StreamEntry::list(py, &entries)
    }
}

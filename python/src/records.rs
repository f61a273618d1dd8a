//! Records: frozen value classes made from the core's plain data, with the same `repr`,
//! equality and `as_dict` for all, from one macro.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use redipc::{Event, SubscriptionKind};

use crate::convert::Dict;

/// `repr()` of a field's value; `bytes` longer than 64 are cut (`b'...'...(N bytes)`).
fn short(v: &Bound<'_, PyAny>) -> PyResult<String> {
    const MAX: usize = 64;
    match v.cast::<PyBytes>() {
        Ok(b) if b.as_bytes().len() > MAX => Ok(format!(
            "{}...({} bytes)",
            PyBytes::new(v.py(), &b.as_bytes()[..MAX]).repr()?,
            b.as_bytes().len()
        )),
        _ => Ok(v.repr()?.to_string()),
    }
}

/// `Name(field=value, ...)`.
pub(crate) fn repr(name: &str, fields: &[(&str, Bound<'_, PyAny>)]) -> PyResult<String> {
    let fields = fields
        .iter()
        .map(|(n, v)| Ok(format!("{n}={}", short(v)?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(format!("{name}({})", fields.join(", ")))
}

/// A frozen record class with getters, equality, `repr` and `as_dict`, optionally made
/// from the core type of the same fields (`Name from redipc::Type { ... }`).
macro_rules! record {
    (
        $(#[$doc:meta])*
        $name:ident from $core:ty { $($(#[$fdoc:meta])* $field:ident: $ty:ty),+ $(,)? }
    ) => {
        record! { $(#[$doc])* $name { $($(#[$fdoc])* $field: $ty),+ } }

        impl From<$core> for $name {
            fn from(v: $core) -> Self {
                $name { $($field: v.$field.into()),+ }
            }
        }
    };
    (
        $(#[$doc:meta])*
        $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[pyclass(frozen, eq, get_all, module = "redipc._native")]
        #[derive(Clone, PartialEq)]
        pub(crate) struct $name {
            $($(#[$fdoc])* pub(crate) $field: $ty),+
        }

        #[pymethods]
        impl $name {
            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                use pyo3::IntoPyObjectExt;
                $crate::records::repr(
                    stringify!($name),
                    &[$((stringify!($field), (&self.$field).into_bound_py_any(py)?)),+],
                )
            }

            /// The fields as a dict.
            fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
                let d = pyo3::types::PyDict::new(py);
                $(d.set_item(stringify!($field), &self.$field)?;)+
                Ok(d)
            }
        }
    };
}

record! {
    /// Counters of a subscription's queue.
    SubscriptionStats from redipc::QueueStats {
        /// Events handed to the callback or taken with `get()`/iteration.
        delivered: u64,
        /// Messages dropped by the overflow policy.
        dropped: u64,
        /// Events waiting in the queue now.
        queued: u64,
        /// The queue's capacity.
        capacity: u64,
    }
}

record! {
    /// Counters of a `Worker` or `RpcServer`.
    WorkerStats from redipc::WorkerStats {
        handled: u64,
        failed: u64,
        dead_lettered: u64,
        recovered: u64,
    }
}

record! {
    /// Counters of a queue, read from the server.
    QueueCounts from redipc::QueueCounts { pending: u64, inflight: u64, dead: u64, delayed: u64 }
}

record! {
    /// A request that failed `max_attempts` times.
    DeadLetter from redipc::DeadLetter { payload: Bytes, attempts: u32, error: String }
}

record! {
    /// One request handed to a handler.
    Request from redipc::Request { queue: Bytes, payload: Bytes, attempt: u32 }
}

record! {
    /// Counters of a group consumer.
    ConsumerStats from redipc::ConsumerStats {
        acked: u64,
        failed: u64,
        claimed: u64,
        dead_lettered: u64,
    }
}

record! {
    /// Pending (delivered, not acknowledged) entries of a consumer group.
    PendingInfo from redipc::PendingInfo { count: u64, consumers: Dict<String, u64> }
}

record! {
    /// One entry of a stream.
    StreamEntry from redipc::StreamEntry { id: String, fields: Dict<Bytes, Bytes>, deliveries: u64 }
}

record! {
    /// One call as a server's handler sees it.
    Call { method: String, payload: Bytes, deadline: f64 }
}

impl From<&redipc::Call> for Call {
    fn from(c: &redipc::Call) -> Self {
        Call {
            method: String::from_utf8_lossy(&c.method).into_owned(),
            payload: c.payload.clone(),
            deadline: c
                .deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

record! {
    /// One live server of an RPC service, as the service registry knows it; times in
    /// seconds.
    Instance {
        service: Bytes,
        id: String,
        version: String,
        host: String,
        pid: u32,
        /// When it started serving, in seconds since the epoch (the server host's clock).
        started: f64,
        metadata: Dict<String, String>,
        /// How long it stays listed without another heartbeat.
        expires_in: f64,
    }
}

impl From<redipc::Instance> for Instance {
    fn from(i: redipc::Instance) -> Self {
        Instance {
            service: i.service,
            id: i.id,
            version: i.version,
            host: i.host,
            pid: i.pid,
            started: Duration::from_millis(i.started_ms).as_secs_f64(),
            metadata: Dict(i.metadata),
            expires_in: i.expires_in.as_secs_f64(),
        }
    }
}

#[pymethods]
impl StreamEntry {
    fn __getitem__(&self, name: crate::convert::Arg) -> PyResult<Bytes> {
        self.field(name.as_ref())
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(Bytes::from(name)))
    }

    /// The value of field `name` (`bytes` or `str`), or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: crate::convert::Arg,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.field(name.as_ref()) {
            Some(v) => Ok(Some(PyBytes::new(py, &v[..]).into_any())),
            None => Ok(default),
        }
    }

    fn __contains__(&self, name: crate::convert::Arg) -> bool {
        self.field(name.as_ref()).is_some()
    }

    fn __len__(&self) -> usize {
        self.fields
            .0
            .iter()
            .map(|(k, _)| k)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }
}

impl StreamEntry {
    fn field(&self, name: &[u8]) -> Option<Bytes> {
        self.fields
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// A name of a fixed set (`"message"`, `"channel"` ...), as an interned `str`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Label(&'static str);

impl<'py> IntoPyObject<'py> for &Label {
    type Target = PyString;
    type Output = Bound<'py, PyString>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Bound<'py, PyString>, Self::Error> {
        let s = match self.0 {
            "message" => pyo3::intern!(py, "message"),
            "activated" => pyo3::intern!(py, "activated"),
            "disconnected" => pyo3::intern!(py, "disconnected"),
            "reactivated" => pyo3::intern!(py, "reactivated"),
            "channel" => pyo3::intern!(py, "channel"),
            "pattern" => pyo3::intern!(py, "pattern"),
            "shard" => pyo3::intern!(py, "shard"),
            other => return Ok(PyString::new(py, other)),
        };
        Ok(s.clone())
    }
}

/// `bytes` made once and shared by every read of the field; equal and hashed by content.
pub(crate) struct PyBlob(Py<PyBytes>);

impl PartialEq for PyBlob {
    fn eq(&self, other: &Self) -> bool {
        Python::attach(|py| self.0.as_bytes(py) == other.0.as_bytes(py))
    }
}

impl Eq for PyBlob {}

impl std::hash::Hash for PyBlob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Python::attach(|py| self.0.as_bytes(py).hash(state))
    }
}

impl<'py> IntoPyObject<'py> for &PyBlob {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Bound<'py, PyBytes>, Self::Error> {
        Ok(self.0.bind(py).clone())
    }
}

/// One event of a subscription: a published message, or a change of the connection.
#[pyclass(frozen, eq, hash, get_all, module = "redipc._native")]
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct Message {
    /// `"message"`, `"activated"`, `"disconnected"` or `"reactivated"`.
    kind: Label,
    /// `"channel"`, `"pattern"` or `"shard"`: the kind of the subscription.
    sub_kind: Label,
    /// The channel (for `activated`/`reactivated`: the channel or pattern name).
    channel: PyBlob,
    /// The matching pattern (pattern subscriptions).
    pattern: Option<PyBlob>,
    /// The payload (`b""` for connection events).
    payload: PyBlob,
    /// Why the connection broke (`disconnected`).
    error: Option<String>,
}

pub(crate) fn kind_name(kind: SubscriptionKind) -> &'static str {
    match kind {
        SubscriptionKind::Channel => "channel",
        SubscriptionKind::Pattern => "pattern",
        SubscriptionKind::Shard => "shard",
        _ => "unknown",
    }
}

/// Makes the `Message`s of a subscription of `kind`, reusing the `bytes` of a channel
/// repeated in a batch.
pub(crate) struct Messages<'py> {
    py: Python<'py>,
    kind: SubscriptionKind,
    last: Option<(Bytes, Py<PyBytes>)>,
}

impl<'py> Messages<'py> {
    pub(crate) fn new(py: Python<'py>, kind: SubscriptionKind) -> Self {
        Messages {
            py,
            kind,
            last: None,
        }
    }

    /// Whether `event` is of a kind this binding knows (one added to the core later is
    /// skipped).
    pub(crate) fn known(event: &Event) -> bool {
        matches!(
            event,
            Event::Message(_)
                | Event::Activated { .. }
                | Event::Reactivated { .. }
                | Event::Disconnected { .. }
        )
    }

    fn blob(&self, b: &[u8]) -> PyBlob {
        PyBlob(PyBytes::new(self.py, b).unbind())
    }

    fn channel(&mut self, name: &Bytes) -> PyBlob {
        match &self.last {
            Some((n, b)) if n == name => PyBlob(b.clone_ref(self.py)),
            _ => {
                let b = PyBytes::new(self.py, name).unbind();
                self.last = Some((name.clone(), b.clone_ref(self.py)));
                PyBlob(b)
            }
        }
    }

    /// The message of `event`; `None` for an event kind this binding does not know.
    pub(crate) fn of(&mut self, event: &Event) -> Option<Message> {
        Some(match event {
            Event::Message(m) => Message {
                kind: Label("message"),
                sub_kind: Label(kind_name(m.kind)),
                channel: self.channel(&m.channel),
                pattern: m.pattern.as_ref().map(|p| self.blob(p)),
                payload: self.blob(&m.payload),
                error: None,
            },
            Event::Activated { kind, name } | Event::Reactivated { kind, name } => Message {
                kind: Label(match event {
                    Event::Activated { .. } => "activated",
                    _ => "reactivated",
                }),
                sub_kind: Label(kind_name(*kind)),
                channel: self.channel(name),
                pattern: (*kind == SubscriptionKind::Pattern).then(|| self.blob(name)),
                payload: self.blob(b""),
                error: None,
            },
            Event::Disconnected { error } => Message {
                kind: Label("disconnected"),
                sub_kind: Label(kind_name(self.kind)),
                channel: self.blob(b""),
                pattern: None,
                payload: self.blob(b""),
                error: Some(error.text()),
            },
            _ => return None,
        })
    }
}

#[pymethods]
impl Message {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        use pyo3::IntoPyObjectExt;
        let (kind, sub_kind) = (self.kind.0, self.sub_kind.0);
        let mut fields = vec![("kind", kind.into_bound_py_any(py)?)];
        if sub_kind != "channel" {
            fields.push(("sub_kind", sub_kind.into_bound_py_any(py)?));
        }
        if kind != "disconnected" {
            fields.push(("channel", (&self.channel).into_bound_py_any(py)?));
        }
        if let Some(p) = &self.pattern {
            fields.push(("pattern", p.into_bound_py_any(py)?));
        }
        if kind == "message" {
            fields.push(("payload", (&self.payload).into_bound_py_any(py)?));
        }
        if let Some(e) = &self.error {
            fields.push(("error", e.into_bound_py_any(py)?));
        }
        repr("Message", &fields)
    }
}

record! {
    /// A latency histogram's summary ([`redipc::LatencyStats`]), durations in seconds.
    LatencyStats {
        /// How many calls were timed.
        count: u64,
        p50: f64,
        p90: f64,
        p99: f64,
        p999: f64,
        max: f64,
        /// The non-empty buckets: (upper bound in seconds, count), ascending.
        buckets: Vec<(f64, u64)>,
    }
}

impl From<redipc::LatencyStats> for LatencyStats {
    fn from(l: redipc::LatencyStats) -> Self {
        LatencyStats {
            count: l.count,
            p50: l.p50.as_secs_f64(),
            p90: l.p90.as_secs_f64(),
            p99: l.p99.as_secs_f64(),
            p999: l.p999.as_secs_f64(),
            max: l.max.as_secs_f64(),
            buckets: l
                .buckets
                .into_iter()
                .map(|(upper, n)| (upper.as_secs_f64(), n))
                .collect(),
        }
    }
}

/// A record field that is a record itself: a new object of it (records are frozen).
macro_rules! nested_record {
    ($($t:ident),*) => {$(
        impl<'py> IntoPyObject<'py> for &$t {
            type Target = $t;
            type Output = Bound<'py, $t>;
            type Error = PyErr;

            fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, $t>> {
                Bound::new(py, self.clone())
            }
        }
    )*};
}
nested_record!(LatencyStats, WorkerStats, ConsumerStats);

record! {
    /// Statistics of a client ([`redipc::ClientStats`]): counters since it was made.
    ClientStats {
        commands: u64,
        /// Failed calls by error kind (`"server"`, `"timeout"` ...; kinds with none left out).
        failed: Dict<String, u64>,
        reconnects: u64,
        /// Redis Cluster redirects followed (`MOVED`, `ASK`); 0 for a standalone server.
        redirects: u64,
        pubsub_reconnects: u64,
        bytes_in: u64,
        bytes_out: u64,
        in_flight: u64,
        pubsub_received: u64,
        pubsub_dropped: u64,
        /// The sum of the counters of every worker and RPC server the client ran.
        workers: WorkerStats,
        /// The sum of the counters of every stream group consumer the client ran.
        consumers: ConsumerStats,
        latency: LatencyStats,
    }
}

record! {
    /// One server's share of a client's traffic ([`redipc::NodeStats`]).
    NodeStats from redipc::NodeStats {
        addr: String,
        primary: bool,
        /// Slot ranges, inclusive, ascending (empty for a standalone server).
        slots: Vec<(u16, u16)>,
        connected: bool,
        commands: u64,
        failed: u64,
        reconnects: u64,
        redirects: u64,
        bytes_in: u64,
        bytes_out: u64,
    }
}

/// The name of an error kind: the core's, with `_` for spaces (`"invalid_argument"`), as
/// the names of report kinds.
pub(crate) fn error_kind_name(kind: redipc::ErrorKind) -> String {
    kind.as_str().replace(' ', "_")
}

impl From<redipc::ClientStats> for ClientStats {
    fn from(s: redipc::ClientStats) -> Self {
        ClientStats {
            commands: s.commands,
            failed: Dict(
                s.failed
                    .into_iter()
                    .map(|(k, n)| (error_kind_name(k), n))
                    .collect(),
            ),
            reconnects: s.reconnects,
            redirects: s.redirects,
            pubsub_reconnects: s.pubsub_reconnects,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            in_flight: s.in_flight,
            pubsub_received: s.pubsub_received,
            pubsub_dropped: s.pubsub_dropped,
            workers: s.workers.into(),
            consumers: s.consumers.into(),
            latency: s.latency.into(),
        }
    }
}

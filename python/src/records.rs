//! Records: frozen value classes made from the core's plain data, with the same `repr`,
//! equality and `as_dict` for all, from one macro.

use std::time::UNIX_EPOCH;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
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
    QueueCounts from redipc::QueueCounts { pending: u64, inflight: u64, dead: u64 }
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

#[pymethods]
impl StreamEntry {
    fn __getitem__(&self, name: crate::convert::Arg) -> PyResult<Bytes> {
        self.field(&name.0)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.0))
    }

    /// The value of field `name` (`bytes` or `str`), or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: crate::convert::Arg,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.field(&name.0) {
            Some(v) => Ok(Some(PyBytes::new(py, &v[..]).into_any())),
            None => Ok(default),
        }
    }

    fn __contains__(&self, name: crate::convert::Arg) -> bool {
        self.field(&name.0).is_some()
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

/// One event of a subscription: a published message, or a change of the connection.
#[pyclass(frozen, eq, hash, get_all, module = "redipc._native")]
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct Message {
    /// `"message"`, `"activated"`, `"disconnected"` or `"reactivated"`.
    kind: &'static str,
    /// `"channel"`, `"pattern"` or `"shard"`: the kind of the subscription.
    sub_kind: &'static str,
    /// The channel (for `activated`/`reactivated`: the channel or pattern name).
    channel: Bytes,
    /// The matching pattern (pattern subscriptions).
    pattern: Option<Bytes>,
    /// The payload (`b""` for connection events).
    payload: Bytes,
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

impl Message {
    /// The message of `event` on a subscription of `kind`; `None` for an event kind added
    /// to the core later.
    pub(crate) fn of(event: &Event, kind: SubscriptionKind) -> Option<Message> {
        let empty = Bytes::new();
        Some(match event {
            Event::Message(m) => Message {
                kind: "message",
                sub_kind: kind_name(m.kind),
                channel: m.channel.clone(),
                pattern: m.pattern.clone(),
                payload: m.payload.clone(),
                error: None,
            },
            Event::Activated { kind, name } | Event::Reactivated { kind, name } => Message {
                kind: match event {
                    Event::Activated { .. } => "activated",
                    _ => "reactivated",
                },
                sub_kind: kind_name(*kind),
                channel: name.clone(),
                pattern: (*kind == SubscriptionKind::Pattern).then(|| name.clone()),
                payload: empty,
                error: None,
            },
            Event::Disconnected { error } => Message {
                kind: "disconnected",
                sub_kind: kind_name(kind),
                channel: empty.clone(),
                pattern: None,
                payload: empty,
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
        let mut fields = vec![("kind", self.kind.into_bound_py_any(py)?)];
        if self.sub_kind != "channel" {
            fields.push(("sub_kind", self.sub_kind.into_bound_py_any(py)?));
        }
        if self.kind != "disconnected" {
            fields.push(("channel", (&self.channel).into_bound_py_any(py)?));
        }
        if let Some(p) = &self.pattern {
            fields.push(("pattern", p.into_bound_py_any(py)?));
        }
        if self.kind == "message" {
            fields.push(("payload", (&self.payload).into_bound_py_any(py)?));
        }
        if let Some(e) = &self.error {
            fields.push(("error", e.into_bound_py_any(py)?));
        }
        repr("Message", &fields)
    }
}

//! Arguments PyO3 converts itself (`FromPyObject` newtypes: a failed conversion names its
//! argument, as PyO3's own ones do), and replies as Python objects.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pyo3::BoundObject;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    IntoPyDict, PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping,
    PyMemoryView, PySet, PyString, PyTuple, PyType,
};
use redipc::{Overflow, Pem, Protocol, Reply, TimestampFormat};

use crate::errors::server_error_value;

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_string(), |n| n.to_string())
}

/// A command argument, key, name or payload: `bytes`, `bytearray`, `memoryview` or `str`
/// (UTF-8), and `int` or `float` (their decimal text, like redis-py; never `bool`). `bytes`
/// and `str` are borrowed from their objects, not copied.
pub(crate) enum Arg {
    Bytes(PyBackedBytes),
    Str(PyBackedStr),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Arg {
    fn as_ref(&self) -> &[u8] {
        match self {
            Arg::Bytes(b) => b,
            Arg::Str(s) => s.as_bytes(),
            Arg::Owned(v) => v,
        }
    }
}

impl From<Arg> for Bytes {
    fn from(a: Arg) -> Bytes {
        match a {
            Arg::Owned(v) => Bytes::from(v),
            other => Bytes::copy_from_slice(other.as_ref()),
        }
    }
}

impl Arg {
    /// `obj` as an argument, numbers only when `numbers`; `None` for another type.
    fn of(obj: &Bound<'_, PyAny>, numbers: bool) -> PyResult<Option<Arg>> {
        let py = obj.py();
        Ok(Some(if let Ok(b) = obj.cast::<PyBytes>() {
            Arg::Bytes(PyBackedBytes::from(b.clone()))
        } else if let Ok(s) = obj.cast::<PyString>() {
            Arg::Str(PyBackedStr::try_from(s.clone())?)
        } else if let Ok(b) = obj.cast::<PyByteArray>() {
            Arg::Owned(b.to_vec())
        } else if obj.is_instance_of::<PyMemoryView>() {
            let b = obj.call_method0(pyo3::intern!(py, "tobytes"))?;
            Arg::Bytes(PyBackedBytes::from(b.cast_into::<PyBytes>()?))
        } else if !numbers || obj.is_instance_of::<PyBool>() {
            return Ok(None);
        } else if obj.is_exact_instance_of::<PyInt>()
            && let Ok(i) = obj.extract::<i64>()
        {
            Arg::Owned(i.to_string().into_bytes())
        } else if obj.is_instance_of::<PyInt>() {
            // Its decimal text, whatever an int subclass's own __repr__ says.
            let text = py.get_type::<PyInt>().call_method1("__repr__", (obj,))?;
            Arg::Owned(text.extract::<String>()?.into_bytes())
        } else if obj.is_instance_of::<PyFloat>() {
            // The shortest text that reads back as the same float ("0.1", "1e+16").
            let text = py.get_type::<PyFloat>().call_method1("__repr__", (obj,))?;
            Arg::Owned(text.extract::<String>()?.into_bytes())
        } else {
            return Ok(None);
        }))
    }
}

impl FromPyObject<'_, '_> for Arg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        Arg::of(&obj, true)?.ok_or_else(|| {
            py_err!(
                TypeError,
                "expected bytes, bytearray, memoryview, str, int or float, not {}",
                type_name(&obj)
            )
        })
    }
}

/// Bytes-like or `str`, not a number (what an RPC handler returns).
pub(crate) struct Blob(pub(crate) Arg);

impl FromPyObject<'_, '_> for Blob {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        match Arg::of(&obj, false)? {
            Some(b) => Ok(Blob(b)),
            None => Err(py_err!(
                TypeError,
                "expected bytes or str, not {}",
                type_name(&obj)
            )),
        }
    }
}

/// A list or tuple (any iterable but a string) of `T`; a failed item is named by its index.
pub(crate) struct Seq<T>(pub(crate) Vec<T>);

impl<'py, T: for<'a> FromPyObject<'a, 'py, Error = PyErr>> FromPyObject<'_, 'py> for Seq<T> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let items = |items: &mut dyn Iterator<Item = PyResult<Bound<'py, PyAny>>>| {
            items
                .enumerate()
                .map(|(i, item)| {
                    item?.extract::<T>().map_err(|e| {
                        if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
                            py_err!(TypeError, "item {i}: {}", e.value(py))
                        } else {
                            e
                        }
                    })
                })
                .collect::<PyResult<_>>()
                .map(Seq)
        };
        // Tuples (`*args`) and lists without an iterator object; any other iterable too,
        // but not a string.
        if let Ok(t) = obj.cast::<PyTuple>() {
            items(&mut t.iter().map(Ok))
        } else if let Ok(l) = obj.cast::<PyList>() {
            items(&mut l.iter().map(Ok))
        } else if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
            Err(py_err!(
                TypeError,
                "expected a list or tuple, not {}",
                type_name(&obj)
            ))
        } else {
            match obj.try_iter() {
                Ok(mut it) => items(&mut it),
                Err(_) => Err(py_err!(
                    TypeError,
                    "expected a list or tuple, not {}",
                    type_name(&obj)
                )),
            }
        }
    }
}

/// One name, or a list or tuple of names.
pub(crate) struct Names(pub(crate) Vec<Arg>);

impl FromPyObject<'_, '_> for Names {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            return Ok(Names(obj.extract::<Seq<Arg>>()?.0));
        }
        Ok(Names(vec![obj.extract()?]))
    }
}

/// The items of a mapping (a `dict`, or another `collections.abc.Mapping`), in its order.
#[derive(Clone, PartialEq)]
pub(crate) struct Dict<K, V>(pub(crate) Vec<(K, V)>);

impl<K, V> Default for Dict<K, V> {
    fn default() -> Self {
        Dict(Vec::new())
    }
}

impl<'py, K, V> FromPyObject<'_, 'py> for Dict<K, V>
where
    K: for<'a> FromPyObject<'a, 'py, Error = PyErr>,
    V: for<'a> FromPyObject<'a, 'py, Error = PyErr>,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let items = match obj.cast::<PyDict>() {
            Ok(d) => d.items().into_any(),
            Err(_) => match obj.cast::<PyMapping>() {
                Ok(m) => m.items()?.into_any(),
                Err(_) => {
                    return Err(py_err!(
                        TypeError,
                        "expected a mapping, not {}",
                        type_name(&obj)
                    ));
                }
            },
        };
        let mut pairs = Vec::new();
        for item in items.try_iter()? {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
            let named = |e: PyErr, what: &str| -> PyErr {
                let key = k.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
                let py = k.py();
                if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) {
                    py_err!(TypeError, "{what} {key}: {}", e.value(py))
                } else {
                    e
                }
            };
            let key = k.extract::<K>().map_err(|e| named(e, "key"))?;
            let value = v.extract::<V>().map_err(|e| named(e, "value of"))?;
            pairs.push((key, value));
        }
        Ok(Dict(pairs))
    }
}

/// A mapping as a `dict`, in order (the first of a repeated key wins).
impl<'py, K, V> IntoPyObject<'py> for &Dict<K, V>
where
    for<'a> &'a K: IntoPyObject<'py>,
    for<'a> &'a V: IntoPyObject<'py>,
{
    type Target = PyDict;
    type Output = Bound<'py, PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.0 {
            let k = k
                .into_pyobject(py)
                .map_err(Into::into)?
                .into_any()
                .into_bound();
            if !d.contains(&k)? {
                let v = v
                    .into_pyobject(py)
                    .map_err(Into::into)?
                    .into_any()
                    .into_bound();
                d.set_item(k, v)?;
            }
        }
        Ok(d)
    }
}

impl<'py, K, V> IntoPyObject<'py> for Dict<K, V>
where
    for<'a> &'a K: IntoPyObject<'py>,
    for<'a> &'a V: IntoPyObject<'py>,
{
    type Target = PyDict;
    type Output = Bound<'py, PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        (&self).into_pyobject(py)
    }
}

impl<K, V> From<Vec<(K, V)>> for Dict<K, V> {
    fn from(v: Vec<(K, V)>) -> Self {
        Dict(v)
    }
}

/// A callable (a handler or hook).
pub(crate) struct Callable(pub(crate) Py<PyAny>);

impl FromPyObject<'_, '_> for Callable {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        if !obj.is_callable() {
            return Err(py_err!(
                TypeError,
                "expected a callable, not {}",
                type_name(&obj)
            ));
        }
        Ok(Callable(obj.to_owned().unbind()))
    }
}

/// PEM for TLS: a path (`str` or `os.PathLike`) of a file the core reads, or the PEM itself
/// (`bytes` or `bytearray`). The PEM is never shown in a message.
pub(crate) struct PemArg(pub(crate) Pem);

impl FromPyObject<'_, '_> for PemArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(PemArg(Pem::data(b.as_bytes())));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(PemArg(Pem::data(b.to_vec())));
        }
        match obj.extract::<PathBuf>() {
            Ok(path) => Ok(PemArg(Pem::file(path))),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(obj.py()) => Err(py_err!(
                TypeError,
                "expected a path (str or os.PathLike) or PEM bytes, not {}",
                type_name(&obj)
            )),
            Err(e) => Err(e),
        }
    }
}

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A duration: a number of seconds (int or float) or a `datetime.timedelta`; finite and
/// not negative.
#[derive(Clone, Copy)]
pub(crate) struct Seconds(pub(crate) Duration);

impl Seconds {
    pub(crate) const ZERO: Seconds = Seconds(Duration::ZERO);
}

impl FromPyObject<'_, '_> for Seconds {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let secs: f64 = if obj.is_instance(TIMEDELTA.import(py, "datetime", "timedelta")?)? {
            obj.call_method0(pyo3::intern!(py, "total_seconds"))?
                .extract()?
        } else if obj.is_instance_of::<PyBool>() {
            return Err(py_err!(
                TypeError,
                "expected a number of seconds or a datetime.timedelta, not bool"
            ));
        } else {
            obj.extract::<f64>().map_err(|_| {
                py_err!(
                    TypeError,
                    "expected a number of seconds or a datetime.timedelta, not {}",
                    type_name(&obj)
                )
            })?
        };
        Duration::try_from_secs_f64(secs).map(Seconds).map_err(|_| {
            py_err!(
                InvalidArgument,
                "expected a finite, non-negative number of seconds, not {secs}"
            )
        })
    }
}

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A point in time: a Unix timestamp in seconds (int or float) or a `datetime.datetime`
/// (its `timestamp()`: a naive one is local time, as Python reads it).
#[derive(Clone, Copy)]
pub(crate) struct When(pub(crate) SystemTime);

impl FromPyObject<'_, '_> for When {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let expected = || {
            py_err!(
                TypeError,
                "expected a Unix timestamp in seconds or a datetime.datetime, not {}",
                type_name(&obj)
            )
        };
        let secs: f64 = if obj.is_instance(DATETIME.import(py, "datetime", "datetime")?)? {
            obj.call_method0(pyo3::intern!(py, "timestamp"))?
                .extract()?
        } else if obj.is_instance_of::<PyBool>() {
            return Err(expected());
        } else {
            obj.extract::<f64>().map_err(|_| expected())?
        };
        // Before 1970 too: the core says what it makes of that.
        let offset = Duration::try_from_secs_f64(secs.abs()).map_err(|_| {
            py_err!(
                InvalidArgument,
                "expected a finite Unix timestamp, not {secs}"
            )
        })?;
        let at = match secs < 0.0 {
            true => UNIX_EPOCH.checked_sub(offset),
            false => UNIX_EPOCH.checked_add(offset),
        };
        at.map(When)
            .ok_or_else(|| py_err!(InvalidArgument, "the time {secs} is out of range"))
    }
}

/// A count of at least `MIN`.
#[derive(Clone, Copy)]
pub(crate) struct Count<const MIN: u64>(pub(crate) u64);

impl<const MIN: u64> Count<MIN> {
    pub(crate) fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
    pub(crate) fn u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
}

impl<const MIN: u64> FromPyObject<'_, '_> for Count<MIN> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        let n: i128 = obj.extract()?;
        u64::try_from(n)
            .ok()
            .filter(|n| *n >= MIN)
            .map(Count)
            .ok_or_else(|| py_err!(InvalidArgument, "expected a count >= {MIN}, not {n}"))
    }
}

/// What a full subscription queue does: `"block"`, `"drop_oldest"` or `"drop_newest"`.
pub(crate) struct Policy(pub(crate) Overflow);

impl FromPyObject<'_, '_> for Policy {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        match &*obj.extract::<PyBackedStr>()? {
            "block" => Ok(Policy(Overflow::Block)),
            "drop_oldest" => Ok(Policy(Overflow::DropOldest)),
            "drop_newest" => Ok(Policy(Overflow::DropNewest)),
            other => Err(py_err!(
                InvalidArgument,
                "expected 'block', 'drop_oldest' or 'drop_newest', not {other:?}"
            )),
        }
    }
}

/// An RPC wire protocol: `"redipc"` or `"redis-ipc"` (the JSON wire of redis-ipc fleets).
pub(crate) struct Wire(pub(crate) Protocol);

impl FromPyObject<'_, '_> for Wire {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        let text = obj.extract::<PyBackedStr>().map_err(|_| {
            py_err!(
                TypeError,
                "expected 'redipc' or 'redis-ipc', not {}",
                type_name(&obj)
            )
        })?;
        match &*text {
            "redipc" => Ok(Wire(Protocol::Redipc)),
            "redis-ipc" => Ok(Wire(Protocol::RedisIpc)),
            other => Err(py_err!(
                InvalidArgument,
                "expected 'redipc' or 'redis-ipc', not {other:?}"
            )),
        }
    }
}

/// How a hash write stamps its fields: `True` or `"rfc3339"` (RFC 3339 UTC, what the
/// issue's fleet convention names), `"unix_ms"` (Unix milliseconds, as librescoot's Go
/// `SetWithTimestamp` writes them); `False`: no timestamp.
pub(crate) struct Stamp(pub(crate) Option<TimestampFormat>);

impl FromPyObject<'_, '_> for Stamp {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(Stamp(b.is_true().then_some(TimestampFormat::Rfc3339)));
        }
        let text = obj.extract::<PyBackedStr>().map_err(|_| {
            py_err!(
                TypeError,
                "expected a bool, 'rfc3339' or 'unix_ms', not {}",
                type_name(&obj)
            )
        })?;
        match &*text {
            "rfc3339" => Ok(Stamp(Some(TimestampFormat::Rfc3339))),
            "unix_ms" => Ok(Stamp(Some(TimestampFormat::UnixMillis))),
            other => Err(py_err!(
                InvalidArgument,
                "expected True, 'rfc3339' or 'unix_ms', not {other:?}"
            )),
        }
    }
}

/// Setting only the options the caller gave: `opts.with(capacity, Options::capacity)`.
pub(crate) trait With: Sized {
    fn with<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(v) => set(self, v),
            None => self,
        }
    }
}

impl<O> With for O {}

/// A reply as a Python object:
///
/// | reply                | Python                                              |
/// |----------------------|-----------------------------------------------------|
/// | nil                  | `None`                                              |
/// | integer              | `int`                                               |
/// | bulk string          | `bytes`                                             |
/// | status (`OK`)        | `str`                                               |
/// | error (in an array)  | a `ResponseError` instance, not raised              |
/// | array                | `list`                                              |
/// | map                  | `dict` (a `list` of `(key, value)` tuples if a key is unhashable) |
/// | set                  | `set` (a `list` if an element is unhashable)        |
/// | double               | `float`                                             |
/// | boolean              | `bool`                                              |
/// | big number           | `int`                                               |
/// | verbatim string      | `str` (its text; the format is dropped)             |
/// | push                 | `list`: `[kind: str, *data]`                        |
pub(crate) fn reply(py: Python<'_>, r: Reply) -> PyResult<Bound<'_, PyAny>> {
    let all = |items: Vec<Reply>| -> PyResult<Vec<Bound<'_, PyAny>>> {
        items.into_iter().map(|r| reply(py, r)).collect()
    };
    Ok(match r {
        Reply::Nil => py.None().into_bound(py),
        Reply::Int(i) => i.into_pyobject(py)?.into_any(),
        Reply::Bulk(b) => PyBytes::new(py, &b).into_any(),
        Reply::Status(s) => PyString::new(py, &s).into_any(),
        Reply::Error(e) => server_error_value(py, &e)?,
        Reply::Array(items) => PyList::new(py, all(items)?)?.into_any(),
        Reply::Map(pairs) => {
            let pairs = pairs
                .into_iter()
                .map(|(k, v)| Ok((reply(py, k)?, reply(py, v)?)))
                .collect::<PyResult<Vec<_>>>()?;
            if pairs.iter().all(|(k, _)| k.hash().is_ok()) {
                pairs.into_py_dict(py)?.into_any()
            } else {
                PyList::new(py, pairs)?.into_any()
            }
        }
        Reply::Set(items) => {
            let items = all(items)?;
            if items.iter().all(|x| x.hash().is_ok()) {
                PySet::new(py, items)?.into_any()
            } else {
                PyList::new(py, items)?.into_any()
            }
        }
        Reply::Double(d) => PyFloat::new(py, d).into_any(),
        Reply::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Reply::BigNumber(text) => py.get_type::<PyInt>().call1((text,))?,
        Reply::Verbatim { text, .. } => PyString::new(py, &text).into_any(),
        Reply::Push { kind, data } => {
            let mut items = vec![PyString::new(py, &kind).into_any()];
            items.extend(all(data)?);
            PyList::new(py, items)?.into_any()
        }
        // A reply type added to the core later: its debug text, rather than failing.
        other => PyString::new(py, &format!("{other:?}")).into_any(),
    })
}

/// Replies as a list (error replies as `ResponseError` instances in their slots).
pub(crate) fn replies(py: Python<'_>, rs: Vec<Reply>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(
        py,
        rs.into_iter()
            .map(|r| reply(py, r))
            .collect::<PyResult<Vec<_>>>()?,
    )
}

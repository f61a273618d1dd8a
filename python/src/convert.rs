//! Conversions between Python objects and the core: command arguments, durations, replies.

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PySet, PyString,
    PyTuple, PyType,
};
use redipc::Reply;

use crate::errors::{invalid_argument, server_error_value};

/// One command argument, readable without the GIL: bytes and str are borrowed from their
/// Python objects (no copy), the rest is converted to owned bytes.
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

const ACCEPTED: &str = "bytes, bytearray, memoryview, str, int or float";

/// Convert one argument; `what` names it in the `TypeError` ("set(): argument 'value'").
pub(crate) fn arg(obj: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<Arg> {
    let py = obj.py();
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Arg::Bytes(PyBackedBytes::from(b.clone())));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Arg::Str(PyBackedStr::try_from(s.clone())?));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Arg::Owned(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let bytes = obj.call_method0(pyo3::intern!(py, "tobytes"))?;
        return Ok(Arg::Bytes(PyBackedBytes::from(
            bytes.cast_into::<PyBytes>()?,
        )));
    }
    if obj.is_instance_of::<PyBool>() {
        // True/False would silently become "1"/"0" (or "True"): refuse, like redis-py.
        return Err(PyTypeError::new_err(format!(
            "{} must be {ACCEPTED}, not bool",
            what()
        )));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Arg::Owned(i.to_string().into_bytes()));
        }
        // A big int, or an int subclass: its decimal text, whatever its own __repr__ says.
        let text = py
            .get_type::<PyInt>()
            .call_method1(pyo3::intern!(py, "__repr__"), (obj,))?;
        return Ok(Arg::Owned(text.extract::<String>()?.into_bytes()));
    }
    if obj.is_instance_of::<PyFloat>() {
        // Python's repr: the shortest text that reads back as the same float ("0.1",
        // "1e+16", "inf"), as redis-py sends it.
        let text = py
            .get_type::<PyFloat>()
            .call_method1(pyo3::intern!(py, "__repr__"), (obj,))?;
        return Ok(Arg::Owned(text.extract::<String>()?.into_bytes()));
    }
    Err(PyTypeError::new_err(format!(
        "{} must be {ACCEPTED}, not {}",
        what(),
        type_name(obj)
    )))
}

/// Convert every item of `items`; item `i` is named by `what(i)`.
pub(crate) fn args(
    items: &Bound<'_, PyTuple>,
    what: &dyn Fn(usize) -> String,
) -> PyResult<Vec<Arg>> {
    items
        .iter()
        .enumerate()
        .map(|(i, obj)| arg(&obj, &|| what(i)))
        .collect()
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string())
}

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A duration given as seconds (int or float) or a `datetime.timedelta`; `what` names it.
pub(crate) fn duration(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let py = obj.py();
    let timedelta = TIMEDELTA.import(py, "datetime", "timedelta")?;
    let secs: f64 = if obj.is_instance(timedelta)? {
        obj.call_method0(pyo3::intern!(py, "total_seconds"))?
            .extract()?
    } else if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds or a datetime.timedelta, not bool"
        )));
    } else {
        obj.extract::<f64>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a number of seconds or a datetime.timedelta, not {}",
                type_name(obj)
            ))
        })?
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(invalid_argument(
            py,
            format!("{what} must be a finite, non-negative number of seconds, not {secs}"),
        ));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid_argument(py, format!("{what} is too large: {secs} seconds")))
}

/// How long to wait: seconds or a `timedelta` (`Some`), or `None` for no limit.
pub(crate) struct Wait(pub(crate) Option<Duration>);

impl Wait {
    /// Do not wait.
    pub(crate) const ZERO: Wait = Wait(Some(Duration::ZERO));
}

impl<'a, 'py> FromPyObject<'a, 'py> for Wait {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(Wait(None));
        }
        duration(&obj, "timeout").map(|d| Wait(Some(d)))
    }
}

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
    Ok(match r {
        Reply::Nil => py.None().into_bound(py),
        Reply::Int(i) => i.into_pyobject(py)?.into_any(),
        Reply::Bulk(b) => PyBytes::new(py, &b).into_any(),
        Reply::Status(s) => PyString::new(py, &s).into_any(),
        Reply::Error(e) => server_error_value(py, &e)?,
        Reply::Array(items) => list(py, items)?,
        Reply::Map(pairs) => {
            let mut keys = Vec::with_capacity(pairs.len());
            let mut values = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                keys.push(reply(py, k)?);
                values.push(reply(py, v)?);
            }
            if keys.iter().all(|k| k.hash().is_ok()) {
                let dict = PyDict::new(py);
                for (k, v) in keys.into_iter().zip(values) {
                    dict.set_item(k, v)?;
                }
                dict.into_any()
            } else {
                let pairs = keys
                    .into_iter()
                    .zip(values)
                    .map(|(k, v)| PyTuple::new(py, [k, v]))
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, pairs)?.into_any()
            }
        }
        Reply::Set(items) => {
            let items = items
                .into_iter()
                .map(|r| reply(py, r))
                .collect::<PyResult<Vec<_>>>()?;
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
            let mut items = Vec::with_capacity(data.len() + 1);
            items.push(PyString::new(py, &kind).into_any());
            for r in data {
                items.push(reply(py, r)?);
            }
            PyList::new(py, items)?.into_any()
        }
        // A reply type added to the core later: its debug text, rather than failing.
        other => PyString::new(py, &format!("{other:?}")).into_any(),
    })
}

fn list(py: Python<'_>, items: Vec<Reply>) -> PyResult<Bound<'_, PyAny>> {
    let items = items
        .into_iter()
        .map(|r| reply(py, r))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any())
}

/// Optional bytes as `bytes | None`.
pub(crate) fn opt_bytes(py: Python<'_>, v: Option<Vec<u8>>) -> Option<Bound<'_, PyBytes>> {
    v.map(|b| PyBytes::new(py, &b))
}

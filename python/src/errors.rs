//! The exception tree of `redipc`: one class per [`redipc::ErrorKind`], and the way an
//! exception raised by user code travels through the core and comes back as itself.
//!
//! ```text
//! RedipcError(Exception)
//! ├── ConnectionError(RedipcError, builtins.ConnectionError)
//! ├── TimeoutError(RedipcError, builtins.TimeoutError)
//! ├── ResponseError          .code: the server's error code ("WRONGTYPE"), .message
//! ├── ProtocolError
//! ├── InvalidArgument(RedipcError, builtins.ValueError)
//! ├── ClosedError
//! ├── UnsupportedError
//! ├── WatchError
//! ├── RemoteError            an RPC handler's error; the message is its text
//! ├── NoServerError          no server of the called RPC service is running
//! ├── HandlerError           a handler failed
//! └── AbortedError           a transaction's function gave it up
//! ```
//!
//! Some classes have two bases, so they are made with `type(name, bases, dict)` once per
//! interpreter rather than with `create_exception!` (which takes one base).

use pyo3::exceptions::{PyConnectionError, PyException, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use redipc::{ErrorKind, ServerError};

/// A `TypeError`, or an exception of a core error kind, from a format string:
/// `py_err!(TypeError, "expected {x}")`, `py_err!(InvalidArgument, "...")`.
macro_rules! py_err {
    (TypeError, $($fmt:tt)+) => {
        ::pyo3::exceptions::PyTypeError::new_err(format!($($fmt)+))
    };
    ($kind:ident, $($fmt:tt)+) => {
        $crate::errors::raise(::redipc::Error::new(::redipc::ErrorKind::$kind, format!($($fmt)+)))
    };
}

/// The builtin second base of a class.
#[derive(Clone, Copy)]
enum Also {
    Nothing,
    Connection,
    Timeout,
    Value,
}

/// Name, core kind (`None`: the base class), second base and docstring of every class.
const CLASSES: [(&str, Option<ErrorKind>, Also, &str); 13] = [
    (
        "RedipcError",
        None,
        Also::Nothing,
        "Base class of every error raised by redipc.",
    ),
    (
        "ConnectionError",
        Some(ErrorKind::Connection),
        Also::Connection,
        "The server could not be reached, or the connection broke (it is re-established in \
         the background; a later call may succeed). Also a builtins.ConnectionError.",
    ),
    (
        "TimeoutError",
        Some(ErrorKind::Timeout),
        Also::Timeout,
        "No reply came within the response timeout. Also a builtins.TimeoutError.",
    ),
    (
        "ResponseError",
        Some(ErrorKind::Server),
        Also::Nothing,
        "The server answered with an error reply. `code` is its first word (\"WRONGTYPE\", \
         \"ERR\", ...), `message` the rest, with what was being done in front.",
    ),
    (
        "ProtocolError",
        Some(ErrorKind::Protocol),
        Also::Nothing,
        "The server's reply could not be understood, or did not have the expected shape.",
    ),
    (
        "InvalidArgument",
        Some(ErrorKind::InvalidArgument),
        Also::Value,
        "An unusable argument: an invalid URL or option, an empty command, a value over the \
         size limit. Also a builtins.ValueError.",
    ),
    (
        "ClosedError",
        Some(ErrorKind::Closed),
        Also::Nothing,
        "The client was closed.",
    ),
    (
        "UnsupportedError",
        Some(ErrorKind::Unsupported),
        Also::Nothing,
        "A feature that is not built into redipc or not available here, or one the server does not allow (watch_keys where CONFIG is renamed away).",
    ),
    (
        "WatchError",
        Some(ErrorKind::Watch),
        Also::Nothing,
        "A WATCHed key changed and the optimistic transaction gave up after its retries.",
    ),
    (
        "RemoteError",
        Some(ErrorKind::Remote),
        Also::Nothing,
        "The RPC handler reported an error; the message is its text, with the call in front.",
    ),
    (
        "NoServerError",
        Some(ErrorKind::NoServer),
        Also::Nothing,
        "No server of the called RPC service is running.",
    ),
    (
        "HandlerError",
        Some(ErrorKind::Handler),
        Also::Nothing,
        "A handler failed (it raised, or returned something unusable).",
    ),
    (
        "AbortedError",
        Some(ErrorKind::Aborted),
        Also::Nothing,
        "The function of an optimistic transaction gave it up: nothing queued ran.",
    ),
];

/// The classes of this interpreter, in the order of [`CLASSES`].
static EXCEPTIONS: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&'static [Py<PyType>]> {
    EXCEPTIONS
        .get_or_try_init(py, || {
            let mut made: Vec<Py<PyType>> = Vec::with_capacity(CLASSES.len());
            for (name, _, also, doc) in CLASSES {
                let first = match made.first() {
                    Some(base) => base.bind(py).clone(),
                    None => py.get_type::<PyException>(),
                };
                let bases = match also {
                    Also::Nothing => PyTuple::new(py, [first])?,
                    Also::Connection => {
                        PyTuple::new(py, [first, py.get_type::<PyConnectionError>()])?
                    }
                    Also::Timeout => PyTuple::new(py, [first, py.get_type::<PyTimeoutError>()])?,
                    Also::Value => PyTuple::new(py, [first, py.get_type::<PyValueError>()])?,
                };
                let dict = PyDict::new(py);
                dict.set_item("__module__", "redipc._native")?;
                dict.set_item("__qualname__", name)?;
                dict.set_item("__doc__", doc)?;
                if name == "ResponseError" {
                    dict.set_item("code", py.None())?;
                    dict.set_item("message", "")?;
                }
                let class = py.get_type::<PyType>().call1((name, bases, dict))?;
                made.push(class.cast_into::<PyType>()?.unbind());
            }
            Ok(made)
        })
        .map(Vec::as_slice)
}

/// Add every class to the module `m` by its name.
pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for ((name, ..), class) in CLASSES.iter().zip(classes(m.py())?) {
        m.add(*name, class.bind(m.py()))?;
    }
    Ok(())
}

/// The class of `kind` (a kind added to the core later is still a `RedipcError`).
fn class_of(py: Python<'_>, kind: ErrorKind) -> PyResult<&Bound<'_, PyType>> {
    let all = classes(py)?;
    let i = CLASSES
        .iter()
        .position(|(_, k, ..)| *k == Some(kind))
        .unwrap_or(0);
    Ok(all[i].bind(py))
}

/// Whether `err` is the exception of `kind`.
pub(crate) fn is(py: Python<'_>, err: &PyErr, kind: ErrorKind) -> bool {
    class_of(py, kind).is_ok_and(|c| err.matches(py, c).unwrap_or(false))
}

/// An exception raised by user code, carried through the core as the source of a
/// [`redipc::Error`] (`Error::with_source`) and raised again as itself by [`to_pyerr`].
#[derive(Debug)]
pub(crate) struct Raised {
    pub(crate) err: PyErr,
    /// What the core's error message says: `"TypeName: message"`.
    pub(crate) text: String,
    /// Whether the user's `on_error` was given it already.
    pub(crate) told: bool,
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Raised {}

/// The exception that `e` carries (see [`Raised`]), if any.
pub(crate) fn raised(e: &redipc::Error) -> Option<&Raised> {
    e.source_error()?.downcast_ref::<Raised>()
}

/// The exception instance of `kind` with `text`; for a server error with `code` and
/// `message` as attributes.
fn instance<'py>(
    py: Python<'py>,
    kind: ErrorKind,
    code: Option<&str>,
    message: &str,
    text: String,
) -> PyResult<Bound<'py, PyAny>> {
    let value = class_of(py, kind)?.call1((text,))?;
    if let Some(code) = code {
        value.setattr("code", code)?;
        value.setattr("message", message)?;
    }
    Ok(value)
}

/// The Python exception for a core error: the user's own exception when it carries one.
pub(crate) fn to_pyerr(py: Python<'_>, e: redipc::Error) -> PyErr {
    if let Some(r) = raised(&e) {
        return r.err.clone_ref(py);
    }
    match instance(py, e.kind(), e.code(), e.message(), e.text()) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// [`to_pyerr`] on the calling thread, which holds the GIL (or takes it).
pub(crate) fn raise(e: redipc::Error) -> PyErr {
    Python::attach(|py| to_pyerr(py, e))
}

/// A `ResponseError` instance (not raised) for an error reply inside an aggregate.
pub(crate) fn server_error_value<'py>(
    py: Python<'py>,
    e: &ServerError,
) -> PyResult<Bound<'py, PyAny>> {
    let text = format!("{} {}", e.code, e.message);
    instance(py, ErrorKind::Server, Some(&e.code), &e.message, text)
}

/// Running core calls from Python: with the GIL released, their errors as exceptions.
pub(crate) trait Core {
    /// Run `f` with the GIL released and map its error.
    fn core<T: Send>(self, f: impl FnOnce() -> redipc::Result<T> + Send) -> PyResult<T>;
}

impl Core for Python<'_> {
    fn core<T: Send>(self, f: impl FnOnce() -> redipc::Result<T> + Send) -> PyResult<T> {
        let out = self.detach(f);
        // (a core thread that ended meanwhile, e.g. the handlers of a worker just stopped)
        crate::guard::reap(self);
        out.map_err(|e| to_pyerr(self, e))
    }
}

//! The exception tree of `redipc`, mapped one-to-one from [`redipc::ErrorKind`].
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
//! └── NoServerError          no server of the called RPC service is running
//! ```
//!
//! Some classes have two bases, so they are made with `type(name, bases, dict)` once per
//! interpreter rather than with `create_exception!` (which takes one base).

use pyo3::exceptions::{PyConnectionError, PyException, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use redipc::{ErrorKind, ServerError};

/// The module the classes say they belong to.
const MODULE: &str = "redipc._native";

/// The exception classes, in the order of [`CLASSES`].
pub(crate) struct Exceptions {
    classes: Vec<Py<PyType>>,
}

/// Which class: an index into [`CLASSES`].
#[derive(Clone, Copy)]
enum Class {
    Base = 0,
    Connection,
    Timeout,
    Response,
    Protocol,
    InvalidArgument,
    Closed,
    Unsupported,
    Watch,
    Remote,
    NoServer,
}

/// What a builtin second base is.
#[derive(Clone, Copy)]
enum Builtin {
    None,
    Connection,
    Timeout,
    Value,
}

/// Name, builtin second base and docstring of each class, in the order of [`Class`].
const CLASSES: [(&str, Builtin, &str); 11] = [
    (
        "RedipcError",
        Builtin::None,
        "Base class of every error raised by redipc.",
    ),
    (
        "ConnectionError",
        Builtin::Connection,
        "The server could not be reached, or the connection broke (it is re-established in \
         the background; a later call may succeed). Also a builtins.ConnectionError.",
    ),
    (
        "TimeoutError",
        Builtin::Timeout,
        "No reply came within the response timeout. Also a builtins.TimeoutError.",
    ),
    (
        "ResponseError",
        Builtin::None,
        "The server answered with an error reply. `code` is its first word (\"WRONGTYPE\", \
         \"ERR\", ...), `message` the rest, with what was being done in front.",
    ),
    (
        "ProtocolError",
        Builtin::None,
        "The server's reply could not be understood, or did not have the expected shape.",
    ),
    (
        "InvalidArgument",
        Builtin::Value,
        "An unusable argument: an invalid URL or option, an empty command, a value over the \
         size limit. Also a builtins.ValueError.",
    ),
    ("ClosedError", Builtin::None, "The client was closed."),
    (
        "UnsupportedError",
        Builtin::None,
        "A feature that is not built into redipc yet (for example TLS, rediss://).",
    ),
    (
        "WatchError",
        Builtin::None,
        "A WATCHed key changed and the optimistic transaction gave up after its retries.",
    ),
    (
        "RemoteError",
        Builtin::None,
        "The RPC handler reported an error; the message is its text, with the call in front.",
    ),
    (
        "NoServerError",
        Builtin::None,
        "No server of the called RPC service is running.",
    ),
];

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

impl Exceptions {
    /// The classes of this interpreter, made on first use.
    pub(crate) fn get(py: Python<'_>) -> PyResult<&'static Exceptions> {
        EXCEPTIONS.get_or_try_init(py, || Self::make(py))
    }

    fn make(py: Python<'_>) -> PyResult<Exceptions> {
        let type_ = py.get_type::<PyType>();
        let mut classes: Vec<Py<PyType>> = Vec::with_capacity(CLASSES.len());
        for (i, (name, builtin, doc)) in CLASSES.iter().enumerate() {
            let first = if i == 0 {
                py.get_type::<PyException>()
            } else {
                classes[Class::Base as usize].bind(py).clone()
            };
            let bases = match builtin {
                Builtin::None => PyTuple::new(py, [first])?,
                Builtin::Connection => {
                    PyTuple::new(py, [first, py.get_type::<PyConnectionError>()])?
                }
                Builtin::Timeout => PyTuple::new(py, [first, py.get_type::<PyTimeoutError>()])?,
                Builtin::Value => PyTuple::new(py, [first, py.get_type::<PyValueError>()])?,
            };
            let dict = PyDict::new(py);
            dict.set_item("__module__", MODULE)?;
            dict.set_item("__qualname__", name)?;
            dict.set_item("__doc__", doc)?;
            if i == Class::Response as usize {
                dict.set_item("code", py.None())?;
                dict.set_item("message", "")?;
            }
            let class = type_.call1((name, bases, dict))?.cast_into::<PyType>()?;
            classes.push(class.unbind());
        }
        Ok(Exceptions { classes })
    }

    fn class<'py>(&self, py: Python<'py>, c: Class) -> &Bound<'py, PyType> {
        self.classes[c as usize].bind(py)
    }

    /// Add every class to the module `m` by its name.
    pub(crate) fn add_to(&self, m: &Bound<'_, PyModule>) -> PyResult<()> {
        for (i, (name, _, _)) in CLASSES.iter().enumerate() {
            m.add(*name, self.classes[i].bind(m.py()))?;
        }
        Ok(())
    }
}

fn class_of(kind: ErrorKind) -> Class {
    match kind {
        ErrorKind::Connection => Class::Connection,
        ErrorKind::Timeout => Class::Timeout,
        ErrorKind::Server => Class::Response,
        ErrorKind::Protocol => Class::Protocol,
        ErrorKind::InvalidArgument => Class::InvalidArgument,
        ErrorKind::Closed => Class::Closed,
        ErrorKind::Unsupported => Class::Unsupported,
        ErrorKind::Watch => Class::Watch,
        ErrorKind::Remote => Class::Remote,
        ErrorKind::NoServer => Class::NoServer,
        // A kind added to the core later is still a RedipcError.
        _ => Class::Base,
    }
}

/// An exception instance of `class` with `text` (what was being done, the server's code and
/// its message); for a server error it also carries `code` and `message` as attributes.
fn instance<'py>(
    py: Python<'py>,
    class: Class,
    code: Option<&str>,
    message: &str,
    text: String,
) -> PyResult<Bound<'py, PyAny>> {
    let exc = Exceptions::get(py)?;
    let value = exc.class(py, class).call1((text,))?;
    if let Some(code) = code {
        value.setattr("code", code)?;
        value.setattr("message", message)?;
    }
    Ok(value)
}

/// A plain `RedipcError` with `text` (for what the core reports as text only).
pub(crate) fn base_error(py: Python<'_>, text: String) -> PyErr {
    match instance(py, Class::Base, None, "", text) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// The Python exception for a core error.
pub(crate) fn to_pyerr(py: Python<'_>, e: redipc::Error) -> PyErr {
    match instance(py, class_of(e.kind()), e.code(), e.message(), e.text()) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// A `ResponseError` instance (not raised) for an error reply inside an aggregate.
pub(crate) fn server_error_value<'py>(
    py: Python<'py>,
    e: &ServerError,
) -> PyResult<Bound<'py, PyAny>> {
    let text = format!("{} {}", e.code, e.message);
    instance(py, Class::Response, Some(&e.code), &e.message, text)
}

/// An `InvalidArgument` raised by the binding itself (a bad option value).
pub(crate) fn invalid_argument(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match instance(py, Class::InvalidArgument, None, &message, message.clone()) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// A `ClosedError` raised by the binding itself (a closed subscription).
pub(crate) fn closed_error(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match instance(py, Class::Closed, None, &message, message.clone()) {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// Whether `err` is a `RemoteError` (raised by an RPC handler to send its text as is).
pub(crate) fn is_remote_error(py: Python<'_>, err: &PyErr) -> bool {
    Exceptions::get(py).is_ok_and(|exc| {
        err.matches(py, exc.class(py, Class::Remote))
            .unwrap_or(false)
    })
}

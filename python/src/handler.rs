//! The one wrapper of every Python callback the core calls: request workers, RPC servers,
//! stream consumers, hash watchers, keyspace watches, subscriptions and groups.
//!
//! A [`Callback`] holds the Python function (and the user's `on_error`) until the core says
//! its last call returned (`on_stopped`, `on_closed`, a group route's `on_removed`): then
//! [`Callback::release`] drops them with the GIL, so they are gone at once. Every call
//! takes the GIL inside the exit guard ([`guard::attach`]).
//!
//! - [`Callback::run`]: a handler whose failure the core gets (workers, RPC servers, stream
//!   consumers). An exception goes to `on_error` if given, and becomes the core's
//!   `Error::handler("TypeName: message")` carrying the exception, so the core retries or
//!   dead-letters it and reports it (see `report.rs`).
//! - [`Callback::notify`]: a callback whose failure the core does not see (subscriptions,
//!   watchers): an exception goes to `on_error`, else to `sys.unraisablehook`.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use redipc::ErrorKind;

use crate::convert::Callable;
use crate::errors::{self, Raised};
use crate::guard;

struct Objects {
    f: Py<PyAny>,
    on_error: Option<Py<PyAny>>,
}

/// A Python callable given to the core; see the [module docs](self).
#[derive(Clone)]
pub(crate) struct Callback(Arc<Mutex<Option<Objects>>>);

impl Callback {
    pub(crate) fn new(py: Python<'_>, f: Callable, on_error: Option<&Callable>) -> Self {
        let on_error = on_error.map(|e| e.0.clone_ref(py));
        Callback(Arc::new(Mutex::new(Some(Objects { f: f.0, on_error }))))
    }

    /// Drop the Python objects, with the GIL: the core called this callback for the last
    /// time.
    pub(crate) fn release(&self) {
        let objects = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(o) = objects {
            guard::attach(move |_| drop(o));
        }
    }

    /// The callback bound for calls with the GIL held; `None` once released.
    pub(crate) fn target<'py>(&self, py: Python<'py>) -> Option<Target<'py>> {
        let objects = self.0.lock().unwrap_or_else(|p| p.into_inner());
        objects.as_ref().map(|o| Target {
            f: o.f.bind(py).clone(),
            on_error: o.on_error.as_ref().map(|e| e.bind(py).clone()),
        })
    }

    /// Call the handler on a thread of the core: `call(f)` converts the arguments and the
    /// result. An exception is a failure the core gets. Once the interpreter exits it never
    /// returns (see [`guard::park`]).
    pub(crate) fn run<T>(
        &self,
        call: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> redipc::Result<T> {
        let outcome = guard::attach(|py| {
            let t = self.target(py)?;
            Some(call(&t.f).map_err(|err| {
                let text = describe(py, &err);
                if let Some(hook) = &t.on_error {
                    tell(hook, &err);
                }
                let told = t.on_error.is_some();
                redipc::Error::handler(&text).with_source(Raised { err, text, told })
            }))
        });
        match outcome {
            Some(Some(result)) => result,
            Some(None) => Err(redipc::Error::new(
                ErrorKind::Closed,
                "the handler was released",
            )),
            None => guard::park(),
        }
    }

    /// [`Target::notify`] from a thread of the core (not once the interpreter exits).
    pub(crate) fn notify_now(&self, call: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<()>) {
        guard::attach(|py| self.target(py).map(|t| t.notify(call)));
    }
}

/// A [`Callback`] bound for calls with the GIL held (one batch of them).
pub(crate) struct Target<'py> {
    f: Bound<'py, PyAny>,
    on_error: Option<Bound<'py, PyAny>>,
}

impl Target<'_> {
    /// `call(f)`; an exception goes to `on_error`, else to `sys.unraisablehook`.
    pub(crate) fn notify(&self, call: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<()>) {
        if let Err(err) = call(&self.f) {
            report(err, &self.f, self.on_error.as_ref());
        }
    }
}

/// The failure text of an exception: `"TypeName: message"` (the type name alone when the
/// message is empty); a `RemoteError` raised by an RPC handler is its message alone.
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let text = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if errors::is(py, err, ErrorKind::Remote) {
        return text;
    }
    let name = err
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_string(), |n| n.to_string());
    if text.is_empty() {
        name
    } else {
        format!("{name}: {text}")
    }
}

/// Give `err` to the user's `hook`; an exception of the hook goes to `sys.unraisablehook`.
fn tell(hook: &Bound<'_, PyAny>, err: &PyErr) {
    let py = hook.py();
    if let Err(e) = hook.call1((err.clone_ref(py).into_value(py),)) {
        e.write_unraisable(py, Some(hook));
    }
}

thread_local! {
    /// Set while this thread is inside `Client.poll()`.
    static IN_POLL: Cell<bool> = const { Cell::new(false) };
    /// A `KeyboardInterrupt`/`SystemExit` a callback raised inside `poll()`, which
    /// `poll()` raises again when it returns.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Marks the current thread as inside `poll()` while it lives.
pub(crate) struct PollScope(bool);

impl PollScope {
    pub(crate) fn enter() -> Self {
        PollScope(IN_POLL.with(|f| f.replace(true)))
    }

    /// The exception a callback raised that must end the host's loop, if any.
    pub(crate) fn take_pending() -> Option<PyErr> {
        PENDING.with(|p| p.borrow_mut().take())
    }
}

impl Drop for PollScope {
    fn drop(&mut self) {
        IN_POLL.with(|f| f.set(self.0));
    }
}

/// An exception of a callback (`source`): to `on_error`, else to `sys.unraisablehook`.
/// Inside `poll()` a `KeyboardInterrupt` or `SystemExit` (not an `Exception`) is kept for
/// `poll()` to raise.
fn report(err: PyErr, source: &Bound<'_, PyAny>, on_error: Option<&Bound<'_, PyAny>>) {
    let py = source.py();
    if IN_POLL.with(Cell::get) && !err.is_instance_of::<PyException>(py) {
        let err = PENDING.with(|p| {
            let mut pending = p.borrow_mut();
            match *pending {
                Some(_) => Some(err),
                None => {
                    *pending = Some(err);
                    None
                }
            }
        });
        if let Some(err) = err {
            err.write_unraisable(py, Some(source));
        }
        return;
    }
    match on_error {
        Some(hook) => tell(hook, &err),
        None => err.write_unraisable(py, Some(source)),
    }
}

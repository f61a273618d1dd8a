//! Pipelines, `MULTI`/`EXEC` transactions and WATCH-based optimistic transactions.
//!
//! `Client.pipeline()` and `Client.tx()` return objects with the same shape (`add`, `exec`,
//! `len`, `clear`, context manager); `exec()` takes the queued commands out (the object is
//! empty again and may be reused) and sends them with the GIL released.
//!
//! `Client.transaction(fn, *keys)` runs the core's retry loop with the GIL released; for
//! each attempt the core calls back on the same thread, which takes the GIL again to call
//! `fn(session)`. The session object points at the core's `WatchSession` only while `fn`
//! runs (see [`SessionPtr`]).

use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use redipc::{ErrorKind, Reply, blocking};

use crate::client::Client;
use crate::convert::{self, args};
use crate::errors::{closed_error, invalid_argument, to_pyerr};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Replies as a list; an error reply is a `ResponseError` instance in its slot.
fn replies(py: Python<'_>, replies: Vec<Reply>) -> PyResult<Bound<'_, PyList>> {
    let items = replies
        .into_iter()
        .map(|r| convert::reply(py, r))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// `Pipeline` and `Transaction` have the same methods over different core types.
macro_rules! batch_class {
    ($name:ident, $core:ty, $what:literal, $make:ident, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(frozen, module = "redipc._native")]
        pub(crate) struct $name {
            client: blocking::Client,
            queued: Mutex<$core>,
        }

        #[pymethods]
        impl $name {
            /// Queue a command; returns this object, for chaining.
            #[pyo3(signature = (*args))]
            fn add<'py>(
                slf: &Bound<'py, Self>,
                args: &Bound<'py, PyTuple>,
            ) -> PyResult<Bound<'py, Self>> {
                let py = slf.py();
                let argv = convert::args(args, &|i| format!("add(): argument {i}"))?;
                lock(&slf.get().queued)
                    .add(&argv)
                    .map_err(|e| to_pyerr(py, e))?;
                Ok(slf.clone())
            }

            /// Send the queued commands; one result per command, in order. The queue is
            /// empty afterwards (also when it failed).
            fn exec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
                let batch = std::mem::replace(&mut *lock(&self.queued), self.client.$make());
                if batch.is_empty() {
                    return Ok(PyList::empty(py));
                }
                let r = py.detach(|| batch.exec()).map_err(|e| to_pyerr(py, e))?;
                replies(py, r)
            }

            /// Forget the queued commands.
            fn clear(&self) {
                lock(&self.queued).clear();
            }

            fn __len__(&self) -> usize {
                lock(&self.queued).len()
            }

            fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
                slf
            }

            /// Leaving the block forgets what is still queued (nothing is sent).
            #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
            fn __exit__(
                &self,
                _exc_type: Option<&Bound<'_, PyAny>>,
                _exc_value: Option<&Bound<'_, PyAny>>,
                _traceback: Option<&Bound<'_, PyAny>>,
            ) -> bool {
                self.clear();
                false
            }

            fn __repr__(&self) -> String {
                let n = lock(&self.queued).len();
                format!(
                    "<redipc.{} {n} command{}>",
                    $what,
                    if n == 1 { "" } else { "s" }
                )
            }
        }
    };
}

batch_class!(
    Pipeline,
    blocking::Batch,
    "Pipeline",
    pipeline,
    "Commands sent in one write and answered in order (not atomic)."
);
batch_class!(
    Transaction,
    blocking::Batch,
    "Transaction",
    tx,
    "Commands run atomically with MULTI/EXEC, one result per command."
);

/// The core's watch session, borrowed for the length of one call of the user's function.
///
/// SAFETY: made from the `&mut blocking::WatchSession` the core passes to the transaction
/// closure, and only dereferenced while [`WatchSession::slot`] holds it, under that mutex
/// (so one user at a time). The closure takes it out of the slot again (waiting for the
/// mutex) before it returns, so it is never used after the borrow ends. The session may be
/// used from another Python thread meanwhile (the closure's own thread is inside the user's
/// function then and does not touch it), which needs `blocking::WatchSession: Send`
/// (checked below).
struct SessionPtr(NonNull<blocking::WatchSession>);

// SAFETY: see `SessionPtr`; the pointee is `Send`.
unsafe impl Send for SessionPtr {}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<blocking::WatchSession>();
};

/// What `fn(session)` of `Client.transaction()` gets: read with `command()`, queue writes
/// with `queue()`.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct WatchSession {
    slot: Mutex<Option<SessionPtr>>,
}

impl WatchSession {
    /// Run `f` on the session with the GIL released; `ClosedError` once `fn` returned.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut blocking::WatchSession) -> redipc::Result<T> + Send,
    ) -> PyResult<T> {
        let slot = &self.slot;
        let r = py.detach(|| {
            let mut guard = lock(slot);
            // SAFETY: see `SessionPtr`: valid while in the slot, used under the mutex only.
            guard.as_mut().map(|p| f(unsafe { p.0.as_mut() }))
        });
        match r {
            Some(r) => r.map_err(|e| to_pyerr(py, e)),
            None => Err(closed_error(
                py,
                "the transaction is finished: use the session only inside its function",
            )),
        }
    }
}

/// Takes the session out of the slot when dropped (also if the call unwinds).
struct Lend<'a> {
    slot: &'a Mutex<Option<SessionPtr>>,
}

impl Drop for Lend<'_> {
    fn drop(&mut self) {
        lock(self.slot).take();
    }
}

#[pymethods]
impl WatchSession {
    /// Run a command now on the watching connection and return its reply.
    #[pyo3(signature = (*args))]
    fn command<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let argv = convert::args(args, &|i| format!("command(): argument {i}"))?;
        let r = self.with(py, |s| s.command(&argv))?;
        convert::reply(py, r)
    }

    /// Queue a command for the `MULTI`/`EXEC` at the end.
    #[pyo3(signature = (*args))]
    fn queue(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let argv = convert::args(args, &|i| format!("queue(): argument {i}"))?;
        self.with(py, |s| s.queue(&argv))
    }

    fn __repr__(&self) -> &'static str {
        match lock(&self.slot).is_some() {
            true => "<redipc.WatchSession>",
            false => "<redipc.WatchSession finished>",
        }
    }
}

#[pymethods]
impl Client {
    /// A new, empty pipeline (non-atomic).
    fn pipeline(&self) -> Pipeline {
        Pipeline {
            queued: Mutex::new(self.inner.pipeline()),
            client: self.inner.clone(),
        }
    }

    /// A new, empty `MULTI`/`EXEC` transaction.
    fn tx(&self) -> Transaction {
        Transaction {
            queued: Mutex::new(self.inner.tx()),
            client: self.inner.clone(),
        }
    }

    /// An optimistic transaction: `WATCH keys`, `func(session)`, `EXEC`, retried when a
    /// watched key changed; see the stubs.
    #[pyo3(signature = (func, *watch_keys, max_retries = 100))]
    fn transaction<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        watch_keys: &Bound<'py, PyTuple>,
        max_retries: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "transaction(): func must be callable, not {}",
                convert::type_name(func)
            )));
        }
        let max_retries = usize::try_from(max_retries).map_err(|_| {
            invalid_argument(
                py,
                format!("transaction(): max_retries must be >= 0, not {max_retries}"),
            )
        })?;
        let keys = args(watch_keys, &|i| format!("transaction(): watch key {i}"))?;
        let func = func.clone().unbind();
        // The exception `func` raised: the core only sees that it failed.
        let mut raised: Option<PyErr> = None;
        let inner = &self.inner;
        let result = py.detach(|| {
            inner.transaction(&keys, max_retries, |session| {
                Python::attach(|py| {
                    let ptr = SessionPtr(NonNull::from(session));
                    let w = Bound::new(
                        py,
                        WatchSession {
                            slot: Mutex::new(Some(ptr)),
                        },
                    )?;
                    let lend = Lend {
                        slot: &w.get().slot,
                    };
                    let r = func.bind(py).call1((&w,));
                    // Another thread may be using the session: wait for it without the GIL.
                    py.detach(|| drop(lend));
                    r.map(drop)
                })
                .map_err(|e| {
                    raised = Some(e);
                    redipc::Error::new(
                        ErrorKind::InvalidArgument,
                        "the transaction function raised",
                    )
                })
            })
        });
        if let Some(e) = raised {
            return Err(e);
        }
        replies(py, result.map_err(|e| to_pyerr(py, e))?)
    }
}

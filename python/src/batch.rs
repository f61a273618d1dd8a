//! `Batch` (pipelines and `MULTI`/`EXEC` transactions: one class, atomicity a flag) and
//! WATCH-based optimistic transactions (`Client.transaction`, retried by the core).

use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyList;
use redipc::blocking;

use crate::client::Client;
use crate::convert::{self, Arg, Callable, Count, Seq};
use crate::errors::{Core, Raised};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Commands sent together: in one write (a pipeline), or atomically (`MULTI`/`EXEC`).
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Batch {
    client: blocking::Client,
    queued: Mutex<blocking::Batch>,
}

impl Batch {
    fn close(&self, _py: Python<'_>) -> PyResult<()> {
        lock(&self.queued).clear();
        Ok(())
    }

    /// Take the queued commands out, leaving the batch empty (what `exec` sends).
    pub(crate) fn take(&self) -> blocking::Batch {
        let fresh = self.client.batch(self.atomic());
        std::mem::replace(&mut *lock(&self.queued), fresh)
    }

    /// Queue a run of `script` (what `Script.__call__(..., client=batch)` does).
    pub(crate) fn add_script(
        &self,
        script: &redipc::Script,
        keys: &[Arg],
        args: &[Arg],
    ) -> PyResult<()> {
        lock(&self.queued)
            .add_script(script, keys, args)
            .map(drop)
            .map_err(crate::errors::raise)
    }
}

context_manager!(Batch);

#[pymethods]
impl Batch {
    /// Queue a command; returns this object, for chaining.
    #[pyo3(signature = (*args))]
    fn add(slf: Bound<'_, Self>, args: Seq<Arg>) -> PyResult<Bound<'_, Self>> {
        lock(&slf.get().queued)
            .add(&args.0)
            .map_err(crate::errors::raise)?;
        Ok(slf)
    }

    /// Send the queued commands; one result per command, in order. The batch is empty
    /// afterwards (also when it failed).
    fn exec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(PyList::empty(py));
        }
        convert::replies(py, py.core(|| batch.exec())?)
    }

    /// Forget the queued commands.
    fn clear(&self) {
        lock(&self.queued).clear();
    }

    /// Whether it runs atomically (`MULTI`/`EXEC`).
    #[getter]
    fn atomic(&self) -> bool {
        lock(&self.queued).is_atomic()
    }

    fn __len__(&self) -> usize {
        lock(&self.queued).len()
    }

    fn __repr__(&self) -> String {
        let n = self.__len__();
        let what = if self.atomic() {
            "Transaction"
        } else {
            "Pipeline"
        };
        format!(
            "<redipc.{what} {n} command{}>",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// The core's watch session, lent to Python for the length of one call of the user's
/// function.
///
/// SAFETY: made from the `&mut blocking::WatchSession` the core passes to the transaction's
/// function, and dereferenced only while [`WatchSession::slot`] holds it, under that mutex.
/// The function takes it out again (waiting for the mutex) before it returns, so it is
/// never used after the borrow ends. Another Python thread may use it meanwhile (the
/// function's own thread is in the user's code then), which needs `WatchSession: Send`.
struct SessionPtr(NonNull<blocking::WatchSession>);

// SAFETY: see `SessionPtr`; the pointee is `Send` (checked below).
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
        py.core(|| match lock(&self.slot).as_mut() {
            // SAFETY: see `SessionPtr`: valid while in the slot, used under the mutex only.
            Some(p) => f(unsafe { p.0.as_mut() }),
            None => Err(redipc::Error::new(
                redipc::ErrorKind::Closed,
                "the transaction is finished: use the session only inside its function",
            )),
        })
    }
}

#[pymethods]
impl WatchSession {
    /// Run a command now on the watching connection and return its reply.
    #[pyo3(signature = (*args))]
    fn command<'py>(&self, py: Python<'py>, args: Seq<Arg>) -> PyResult<Bound<'py, PyAny>> {
        convert::reply(py, self.with(py, |s| s.command(&args.0))?)
    }

    /// Queue a command for the `MULTI`/`EXEC` at the end.
    #[pyo3(signature = (*args))]
    fn queue(&self, py: Python<'_>, args: Seq<Arg>) -> PyResult<()> {
        self.with(py, |s| s.queue(&args.0))
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
    /// A new, empty pipeline (not atomic).
    fn pipeline(&self) -> Batch {
        self.batch(false)
    }

    /// A new, empty `MULTI`/`EXEC` transaction.
    fn tx(&self) -> Batch {
        self.batch(true)
    }

    /// A new, empty batch, atomic or not.
    #[pyo3(signature = (atomic))]
    fn batch(&self, atomic: bool) -> Batch {
        Batch {
            queued: Mutex::new(self.c.batch(atomic)),
            client: self.c.clone(),
        }
    }

    /// An optimistic transaction: `WATCH keys`, `func(session)`, `EXEC`, retried by the
    /// core when a watched key changed; see the stubs.
    #[pyo3(signature = (func, *watch_keys, max_retries = Count(100)))]
    #[pyo3(text_signature = "($self, func, *watch_keys, max_retries=100)")]
    fn transaction<'py>(
        &self,
        py: Python<'py>,
        func: Callable,
        watch_keys: Seq<Arg>,
        max_retries: Count<0>,
    ) -> PyResult<Bound<'py, PyList>> {
        let replies = py.core(|| {
            self.c
                .transaction(&watch_keys.0, max_retries.usize(), |session| {
                    Python::attach(|py| {
                        let w = Bound::new(
                            py,
                            WatchSession {
                                slot: Mutex::new(Some(SessionPtr(NonNull::from(session)))),
                            },
                        )?;
                        let r = func.0.bind(py).call1((&w,));
                        // Another thread may be using the session: wait for it without the GIL.
                        let slot = &w.get().slot;
                        py.detach(|| lock(slot).take());
                        r.map(drop)
                    })
                    .map_err(|err| {
                        let text = err.to_string();
                        redipc::Error::aborted(&text).with_source(Raised {
                            err,
                            text,
                            told: false,
                        })
                    })
                })
        })?;
        convert::replies(py, replies)
    }
}

//! Locks with fencing tokens for Python: `Client.lock()` and `Lock`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use redipc::{ErrorKind, LockOptions, blocking};

use crate::client::Client;
use crate::convert::{arg, duration};
use crate::errors::to_pyerr;
use crate::pubsub::release_later;
use crate::stream::named;
use crate::wait::{lock, sliced};

/// A held lock (`Client.lock`).
#[pyclass(frozen, module = "redipc._native", name = "Lock")]
pub(crate) struct Lock {
    /// Locked only with the GIL released.
    guard: Mutex<Option<blocking::LockGuard>>,
    /// The lock's name.
    #[pyo3(get)]
    name: Py<PyBytes>,
    /// The fencing token.
    #[pyo3(get)]
    token: u64,
}

impl Lock {
    fn release_inner(&self, py: Python<'_>) -> PyResult<bool> {
        let guard = &self.guard;
        py.detach(|| match lock(guard).take() {
            Some(g) => g.release(),
            None => Ok(false),
        })
        .map_err(|e| to_pyerr(py, e))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let guard = self.guard.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = guard.take() {
            // Its drop releases the lock over the network: not on this thread, which
            // holds the GIL.
            release_later(Box::new(g));
        }
    }
}

#[pymethods]
impl Lock {
    /// Whether this object still holds the lock as far as it knows: not released yet
    /// (it may have expired on the server meanwhile).
    #[getter]
    fn held(&self, py: Python<'_>) -> bool {
        let guard = &self.guard;
        py.detach(|| lock(guard).is_some())
    }

    /// Extend the lock to `ttl` seconds from now; `False` if it is no longer ours.
    fn extend(&self, py: Python<'_>, ttl: &Bound<'_, PyAny>) -> PyResult<bool> {
        let ttl = duration(ttl, "extend(): ttl")?;
        let guard = &self.guard;
        py.detach(|| match lock(guard).as_ref() {
            Some(g) => g.extend(ttl),
            None => Ok(false),
        })
        .map_err(|e| to_pyerr(py, e))
    }

    /// Release the lock; `False` if it was no longer ours (it expired) or was released
    /// already.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        self.release_inner(py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        match self.release_inner(py) {
            Ok(_) => Ok(false),
            // Do not hide the exception that ended the block behind a release failure.
            Err(_) if exc_type.is_some_and(|t| !t.is_none()) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = if self.held(py) { "" } else { " released" };
        Ok(format!(
            "<redipc.Lock {} token={}{state}>",
            self.name.bind(py).repr()?,
            self.token
        ))
    }
}

#[pymethods]
impl Client {
    /// Acquire the lock `name`; see the stubs.
    #[pyo3(signature = (name, ttl = None, wait = None, *, auto_renew = false))]
    #[pyo3(text_signature = "($self, name, ttl=10.0, wait=10.0, *, auto_renew=False)")]
    fn lock(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        wait: Option<&Bound<'_, PyAny>>,
        auto_renew: bool,
    ) -> PyResult<Lock> {
        let name = arg(name, &named("lock", "name"))?;
        let seconds = |v: Option<&Bound<'_, PyAny>>, what: &str, default: u64| match v {
            Some(v) if !v.is_none() => duration(v, what),
            _ => Ok(Duration::from_secs(default)),
        };
        let ttl = seconds(ttl, "lock(): ttl", 10)?;
        let wait = seconds(wait, "lock(): wait", 10)?;
        let c = &self.inner;
        let started = Instant::now();
        // In slices, so that Ctrl-C works during a long wait; each slice is a full
        // acquisition attempt that waits (woken by a release) up to its length.
        let guard = sliced(py, Some(wait), |slice| {
            let opts = LockOptions::default()
                .ttl(ttl)
                .wait(slice)
                .auto_renew(auto_renew);
            match c.lock(&name, opts) {
                Ok(g) => Ok(Some(g)),
                Err(e) if e.kind() == ErrorKind::Timeout => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let Some(guard) = guard else {
            return Err(to_pyerr(
                py,
                redipc::Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "lock {:?} still taken after {:?}",
                        String::from_utf8_lossy(name.as_ref()),
                        started.elapsed()
                    ),
                ),
            ));
        };
        Ok(Lock {
            token: guard.token(),
            guard: Mutex::new(Some(guard)),
            name: PyBytes::new(py, name.as_ref()).unbind(),
        })
    }
}

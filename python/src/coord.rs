//! Coordination: rate limiters (`Client.rate_limiter`, `RateLimiter`), semaphores with
//! leases (`Client.semaphore`, `Semaphore`, `Permit`) and Lua scripts run by SHA
//! (`Client.script`, `Script`, also queued in a `Batch`). The waits are the core's, with
//! the GIL released.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use redipc::blocking;

use crate::batch::Batch;
use crate::client::Client;
use crate::convert::{self, Arg, Count, Seconds, Seq, type_name};
use crate::errors::Core;
use crate::guard::{self, Detached};

/// What `per=` of `Client.rate_limiter` and `lease=` of `Client.semaphore` say when not
/// given: the core's defaults.
const PER: Seconds = Seconds(redipc::RateLimiter::DEFAULT_PER);
const LEASE: Seconds = Seconds(redipc::Semaphore::DEFAULT_LEASE);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A rate limiter shared by every process using its name (`Client.rate_limiter`).
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct RateLimiter {
    core: blocking::RateLimiter,
}

#[pymethods]
impl RateLimiter {
    /// Take `n` units if the rate allows it now: `(True, 0.0)`, else `(False, seconds
    /// until it would)` (nothing taken).
    #[pyo3(signature = (n = Count(1)))]
    #[pyo3(text_signature = "($self, n=1)")]
    fn acquire(&self, py: Python<'_>, n: Count<0>) -> PyResult<(bool, f64)> {
        Ok(match py.core(|| self.core.acquire(n.0))? {
            None => (true, 0.0),
            Some(wait) => (false, wait.as_secs_f64()),
        })
    }

    /// Take `n` units, waiting as long as the rate says (up to `timeout` seconds); whether
    /// they were taken.
    #[pyo3(signature = (n = Count(1), timeout = None))]
    #[pyo3(text_signature = "($self, n=1, timeout=None)")]
    fn acquire_wait(
        &self,
        py: Python<'_>,
        n: Count<0>,
        timeout: Option<Seconds>,
    ) -> PyResult<bool> {
        py.core(|| {
            self.core
                .acquire_wait_checked(n.0, timeout.map(|t| t.0), guard::SLICE, guard::signals)
        })
    }

    /// The limiter's name.
    #[getter]
    fn name(&self) -> Bytes {
        Bytes::copy_from_slice(self.core.name())
    }

    /// How many units may be taken at once.
    #[getter]
    fn burst(&self) -> u64 {
        self.core.burst()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let name = PyBytes::new(py, self.core.name()).repr()?;
        Ok(format!(
            "<redipc.RateLimiter {name} burst={}>",
            self.core.burst()
        ))
    }
}

impl RateLimiter {
    /// The core's limiter (for `redipc.asyncio`).
    pub(crate) fn core(&self) -> redipc::RateLimiter {
        self.core.as_async().clone()
    }
}

/// A counting semaphore shared by every process using its name (`Client.semaphore`).
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Semaphore {
    core: blocking::Semaphore,
}

impl Semaphore {
    /// The core's semaphore (for `redipc.asyncio`).
    pub(crate) fn core(&self) -> redipc::Semaphore {
        self.core.as_async().clone()
    }
}

#[pymethods]
impl Semaphore {
    /// Take a permit, waiting up to `timeout` seconds (`None`: as long as it takes);
    /// `TimeoutError` when none came.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<Permit> {
        let permit = py.core(|| {
            self.core
                .acquire_checked(timeout.map(|t| t.0), guard::SLICE, guard::signals)
        })?;
        Ok(Permit::held_by(permit))
    }

    /// How many permits are held now (by every process).
    fn held(&self, py: Python<'_>) -> PyResult<u64> {
        py.core(|| self.core.held())
    }

    /// The semaphore's name.
    #[getter]
    fn name(&self) -> Bytes {
        Bytes::copy_from_slice(self.core.name())
    }

    /// Its number of permits.
    #[getter]
    fn permits(&self) -> u64 {
        self.core.permits()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let name = PyBytes::new(py, self.core.name()).repr()?;
        Ok(format!(
            "<redipc.Semaphore {name} permits={}>",
            self.core.permits()
        ))
    }
}

/// A held permit of a `Semaphore`.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Permit {
    /// Locked only with the GIL released; `None` once released.
    permit: Mutex<Option<Detached<blocking::Permit>>>,
    /// The permit's id.
    #[pyo3(get)]
    id: String,
}

impl Permit {
    /// A held permit (also one acquired by `redipc.asyncio`).
    pub(crate) fn held_by(permit: blocking::Permit) -> Permit {
        Permit {
            id: permit.id().to_string(),
            permit: Mutex::new(Some(Detached::new(permit))),
        }
    }

    /// Take the permit out (released by the caller); `None` once released.
    pub(crate) fn take(&self, py: Python<'_>) -> Option<blocking::Permit> {
        py.detach(|| lock(&self.permit).take().map(Detached::into_inner))
    }
}

#[pymethods]
impl Permit {
    /// Give the permit back; `False` if it was no longer held or released already.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        py.core(|| {
            let taken = lock(&self.permit).take();
            taken.map_or(Ok(false), |p| p.into_inner().release())
        })
    }

    /// Extend the lease to `seconds` from now; `False` if it is no longer held.
    fn extend(&self, py: Python<'_>, seconds: Seconds) -> PyResult<bool> {
        py.core(|| {
            lock(&self.permit)
                .as_ref()
                .map_or(Ok(false), |p| p.extend(seconds.0))
        })
    }

    /// Whether this object has not released the permit yet.
    #[getter]
    fn released(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.permit).is_none())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Release; a failing release does not hide the exception that ended the block.
    #[pyo3(signature = (exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        match self.release(py) {
            Err(e) if exc_type.is_none_or(|t| t.is_none()) => Err(e),
            _ => Ok(false),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = if self.released(py) { " released" } else { "" };
        format!("<redipc.Permit {}{state}>", self.id)
    }
}

/// A Lua script run by SHA (`Client.script`).
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Script {
    script: Arc<redipc::Script>,
    client: blocking::Client,
}

impl Script {
    /// The core's script (for `redipc.asyncio`).
    pub(crate) fn core(&self) -> Arc<redipc::Script> {
        self.script.clone()
    }
}

#[pymethods]
impl Script {
    /// Run the script with `keys` and `args` and return its reply; with `client=` a
    /// `Client` (run there) or a `Batch` (queued there; returns the batch).
    #[pyo3(signature = (keys = Seq(Vec::new()), args = Seq(Vec::new()), client = None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        keys: Seq<Arg>,
        args: Seq<Arg>,
        client: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let on = match &client {
            None => &self.client,
            Some(c) => {
                if let Ok(batch) = c.cast::<Batch>() {
                    batch.get().add_script(&self.script, &keys.0, &args.0)?;
                    return Ok(batch.clone().into_any());
                }
                match c.cast::<Client>() {
                    Ok(other) => &other.get().c,
                    Err(_) => {
                        return Err(py_err!(
                            TypeError,
                            "client: expected a Client or a Batch, not {}",
                            type_name(c)
                        ));
                    }
                }
            }
        };
        let reply = py.core(|| on.run_script(&self.script, &keys.0, &args.0))?;
        convert::reply(py, reply)
    }

    /// The script's SHA1, in hex.
    #[getter]
    fn sha(&self) -> &str {
        self.script.sha()
    }

    /// The script's Lua source.
    #[getter]
    fn source(&self) -> &str {
        self.script.source()
    }

    fn __repr__(&self) -> String {
        format!("<redipc.Script {}>", self.script.sha())
    }
}

#[pymethods]
impl Client {
    /// A rate limiter: `rate` units per `per` seconds, `burst` at once.
    #[pyo3(signature = (name, rate, per = PER, burst = None))]
    #[pyo3(text_signature = "($self, name, rate, per=1.0, burst=None)")]
    fn rate_limiter(
        &self,
        name: Arg,
        rate: f64,
        per: Seconds,
        burst: Option<Count<0>>,
    ) -> PyResult<RateLimiter> {
        let core = self
            .c
            .rate_limiter(name, rate, per.0, burst.map(|b| b.0))
            .map_err(crate::errors::raise)?;
        Ok(RateLimiter { core })
    }

    /// A semaphore of `permits` permits whose leases last `lease` seconds.
    #[pyo3(signature = (name, permits, lease = LEASE))]
    #[pyo3(text_signature = "($self, name, permits, lease=30.0)")]
    fn semaphore(&self, name: Arg, permits: Count<0>, lease: Seconds) -> PyResult<Semaphore> {
        let core = self
            .c
            .semaphore(name, permits.0, lease.0)
            .map_err(crate::errors::raise)?;
        Ok(Semaphore { core })
    }

    /// A Lua script with this source, run by SHA.
    fn script(&self, source: String) -> Script {
        Script {
            script: Arc::new(redipc::Script::new(source)),
            client: self.c.clone(),
        }
    }
}

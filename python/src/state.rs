//! Shared state for Python: the cache (`Client.cache_*`), hash state publishing
//! (`Client.hash_*`) and `HashWatcher`.
//!
//! A watcher's callbacks run on the core's watcher thread: each takes the GIL and is
//! counted as [`Busy`] while it runs, and none starts after `stop()` was called.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use redipc::WatchOptions;

use crate::client::Client;
use crate::convert::{arg, duration, type_name};
use crate::errors::invalid_argument;
use crate::pubsub::{Busy, release_later, report};
use crate::stream::{named, pairs};
use crate::wait::{lock, sliced};

// ---------------------------------------------------------------------------------------
// HashWatcher

/// What the watcher's callbacks and the Python object share.
struct WatchShared {
    /// Set by `stop()` with the GIL held; checked before every callback.
    closed: AtomicBool,
    on_error: Option<Py<PyAny>>,
}

/// A callback of a watcher: `f(field, value)` on the watcher's thread.
fn field_callback(
    f: Py<PyAny>,
    shared: Arc<WatchShared>,
) -> impl FnMut(&[u8], Option<&[u8]>) + Send + 'static {
    move |field: &[u8], value: Option<&[u8]>| {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let Some(_busy) = Busy::enter() else { return };
        let _ = Python::try_attach(|py| {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            let f = f.bind(py);
            let value = value.map(|v| PyBytes::new(py, v));
            if let Err(e) = f.call1((PyBytes::new(py, field), value)) {
                report(py, e, f, shared.on_error.as_ref());
            }
        });
    }
}

/// A running hash watcher (`Client.hash_watch`).
#[pyclass(frozen, module = "redipc._native", name = "HashWatcher")]
pub(crate) struct HashWatcher {
    /// Locked only with the GIL released (`stop` holds it while joining the thread).
    inner: Mutex<Option<redipc::HashWatcher>>,
    shared: Arc<WatchShared>,
    hash: String,
}

impl HashWatcher {
    fn stop_inner(&self, py: Python<'_>) {
        self.shared.closed.store(true, Ordering::Release);
        let inner = &self.inner;
        let _busy = Busy::enter();
        // The core joins the watcher thread (not from inside one of its callbacks), which
        // may be waiting for the GIL.
        py.detach(|| {
            let taken = lock(inner).take();
            if let Some(w) = taken {
                let _ = w.stop(std::time::Duration::from_secs(10));
            }
        });
    }
}

impl Drop for HashWatcher {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = inner.take() {
            release_later(Box::new(w));
        }
    }
}

#[pymethods]
impl HashWatcher {
    /// Stop watching; after it returns no callback runs (called from inside a callback:
    /// none after that one returns).
    fn stop(&self, py: Python<'_>) {
        self.stop_inner(py);
    }

    /// Same as :meth:`stop`.
    fn close(&self, py: Python<'_>) {
        self.stop_inner(py);
    }

    /// Whether it was stopped.
    #[getter]
    fn stopped(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.stop_inner(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.stopped() { " stopped" } else { "" };
        format!("<redipc.HashWatcher {:?}{state}>", self.hash)
    }
}

// ---------------------------------------------------------------------------------------
// Client methods

fn callable(f: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Py<PyAny>>> {
    match f {
        Some(f) if f.is_none() => Ok(None),
        Some(f) if !f.is_callable() => Err(PyTypeError::new_err(format!(
            "{what} must be callable, not {}",
            type_name(f)
        ))),
        f => Ok(f.map(|f| f.clone().unbind())),
    }
}

#[pymethods]
impl Client {
    /// Set a cache entry (and wake its waiters); `ttl` in seconds, `None`: no expiry.
    #[pyo3(signature = (key, value, ttl = None))]
    fn cache_set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let key = arg(key, &named("cache_set", "key"))?;
        let value = arg(value, &named("cache_set", "value"))?;
        let ttl = match ttl {
            Some(t) if !t.is_none() => Some(duration(t, "cache_set(): ttl")?),
            _ => None,
        };
        self.run(py, |c| c.cache_set(&key, &value, ttl))
    }

    /// A cache entry's value, or `None`.
    fn cache_get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key, &named("cache_get", "key"))?;
        let v = self.run(py, |c| c.cache_get(&key))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Delete a cache entry; whether it existed.
    fn cache_delete(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = arg(key, &named("cache_delete", "key"))?;
        self.run(py, |c| c.cache_delete(&key))
    }

    /// Whether a cache entry exists.
    fn cache_exists(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = arg(key, &named("cache_exists", "key"))?;
        self.run(py, |c| c.cache_exists(&key))
    }

    /// Wait until a cache entry exists and return its value; `None` when `timeout`
    /// passed first.
    fn cache_wait<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key, &named("cache_wait", "key"))?;
        let timeout = match timeout {
            Some(t) if !t.is_none() => Some(duration(t, "cache_wait(): timeout")?),
            _ => None,
        };
        let c = &self.inner;
        let v = sliced(py, timeout, |slice| {
            // A plain read first: the fast path, without subscribing to the key's channel
            // (the core's wait subscribes before it looks, as it must to miss nothing).
            if let Some(v) = c.cache_get(&key)? {
                return Ok(Some(v));
            }
            c.cache_wait(&key, slice)
        })?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// `HSET` and publish the field name on the hash's channel, atomically.
    fn hash_set(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        field: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let hash = arg(hash, &named("hash_set", "hash"))?;
        let field = arg(field, &named("hash_set", "field"))?;
        let value = arg(value, &named("hash_set", "value"))?;
        self.run(py, |c| c.hash_set(&hash, &field, &value))
    }

    /// Like `hash_set`, only when the value differs; whether it changed.
    fn hash_set_if_changed(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        field: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let hash = arg(hash, &named("hash_set_if_changed", "hash"))?;
        let field = arg(field, &named("hash_set_if_changed", "field"))?;
        let value = arg(value, &named("hash_set_if_changed", "value"))?;
        self.run(py, |c| c.hash_set_if_changed(&hash, &field, &value))
    }

    /// Set several fields at once; publish each field, or `*` once with `summary`.
    #[pyo3(signature = (hash, mapping, summary = false))]
    fn hash_set_many(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        mapping: &Bound<'_, PyAny>,
        summary: bool,
    ) -> PyResult<()> {
        let hash = arg(hash, &named("hash_set_many", "hash"))?;
        let fields = pairs(mapping, "hash_set_many", "mapping")?;
        self.run(py, |c| c.hash_set_many(&hash, &fields, summary))
    }

    /// Delete a field and publish it; whether it existed.
    fn hash_delete(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        field: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let hash = arg(hash, &named("hash_delete", "hash"))?;
        let field = arg(field, &named("hash_delete", "field"))?;
        self.run(py, |c| c.hash_delete(&hash, &field))
    }

    /// Replace the whole hash and publish `*`.
    fn hash_replace_all(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        mapping: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let hash = arg(hash, &named("hash_replace_all", "hash"))?;
        let fields = pairs(mapping, "hash_replace_all", "mapping")?;
        self.run(py, |c| c.hash_replace_all(&hash, &fields))
    }

    /// Watch a hash: initial sync, then every change; see the stubs.
    #[pyo3(signature = (
        hash, on_field = None, on_any = None, *,
        initial_sync = true, debounce = None, on_error = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn hash_watch(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        on_field: Option<&Bound<'_, PyAny>>,
        on_any: Option<&Bound<'_, PyAny>>,
        initial_sync: bool,
        debounce: Option<&Bound<'_, PyAny>>,
        on_error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<HashWatcher> {
        let hash = arg(hash, &named("hash_watch", "hash"))?;
        let on_error = callable(on_error, "hash_watch(): on_error")?;
        let shared = Arc::new(WatchShared {
            closed: AtomicBool::new(false),
            on_error,
        });
        let mut opts = WatchOptions::new().initial_sync(initial_sync);
        if let Some(d) = debounce
            && !d.is_none()
        {
            opts = opts.debounce(duration(d, "hash_watch(): debounce")?);
        }
        let mut handlers = 0;
        if let Some(m) = on_field
            && !m.is_none()
        {
            let items = match m.cast::<PyDict>() {
                Ok(d) => d.items().into_any(),
                Err(_) => m.call_method0(pyo3::intern!(py, "items")).map_err(|_| {
                    PyTypeError::new_err(format!(
                        "hash_watch(): on_field must be a mapping of field to callable, not {}",
                        type_name(m)
                    ))
                })?,
            };
            for item in items.try_iter()? {
                let (field, f): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
                let field = arg(&field, &|| "hash_watch(): a field of on_field".to_string())?;
                if f.is_none() || !f.is_callable() {
                    return Err(PyTypeError::new_err(format!(
                        "hash_watch(): the handler of a field in on_field must be callable, not {}",
                        type_name(&f)
                    )));
                }
                let f = f.unbind();
                opts = opts.on_field(&field, field_callback(f, shared.clone()));
                handlers += 1;
            }
        }
        if let Some(f) = callable(on_any, "hash_watch(): on_any")? {
            opts = opts.on_any(field_callback(f, shared.clone()));
            handlers += 1;
        }
        if handlers == 0 {
            return Err(invalid_argument(
                py,
                "hash_watch(): give on_field (a mapping of field to callable) or on_any",
            ));
        }
        // Failed reads (retried by the core as a whole read) go where callback errors go.
        let hook_shared = shared.clone();
        opts = opts.error_hook(move |r: &redipc::Report| {
            let text = r.to_string();
            if hook_shared.closed.load(Ordering::Acquire) {
                return;
            }
            let Some(_busy) = Busy::enter() else { return };
            let _ = Python::try_attach(|py| {
                let err = crate::errors::base_error(py, text.to_string());
                let source = py.None().into_bound(py);
                report(py, err, &source, hook_shared.on_error.as_ref());
            });
        });
        let Some(_busy) = Busy::enter() else {
            return Err(crate::errors::closed_error(
                py,
                "the interpreter is exiting",
            ));
        };
        let watcher = self.run(py, |c| c.hash_watch(&hash, opts))?;
        Ok(HashWatcher {
            inner: Mutex::new(Some(watcher)),
            shared,
            hash: String::from_utf8_lossy(hash.as_ref()).into_owned(),
        })
    }
}

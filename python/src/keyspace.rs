//! Keyspace notifications for Python: `Client.watch_keys()` and `KeyspaceWatch`.
//!
//! The callback runs on the client's dispatcher thread (in poll mode: inside
//! `Client.poll()`), taking the GIL for each event and counted as [`Busy`] meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::client::Client;
use crate::convert::{arg, type_name};
use crate::errors::closed_error;
use crate::pubsub::{Busy, release_later, report};
use crate::stream::named;
use crate::wait::lock;

/// A keyspace watch (`Client.watch_keys`).
#[pyclass(frozen, module = "redipc._native", name = "KeyspaceWatch")]
pub(crate) struct KeyspaceWatch {
    /// Locked only with the GIL released (closing waits for a running callback).
    inner: Mutex<Option<redipc::KeyspaceWatch>>,
    closed: Arc<AtomicBool>,
    pattern: String,
}

impl KeyspaceWatch {
    fn close_inner(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let inner = &self.inner;
        let _busy = Busy::enter();
        py.detach(|| drop(lock(inner).take()));
    }
}

impl Drop for KeyspaceWatch {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = inner.take() {
            release_later(Box::new(w));
        }
    }
}

#[pymethods]
impl KeyspaceWatch {
    /// Unsubscribe; after it returns the callback is not called again.
    fn close(&self, py: Python<'_>) {
        self.close_inner(py);
    }

    /// Whether it was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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
        self.close_inner(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { " closed" } else { "" };
        format!("<redipc.KeyspaceWatch {:?}{state}>", self.pattern)
    }
}

#[pymethods]
impl Client {
    /// Call `callback(key, event)` for keyspace events of keys matching `pattern`.
    #[pyo3(signature = (pattern, callback, events = Vec::new(), *, configure_server = true, on_error = None))]
    #[pyo3(
        text_signature = "($self, pattern, callback, events=(), *, configure_server=True, on_error=None)"
    )]
    fn watch_keys(
        &self,
        py: Python<'_>,
        pattern: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        events: Vec<String>,
        configure_server: bool,
        on_error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<KeyspaceWatch> {
        let pattern = arg(pattern, &named("watch_keys", "pattern"))?;
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "watch_keys(): callback must be callable, not {}",
                type_name(callback)
            )));
        }
        let on_error = match on_error {
            Some(f) if f.is_none() => None,
            Some(f) if !f.is_callable() => {
                return Err(PyTypeError::new_err(format!(
                    "watch_keys(): on_error must be callable, not {}",
                    type_name(f)
                )));
            }
            f => f.map(|f| f.clone().unbind()),
        };
        let closed = Arc::new(AtomicBool::new(false));
        let stop = closed.clone();
        let f = callback.clone().unbind();
        let handler = move |key: &[u8], event: &str| {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let Some(_busy) = Busy::enter() else { return };
            let _ = Python::try_attach(|py| {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let f = f.bind(py);
                if let Err(e) = f.call1((PyBytes::new(py, key), PyString::new(py, event))) {
                    report(py, e, f, on_error.as_ref());
                }
            });
        };
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let Some(_busy) = Busy::enter() else {
            return Err(closed_error(py, "the interpreter is exiting"));
        };
        let watch = self.run(py, |c| {
            c.watch_keys(&pattern, &events, configure_server, handler)
        })?;
        Ok(KeyspaceWatch {
            inner: Mutex::new(Some(watch)),
            closed,
            pattern: String::from_utf8_lossy(pattern.as_ref()).into_owned(),
        })
    }
}

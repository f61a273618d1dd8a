//! Shared state: the cache (`Client.cache_*`), hash state (`Client.hash_*`, a
//! `HashWatcher`; `channel=`, `timestamp=`, `announce=` speak a redis-ipc fleet's words),
//! faults (`Client.fault_*`), locks (`Client.lock`, `Lock`) and keyspace events
//! (`Client.watch_keys`).

use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use redipc::{ErrorKind, HashWrite, LockOptions, ReportKind, WatchOptions, blocking};

use crate::client::Client;
use crate::convert::{Arg, Callable, Dict, Seconds, Stamp, With};
use crate::errors::{self, Core};
use crate::guard::{self, Detached};
use crate::handler::Callback;
use crate::handles::{HashWatcher, KeyspaceWatch};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A core callback `f(field, value)` calling `cb`.
fn field_handler(cb: Callback) -> impl FnMut(&[u8], Option<&[u8]>) + Send + 'static {
    move |field, value| {
        cb.notify_now(|f| {
            let py = f.py();
            f.call1((PyBytes::new(py, field), value.map(|v| PyBytes::new(py, v))))
                .map(drop)
        })
    }
}

/// How a hash write is announced and stamped: the options given, the core's defaults for
/// the rest.
pub(crate) fn hash_write(
    channel: Option<Arg>,
    announce: Option<Arg>,
    timestamp: Option<Stamp>,
) -> HashWrite {
    HashWrite::new()
        .with(channel, HashWrite::channel)
        .with(announce, HashWrite::announce)
        .with(timestamp.and_then(|t| t.0), HashWrite::timestamp)
}

/// `hash_set_many`'s write options (shared with `redipc.asyncio`).
pub(crate) fn hash_many_write(
    summary: bool,
    announce: Option<Arg>,
    channel: Option<Arg>,
    timestamp: Option<Stamp>,
) -> PyResult<HashWrite> {
    if summary && announce.is_some() {
        return Err(py_err!(
            TypeError,
            "hash_set_many(): give summary=True or announce=, not both"
        ));
    }
    let write = hash_write(channel, announce, timestamp);
    Ok(if summary { write.summary() } else { write })
}

/// A held lock (`Client.lock`).
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Lock {
    /// Locked only with the GIL released; `None` once released.
    guard: Mutex<Option<Detached<blocking::LockGuard>>>,
    /// The lock's name.
    #[pyo3(get)]
    name: Bytes,
    /// The fencing token.
    #[pyo3(get)]
    token: u64,
}

impl Lock {
    /// A held lock (also one acquired by `redipc.asyncio`).
    pub(crate) fn held_by(guard: blocking::LockGuard) -> Lock {
        Lock {
            token: guard.token(),
            name: Bytes::copy_from_slice(guard.name()),
            guard: Mutex::new(Some(Detached::new(guard))),
        }
    }

    /// Take the guard out (released by the caller); `None` once released.
    pub(crate) fn take(&self, py: Python<'_>) -> Option<blocking::LockGuard> {
        py.detach(|| lock(&self.guard).take().map(Detached::into_inner))
    }
}

#[pymethods]
impl Lock {
    /// Whether this object has not released the lock yet.
    #[getter]
    fn held(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.guard).is_some())
    }

    /// Extend the lock to `ttl` seconds from now; `False` if it is no longer ours.
    fn extend(&self, py: Python<'_>, ttl: Seconds) -> PyResult<bool> {
        py.core(|| {
            lock(&self.guard)
                .as_ref()
                .map_or(Ok(false), |g| g.extend(ttl.0))
        })
    }

    /// Release the lock; `False` if it was no longer ours or was released already.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        py.core(|| {
            let taken = lock(&self.guard).take();
            taken.map_or(Ok(false), |g| g.into_inner().release())
        })
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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = if self.held(py) { "" } else { " released" };
        let name = PyBytes::new(py, &self.name).repr()?;
        Ok(format!("<redipc.Lock {name} token={}{state}>", self.token))
    }
}

#[pymethods]
impl Client {
    /// Set a cache entry (and wake its waiters); `ttl` in seconds, `None`: no expiry.
    #[pyo3(signature = (key, value, ttl = None))]
    fn cache_set(
        &self,
        py: Python<'_>,
        key: Arg,
        value: Arg,
        ttl: Option<Seconds>,
    ) -> PyResult<()> {
        py.core(|| self.c.cache_set(key, value, ttl.map(|t| t.0)))
    }

    /// A cache entry's value, or `None`.
    fn cache_get(&self, py: Python<'_>, key: Arg) -> PyResult<Option<Vec<u8>>> {
        py.core(|| self.c.cache_get(key))
    }

    /// Delete a cache entry; whether it existed.
    fn cache_delete(&self, py: Python<'_>, key: Arg) -> PyResult<bool> {
        py.core(|| self.c.cache_delete(key))
    }

    /// Whether a cache entry exists.
    fn cache_exists(&self, py: Python<'_>, key: Arg) -> PyResult<bool> {
        py.core(|| self.c.cache_exists(key))
    }

    /// Wait until a cache entry exists and return its value; `None` when `timeout` passed.
    fn cache_wait(
        &self,
        py: Python<'_>,
        key: Arg,
        timeout: Option<Seconds>,
    ) -> PyResult<Option<Vec<u8>>> {
        guard::wait(py, timeout.map(|t| t.0), |slice| {
            self.c.cache_wait(&key, slice)
        })
    }

    /// `HSET` and publish the field name on the hash's channel, atomically.
    #[pyo3(signature = (hash, field, value, *, timestamp = None, channel = None))]
    fn hash_set(
        &self,
        py: Python<'_>,
        hash: Arg,
        field: Arg,
        value: Arg,
        timestamp: Option<Stamp>,
        channel: Option<Arg>,
    ) -> PyResult<()> {
        let write = hash_write(channel, None, timestamp);
        py.core(|| self.c.hash_set_with(hash, field, value, write))
    }

    /// Like `hash_set`, only when the value differs; whether it changed.
    fn hash_set_if_changed(
        &self,
        py: Python<'_>,
        hash: Arg,
        field: Arg,
        value: Arg,
    ) -> PyResult<bool> {
        py.core(|| self.c.hash_set_if_changed(hash, field, value))
    }

    /// Set several fields at once; publish each field, or one word: `*` with `summary`,
    /// or `announce`.
    #[pyo3(signature = (
        hash, mapping, summary = false, *, announce = None, channel = None, timestamp = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn hash_set_many(
        &self,
        py: Python<'_>,
        hash: Arg,
        mapping: Dict<Arg, Arg>,
        summary: bool,
        announce: Option<Arg>,
        channel: Option<Arg>,
        timestamp: Option<Stamp>,
    ) -> PyResult<()> {
        let write = hash_many_write(summary, announce, channel, timestamp)?;
        py.core(|| self.c.hash_set_many_with(hash, &mapping.0, write))
    }

    /// Delete a field and publish it; whether it existed.
    #[pyo3(signature = (hash, field, *, channel = None))]
    fn hash_delete(
        &self,
        py: Python<'_>,
        hash: Arg,
        field: Arg,
        channel: Option<Arg>,
    ) -> PyResult<bool> {
        let write = hash_write(channel, None, None);
        py.core(|| self.c.hash_delete_with(hash, field, write))
    }

    /// Replace the whole hash and publish `*` (or `announce`).
    #[pyo3(signature = (hash, mapping, *, announce = None, channel = None, timestamp = None))]
    fn hash_replace_all(
        &self,
        py: Python<'_>,
        hash: Arg,
        mapping: Dict<Arg, Arg>,
        announce: Option<Arg>,
        channel: Option<Arg>,
        timestamp: Option<Stamp>,
    ) -> PyResult<()> {
        let write = hash_write(channel, announce, timestamp);
        py.core(|| self.c.hash_replace_all_with(hash, &mapping.0, write))
    }

    /// Delete the whole hash and publish `cleared` (or `announce`), atomically.
    #[pyo3(signature = (hash, *, channel = None, announce = None))]
    fn hash_clear(
        &self,
        py: Python<'_>,
        hash: Arg,
        channel: Option<Arg>,
        announce: Option<Arg>,
    ) -> PyResult<()> {
        let write = hash_write(channel, announce, None);
        py.core(|| self.c.hash_clear(hash, write))
    }

    /// Raise fault `code` of `group` in the fleet's layout; whether it is new.
    fn fault_set(&self, py: Python<'_>, group: Arg, code: i64, description: Arg) -> PyResult<bool> {
        py.core(|| self.c.fault_set(group, code, description))
    }

    /// Clear fault `code` of `group`; whether it was set.
    fn fault_clear(&self, py: Python<'_>, group: Arg, code: i64) -> PyResult<bool> {
        py.core(|| self.c.fault_clear(group, code))
    }

    /// Watch a hash: initial sync, then every change; see the stubs.
    #[pyo3(signature = (
        hash, on_field = None, on_any = None, *, initial_sync = None, debounce = None,
        every_notification = None, on_event = None, channel = None, on_error = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn hash_watch(
        &self,
        py: Python<'_>,
        hash: Arg,
        on_field: Option<Dict<Arg, Callable>>,
        on_any: Option<Callable>,
        initial_sync: Option<bool>,
        debounce: Option<Seconds>,
        every_notification: Option<bool>,
        on_event: Option<Callable>,
        channel: Option<Arg>,
        on_error: Option<Callable>,
    ) -> PyResult<HashWatcher> {
        let mut callbacks = Vec::new();
        let mut opts = WatchOptions::new()
            .with(initial_sync, WatchOptions::initial_sync)
            .with(debounce, |o, d| o.debounce(d.0))
            .with(every_notification, WatchOptions::every_notification)
            .with(channel, WatchOptions::channel);
        for (field, f) in on_field.unwrap_or_default().0 {
            let cb = Callback::new(py, f, on_error.as_ref());
            opts = opts.on_field(field, field_handler(cb.clone()));
            callbacks.push(cb);
        }
        if let Some(f) = on_any {
            let cb = Callback::new(py, f, on_error.as_ref());
            opts = opts.on_any(field_handler(cb.clone()));
            callbacks.push(cb);
        }
        if let Some(f) = on_event {
            let cb = Callback::new(py, f, on_error.as_ref());
            let call = cb.clone();
            opts = opts.on_event(move |payload| {
                call.notify_now(|f| f.call1((PyBytes::new(f.py(), payload),)).map(drop))
            });
            callbacks.push(cb);
        }
        if let Some(hook) = on_error {
            // A failed read goes where the callbacks' exceptions go; the rest is logged.
            let cb = Callback::new(py, hook, None);
            let (told, client_hook) = (cb.clone(), self.c.options().error_hook.clone());
            opts = opts.error_hook(move |r: &redipc::Report| match (&r.error, r.kind) {
                (Some(e), ReportKind::ReadFailed) => told.notify_now(|f| {
                    f.call1((errors::to_pyerr(f.py(), e.clone()).into_value(f.py()),))
                        .map(drop)
                }),
                // The client's hook is always set (reports go to `logging`).
                _ => {
                    if let Some(h) = &client_hook {
                        h(r)
                    }
                }
            });
            callbacks.push(cb);
        }
        let watcher = py.core(|| self.c.hash_watch(&hash, opts))?;
        Ok(HashWatcher::new(watcher, callbacks, hash.into()))
    }

    /// Acquire the lock `name`; see the stubs.
    #[pyo3(signature = (name, ttl = None, wait = None, *, auto_renew = None))]
    fn lock(
        &self,
        py: Python<'_>,
        name: Arg,
        ttl: Option<Seconds>,
        wait: Option<Seconds>,
        auto_renew: Option<bool>,
    ) -> PyResult<Lock> {
        let opts = LockOptions::default()
            .with(ttl, |o, t| o.ttl(t.0))
            .with(auto_renew, LockOptions::auto_renew);
        let total = wait.map_or(opts.wait, |w| w.0);
        // In slices, so that Ctrl-C works: each is an acquisition waiting up to its length;
        // when the time is up, one last try gives the core's own timeout error.
        let got = guard::wait(py, Some(total), |slice| {
            match self.c.lock(&name, opts.wait(slice)) {
                Err(e) if e.kind() == ErrorKind::Timeout => Ok(None),
                other => other.map(Some),
            }
        })?;
        let guard = match got {
            Some(g) => g,
            None => py.core(|| self.c.lock(&name, opts.wait(std::time::Duration::ZERO)))?,
        };
        Ok(Lock::held_by(guard))
    }

    /// Call `callback(key, event)` for keyspace events of keys matching `pattern`.
    #[pyo3(signature = (pattern, callback, events = Vec::new(), *, configure_server = true, on_error = None))]
    #[pyo3(
        text_signature = "($self, pattern, callback, events=(), *, configure_server=True, on_error=None)"
    )]
    fn watch_keys(
        &self,
        py: Python<'_>,
        pattern: Arg,
        callback: Callable,
        events: Vec<String>,
        configure_server: bool,
        on_error: Option<Callable>,
    ) -> PyResult<KeyspaceWatch> {
        let cb = Callback::new(py, callback, on_error.as_ref());
        let call = cb.clone();
        let handler = move |key: &[u8], event: &str| {
            call.notify_now(|f| f.call1((PyBytes::new(f.py(), key), event)).map(drop))
        };
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let watch = py.core(|| {
            self.c
                .watch_keys(&pattern, &events, configure_server, handler)
        })?;
        Ok(KeyspaceWatch::new(watch, vec![cb], pattern.into()))
    }
}

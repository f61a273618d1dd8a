//! Long waits of the core (`cache_wait`, a lock wait, a blocking stream read) made
//! interruptible: the wait runs in slices with the GIL released, and between slices
//! signals are checked (Ctrl-C raises `KeyboardInterrupt`) and the interpreter's exit is
//! noticed.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::errors::{closed_error, to_pyerr};
use crate::pubsub::Busy;

/// The longest stretch one wait spends inside the core without looking at signals.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(200);

/// Lock a mutex, ignoring poisoning (the data stays consistent: every critical section
/// here is a take/put of an `Option`).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `step(slice)` with the GIL released, again and again, until it returns
/// `Some(value)` or `timeout` (`None`: no limit) has passed (`Ok(None)`). Each call gets at
/// most [`WAIT_SLICE`] (the remaining time when less; zero for a zero timeout, so the step
/// runs at least once). Between calls, signals are checked.
pub(crate) fn sliced<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> redipc::Result<Option<T>> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = match deadline {
            None => WAIT_SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
        };
        let got = {
            // A thread that comes back from a wait while the interpreter finalizes is
            // killed by CPython in a way that aborts the process: be counted as busy.
            let Some(_busy) = Busy::enter() else {
                return Err(closed_error(py, "the interpreter is exiting"));
            };
            py.detach(|| step(slice))
        };
        match got {
            Ok(Some(v)) => return Ok(Some(v)),
            Ok(None) => {}
            Err(e) => return Err(to_pyerr(py, e)),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}

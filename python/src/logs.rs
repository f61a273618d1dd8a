//! The core's log records for Python's `logging`: target `redipc::connection` goes to the
//! logger `redipc.connection`, `redipc::pubsub` to `redipc.pubsub` (children of `redipc`),
//! at the `logging` level of the record's level. Records of `redipc::report` are left out:
//! `report.rs` logs every report on the `redipc` logger already, with its fields (once).
//!
//! Installed when the first `Client` is made ([`sync`]), through the core's one sink
//! ([`redipc::logging::forward`]); where another Rust logger owns the process's `log`
//! facade, the records stay with it and nothing here runs. The core's threads hand records
//! to a [`Relay`] (they never wait for the GIL); its thread logs them. Records the relay
//! had no room for are counted and told by one WARNING on the `redipc` logger after the
//! ones it kept.
//!
//! Levels: the core formats a record only up to its `log` max level, which is kept at the
//! most detailed level the `redipc` loggers let through (their effective levels and
//! `logging.disable`), read again whenever a client is made and whenever records are
//! handed over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use log::LevelFilter;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use redipc::ErrorKind;
use redipc::logging::Sink;

use crate::errors::to_pyerr;
use crate::guard::Relay;

/// A record of the core, as the relay carries it.
struct Record {
    level: log::Level,
    target: String,
    message: String,
}

/// Records waiting for the GIL; more are counted, not kept.
static RELAY: Relay<Record> = Relay::new(1024);

/// The sink given to the core; `None` when another Rust logger is installed.
static SINK: PyOnceLock<Option<Sink>> = PyOnceLock::new();

/// The level filter given to the core last (`usize::MAX`: none yet).
static FORWARDED: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The target whose records `report.rs` logs itself.
const REPORT_TARGET: &str = "redipc::report";

/// The loggers the bridge logs on (the report target's records are not among them).
const LOGGERS: [&str; 3] = ["redipc", "redipc.connection", "redipc.pubsub"];

/// The `logging` level of a record's level (TRACE, which `logging` lacks, is 5).
fn py_level(l: log::Level) -> u32 {
    match l {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug => 10,
        log::Level::Trace => 5,
    }
}

/// The most detailed core level a `logging` threshold lets through.
fn filter_of(threshold: i64) -> LevelFilter {
    [
        log::Level::Trace,
        log::Level::Debug,
        log::Level::Info,
        log::Level::Warn,
        log::Level::Error,
    ]
    .into_iter()
    .find(|l| i64::from(py_level(*l)) >= threshold)
    .map_or(LevelFilter::Off, |l| l.to_level_filter())
}

/// The logger of a target: `redipc::connection` -> `redipc.connection`.
fn logger_name(target: &str) -> String {
    target.replace("::", ".")
}

/// The lowest `logging` level any of [`LOGGERS`] lets through now.
fn threshold(logging: &Bound<'_, PyModule>) -> PyResult<i64> {
    let disabled: i64 = logging
        .getattr("root")?
        .getattr("manager")?
        .getattr("disable")?
        .extract()?;
    let mut lowest = i64::MAX;
    for name in LOGGERS {
        let level: i64 = logging
            .call_method1("getLogger", (name,))?
            .call_method0("getEffectiveLevel")?
            .extract()?;
        lowest = lowest.min(level);
    }
    Ok(lowest.max(disabled.saturating_add(1)))
}

/// Give the core the level filter of the `redipc` loggers, if it changed.
fn forward_level(py: Python<'_>, logging: &Bound<'_, PyModule>, sink: &Sink) -> PyResult<()> {
    let filter = filter_of(threshold(logging)?);
    if FORWARDED.swap(filter as usize, Ordering::Relaxed) != filter as usize {
        redipc::logging::forward(filter, Some(sink.clone())).map_err(|e| to_pyerr(py, e))?;
    }
    Ok(())
}

fn log(logging: &Bound<'_, PyModule>, name: &str, level: u32, message: &str) -> PyResult<()> {
    logging
        .call_method1("getLogger", (name,))?
        .call_method1("log", (level, message))
        .map(drop)
}

/// Log a batch of records, then the count of those dropped after them; a failure of
/// `logging` itself (a raising filter) goes to `sys.unraisablehook`.
fn deliver(py: Python<'_>, dropped: u64, batch: Vec<Record>) {
    let logging = match py.import("logging") {
        Ok(m) => m,
        Err(e) => return e.write_unraisable(py, None),
    };
    for r in batch {
        let name = logger_name(&r.target);
        if let Err(e) = log(&logging, &name, py_level(r.level), &r.message) {
            e.write_unraisable(py, None);
        }
    }
    if dropped > 0 {
        let text = format!(
            "{dropped} log records of redipc were dropped: more came than logging took in time"
        );
        if let Err(e) = log(&logging, "redipc", 30, &text) {
            e.write_unraisable(py, None);
        }
    }
    if let Some(Some(sink)) = SINK.get(py)
        && let Err(e) = forward_level(py, &logging, sink)
    {
        e.write_unraisable(py, None);
    }
}

/// Hand the core's records to the relay from now on (with the level filter off, until
/// [`forward_level`]); `None` when another Rust logger has the `log` facade.
fn install(py: Python<'_>) -> PyResult<Option<Sink>> {
    let sink: Sink = Arc::new(|level, target: &str, message: &str| {
        if target != REPORT_TARGET {
            RELAY.push(Record {
                level,
                target: target.to_string(),
                message: message.to_string(),
            });
        }
    });
    match redipc::logging::forward(LevelFilter::Off, Some(sink.clone())) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unsupported => return Ok(None),
        Err(e) => return Err(to_pyerr(py, e)),
    }
    FORWARDED.store(LevelFilter::Off as usize, Ordering::Relaxed);
    RELAY.start("redipc-log", deliver)?;
    Ok(Some(sink))
}

/// Install the bridge (once), and give the core the `redipc` loggers' level now: called
/// when a client is made.
pub(crate) fn sync(py: Python<'_>) -> PyResult<()> {
    let Some(sink) = SINK.get_or_try_init(py, || install(py))? else {
        return Ok(());
    };
    forward_level(py, &py.import("logging")?, sink)
}

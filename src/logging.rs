//! Forwarding redipc's log records to one replaceable function: what the C and Python
//! bindings install (`ipc_set_log_callback`, the `redipc` logger of `logging`). A Rust
//! program uses the logger of its choice instead (`env_logger`, `tracing-log`, ...): redipc
//! logs through the [`log`] facade with targets `redipc::connection`, `redipc::pubsub`
//! and `redipc::report`.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock, RwLock};

use crate::error::{Error, ErrorKind, Result};

/// Receives a record: its level, target (`redipc::connection` ...) and message.
pub type Sink = Arc<dyn Fn(log::Level, &str, &str) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

thread_local! {
    /// Set while this thread runs the sink: a record logged from inside it is dropped
    /// (no recursion), and replacing the sink from inside it is refused (no deadlock).
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

struct Forward;

static FORWARD: Forward = Forward;

impl log::Log for Forward {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("redipc") && m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) || IN_SINK.with(Cell::get) {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(sink) = sink.as_ref() else { return };
        let message = r.args().to_string();
        IN_SINK.with(|f| f.set(true));
        // A sink that panics loses its record, nothing else.
        let _ = catch_unwind(AssertUnwindSafe(|| sink(r.level(), r.target(), &message)));
        IN_SINK.with(|f| f.set(false));
    }

    fn flush(&self) {}
}

/// Send redipc's records up to `level` to `sink` from now on (`None`, or
/// [`log::LevelFilter::Off`]: none). The first call installs the forwarding logger as the
/// process's `log` logger: it fails with [`ErrorKind::Unsupported`] if another one is
/// installed already. When it returns, the previous sink is no longer running on any
/// thread. Called from inside the sink, it fails with [`ErrorKind::InvalidArgument`].
pub fn forward(level: log::LevelFilter, sink: Option<Sink>) -> Result<()> {
    if IN_SINK.with(Cell::get) {
        return Err(Error::invalid(
            "the log callback cannot be replaced from inside the log callback",
        ));
    }
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    if !*INSTALLED.get_or_init(|| log::set_logger(&FORWARD).is_ok()) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "another logger is installed in this process: redipc's records go to it",
        ));
    }
    let level = if sink.is_some() {
        level
    } else {
        log::LevelFilter::Off
    };
    // Taking the write lock waits for every running call of the previous sink.
    let old = std::mem::replace(&mut *SINK.write().unwrap_or_else(|p| p.into_inner()), sink);
    log::set_max_level(level);
    drop(old);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn records_reach_the_sink_once_and_the_sink_cannot_recurse() {
        let got: Arc<Mutex<Vec<String>>> = Arc::default();
        let g = got.clone();
        forward(
            log::LevelFilter::Info,
            Some(Arc::new(move |level, target, msg| {
                // Logging or replacing the sink from inside it neither recurses nor deadlocks.
                log::warn!(target: "redipc::test", "inner");
                let refused = forward(log::LevelFilter::Off, None).is_err();
                g.lock()
                    .unwrap()
                    .push(format!("{level} {target} {msg} {refused}"));
            })),
        )
        .unwrap();
        log::info!(target: "redipc::test", "hello");
        log::debug!(target: "redipc::test", "too detailed");
        log::info!(target: "other", "not ours");
        forward(log::LevelFilter::Off, None).unwrap();
        log::error!(target: "redipc::test", "after");
        assert_eq!(*got.lock().unwrap(), vec!["INFO redipc::test hello true"]);
    }
}

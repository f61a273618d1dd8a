//! Event streams: `Client.stream_*`, `StreamFollower`, and `stream_consume` (a
//! `StreamConsumer` running a Python handler).

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use redipc::{ConsumerOptions, ErrorKind, blocking};

use crate::client::Client;
use crate::convert::{Arg, Callable, Count, Dict, Seconds, With};
use crate::errors::{self, Core};
use crate::guard;
use crate::handler::Callback;
use crate::handles::StreamConsumer;
use crate::records::{PendingInfo, StreamEntry};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Follows a stream from a position; an iterator of `StreamEntry`.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct StreamFollower {
    /// Locked only with the GIL released; `None` once closed.
    inner: Mutex<Option<blocking::StreamFollower>>,
}

#[pymethods]
impl StreamFollower {
    /// The id of the last entry returned (at first: the starting position).
    #[getter]
    fn position(&self, py: Python<'_>) -> String {
        py.detach(|| lock(&self.inner).as_ref().map(|f| f.position().to_string()))
            .unwrap_or_default()
    }

    /// The next entry, waiting up to `timeout` seconds (`None`: no limit); `None` when the
    /// time passed.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<Option<StreamEntry>> {
        let got = guard::wait(py, timeout.map(|t| t.0), |slice| {
            match lock(&self.inner).as_mut() {
                Some(f) => f.next(slice.max(std::time::Duration::from_millis(1))),
                None => Err(redipc::Error::new(
                    ErrorKind::Closed,
                    "the stream follower is closed",
                )),
            }
        })?;
        Ok(got.map(Into::into))
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<StreamEntry>> {
        match self.next(py, None) {
            // Closed (the follower or its client): the iteration ends.
            Err(e) if errors::is(py, &e, ErrorKind::Closed) => Ok(None),
            other => other,
        }
    }

    /// Close the follower (its connection); `next()` raises `ClosedError` afterwards.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| drop(lock(&self.inner).take()));
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<redipc.StreamFollower at {}>", self.position(py))
    }
}

context_manager!(StreamFollower);

#[pymethods]
impl Client {
    /// `XADD stream [MAXLEN ~ n] * field value ...`: the new entry's id.
    #[pyo3(signature = (stream, fields = None, *, payload = None, maxlen = None))]
    fn stream_publish(
        &self,
        py: Python<'_>,
        stream: Arg,
        fields: Option<Dict<Arg, Arg>>,
        payload: Option<Arg>,
        maxlen: Option<Count<0>>,
    ) -> PyResult<String> {
        let fields = entry_fields(fields, payload)?;
        py.core(|| {
            self.c
                .stream_publish(stream, &fields, maxlen.map(Count::usize))
        })
    }

    /// `XREAD`: up to `count` entries after `from_id`; see the stubs.
    #[pyo3(signature = (stream, from_id = "0", count = Count(100), block = None))]
    #[pyo3(text_signature = "($self, stream, from_id='0', count=100, block=None)")]
    fn stream_read(
        &self,
        py: Python<'_>,
        stream: Arg,
        from_id: &str,
        count: Count<1>,
        block: Option<Seconds>,
    ) -> PyResult<Vec<StreamEntry>> {
        let count = count.usize();
        let entries = match block {
            None => py.core(|| self.c.stream_read(&stream, from_id, count, None))?,
            Some(total) => {
                // Read in slices (Ctrl-C works between them) from a position pinned now
                // ("$" is the last id), so that nothing published between two is missed.
                let from = py
                    .core(|| self.c.stream_follow(&stream, from_id))?
                    .position()
                    .to_string();
                guard::wait(py, Some(total.0), |slice| {
                    let got = self.c.stream_read(
                        &stream,
                        &from,
                        count,
                        Some(slice.max(std::time::Duration::from_millis(1))),
                    )?;
                    Ok((!got.is_empty()).then_some(got))
                })?
                .unwrap_or_default()
            }
        };
        Ok(entries.into_iter().map(Into::into).collect())
    }

    /// Follow a stream from `from_id`; see the stubs.
    #[pyo3(signature = (stream, from_id = "$"))]
    fn stream_follow(
        &self,
        py: Python<'_>,
        stream: Arg,
        from_id: &str,
    ) -> PyResult<StreamFollower> {
        let follower = py.core(|| self.c.stream_follow(stream, from_id))?;
        Ok(StreamFollower {
            inner: Mutex::new(Some(follower)),
        })
    }

    /// The last entry of a stream, or `None`.
    fn stream_last(&self, py: Python<'_>, stream: Arg) -> PyResult<Option<StreamEntry>> {
        py.core(|| self.c.stream_last(stream))
            .map(|e| e.map(Into::into))
    }

    /// `XLEN stream`.
    fn stream_len(&self, py: Python<'_>, stream: Arg) -> PyResult<u64> {
        py.core(|| self.c.stream_len(stream))
    }

    /// Create a consumer group (and the stream); `False` if it existed.
    #[pyo3(signature = (stream, group, from_id = "$"))]
    fn stream_group_create(
        &self,
        py: Python<'_>,
        stream: Arg,
        group: Arg,
        from_id: &str,
    ) -> PyResult<bool> {
        py.core(|| self.c.stream_group_create(stream, group, from_id))
    }

    /// Pending entries of a group.
    fn stream_pending(&self, py: Python<'_>, stream: Arg, group: Arg) -> PyResult<PendingInfo> {
        py.core(|| self.c.stream_pending(stream, group))
            .map(Into::into)
    }

    /// Consume a group with a Python handler on a thread of its own; see the stubs.
    #[pyo3(signature = (
        stream, group, consumer, handler, *, count = None, block = None, min_idle = None,
        max_deliveries = None, claim_interval = None, on_error = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn stream_consume(
        &self,
        py: Python<'_>,
        stream: Arg,
        group: Arg,
        consumer: Arg,
        handler: Callable,
        count: Option<Count<1>>,
        block: Option<Seconds>,
        min_idle: Option<Seconds>,
        max_deliveries: Option<Count<1>>,
        claim_interval: Option<Seconds>,
        on_error: Option<Callable>,
    ) -> PyResult<StreamConsumer> {
        let opts = ConsumerOptions::default()
            .with(count, |o, n| o.count(n.usize()))
            .with(block, |o, t| o.block(t.0))
            .with(min_idle, |o, t| o.min_idle(t.0))
            .with(max_deliveries, |o, n| o.max_deliveries(n.0))
            .with(claim_interval, |o, t| o.claim_interval(t.0));
        let cb = Callback::new(py, handler, on_error.as_ref());
        let call = cb.clone();
        let run = move |e: &redipc::StreamEntry| {
            call.run(|f| f.call1((StreamEntry::from(e.clone()),)).map(drop))
        };
        let consumer = py.core(|| self.c.stream_consume(&stream, group, consumer, run, opts))?;
        Ok(StreamConsumer::new(consumer, vec![cb], stream.into()))
    }

    /// The dead letters of a stream (`<stream>:dead`), oldest first.
    #[pyo3(signature = (stream, count = Count(100)), text_signature = "($self, stream, count=100)")]
    fn stream_dead_letters(
        &self,
        py: Python<'_>,
        stream: Arg,
        count: Count<1>,
    ) -> PyResult<Vec<StreamEntry>> {
        let entries = py.core(|| self.c.stream_dead_letters(stream, count.usize()))?;
        Ok(entries.into_iter().map(Into::into).collect())
    }
}

/// An entry's fields from `stream_publish(fields)` or `stream_publish(payload=)`.
pub(crate) fn entry_fields(
    fields: Option<Dict<Arg, Arg>>,
    payload: Option<Arg>,
) -> PyResult<Vec<(Arg, Arg)>> {
    match (fields, payload) {
        (Some(f), None) => Ok(f.0),
        (None, Some(p)) => Ok(vec![(Arg::Owned(b"payload".to_vec()), p)]),
        _ => Err(py_err!(
            TypeError,
            "stream_publish(): give fields or payload=, not both"
        )),
    }
}

//! Request queues and RPC: `Client.send_request`, `handle_requests` (a `Worker` running a
//! Python handler), queue introspection and dead letters; `call`, `serve`, `serve_methods`.
//! `bare=` and `protocol="redis-ipc"` select the core's redis-ipc fleet conventions.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;
use redipc::{CallOptions, RpcHandler, WorkerOptions};

use crate::client::Client;
use crate::convert::{
    Arg, Blob, Callable, Count, Dict, Names, Seconds, When, Wire, With, type_name,
};
use crate::errors::Core;
use crate::handler::Callback;
use crate::handles::{RpcServer, Worker};
use crate::records::{Call, DeadLetter, Instance, QueueCounts, Request};

/// The reply of an RPC handler: bytes-like or `str`; `None` is no bytes (the core sends
/// JSON `null` for it on the redis-ipc wire).
fn rpc_reply(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if value.is_none() {
        return Ok(Vec::new());
    }
    match value.extract::<Blob>() {
        Ok(b) => Ok(b.0.as_ref().to_vec()),
        Err(_) => Err(py_err!(
            TypeError,
            "the handler returned {}, not bytes or str",
            type_name(value)
        )),
    }
}

/// The core RPC handler calling `cb`.
fn rpc_handler(cb: Callback) -> RpcHandler {
    Arc::new(move |call: &redipc::Call| cb.run(|f| rpc_reply(&f.call1((Call::from(call),))?)))
}

/// The options of an RPC server: the ones given, the core's defaults for the rest.
fn server_options(
    concurrency: Option<Count<1>>,
    protocol: Option<Wire>,
    version: Option<String>,
    metadata: Option<Dict<String, String>>,
) -> WorkerOptions {
    let opts = WorkerOptions::default()
        .with(concurrency, |o, n| o.concurrency(n.usize()))
        .with(protocol, |o, p| o.protocol(p.0))
        .with(version, WorkerOptions::version);
    metadata
        .unwrap_or_default()
        .0
        .into_iter()
        .fold(opts, |o, (k, v)| o.metadata(k, v))
}

#[pymethods]
impl Client {
    /// `LPUSH` a request into `queue` (with `bare`: into the list `queue` itself); with
    /// `delay` (seconds) or `at` (a time) into the queue's delayed set, due then.
    #[pyo3(signature = (queue, payload, delay = None, at = None, *, bare = false))]
    fn send_request(
        &self,
        py: Python<'_>,
        queue: Arg,
        payload: Arg,
        delay: Option<Seconds>,
        at: Option<When>,
        bare: bool,
    ) -> PyResult<()> {
        match (delay, at, bare) {
            (None, None, true) => py.core(|| self.c.send_request_bare(queue, payload)),
            (None, None, false) => py.core(|| self.c.send_request(queue, payload)),
            (Some(_), Some(_), _) => Err(py_err!(
                InvalidArgument,
                "send_request(): give delay= or at=, not both"
            )),
            (_, _, true) => Err(py_err!(
                InvalidArgument,
                "send_request(): a bare queue takes no delayed requests (delay=, at=)"
            )),
            (Some(d), None, false) => py.core(|| self.c.send_request_delayed(queue, payload, d.0)),
            (None, Some(t), false) => py.core(|| self.c.send_request_at(queue, payload, t.0)),
        }
    }

    /// Start a worker running `handler(request)` for the requests of `queues`.
    #[pyo3(signature = (
        queues, handler, *, concurrency = None, reliable = None, max_attempts = None,
        lease = None, block_timeout = None, prefetch = None, bare = None, on_error = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn handle_requests(
        &self,
        py: Python<'_>,
        queues: Names,
        handler: Callable,
        concurrency: Option<Count<1>>,
        reliable: Option<bool>,
        max_attempts: Option<Count<1>>,
        lease: Option<Seconds>,
        block_timeout: Option<Seconds>,
        prefetch: Option<Count<1>>,
        bare: Option<bool>,
        on_error: Option<Callable>,
    ) -> PyResult<Worker> {
        let opts = WorkerOptions::default()
            .with(concurrency, |o, n| o.concurrency(n.usize()))
            .with(reliable, WorkerOptions::reliable)
            .with(max_attempts, |o, n| o.max_attempts(n.u32()))
            .with(lease, |o, t| o.lease(t.0))
            .with(block_timeout, |o, t| o.block_timeout(t.0))
            .with(prefetch, |o, n| o.prefetch(n.usize()))
            .with(bare, WorkerOptions::bare);
        let cb = Callback::new(py, handler, on_error.as_ref());
        let call = cb.clone();
        let run = move |req: &redipc::Request| {
            call.run(|f| f.call1((Request::from(req.clone()),)).map(drop))
        };
        let worker = py.core(|| self.c.handle_requests(&queues.0, run, opts))?;
        let queues: Vec<Bytes> = queues.0.into_iter().map(Bytes::from).collect();
        let label = queues.first().cloned().unwrap_or_default();
        Ok(Worker::new(worker, vec![cb], label, queues))
    }

    /// Pending, in-flight and dead-letter counts of a queue.
    fn queue_stats(&self, py: Python<'_>, queue: Arg) -> PyResult<QueueCounts> {
        py.core(|| self.c.queue_stats(queue)).map(Into::into)
    }

    /// The dead letters of a queue, oldest first.
    fn dead_letters(&self, py: Python<'_>, queue: Arg) -> PyResult<Vec<DeadLetter>> {
        let letters = py.core(|| self.c.dead_letters(queue))?;
        Ok(letters.into_iter().map(Into::into).collect())
    }

    /// Put every dead letter of a queue back into it; how many.
    fn requeue_dead_letters(&self, py: Python<'_>, queue: Arg) -> PyResult<u64> {
        py.core(|| self.c.requeue_dead_letters(queue))
    }

    /// Call `service` (its `method`) with `payload` and return the reply.
    #[pyo3(signature = (
        service, payload, *, method = None, timeout = None, fail_fast = None, protocol = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        py: Python<'_>,
        service: Arg,
        payload: Arg,
        method: Option<Arg>,
        timeout: Option<Seconds>,
        fail_fast: Option<bool>,
        protocol: Option<Wire>,
    ) -> PyResult<Bytes> {
        let opts = CallOptions::default()
            .with(timeout, |o, t| o.timeout(t.0))
            .with(fail_fast, CallOptions::fail_fast)
            .with(protocol, |o, p| o.protocol(p.0));
        let method = method.as_ref().map_or(&b""[..], |m| m.as_ref());
        py.core(|| self.c.call_with(service, method, payload, opts))
    }

    /// Answer calls to `service` with `handler(call)`.
    #[pyo3(signature = (
        service, handler, *, concurrency = None, protocol = None, version = None, metadata = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &self,
        py: Python<'_>,
        service: Arg,
        handler: Callable,
        concurrency: Option<Count<1>>,
        protocol: Option<Wire>,
        version: Option<String>,
        metadata: Option<Dict<String, String>>,
    ) -> PyResult<RpcServer> {
        let opts = server_options(concurrency, protocol, version, metadata);
        let cb = Callback::new(py, handler, None);
        let h = rpc_handler(cb.clone());
        let server = py.core(|| self.c.serve_with(&service, move |call| h(call), opts))?;
        Ok(RpcServer::new(server, vec![cb], service.into()))
    }

    /// Answer calls to `service`, routed by method name to the handlers of `methods`.
    #[pyo3(signature = (
        service, methods, *, concurrency = None, protocol = None, version = None, metadata = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn serve_methods(
        &self,
        py: Python<'_>,
        service: Arg,
        methods: Dict<String, Callable>,
        concurrency: Option<Count<1>>,
        protocol: Option<Wire>,
        version: Option<String>,
        metadata: Option<Dict<String, String>>,
    ) -> PyResult<RpcServer> {
        let callbacks: Vec<(String, Callback)> = methods
            .0
            .into_iter()
            .map(|(name, f)| (name, Callback::new(py, f, None)))
            .collect();
        let table: HashMap<String, RpcHandler> = callbacks
            .iter()
            .map(|(name, cb)| (name.clone(), rpc_handler(cb.clone())))
            .collect();
        let opts = server_options(concurrency, protocol, version, metadata);
        let server = py.core(|| self.c.serve_methods_with(&service, table, opts))?;
        let callbacks = callbacks.into_iter().map(|(_, cb)| cb).collect();
        Ok(RpcServer::new(server, callbacks, service.into()))
    }

    /// The services with at least one live server, sorted.
    fn services(&self, py: Python<'_>) -> PyResult<Vec<Bytes>> {
        py.core(|| self.c.services())
    }

    /// The live servers of `service`, with what they announced.
    fn instances(&self, py: Python<'_>, service: Arg) -> PyResult<Vec<Instance>> {
        let found = py.core(|| self.c.instances(service))?;
        Ok(found.into_iter().map(Into::into).collect())
    }
}

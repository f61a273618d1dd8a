//! RPC for Python: `Client.call`, `Client.serve`, `Client.serve_methods` and `RpcServer`.
//!
//! A server's handlers run like queue handlers (see `queue.rs`): on the server's Rust
//! threads, one GIL acquisition per call, inside [`Busy`]. What a handler returns is the
//! reply; an exception is a remote error whose text is `"TypeName: message"`, or just the
//! message for a `RemoteError` the handler raised itself.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};
use redipc::{CallOptions, RpcHandler};

use crate::client::Client;
use crate::convert::{self, arg, duration};
use crate::errors::{invalid_argument, is_remote_error};
use crate::queue::{
    DEFAULT_STOP, HandlerScope, Running, WorkerStats, callable, count, describe, in_python,
    next_id, short_repr, stop_deadline,
};

/// One call as a server's handler sees it.
#[pyclass(frozen, module = "redipc._native", name = "Call")]
pub(crate) struct Call {
    /// The method name (`""` for a call without one); invalid UTF-8 is replaced.
    #[pyo3(get)]
    method: Py<PyString>,
    /// The request payload.
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// When the caller stops waiting, in seconds since the epoch (like `time.time()`).
    #[pyo3(get)]
    deadline: f64,
}

#[pymethods]
impl Call {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Call(method={:?}, payload={})",
            self.method.bind(py).to_string(),
            short_repr(py, &self.payload)
        )
    }
}

/// The reply bytes of what a handler returned: bytes-like or `str`; `None` is empty.
fn reply_bytes(obj: &Bound<'_, PyAny>) -> Result<Vec<u8>, String> {
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_cow()
            .map(|s| s.as_bytes().to_vec())
            .map_err(|e| format!("the handler returned a str that is not UTF-8: {e}"));
    }
    if obj.is_instance_of::<PyByteArray>() || obj.is_instance_of::<PyMemoryView>() {
        return arg(obj, &String::new)
            .map(|a| a.as_ref().to_vec())
            .map_err(|e| format!("the handler's reply: {e}"));
    }
    Err(format!(
        "TypeError: the handler returned {}, not bytes or str",
        convert::type_name(obj)
    ))
}

/// A core RPC handler calling the Python `handler` for each call.
fn rpc_handler(id: u64, handler: Py<PyAny>) -> RpcHandler {
    std::sync::Arc::new(move |call: &redipc::Call| -> redipc::Result<Vec<u8>> {
        in_python::<Result<Vec<u8>, String>>(|py| {
            let _scope = HandlerScope::enter(id);
            let deadline = call
                .deadline
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let c = Bound::new(
                py,
                Call {
                    method: PyString::new(py, &String::from_utf8_lossy(&call.method)).unbind(),
                    payload: PyBytes::new(py, &call.payload).unbind(),
                    deadline,
                },
            );
            match c.and_then(|c| handler.bind(py).call1((c,))) {
                Ok(r) => reply_bytes(&r),
                Err(e) if is_remote_error(py, &e) => {
                    Err(e.value(py).str().map(|s| s.to_string()).unwrap_or_default())
                }
                Err(e) => Err(describe(py, &e)),
            }
        })
        .map_err(redipc::Error::from)
    })
}

/// A running RPC server; see the stubs.
#[pyclass(frozen, module = "redipc._native", name = "RpcServer")]
pub(crate) struct RpcServer {
    run: Running<redipc::RpcServer>,
    service: Vec<u8>,
    concurrency: usize,
}

#[pymethods]
impl RpcServer {
    /// Stop answering and wait up to `timeout` seconds for running handlers.
    #[pyo3(signature = (timeout = None), text_signature = "($self, timeout=10.0)")]
    fn stop(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let deadline = stop_deadline(timeout)?;
        self.run.stop(py, deadline)
    }

    /// The server's counters (`handled`: calls answered, or dropped past their deadline).
    fn stats(&self) -> WorkerStats {
        self.run.stats().into()
    }

    /// Whether it runs (not stopped yet).
    #[getter]
    fn running(&self) -> bool {
        self.run.running()
    }

    /// The service name.
    #[getter]
    fn service<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.service)
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
    ) -> PyResult<bool> {
        self.run.stop(py, DEFAULT_STOP)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<redipc.RpcServer {:?} concurrency={}{}>",
            String::from_utf8_lossy(&self.service),
            self.concurrency,
            if self.run.running() { "" } else { " stopped" }
        )
    }
}

/// The default call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[pymethods]
impl Client {
    /// Call `service` (its `method`) with `payload` and return the reply.
    #[pyo3(
        signature = (service, payload, *, method = None, timeout = None, fail_fast = false),
        text_signature = "($self, service, payload, *, method=None, timeout=5.0, fail_fast=False)"
    )]
    fn call<'py>(
        &self,
        py: Python<'py>,
        service: &Bound<'py, PyAny>,
        payload: &Bound<'py, PyAny>,
        method: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        fail_fast: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let service = arg(service, &|| "call(): argument 'service'".to_string())?;
        let payload = arg(payload, &|| "call(): argument 'payload'".to_string())?;
        let method = match method {
            Some(m) if !m.is_none() => Some(arg(m, &|| "call(): argument 'method'".to_string())?),
            _ => None,
        };
        let timeout = match timeout {
            Some(t) if !t.is_none() => duration(t, "call(): timeout")?,
            _ => CALL_TIMEOUT,
        };
        let opts = CallOptions::default().timeout(timeout).fail_fast(fail_fast);
        let method: &[u8] = method.as_ref().map(|m| m.as_ref()).unwrap_or(b"");
        let reply = self.run(py, |c| c.call_with(&service, method, &payload, opts))?;
        Ok(PyBytes::new(py, &reply))
    }

    /// Answer calls to `service` with `handler(call)`.
    #[pyo3(signature = (service, handler, *, concurrency = 1))]
    fn serve(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
        concurrency: i64,
    ) -> PyResult<RpcServer> {
        let service = arg(service, &|| "serve(): argument 'service'".to_string())?;
        let handler = callable(handler, "serve(): handler")?;
        let concurrency = count(py, concurrency, "serve(): concurrency")?;
        let id = next_id();
        let h = rpc_handler(id, handler);
        let server = self.run(py, |c| c.serve(&service, move |call| h(call), concurrency))?;
        Ok(RpcServer {
            run: Running::new(id, server),
            service: service.as_ref().to_vec(),
            concurrency,
        })
    }

    /// Answer calls to `service`, routed by method name to the handlers of `methods`.
    #[pyo3(signature = (service, methods, *, concurrency = 1))]
    fn serve_methods(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        methods: &Bound<'_, PyAny>,
        concurrency: i64,
    ) -> PyResult<RpcServer> {
        let service = arg(service, &|| {
            "serve_methods(): argument 'service'".to_string()
        })?;
        let concurrency = count(py, concurrency, "serve_methods(): concurrency")?;
        let items = methods
            .call_method0(pyo3::intern!(py, "items"))
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "serve_methods(): methods must be a mapping of names to functions, not {}",
                    convert::type_name(methods)
                ))
            })?;
        let id = next_id();
        let mut table: HashMap<String, RpcHandler> = HashMap::new();
        for item in items.try_iter()? {
            let (name, f): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let name: String = name.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "serve_methods(): a method name must be a str, not {}",
                    convert::type_name(&name)
                ))
            })?;
            let f = callable(&f, &format!("serve_methods(): the handler of {name:?}"))?;
            table.insert(name, rpc_handler(id, f));
        }
        if table.is_empty() {
            return Err(invalid_argument(
                py,
                "serve_methods(): give at least one method",
            ));
        }
        let server = self.run(py, |c| c.serve_methods(&service, table, concurrency))?;
        Ok(RpcServer {
            run: Running::new(id, server),
            service: service.as_ref().to_vec(),
            concurrency,
        })
    }
}

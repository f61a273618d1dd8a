//! The service registry (`ipc_services()`, `ipc_service_instances()`): the RPC servers
//! (redipc protocol) that are running, with what they announced
//! (`ipc_worker_options_set_version()`, `ipc_worker_options_add_metadata()`).
//!
//! Ownership: an `ipc_service_names` owns the names; an `ipc_instances` owns the core's
//! `Instance` values' text as C strings and the C views of them.

use std::ffi::{CString, c_char};

use crate::client::ipc_client;
use crate::convert::{c_text, ipc_field, present};
use crate::error::{Error, ipc_result};
use crate::handle::to_boxed;

/// The names of the services with a live server, sorted (`ipc_services()`).
///
/// Owns copies of the names; read them with `ipc_service_names_len()` and
/// `ipc_service_names_get()`, free them with `ipc_service_names_free()`.
///
/// Thread safety: read-only; any number of threads may read it at once.
pub struct ipc_service_names {
    _private: [u8; 0],
}
box_castable!(ipc_service_names => Vec<Box<[u8]>>);

/// One live server of a service, read-only, owned by its `ipc_instances` list (as are the
/// strings it points to: valid until `ipc_instances_free()`). The text fields are
/// NUL-terminated UTF-8 and never NULL (`""` when the server announced none).
#[repr(C)]
#[derive(Debug)]
pub struct ipc_instance {
    /// The service it serves (a byte string; not NUL-terminated).
    pub service: *const c_char,
    /// Length of `service` in bytes.
    pub service_len: usize,
    /// Its id: random, unique per server.
    pub id: *const c_char,
    /// The version it announced (`ipc_worker_options_set_version()`).
    pub version: *const c_char,
    /// The name of the host it runs on.
    pub host: *const c_char,
    /// Its process id.
    pub pid: u32,
    /// When it started serving: Unix time in milliseconds, on its host's clock.
    pub started_ms: u64,
    /// How long it stays listed without another heartbeat, in milliseconds (a running
    /// server renews it every second; one that died is gone within 3 s).
    pub expires_in_ms: u64,
    /// Its own fields (`ipc_worker_options_add_metadata()`), in the order they were added
    /// (`metadata_count` of them; never NULL). Names and values are UTF-8, given with their
    /// lengths and also NUL-terminated.
    pub metadata: *const ipc_field,
    /// The number of metadata fields.
    pub metadata_count: usize,
}

/// The C view of one core instance: its text as C strings and its metadata as `ipc_field`s
/// pointing into them (a `CString`'s bytes do not move when the view moves).
struct View {
    service: Box<[u8]>,
    id: CString,
    version: CString,
    host: CString,
    /// Owns what `fields` points to.
    _metadata: Vec<(CString, CString)>,
    fields: Box<[ipc_field]>,
    pid: u32,
    started_ms: u64,
    expires_in_ms: u64,
}

impl View {
    fn new(i: redipc::Instance) -> View {
        let metadata: Vec<(CString, CString)> = i
            .metadata
            .iter()
            .map(|(k, v)| (c_text(k), c_text(v)))
            .collect();
        let fields = metadata
            .iter()
            .map(|(k, v)| {
                let (name, name_len) = present(k.as_bytes());
                let (value, value_len) = present(v.as_bytes());
                ipc_field {
                    name,
                    name_len,
                    value,
                    value_len,
                }
            })
            .collect();
        View {
            service: i.service.to_vec().into_boxed_slice(),
            id: c_text(&i.id),
            version: c_text(&i.version),
            host: c_text(&i.host),
            _metadata: metadata,
            fields,
            pid: i.pid,
            started_ms: i.started_ms,
            expires_in_ms: u64::try_from(i.expires_in.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The `ipc_instance` of this view; valid while the view lives, moved or not.
    fn c_instance(&self) -> ipc_instance {
        let (service, service_len) = present(&self.service);
        ipc_instance {
            service,
            service_len,
            id: self.id.as_ptr(),
            version: self.version.as_ptr(),
            host: self.host.as_ptr(),
            pid: self.pid,
            started_ms: self.started_ms,
            expires_in_ms: self.expires_in_ms,
            metadata: match self.fields.is_empty() {
                true => std::ptr::NonNull::<ipc_field>::dangling().as_ptr(),
                false => self.fields.as_ptr(),
            },
            metadata_count: self.fields.len(),
        }
    }
}

/// The instances of an `ipc_instances` list and the views they point into.
pub(crate) struct Instances {
    /// Owns what `instances` points to; never changed after construction.
    _views: Box<[View]>,
    instances: Box<[ipc_instance]>,
}

// SAFETY: the raw pointers in `instances` point into `_views` (or at static ""), owned by
// the same value and never mutated; sharing or sending the whole is as safe as sharing the
// owned data.
unsafe impl Send for Instances {}
// SAFETY: as above; nothing is mutated after construction.
unsafe impl Sync for Instances {}

/// The live servers of one service (`ipc_service_instances()`).
///
/// Owns copies of what the servers announced; read them with `ipc_instances_len()` and
/// `ipc_instances_get()`, free them with `ipc_instances_free()`, which invalidates every
/// `ipc_instance` taken from it.
///
/// Thread safety: read-only; any number of threads may read it at once.
pub struct ipc_instances {
    _private: [u8; 0],
}
box_castable!(ipc_instances => Instances);

/// The services with at least one live RPC server (redipc protocol; `ipc_serve()` and
/// `ipc_serve_methods()` announce themselves every second, and an announcement lives 3 s,
/// on the server's clock), sorted by name. A stopped server is withdrawn at once; one that
/// died is gone within 3 s.
///
/// Output: on `IPC_OK`, `*out` is a new, possibly empty, list owned by the caller; free it
/// with `ipc_service_names_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_services(
    client: *const ipc_client,
    out: *mut *mut ipc_service_names,
) -> ipc_result {
    ffi_boundary!(ipc_services(client, out) {
        let names = try_ref!(client).services()?;
        put!(out, to_boxed(names.iter().map(|n| n.to_vec().into_boxed_slice()).collect::<Vec<_>>()));
        Ok(())
    })
}

/// The number of names in a list.
///
/// Errors: returns 0 (and sets the last error) for a NULL `names`.
///
/// Thread safety: any thread; see `ipc_service_names`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_service_names_len(names: *const ipc_service_names) -> usize {
    ffi_boundary!(ipc_service_names_len(names) { Ok(try_ref!(names).len()) })
}

/// Name `i` (from 0) of a list.
///
/// Output: on `IPC_OK`, `(*name, *name_len)` is the name, a byte string owned by the list
/// (valid until `ipc_service_names_free()`; never NULL; not NUL-terminated).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for `i` out of range.
///
/// Thread safety: any thread; see `ipc_service_names`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_service_names_get(
    names: *const ipc_service_names,
    i: usize,
    name: *mut *const c_char,
    name_len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_service_names_get(names, i, name, name_len) {
        let list = try_ref!(names);
        let n = list.get(i).ok_or_else(|| {
            Error::invalid(format!("index {i} is out of range (the list has {} names)", list.len()))
        })?;
        let (p, len) = present(n);
        put!(name, p);
        put!(name_len, len);
        Ok(())
    })
}

/// Free a list of service names. NULL is a no-op.
///
/// Thread safety: no other thread may use `names` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_service_names_free(names: *mut ipc_service_names) {
    ffi_boundary!(ipc_service_names_free(#[nullable] names) { free_box!(names) })
}

/// The live servers of `service` (a byte string: not empty, without `{` or `}`), with what
/// each announced (see `ipc_instance`); none for a service nobody serves.
///
/// Output: on `IPC_OK`, `*out` is a new, possibly empty, list owned by the caller; free it
/// with `ipc_instances_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty service name or one
/// with `{` or `}`; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_service_instances(
    client: *const ipc_client,
    service: *const c_char,
    service_len: usize,
    out: *mut *mut ipc_instances,
) -> ipc_result {
    ffi_boundary!(ipc_service_instances(client, service, service_len, out) {
        let list = try_ref!(client).instances(bytes!(service, service_len))?;
        let views: Box<[View]> = list.into_iter().map(View::new).collect();
        let instances = views.iter().map(View::c_instance).collect();
        put!(out, to_boxed(Instances { _views: views, instances }));
        Ok(())
    })
}

/// The number of instances in a list.
///
/// Errors: returns 0 (and sets the last error) for a NULL `instances`.
///
/// Thread safety: any thread; see `ipc_instances`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_instances_len(instances: *const ipc_instances) -> usize {
    ffi_boundary!(ipc_instances_len(instances) { Ok(try_ref!(instances).instances.len()) })
}

/// Instance `i` (from 0) of a list: a pointer valid until `ipc_instances_free(instances)`;
/// read its fields directly (see `ipc_instance`).
///
/// Errors: returns NULL (and sets the last error) for a NULL `instances` or `i` out of
/// range.
///
/// Thread safety: any thread; see `ipc_instances`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_instances_get(
    instances: *const ipc_instances,
    i: usize,
) -> *const ipc_instance {
    ffi_boundary!(ipc_instances_get(instances, i) {
        let list = &try_ref!(instances).instances;
        list.get(i).map(|e| e as *const ipc_instance).ok_or_else(|| {
            Error::invalid(format!("index {i} is out of range (the list has {} instances)", list.len()))
        })
    })
}

/// Free a list of instances; every `ipc_instance` taken from it becomes invalid. NULL is a
/// no-op.
///
/// Thread safety: no other thread may use `instances` (or its instances) during or after
/// this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_instances_free(instances: *mut ipc_instances) {
    ffi_boundary!(ipc_instances_free(#[nullable] instances) { free_box!(instances) })
}

//! Typed reports (`ipc_report`): what handles that run callbacks tell the program besides
//! their callbacks' own results — a handler failed, requests were dead-lettered or
//! recovered, a loop lost its connection and got it back, a watcher's read failed. The core
//! makes them (`redipc::Report`); this converts them for a C callback.
//!
//! Ownership: a report callback set on an options handle becomes the core's `ErrorHook`
//! (an `Arc` of a closure owning the caller's `(userdata, userdata_free)`); `userdata_free`
//! runs when the last clone of that hook is dropped.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use redipc::{ErrorHook, Report, ReportKind, ReportSource};

use crate::convert::{UserData, c_text, ipc_userdata_free_cb, present};
use crate::error::{Error, ipc_result};

/// What an `ipc_report` is about.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_report_kind {
    /// A handler returned non-zero or panicked; `error` is `IPC_ERR_HANDLER` with its text.
    /// `attempt` / `max_attempts` say whether the item is retried (reliable queues,
    /// streams) or not (plain queues: `max_attempts` 0; RPC: the caller got the error).
    IPC_REPORT_HANDLER_FAILED = 0,
    /// `count` requests (or, for a stream consumer, the entry `item`) were moved to the dead
    /// letters after their last attempt.
    IPC_REPORT_DEAD_LETTERED = 1,
    /// `count` requests of a consumer that died were put back into their queue.
    IPC_REPORT_RECOVERED = 2,
    /// An operation of the handle's loop failed (`during` says which, `error` why); the
    /// loop retries with backoff. Reported once while the same error repeats.
    IPC_REPORT_CONNECTION_LOST = 3,
    /// After `IPC_REPORT_CONNECTION_LOST`, the loop's next operation succeeded.
    IPC_REPORT_CONNECTION_RESTORED = 4,
    /// A hash watcher could not read the hash; it reads it again, whole, with backoff, so
    /// no change is missed.
    IPC_REPORT_READ_FAILED = 5,
    /// A kind this version of the C API does not know; `text` says what happened.
    IPC_REPORT_OTHER = 99,
}

/// Which kind of handle made an `ipc_report`; `name` is the thing it works on.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_report_source {
    /// A request worker (`ipc_worker_new()`); `name` is the queue.
    IPC_SOURCE_WORKER = 0,
    /// An RPC server (`ipc_serve()`); `name` is the service.
    IPC_SOURCE_RPC_SERVER = 1,
    /// A stream group consumer (`ipc_stream_consume()`); `name` is the stream, `group` is
    /// set.
    IPC_SOURCE_STREAM_CONSUMER = 2,
    /// A hash watcher (`ipc_hash_watch()`); `name` is the hash.
    IPC_SOURCE_HASH_WATCHER = 3,
    /// A keyspace watch (`ipc_watch_keys()`); `name` is the key pattern.
    IPC_SOURCE_KEY_WATCH = 4,
    /// A subscription or subscription group; `name` is the channel or pattern when known.
    IPC_SOURCE_SUBSCRIPTION = 5,
    /// A source this version of the C API does not know.
    IPC_SOURCE_OTHER = 99,
}

/// One report, passed to an `ipc_report_cb`.
///
/// Lifetime: the struct and everything it points to are valid only during the callback
/// call; copy what you need to keep. Byte strings are (pointer, length) pairs; text fields
/// are NUL-terminated.
#[repr(C)]
#[derive(Debug)]
pub struct ipc_report {
    /// What happened.
    pub kind: ipc_report_kind,
    /// Which kind of handle reports it.
    pub source: ipc_report_source,
    /// The queue, service, stream, hash, channel or key pattern (length 0 when none
    /// applies); never NULL.
    pub name: *const c_char,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// The consumer group (stream consumers); NULL with length 0 otherwise.
    pub group: *const c_char,
    /// Length of `group` in bytes.
    pub group_len: usize,
    /// The item it is about (a stream entry id, a key), NUL-terminated; NULL when none.
    pub item: *const c_char,
    /// How many times the item was handed to a handler, this time included (1 the first
    /// time; for streams the delivery count); 0 when it does not apply.
    pub attempt: u32,
    /// After how many attempts an item is dead-lettered; 0 when it is never retried or it
    /// does not apply.
    pub max_attempts: u32,
    /// How many items (dead letters, recovered requests); 0 when it does not apply.
    pub count: u64,
    /// The error's code (`IPC_ERR_HANDLER` for a handler's failure, `IPC_ERR_CONNECTION`,
    /// ...); `IPC_OK` when the report carries no error.
    pub error: ipc_result,
    /// The error's text, NUL-terminated; `""` when the report carries no error.
    pub error_message: *const c_char,
    /// What the loop was doing when its operation failed (`"reading new entries"`),
    /// NUL-terminated; NULL when it does not apply.
    pub during: *const c_char,
    /// The whole report as one line, NUL-terminated: the message the report is logged with
    /// (target `"redipc::report"`, see `ipc_set_log_callback()`).
    pub text: *const c_char,
}

/// A report callback: `userdata` as given with it, and the report (see `ipc_report` for
/// the lifetime of what it points to).
///
/// Thread: the thread of the handle that reports (a worker's, consumer's or watcher's own
/// thread, a subscription's dispatcher thread or, in poll mode, the thread inside
/// `ipc_client_poll()`); reports of different handles may come at the same time, so the
/// callback must be thread-safe. It should return quickly; it may use the library. It must
/// not unwind (C++ exceptions) or `longjmp` out. A callback that ignores what it gets
/// silences the reports.
pub type ipc_report_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, report: *const ipc_report)>;

/// A C report callback with its `userdata`; dropping it (when the last clone of the hook
/// goes) runs `userdata_free`.
struct Sink {
    cb: unsafe extern "C" fn(*mut c_void, *const ipc_report),
    userdata: UserData,
    free: ipc_userdata_free_cb,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.userdata.release(self.free)();
    }
}

impl Sink {
    fn deliver(&self, r: &Report) {
        let kind = match r.kind {
            ReportKind::HandlerFailed => ipc_report_kind::IPC_REPORT_HANDLER_FAILED,
            ReportKind::DeadLettered => ipc_report_kind::IPC_REPORT_DEAD_LETTERED,
            ReportKind::Recovered => ipc_report_kind::IPC_REPORT_RECOVERED,
            ReportKind::ConnectionLost => ipc_report_kind::IPC_REPORT_CONNECTION_LOST,
            ReportKind::ConnectionRestored => ipc_report_kind::IPC_REPORT_CONNECTION_RESTORED,
            ReportKind::ReadFailed => ipc_report_kind::IPC_REPORT_READ_FAILED,
            _ => ipc_report_kind::IPC_REPORT_OTHER,
        };
        let source = match r.source {
            ReportSource::Worker => ipc_report_source::IPC_SOURCE_WORKER,
            ReportSource::RpcServer => ipc_report_source::IPC_SOURCE_RPC_SERVER,
            ReportSource::StreamConsumer => ipc_report_source::IPC_SOURCE_STREAM_CONSUMER,
            ReportSource::HashWatcher => ipc_report_source::IPC_SOURCE_HASH_WATCHER,
            ReportSource::KeyspaceWatch => ipc_report_source::IPC_SOURCE_KEY_WATCH,
            ReportSource::Subscription => ipc_report_source::IPC_SOURCE_SUBSCRIPTION,
            _ => ipc_report_source::IPC_SOURCE_OTHER,
        };
        let (name, name_len) = present(&r.name);
        let (group, group_len) = r.group.as_deref().map_or((std::ptr::null(), 0), present);
        let item = r.item.as_deref().map(c_text);
        let during = r.during.map(c_text);
        let (error, error_message) = match &r.error {
            Some(e) => {
                let e = Error::from(e.clone());
                (e.code(), c_text(e.message()))
            }
            None => (ipc_result::IPC_OK, CString::default()),
        };
        let text = c_text(&r.to_string());
        let report = ipc_report {
            kind,
            source,
            name,
            name_len,
            group,
            group_len,
            item: item.as_deref().map_or(std::ptr::null(), |s| s.as_ptr()),
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            count: r.count,
            error,
            error_message: error_message.as_ptr(),
            during: during.as_deref().map_or(std::ptr::null(), |s| s.as_ptr()),
            text: text.as_ptr(),
        };
        // SAFETY: the caller gave `cb` to be called with `userdata` from the library's
        // threads; `report` and what it points to outlive the call.
        unsafe { (self.cb)(self.userdata.ptr(), &report) };
    }
}

/// The core's hook for a C report callback; `None` (the default: the client's hook, else
/// only the log) for a NULL `cb`.
pub(crate) fn hook(
    cb: ipc_report_cb,
    userdata: *mut c_void,
    free: ipc_userdata_free_cb,
) -> Option<ErrorHook> {
    let cb = cb?;
    let sink = Sink {
        cb,
        userdata: UserData(userdata),
        free,
    };
    Some(Arc::new(move |r: &Report| sink.deliver(r)))
}

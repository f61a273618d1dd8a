//! Every options type of the C API, in one idiom: an opaque handle made with the core's
//! defaults by `ipc_X_options_new(&out)`, changed by `ipc_X_options_set_Y(opts, value)`
//! setters that only store (the core checks the values when they are used, and its error
//! names the option), freed by `ipc_X_options_free()`. A function taking options accepts
//! NULL for the defaults and copies what it needs; the handle stays the caller's.
//!
//! Each setter is the same three lines: `set!(opts.field = conversion(value))`.

use std::ffi::{c_char, c_int, c_void};

use redipc::{ErrorHook, Overflow, Pem, SubscribeOptions};

use crate::convert::{ipc_userdata_free_cb, millis};
use crate::error::{Error, ipc_result};
use crate::handle::{Castable, OwnershipBox};
use crate::report::{hook, ipc_report_cb};

/// Store `value` in a field of the options behind `opts` (`?`-style, returns `Ok(())`).
macro_rules! set {
    ($opts:ident . $($field:ident).+ = $value:expr) => {{
        try_mut!($opts).$($field).+ = $value;
        Ok(())
    }};
}

/// Write a new options handle with the core's defaults to `out` (`Ok(())`).
macro_rules! new_default {
    ($out:ident) => {{
        put!($out, crate::handle::to_boxed(Default::default()));
        Ok(())
    }};
}

/// The options behind a nullable options argument, or the core's defaults for NULL.
///
/// # Safety
/// `opts` is NULL or a live handle of its type.
pub(crate) unsafe fn or_default<C>(opts: *const C) -> C::RustType
where
    C: Castable<Ownership = OwnershipBox>,
    C::RustType: Clone + Default,
{
    // SAFETY: forwarded from the caller.
    unsafe { opts.cast::<C::RustType>().as_ref() }
        .cloned()
        .unwrap_or_default()
}

// ---- client ---------------------------------------------------------------------------

/// Settings of a client, for `ipc_client_new()`: timeouts, credentials, protocol, limits,
/// reconnection, poll mode, reports.
///
/// Owns a `redipc::Options` (plain values, and the report callback's `userdata` while one
/// is set). Made by `ipc_options_new()`, changed by the `ipc_options_set_*` functions, read
/// (copied) by `ipc_client_new()`, freed by `ipc_options_free()`.
///
/// Thread safety: not synchronized; change it from one thread at a time (reading it in
/// `ipc_client_new()` from several threads at once is fine).
pub struct ipc_options {
    _private: [u8; 0],
}
box_castable!(ipc_options => redipc::Options);

/// Make client options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_new(out: *mut *mut ipc_options) -> ipc_result {
    ffi_boundary!(ipc_options_new(out) { new_default!(out) })
}

/// Free client options. NULL is a no-op. Clients made with them keep their own copy (and
/// the report callback's `userdata` stays alive for them).
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_free(opts: *mut ipc_options) {
    ffi_boundary!(ipc_options_free(#[nullable] opts) { free_box!(opts) })
}

/// Limit on establishing a connection, in milliseconds (default 5000; 0 is refused by
/// `ipc_client_new()`). An unreachable server is reported as `IPC_ERR_CONNECTION` within
/// this time.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_connect_timeout_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_connect_timeout_ms(opts, ms) { set!(opts.connect_timeout = millis(ms)) })
}

/// Limit on every call, from sending the command to its reply, including a wait for a
/// reconnect, in milliseconds (default 5000; 0 is refused by `ipc_client_new()`). A call
/// that takes longer fails with `IPC_ERR_TIMEOUT`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_response_timeout_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_response_timeout_ms(opts, ms) { set!(opts.response_timeout = millis(ms)) })
}

/// The connection name (`CLIENT SETNAME`), a NUL-terminated UTF-8 string, copied (default:
/// none; one with spaces is refused by `ipc_client_new()`).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_client_name(
    opts: *mut ipc_options,
    name: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_client_name(opts, name) { set!(opts.client_name = Some(text!(name).into())) })
}

/// The database number (`SELECT`), overriding the URL's (default: the URL's, else 0; a
/// negative one is refused by `ipc_client_new()`).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_database(opts: *mut ipc_options, db: i64) -> ipc_result {
    ffi_boundary!(ipc_options_set_database(opts, db) { set!(opts.database = Some(db)) })
}

/// The ACL user name, a NUL-terminated UTF-8 string, copied (default: the URL's).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_username(
    opts: *mut ipc_options,
    username: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_username(opts, username) { set!(opts.username = Some(text!(username).into())) })
}

/// The password, a NUL-terminated UTF-8 string, copied (default: the URL's).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_password(
    opts: *mut ipc_options,
    password: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_password(opts, password) { set!(opts.password = Some(text!(password).into())) })
}

/// The CA certificates that may sign the server's certificate (default: the system's
/// roots) for TLS (`rediss://` URLs), read from the PEM file at `path`, a NUL-terminated
/// UTF-8 string, copied (the file is read by `ipc_client_new()`).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8 (a missing or
/// unreadable file, or one that is not PEM, fails in `ipc_client_new()` with
/// `IPC_ERR_INVALID_ARGUMENT` naming it). Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_ca_file(
    opts: *mut ipc_options,
    path: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_ca_file(opts, path) { set!(opts.tls.ca = Some(Pem::file(text!(path)))) })
}

/// The CA certificates that may sign the server's certificate (default: the system's
/// roots) for TLS given as PEM text: `len` bytes at `pem`, copied (instead of
/// `ipc_options_set_tls_ca_file()`; the last one set applies).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_ca_pem(
    opts: *mut ipc_options,
    pem: *const c_char,
    len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_ca_pem(opts, pem, len) { set!(opts.tls.ca = Some(Pem::data(bytes!(pem, len).to_vec()))) })
}

/// This client's certificate (chain), for servers that require one (mutual TLS) for TLS (`rediss://` URLs), read from the PEM file at `path`, a NUL-terminated
/// UTF-8 string, copied (the file is read by `ipc_client_new()`).
/// Needs `ipc_options_set_tls_key_file()` or `ipc_options_set_tls_key_pem()` too.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8 (a missing or
/// unreadable file, or one that is not PEM, fails in `ipc_client_new()` with
/// `IPC_ERR_INVALID_ARGUMENT` naming it). Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_cert_file(
    opts: *mut ipc_options,
    path: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_cert_file(opts, path) { set!(opts.tls.cert = Some(Pem::file(text!(path)))) })
}

/// This client's certificate (chain), for servers that require one (mutual TLS) for TLS given as PEM text: `len` bytes at `pem`, copied (instead of
/// `ipc_options_set_tls_cert_file()`; the last one set applies).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_cert_pem(
    opts: *mut ipc_options,
    pem: *const c_char,
    len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_cert_pem(opts, pem, len) { set!(opts.tls.cert = Some(Pem::data(bytes!(pem, len).to_vec()))) })
}

/// The private key of the client certificate for TLS (`rediss://` URLs), read from the PEM file at `path`, a NUL-terminated
/// UTF-8 string, copied (the file is read by `ipc_client_new()`).
/// The key never appears in an error message or log line.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8 (a missing or
/// unreadable file, or one that is not PEM, fails in `ipc_client_new()` with
/// `IPC_ERR_INVALID_ARGUMENT` naming it). Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_key_file(
    opts: *mut ipc_options,
    path: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_key_file(opts, path) { set!(opts.tls.key = Some(Pem::file(text!(path)))) })
}

/// The private key of the client certificate for TLS given as PEM text: `len` bytes at `pem`, copied (instead of
/// `ipc_options_set_tls_key_file()`; the last one set applies).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_key_pem(
    opts: *mut ipc_options,
    pem: *const c_char,
    len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_key_pem(opts, pem, len) { set!(opts.tls.key = Some(Pem::data(bytes!(pem, len).to_vec()))) })
}

/// The name the server's certificate must hold, instead of the URL's host (cluster nodes
/// and sentinels announce IP addresses that certificates rarely hold): a NUL-terminated
/// UTF-8 string, copied.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_server_name(
    opts: *mut ipc_options,
    name: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_server_name(opts, name) { set!(opts.tls.server_name = Some(text!(name).into())) })
}

/// Accept any server certificate (default false). **This removes all protection against a
/// man in the middle**: for tests and diagnosis only.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_tls_insecure(
    opts: *mut ipc_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_tls_insecure(opts, on) { set!(opts.tls.insecure = on) })
}

/// The ACL user name for the sentinels of a `redis-sentinel://` URL, a NUL-terminated UTF-8
/// string, copied (default: none; the URL's user is the master's).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_sentinel_username(
    opts: *mut ipc_options,
    username: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_sentinel_username(opts, username) { set!(opts.sentinel_username = Some(text!(username).into())) })
}

/// The password of the sentinels of a `redis-sentinel://` URL, a NUL-terminated UTF-8
/// string, copied (default: none; the URL's password is the master's). Never shown in an
/// error or log line.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_sentinel_password(
    opts: *mut ipc_options,
    password: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_sentinel_password(opts, password) { set!(opts.sentinel_password = Some(text!(password).into())) })
}

/// The prefix of the keys the library itself creates (queues, cache, locks, ...), a
/// NUL-terminated UTF-8 string, copied (default `"ipc:"`). Keys given to commands are used
/// as they are, never prefixed.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_key_prefix(
    opts: *mut ipc_options,
    prefix: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_key_prefix(opts, prefix) { set!(opts.key_prefix = text!(prefix).into()) })
}

/// The number of I/O threads of the process-wide runtime (default 0: one, driven by the
/// calling threads). Only the first client of the process starts the runtime; a later
/// client asking for a different non-zero number fails in `ipc_client_new()` with
/// `IPC_ERR_INVALID_ARGUMENT`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_io_threads(
    opts: *mut ipc_options,
    threads: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_io_threads(opts, threads) { set!(opts.io_threads = threads) })
}

/// Speak RESP3 (`true`, the default: maps, sets, doubles, booleans in replies) or RESP2
/// (`false`: those come as arrays, strings and integers).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_resp3(opts: *mut ipc_options, on: bool) -> ipc_result {
    ffi_boundary!(ipc_options_set_resp3(opts, on) { set!(opts.resp3 = on) })
}

/// The largest value accepted in one command argument, in bytes (default 512 MiB); a
/// larger one is refused with `IPC_ERR_INVALID_ARGUMENT` before anything is sent, and the
/// client stays usable. The smaller of this and the server's `proto-max-bulk-len` applies.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_max_value_size(
    opts: *mut ipc_options,
    bytes: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_max_value_size(opts, bytes) { set!(opts.max_value_size = bytes) })
}

/// The largest reply accepted, in bytes (default 1 GiB; under 64 KiB is refused by
/// `ipc_client_new()`): a reply, or a pub/sub message, that grows past it before it is
/// complete is a protocol error that drops that connection (it is re-established; the call
/// fails with `IPC_ERR_PROTOCOL`), instead of memory growing with what the server announces.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_max_reply_size(
    opts: *mut ipc_options,
    bytes: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_max_reply_size(opts, bytes) { set!(opts.max_reply_size = bytes) })
}

/// The first delay before reconnecting after the connection broke, in milliseconds
/// (default 10). Delays double up to the maximum, with random jitter; a minimum above the
/// maximum is refused by `ipc_client_new()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_reconnect_min_delay_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_reconnect_min_delay_ms(opts, ms) { set!(opts.reconnect.min_delay = millis(ms)) })
}

/// The longest delay between reconnection attempts, in milliseconds (default 2000).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_reconnect_max_delay_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_reconnect_max_delay_ms(opts, ms) { set!(opts.reconnect.max_delay = millis(ms)) })
}

/// Give up reconnecting after this many failed attempts; 0 (the default) reconnects
/// forever. After giving up, calls fail with `IPC_ERR_CONNECTION`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_reconnect_max_attempts(
    opts: *mut ipc_options,
    attempts: u32,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_reconnect_max_attempts(opts, attempts) { set!(opts.reconnect.max_attempts = (attempts != 0).then_some(attempts)) })
}

/// Standalone server or Redis Cluster (`ipc_options_set_cluster()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_cluster_mode {
    /// Ask the first node that answers (the default): a cluster node answers `CLUSTER
    /// SLOTS` with the slot map, a standalone server says cluster support is disabled. A
    /// `unix://` or sentinel URL is always standalone.
    IPC_CLUSTER_AUTO = 0,
    /// One server: no cluster routing (against a cluster node, keys of other nodes' slots
    /// get `MOVED` errors).
    IPC_CLUSTER_STANDALONE = 1,
    /// A Redis Cluster: `ipc_client_new()` fails with `IPC_ERR_UNSUPPORTED` when the node
    /// is not in cluster mode, `IPC_ERR_INVALID_ARGUMENT` for a unix or sentinel URL.
    IPC_CLUSTER_ON = 2,
}

/// Standalone or cluster, an `ipc_cluster_mode` taken as an `int` (default
/// `IPC_CLUSTER_AUTO`). On a cluster the client routes every command by its keys to the
/// node owning their slot, follows `MOVED` and `ASK`, splits `MGET`/`DEL`/`EXISTS` over
/// several slots, and refuses other commands and transactions whose keys are in several
/// slots (`IPC_ERR_INVALID_ARGUMENT`, nothing sent); the URL may list several nodes
/// (`redis://10.0.0.1:7000,10.0.0.2:7000/`), the first that answers is used.
///
/// A library built without the `cluster` feature (e.g. `make FEATURES="tls sentinel"`,
/// docs/SIZE.md) accepts the option but refuses a cluster when connecting:
/// `ipc_client_new()` fails with `IPC_ERR_UNSUPPORTED` for `IPC_CLUSTER_ON`, and for
/// `IPC_CLUSTER_AUTO` when the node is a cluster node.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a number that is not an
/// `ipc_cluster_mode`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_cluster(
    opts: *mut ipc_options,
    mode: c_int,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_cluster(opts, mode) { set!(opts.cluster = cluster_arg(mode)?) })
}

/// On a cluster, send single read-only commands (`GET`, `HGETALL`, `XRANGE`, ...) to a
/// replica of their slot's primary, chosen at random (default false: every command goes to
/// primaries). A replica may lag behind its primary: such a read may not see a write that
/// was just acknowledged. Pipelines and transactions still go to primaries.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_read_from_replicas(
    opts: *mut ipc_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_read_from_replicas(opts, on) { set!(opts.read_from_replicas = on) })
}

/// At most `n` direct connections per server (default 16, at most 256; 0: none). A single
/// command of a calling thread takes a direct connection nobody else holds and is written
/// and read on that thread (hiredis's path: one `write`, one `read`); they are opened only
/// as calling threads overlap (a lone thread has one), so N threads up to `n` each have
/// their own socket. Everything else (pipelines, blocking pops, subscriptions, threads
/// beyond `n` at once) shares the client's auto-pipelined connection. A board that counts
/// its server's connections lowers it; 0 keeps one connection per server for commands,
/// whatever the threads. Not used over TLS or sentinels.
///
/// Errors: `IPC_ERR_NULL_ARG`; more than 256 fails in `ipc_client_new()` with
/// `IPC_ERR_INVALID_ARGUMENT`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_direct_connections(
    opts: *mut ipc_options,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_direct_connections(opts, n) { set!(opts.direct_connections = n) })
}

fn cluster_arg(mode: c_int) -> Result<redipc::ClusterMode, Error> {
    use ipc_cluster_mode as M;
    match mode {
        m if m == M::IPC_CLUSTER_AUTO as c_int => Ok(redipc::ClusterMode::Auto),
        m if m == M::IPC_CLUSTER_STANDALONE as c_int => Ok(redipc::ClusterMode::Standalone),
        m if m == M::IPC_CLUSTER_ON as c_int => Ok(redipc::ClusterMode::Cluster),
        other => Err(Error::invalid(format!(
            "{other} is not an ipc_cluster_mode: use IPC_CLUSTER_AUTO, IPC_CLUSTER_STANDALONE or IPC_CLUSTER_ON"
        ))),
    }
}

/// Poll mode (default off): subscription and keyspace callbacks run only inside
/// `ipc_client_poll()`, on the thread that calls it; `ipc_client_fd()` gives a descriptor
/// that is readable whenever such work waits. Off, they run on library dispatcher threads.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_poll_mode(opts: *mut ipc_options, on: bool) -> ipc_result {
    ffi_boundary!(ipc_options_set_poll_mode(opts, on) { set!(opts.poll_mode = on) })
}

/// How long the pub/sub connection may be quiet before it is checked with a `PING`, in
/// milliseconds (1 to 9 are refused by `ipc_client_new()`). A connection that does not
/// answer is declared dead within 1.5 times this: subscriptions get
/// `IPC_EVENT_DISCONNECTED` and the library reconnects. An idle subscriber wakes twice per
/// interval. Unset, it is 3000 over TCP and off over a unix socket (a local socket cannot
/// be half-open; an idle subscriber then never wakes). 0 turns the check off, only over a
/// unix socket: with a TCP URL `ipc_client_new()` refuses it (`IPC_ERR_INVALID_ARGUMENT`);
/// over a unix socket any other value turns it on.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_health_check_interval_ms(
    opts: *mut ipc_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_health_check_interval_ms(opts, ms) { set!(opts.health_check_interval = Some(millis(ms))) })
}

/// The length bound `ipc_stream_publish()` uses when called with `maxlen` -1: streams are
/// trimmed to about this many entries (`MAXLEN ~`); 0 for unbounded (default 100000).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_stream_maxlen(
    opts: *mut ipc_options,
    maxlen: usize,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_stream_maxlen(opts, maxlen) { set!(opts.stream_maxlen = maxlen) })
}

/// Where the reports of the client's handles go (workers, RPC servers, stream consumers,
/// hash watchers, keyspace watches, subscriptions) unless a handle has a report callback of
/// its own: `cb` with `userdata` (see `ipc_report_cb`). Default (and with `cb` NULL): none.
/// Every report is logged as well, either way (target `"redipc::report"`, see
/// `ipc_set_log_callback()`); nothing is printed to stderr.
///
/// Lifetime: `userdata` must stay valid while any client made with these options, or any
/// handle of such a client, may report. `userdata_free` (may be NULL) runs exactly once when
/// nothing can report to this callback any more: after `ipc_options_free()` (or another
/// `ipc_options_set_report_cb()` on these options) and after every client made with them,
/// and every handle of those clients, is freed; it may run shortly after the last of them,
/// on a library thread. With `cb` NULL neither `userdata` nor `userdata_free` is used.
///
/// Errors: `IPC_ERR_NULL_ARG` (`opts`). Thread safety: see `ipc_options`; the callback runs
/// on the reporting handles' threads (see `ipc_report_cb`).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_report_cb(
    opts: *mut ipc_options,
    cb: ipc_report_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_report_cb(opts, #[nullable] cb, #[nullable] userdata, #[nullable] userdata_free) { set!(opts.error_hook = hook(cb, userdata, userdata_free)) })
}

// ---- subscriptions --------------------------------------------------------------------

/// The settings of one subscription (the core's `SubscribeOptions` without the handler,
/// which each subscribe call supplies).
#[derive(Clone)]
pub(crate) struct SubscribeSettings {
    capacity: usize,
    overflow: Overflow,
    error_hook: Option<ErrorHook>,
}

impl Default for SubscribeSettings {
    fn default() -> Self {
        let d = SubscribeOptions::default();
        SubscribeSettings {
            capacity: d.capacity,
            overflow: d.overflow,
            error_hook: d.error_hook,
        }
    }
}

impl SubscribeSettings {
    /// The core's options with these settings.
    pub(crate) fn to_core(&self) -> SubscribeOptions {
        let mut o = SubscribeOptions::default()
            .capacity(self.capacity)
            .overflow(self.overflow);
        o.error_hook = self.error_hook.clone();
        o
    }
}

/// What a subscription does when its queue is full and another message arrives
/// (`ipc_subscribe_options_set_overflow()`). Connection events are never dropped.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_overflow {
    /// Wait for room (the default): nothing is lost, but the reader of the client's pub/sub
    /// connection pauses, so every subscription of the client waits while this queue is
    /// full. Right for bursts a callback catches up with.
    IPC_OVERFLOW_BLOCK = 0,
    /// Drop the oldest queued message to make room for the new one (counted in `dropped`).
    IPC_OVERFLOW_DROP_OLDEST = 1,
    /// Drop the arriving message (counted in `dropped`).
    IPC_OVERFLOW_DROP_NEWEST = 2,
}

/// Options of a subscription or subscription group: queue capacity, overflow policy, report
/// callback.
///
/// Owns plain values (and the report callback's `userdata` while one is set). Made by
/// `ipc_subscribe_options_new()`, read (copied) by `ipc_subscribe()` and
/// `ipc_subscribe_group()`, freed by `ipc_subscribe_options_free()`.
///
/// Thread safety: as `ipc_options`.
pub struct ipc_subscribe_options {
    _private: [u8; 0],
}
box_castable!(ipc_subscribe_options => SubscribeSettings);

/// Make subscription options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_subscribe_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_new(
    out: *mut *mut ipc_subscribe_options,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_new(out) { new_default!(out) })
}

/// Free subscription options. NULL is a no-op. Subscriptions made with them keep their own
/// copy.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_free(opts: *mut ipc_subscribe_options) {
    ffi_boundary!(ipc_subscribe_options_free(#[nullable] opts) { free_box!(opts) })
}

/// The queue capacity in events (default 10000; 0 counts as 1). Events beyond it wait or
/// are dropped according to the overflow policy.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_subscribe_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_set_capacity(
    opts: *mut ipc_subscribe_options,
    capacity: usize,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_set_capacity(opts, capacity) { set!(opts.capacity = capacity) })
}

/// The overflow policy, an `ipc_overflow` taken as an `int` so that any number is safe to
/// pass (default `IPC_OVERFLOW_BLOCK`). Dropped messages are counted in
/// `ipc_subscription_stats()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a number that is not an
/// `ipc_overflow`. Thread safety: see `ipc_subscribe_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_set_overflow(
    opts: *mut ipc_subscribe_options,
    overflow: c_int,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_set_overflow(opts, overflow) { set!(opts.overflow = overflow_arg(overflow)?) })
}

/// Where the reports of the subscription go: as `ipc_options_set_report_cb()`, for this
/// subscription (or group) only; default (and with `cb` NULL): the client's. (A subscription
/// reports only a handler that failed by panicking, which a C callback cannot do; wrappers
/// in other languages use it.) `userdata_free` (may be NULL) runs once when the options and
/// every subscription made with them are freed (maybe shortly after, on a library thread).
///
/// Errors: `IPC_ERR_NULL_ARG` (`opts`). Thread safety: see `ipc_subscribe_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_set_report_cb(
    opts: *mut ipc_subscribe_options,
    cb: ipc_report_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_set_report_cb(opts, #[nullable] cb, #[nullable] userdata, #[nullable] userdata_free) { set!(opts.error_hook = hook(cb, userdata, userdata_free)) })
}

fn overflow_arg(overflow: c_int) -> Result<Overflow, Error> {
    use ipc_overflow as O;
    match overflow {
        o if o == O::IPC_OVERFLOW_BLOCK as c_int => Ok(Overflow::Block),
        o if o == O::IPC_OVERFLOW_DROP_OLDEST as c_int => Ok(Overflow::DropOldest),
        o if o == O::IPC_OVERFLOW_DROP_NEWEST as c_int => Ok(Overflow::DropNewest),
        other => Err(Error::invalid(format!(
            "{other} is not an ipc_overflow: use IPC_OVERFLOW_BLOCK, IPC_OVERFLOW_DROP_OLDEST or IPC_OVERFLOW_DROP_NEWEST"
        ))),
    }
}

// ---- workers and RPC servers ----------------------------------------------------------

/// The wire protocol of an RPC service (`ipc_call_options_set_protocol()`,
/// `ipc_worker_options_set_protocol()`).
#[cfg(any(feature = "queues", feature = "rpc"))]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_protocol {
    /// redipc's own (the default): binary envelopes on `{prefix}{rpc:SERVICE}:pending`;
    /// servers announce themselves, so a call nobody serves fails with `IPC_ERR_NO_SERVER`.
    /// Any payload bytes.
    IPC_PROTOCOL_REDIPC = 0,
    /// The JSON wire of redis-ipc fleets (the Go library librescoot/redis-ipc): the service
    /// name is the Redis list itself. A caller subscribes to `<list>:reply:<32 hex id>`, then
    /// `LPUSH <list> {"id":..,"method":..,"reply_channel":..,"deadline":<unix ms>,"payload":..}`
    /// (`method` left out when empty); a server drops an envelope whose deadline passed
    /// without replying, and publishes `{"ok":true,"payload":..}` or
    /// `{"ok":false,"error":"<text>"}` on the reply channel. Payloads and replies are JSON
    /// text given and returned as bytes (no JSON library needed in C): a request payload that
    /// is not JSON is refused with `IPC_ERR_INVALID_ARGUMENT` before anything is sent; a
    /// handler's empty reply (0 bytes, none set) is sent as JSON `null`, and one that is not
    /// JSON goes back to the caller as an error reply. There is
    /// no server registry: a call nobody answers fails with `IPC_ERR_TIMEOUT`, and fail-fast
    /// is refused.
    IPC_PROTOCOL_REDIS_IPC = 1,
}

#[cfg(any(feature = "queues", feature = "rpc"))]
fn protocol_arg(protocol: c_int) -> Result<redipc::Protocol, Error> {
    use ipc_protocol as P;
    match protocol {
        p if p == P::IPC_PROTOCOL_REDIPC as c_int => Ok(redipc::Protocol::Redipc),
        p if p == P::IPC_PROTOCOL_REDIS_IPC as c_int => Ok(redipc::Protocol::RedisIpc),
        other => Err(Error::invalid(format!(
            "{other} is not an ipc_protocol: use IPC_PROTOCOL_REDIPC or IPC_PROTOCOL_REDIS_IPC"
        ))),
    }
}

/// Options of a request worker (`ipc_worker_new()`) or an RPC server (`ipc_serve()` and
/// `ipc_serve_methods()`, which use concurrency, block timeout, protocol and report
/// callback, and what servers announce in the service registry): concurrency, blocking
/// timeout, reliable mode and its settings, bare queues, the RPC protocol, the version and
/// metadata of a server, report callback.
///
/// Owns a `redipc::WorkerOptions`. Made by `ipc_worker_options_new()`, read (copied) by
/// `ipc_worker_new()` and `ipc_serve()`, which check the values (the error names the
/// option), freed by `ipc_worker_options_free()`.
///
/// Thread safety: as `ipc_options`.
#[cfg(any(feature = "queues", feature = "rpc"))]
pub struct ipc_worker_options {
    _private: [u8; 0],
}
#[cfg(any(feature = "queues", feature = "rpc"))]
box_castable!(ipc_worker_options => redipc::WorkerOptions);

/// Make worker options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_worker_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_new(out: *mut *mut ipc_worker_options) -> ipc_result {
    ffi_boundary!(ipc_worker_options_new(out) { new_default!(out) })
}

/// Free worker options. NULL is a no-op. Workers made with them keep their own copy.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_free(opts: *mut ipc_worker_options) {
    ffi_boundary!(ipc_worker_options_free(#[nullable] opts) { free_box!(opts) })
}

/// How many handlers run in parallel, each a loop with a thread and a connection of its own
/// (default 1; 1 to 1024).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_concurrency(
    opts: *mut ipc_worker_options,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_concurrency(opts, n) { set!(opts.concurrency = n) })
}

/// How long one blocking pop waits on the server, in milliseconds (default 1000; at least
/// 10). Stopping wakes a blocked pop at once (`CLIENT UNBLOCK`; where ACLs forbid it,
/// within this time).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_block_timeout_ms(
    opts: *mut ipc_worker_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_block_timeout_ms(opts, ms) { set!(opts.block_timeout = millis(ms)) })
}

/// Reliable mode (default off). Reliable: each request is moved atomically into the
/// loop's in-flight list under a lease kept alive by a heartbeat; acknowledged when the
/// handler returns 0; on failure re-queued with its attempt raised, and after
/// `max_attempts` moved to the dead-letter list with the failure's text; the requests of a
/// worker that died go back to the queue when its lease expired, the death counting as an
/// attempt. At-least-once: a request can be handled twice. Plain: at-most-once.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_reliable(
    opts: *mut ipc_worker_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_reliable(opts, on) { set!(opts.reliable = on) })
}

/// Reliable mode: how many times a request is handed to a handler before it becomes a dead
/// letter (default 3; at least 1). A handler failure and a worker that died while handling
/// it each count as one.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_max_attempts(
    opts: *mut ipc_worker_options,
    n: u32,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_max_attempts(opts, n) { set!(opts.max_attempts = n) })
}

/// Reliable mode: the lease in milliseconds (default 30000; at least 100): how long the
/// requests of a worker that died stay claimed before a live worker puts them back.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_lease_ms(
    opts: *mut ipc_worker_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_lease_ms(opts, ms) { set!(opts.lease = millis(ms)) })
}

/// Plain mode: how many requests one loop takes per round trip when the queue is busy
/// (default 16; 0 or 1 takes one at a time). A worker that dies loses at most these.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_prefetch(
    opts: *mut ipc_worker_options,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_prefetch(opts, n) { set!(opts.prefetch = n) })
}

/// Bare queues (default off): the queue names given to `ipc_worker_new()` are the Redis
/// lists themselves (`BRPOP scooter:state`), as in redis-ipc fleets and for any producer
/// that `LPUSH`es to a plain key (`ipc_send_request_bare()`, `redis-cli`). Off: redipc's own
/// keys (`{prefix}{q:NAME}:pending`). Plain mode only: `ipc_worker_new()` refuses a bare
/// reliable worker with `IPC_ERR_INVALID_ARGUMENT` (reliable mode needs redipc's own keys
/// next to the queue). RPC servers ignore it (their protocol decides).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_bare(
    opts: *mut ipc_worker_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_bare(opts, on) { set!(opts.bare = on) })
}

/// RPC servers (`ipc_serve()`, `ipc_serve_methods()`): the wire protocol, an `ipc_protocol`
/// taken as an `int` so that any number is safe to pass (default `IPC_PROTOCOL_REDIPC`).
/// With `IPC_PROTOCOL_REDIS_IPC` the service name is the Redis list itself and calls and
/// replies are the JSON envelopes of redis-ipc fleets (see `ipc_protocol`). Workers ignore
/// it.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a number that is not an
/// `ipc_protocol`. Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_protocol(
    opts: *mut ipc_worker_options,
    protocol: c_int,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_protocol(opts, protocol) { set!(opts.protocol = protocol_arg(protocol)?) })
}

/// Where the worker's (or server's) reports go: handler failures, dead letters, recovered
/// requests, lost and restored connections. As `ipc_options_set_report_cb()`, for this
/// handle only; default (and with `cb` NULL): the client's. `userdata_free` (may be NULL)
/// runs once when the options and every worker made with them are freed (maybe shortly
/// after, on a library thread).
///
/// Errors: `IPC_ERR_NULL_ARG` (`opts`). Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_report_cb(
    opts: *mut ipc_worker_options,
    cb: ipc_report_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_report_cb(opts, #[nullable] cb, #[nullable] userdata, #[nullable] userdata_free) { set!(opts.error_hook = hook(cb, userdata, userdata_free)) })
}

/// RPC servers (`ipc_serve()`, `ipc_serve_methods()`, redipc protocol): the version they
/// announce in the service registry (`ipc_service_instances()`), a NUL-terminated UTF-8
/// string, copied (default: empty). Setting it again replaces it. Workers ignore it.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if it is not UTF-8.
/// Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_set_version(
    opts: *mut ipc_worker_options,
    version: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_set_version(opts, version) { set!(opts.version = text!(version).into()) })
}

/// RPC servers (`ipc_serve()`, `ipc_serve_methods()`, redipc protocol): add a field of your
/// own that they announce in the service registry (`ipc_instance.metadata`): `name` and
/// `value` are NUL-terminated UTF-8 strings, copied (default: none). Fields are announced
/// in the order they were added; adding a name twice announces it twice. Workers ignore
/// them.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if one is not UTF-8.
/// Thread safety: see `ipc_worker_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(any(feature = "queues", feature = "rpc"))]
pub unsafe extern "C" fn ipc_worker_options_add_metadata(
    opts: *mut ipc_worker_options,
    name: *const c_char,
    value: *const c_char,
) -> ipc_result {
    ffi_boundary!(ipc_worker_options_add_metadata(opts, name, value) {
        let field = (text!(name).to_string(), text!(value).to_string());
        try_mut!(opts).metadata.push(field);
        Ok(())
    })
}

// ---- stream consumers -----------------------------------------------------------------

/// Options of a stream group consumer (`ipc_stream_consume()`).
///
/// Owns a `redipc::ConsumerOptions`. Made by `ipc_consumer_options_new()`, read (copied) by
/// `ipc_stream_consume()`, which checks the values, freed by `ipc_consumer_options_free()`.
///
/// Thread safety: as `ipc_options`.
#[cfg(feature = "streams")]
pub struct ipc_consumer_options {
    _private: [u8; 0],
}
#[cfg(feature = "streams")]
box_castable!(ipc_consumer_options => redipc::ConsumerOptions);

/// Make consumer options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_consumer_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_new(
    out: *mut *mut ipc_consumer_options,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_new(out) { new_default!(out) })
}

/// Free consumer options. NULL is a no-op. Consumers made with them keep their own copy.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_free(opts: *mut ipc_consumer_options) {
    ffi_boundary!(ipc_consumer_options_free(#[nullable] opts) { free_box!(opts) })
}

/// Entries read per round trip (default 10; at least 1).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_consumer_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_set_count(
    opts: *mut ipc_consumer_options,
    count: usize,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_set_count(opts, count) { set!(opts.count = count) })
}

/// How long one read waits on the server for new entries, in milliseconds (default 1000;
/// at least 1). Stopping wakes a blocked read at once (`CLIENT UNBLOCK`; where ACLs forbid
/// it, within this time).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_consumer_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_set_block_ms(
    opts: *mut ipc_consumer_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_set_block_ms(opts, ms) { set!(opts.block = millis(ms)) })
}

/// Entries pending (delivered, not acknowledged) longer than this, in milliseconds, are
/// claimed and handled again: failed ones, and those of consumers that died (default 30000;
/// at least 1).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_consumer_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_set_min_idle_ms(
    opts: *mut ipc_consumer_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_set_min_idle_ms(opts, ms) { set!(opts.min_idle = millis(ms)) })
}

/// An entry already delivered this many times is moved to the dead-letter stream
/// `<stream>:dead` instead of being handled again (default 5; at least 1).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_consumer_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_set_max_deliveries(
    opts: *mut ipc_consumer_options,
    n: u64,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_set_max_deliveries(opts, n) { set!(opts.max_deliveries = n) })
}

/// How often to look for entries to claim, in milliseconds (default 0: `min_idle_ms / 2`).
/// Claiming happens between reads, so the effective interval is at least the block time
/// while the stream is idle.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_consumer_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_set_claim_interval_ms(
    opts: *mut ipc_consumer_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_set_claim_interval_ms(opts, ms) { set!(opts.claim_interval = (ms > 0).then(|| millis(ms))) })
}

/// Where the consumer's reports go: handler failures, dead letters, lost and restored
/// connections. As `ipc_options_set_report_cb()`, for this consumer only; default (and with
/// `cb` NULL): the client's. `userdata_free` (may be NULL) runs once when the options and
/// every consumer made with them are freed (maybe shortly after, on a library thread).
///
/// Errors: `IPC_ERR_NULL_ARG` (`opts`). Thread safety: see `ipc_consumer_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "streams")]
pub unsafe extern "C" fn ipc_consumer_options_set_report_cb(
    opts: *mut ipc_consumer_options,
    cb: ipc_report_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_set_report_cb(opts, #[nullable] cb, #[nullable] userdata, #[nullable] userdata_free) { set!(opts.error_hook = hook(cb, userdata, userdata_free)) })
}

// ---- hash watchers --------------------------------------------------------------------

/// The settings of a hash watcher (the core's `WatchOptions` without the handlers, which
/// `ipc_hash_watch()` supplies).
#[derive(Clone)]
#[cfg(feature = "state")]
pub(crate) struct HashWatchSettings {
    initial_sync: bool,
    debounce: Option<std::time::Duration>,
    error_hook: Option<ErrorHook>,
    every_notification: bool,
    channel: Option<Vec<u8>>,
}

#[cfg(feature = "state")]
impl Default for HashWatchSettings {
    fn default() -> Self {
        let d = redipc::WatchOptions::new();
        HashWatchSettings {
            initial_sync: d.initial_sync,
            debounce: d.debounce,
            error_hook: d.error_hook,
            every_notification: d.every_notification,
            channel: d.channel.map(|c| c.to_vec()),
        }
    }
}

#[cfg(feature = "state")]
impl HashWatchSettings {
    /// The core's options with these settings.
    pub(crate) fn to_core(&self) -> redipc::WatchOptions {
        let mut o = redipc::WatchOptions::new()
            .initial_sync(self.initial_sync)
            .every_notification(self.every_notification);
        o.debounce = self.debounce;
        o.error_hook = self.error_hook.clone();
        o.channel = self.channel.clone().map(Into::into);
        o
    }
}

/// Options of a hash watcher (`ipc_hash_watch()`): initial sync, debounce, every
/// notification, channel, report callback.
///
/// Owns plain values (and the report callback's `userdata` while one is set). Made by
/// `ipc_hash_watch_options_new()`, read (copied) by `ipc_hash_watch()`, freed by
/// `ipc_hash_watch_options_free()`.
///
/// Thread safety: as `ipc_options`.
#[cfg(feature = "state")]
pub struct ipc_hash_watch_options {
    _private: [u8; 0],
}
#[cfg(feature = "state")]
box_castable!(ipc_hash_watch_options => HashWatchSettings);

/// Make hash watch options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_hash_watch_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_new(
    out: *mut *mut ipc_hash_watch_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_new(out) { new_default!(out) })
}

/// Free hash watch options. NULL is a no-op. Watchers made with them keep their own copy.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_free(opts: *mut ipc_hash_watch_options) {
    ffi_boundary!(ipc_hash_watch_options_free(#[nullable] opts) { free_box!(opts) })
}

/// Deliver every field's current value first (default true). Without it only changes made
/// after `ipc_hash_watch()` are delivered.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_hash_watch_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_set_initial_sync(
    opts: *mut ipc_hash_watch_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_set_initial_sync(opts, on) { set!(opts.initial_sync = on) })
}

/// Coalesce the changes of this many milliseconds after the first one into one delivery
/// per field, of its latest value (default 0: deliver each change at once).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_hash_watch_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_set_debounce_ms(
    opts: *mut ipc_hash_watch_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_set_debounce_ms(opts, ms) { set!(opts.debounce = (ms > 0).then(|| millis(ms))) })
}

/// Deliver every notification (default off): each field name announced on the channel is
/// read (`HGET`) and delivered, even when its value did not change since the last delivery
/// (a keycard tapped twice), as the watchers of redis-ipc fleets do. Off: a value already
/// delivered for a field is not delivered again. The full reads (initial sync, after `*`,
/// `cleared`, `replaced` or a reconnect) deliver only what changed either way.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_hash_watch_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_set_every_notification(
    opts: *mut ipc_hash_watch_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_set_every_notification(opts, on) { set!(opts.every_notification = on) })
}

/// Follow this channel (a byte string, copied) instead of the one named like the hash
/// (default: the hash's name), for fleets that announce a hash's changes elsewhere (and
/// writers using `ipc_hash_write_options_set_channel()`).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_hash_watch_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_set_channel(
    opts: *mut ipc_hash_watch_options,
    channel: *const c_char,
    channel_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_set_channel(opts, channel, channel_len) { set!(opts.channel = Some(bytes!(channel, channel_len).to_vec())) })
}

/// Where the watcher's reports go: failed reads of the hash (retried whole, with backoff)
/// and callbacks that panicked. As `ipc_options_set_report_cb()`, for this watcher only;
/// default (and with `cb` NULL): the client's. `userdata_free` (may be NULL) runs once when
/// the options and every watcher made with them are freed (maybe shortly after, on a library
/// thread).
///
/// Errors: `IPC_ERR_NULL_ARG` (`opts`). Thread safety: see `ipc_hash_watch_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_watch_options_set_report_cb(
    opts: *mut ipc_hash_watch_options,
    cb: ipc_report_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_hash_watch_options_set_report_cb(opts, #[nullable] cb, #[nullable] userdata, #[nullable] userdata_free) { set!(opts.error_hook = hook(cb, userdata, userdata_free)) })
}

// ---- RPC calls ------------------------------------------------------------------------

/// Options of one RPC call (`ipc_call()`): timeout, fail-fast, wire protocol.
///
/// Owns a `redipc::CallOptions`. Made by `ipc_call_options_new()`, read (copied) by
/// `ipc_call()`, freed by `ipc_call_options_free()`.
///
/// Thread safety: as `ipc_options`.
#[cfg(feature = "rpc")]
pub struct ipc_call_options {
    _private: [u8; 0],
}
#[cfg(feature = "rpc")]
box_castable!(ipc_call_options => redipc::CallOptions);

/// Make call options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_call_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "rpc")]
pub unsafe extern "C" fn ipc_call_options_new(out: *mut *mut ipc_call_options) -> ipc_result {
    ffi_boundary!(ipc_call_options_new(out) { new_default!(out) })
}

/// Free call options. NULL is a no-op.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
#[cfg(feature = "rpc")]
pub unsafe extern "C" fn ipc_call_options_free(opts: *mut ipc_call_options) {
    ffi_boundary!(ipc_call_options_free(#[nullable] opts) { free_box!(opts) })
}

/// How long to wait for the reply, in milliseconds (default 5000; 0 is refused by
/// `ipc_call()`). The request carries this deadline: a server drops it unrun once it passed.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_call_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "rpc")]
pub unsafe extern "C" fn ipc_call_options_set_timeout_ms(
    opts: *mut ipc_call_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_call_options_set_timeout_ms(opts, ms) { set!(opts.timeout = millis(ms)) })
}

/// Fail at once with `IPC_ERR_NO_SERVER` when no live server of the service is registered
/// (one more round trip before the call; default off: a call nobody answers fails after
/// its timeout, with `IPC_ERR_NO_SERVER` when no server is registered).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_call_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "rpc")]
pub unsafe extern "C" fn ipc_call_options_set_fail_fast(
    opts: *mut ipc_call_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_call_options_set_fail_fast(opts, on) { set!(opts.fail_fast = on) })
}

/// The wire protocol, an `ipc_protocol` taken as an `int` so that any number is safe to
/// pass (default `IPC_PROTOCOL_REDIPC`). With `IPC_PROTOCOL_REDIS_IPC` the service is the
/// Redis list of a redis-ipc fleet's server and the payload must be JSON text (see
/// `ipc_protocol`); fail-fast is then refused by `ipc_call()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a number that is not an
/// `ipc_protocol`. Thread safety: see `ipc_call_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "rpc")]
pub unsafe extern "C" fn ipc_call_options_set_protocol(
    opts: *mut ipc_call_options,
    protocol: c_int,
) -> ipc_result {
    ffi_boundary!(ipc_call_options_set_protocol(opts, protocol) { set!(opts.protocol = protocol_arg(protocol)?) })
}

// ---- hash writes ----------------------------------------------------------------------

/// How a hash write stamps the fields it writes (`ipc_hash_write_options_set_timestamp()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg(feature = "state")]
pub enum ipc_timestamp_format {
    /// No timestamp field (the default).
    IPC_TIMESTAMP_NONE = 0,
    /// `<field>:timestamp` in RFC 3339, UTC, with milliseconds (`2026-12-04T21:40:00.123Z`).
    IPC_TIMESTAMP_RFC3339 = 1,
    /// `<field>:timestamp` as Unix time in milliseconds (`1796420400123`), as the Go
    /// library redis-ipc's `SetWithTimestamp` writes it.
    IPC_TIMESTAMP_UNIX_MS = 2,
}

#[cfg(feature = "state")]
fn timestamp_arg(format: c_int) -> Result<Option<redipc::TimestampFormat>, Error> {
    use ipc_timestamp_format as T;
    match format {
        f if f == T::IPC_TIMESTAMP_NONE as c_int => Ok(None),
        f if f == T::IPC_TIMESTAMP_RFC3339 as c_int => Ok(Some(redipc::TimestampFormat::Rfc3339)),
        f if f == T::IPC_TIMESTAMP_UNIX_MS as c_int => {
            Ok(Some(redipc::TimestampFormat::UnixMillis))
        }
        other => Err(Error::invalid(format!(
            "{other} is not an ipc_timestamp_format: use IPC_TIMESTAMP_NONE, IPC_TIMESTAMP_RFC3339 or IPC_TIMESTAMP_UNIX_MS"
        ))),
    }
}

/// Options of a hash write (`ipc_hash_set()`, `ipc_hash_set_many()`, `ipc_hash_delete()`,
/// `ipc_hash_replace_all()`, `ipc_hash_clear()`): the channel the write is announced on, a
/// `<field>:timestamp` field, and the announcement word. The defaults are redipc's (the
/// channel named like the hash, each field announced, `*` for a replace-all, `cleared` for
/// a clear); the setters speak a redis-ipc fleet's words.
///
/// Owns a `redipc::HashWrite` (plain values). Made by `ipc_hash_write_options_new()`, read
/// (copied) by the hash write functions, freed by `ipc_hash_write_options_free()`.
///
/// Thread safety: as `ipc_options`.
#[cfg(feature = "state")]
pub struct ipc_hash_write_options {
    _private: [u8; 0],
}
#[cfg(feature = "state")]
box_castable!(ipc_hash_write_options => redipc::HashWrite);

/// Make hash write options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_hash_write_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_write_options_new(
    out: *mut *mut ipc_hash_write_options,
) -> ipc_result {
    ffi_boundary!(ipc_hash_write_options_new(out) { new_default!(out) })
}

/// Free hash write options. NULL is a no-op.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_write_options_free(opts: *mut ipc_hash_write_options) {
    ffi_boundary!(ipc_hash_write_options_free(#[nullable] opts) { free_box!(opts) })
}

/// The channel the write is announced on, a byte string, copied (default: the hash's name,
/// the channel `ipc_hash_watch()` follows unless told otherwise).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_hash_write_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_write_options_set_channel(
    opts: *mut ipc_hash_write_options,
    channel: *const c_char,
    channel_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_write_options_set_channel(opts, channel, channel_len) { set!(opts.channel = Some(bytes!(channel, channel_len).to_vec().into())) })
}

/// Also write `<field>:timestamp` for every field written (in the same atomic step), in
/// this format: an `ipc_timestamp_format` taken as an `int` so that any number is safe to
/// pass (default `IPC_TIMESTAMP_NONE`). A delete or a clear writes none.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a number that is not an
/// `ipc_timestamp_format`. Thread safety: see `ipc_hash_write_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_write_options_set_timestamp(
    opts: *mut ipc_hash_write_options,
    format: c_int,
) -> ipc_result {
    ffi_boundary!(ipc_hash_write_options_set_timestamp(opts, format) { set!(opts.timestamp = timestamp_arg(format)?) })
}

/// The announcement, a byte string, copied: `ipc_hash_set_many()` (and `ipc_hash_set()`)
/// publish this word once instead of each field name (a fleet's `blinker:state`; `*` makes
/// redipc watchers re-read the whole hash); `ipc_hash_replace_all()` publishes it instead
/// of `*` (a fleet says `replaced`); `ipc_hash_clear()` instead of `cleared`. Default: none
/// (each field; `*`; `cleared`). `ipc_hash_delete()` ignores it.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_hash_write_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "state")]
pub unsafe extern "C" fn ipc_hash_write_options_set_announce(
    opts: *mut ipc_hash_write_options,
    word: *const c_char,
    word_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_hash_write_options_set_announce(opts, word, word_len) { set!(opts.announce = Some(bytes!(word, word_len).to_vec().into())) })
}

// ---- locks ----------------------------------------------------------------------------

/// Options of a lock acquisition (`ipc_lock_acquire()`): time to live, wait, renewal.
///
/// Owns a `redipc::LockOptions`. Made by `ipc_lock_options_new()`, read (copied) by
/// `ipc_lock_acquire()`, freed by `ipc_lock_options_free()`.
///
/// Thread safety: as `ipc_options`.
#[cfg(feature = "coordination")]
pub struct ipc_lock_options {
    _private: [u8; 0],
}
#[cfg(feature = "coordination")]
box_castable!(ipc_lock_options => redipc::LockOptions);

/// Make lock options with the defaults (each setter states its default).
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_lock_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "coordination")]
pub unsafe extern "C" fn ipc_lock_options_new(out: *mut *mut ipc_lock_options) -> ipc_result {
    ffi_boundary!(ipc_lock_options_new(out) { new_default!(out) })
}

/// Free lock options. NULL is a no-op.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
#[cfg(feature = "coordination")]
pub unsafe extern "C" fn ipc_lock_options_free(opts: *mut ipc_lock_options) {
    ffi_boundary!(ipc_lock_options_free(#[nullable] opts) { free_box!(opts) })
}

/// The lock expires this long after it was taken (or last extended) unless released, in
/// milliseconds (default 10000; 0 is refused by `ipc_lock_acquire()`): protection against
/// a holder that dies.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_lock_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "coordination")]
pub unsafe extern "C" fn ipc_lock_options_set_ttl_ms(
    opts: *mut ipc_lock_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_lock_options_set_ttl_ms(opts, ms) { set!(opts.ttl = millis(ms)) })
}

/// How long to wait while another holder has the lock, in milliseconds (default 10000; 0:
/// try once). Waiters wake when the holder releases it (a notification, not polling) or its
/// time to live runs out.
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_lock_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "coordination")]
pub unsafe extern "C" fn ipc_lock_options_set_wait_ms(
    opts: *mut ipc_lock_options,
    ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_lock_options_set_wait_ms(opts, ms) { set!(opts.wait = millis(ms)) })
}

/// Extend the lock every `ttl / 3` while it is held (default off: extend it yourself with
/// `ipc_lock_extend()` if the work may take longer than the time to live).
///
/// Errors: `IPC_ERR_NULL_ARG`. Thread safety: see `ipc_lock_options`.
#[must_use]
#[unsafe(no_mangle)]
#[cfg(feature = "coordination")]
pub unsafe extern "C" fn ipc_lock_options_set_auto_renew(
    opts: *mut ipc_lock_options,
    on: bool,
) -> ipc_result {
    ffi_boundary!(ipc_lock_options_set_auto_renew(opts, on) { set!(opts.auto_renew = on) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::try_ref;

    #[test]
    fn setters_store_and_defaults_are_the_cores() {
        let mut o: *mut ipc_options = std::ptr::null_mut();
        let mut s: *mut ipc_subscribe_options = std::ptr::null_mut();
        // SAFETY: valid out pointers; the handles are used and freed here only.
        unsafe {
            assert_eq!(ipc_options_new(&mut o), ipc_result::IPC_OK);
            assert_eq!(
                try_ref(o, "o").unwrap().key_prefix,
                redipc::Options::default().key_prefix
            );
            assert_eq!(
                ipc_options_set_connect_timeout_ms(o, 250),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_client_name(o, c"svc".as_ptr()),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_options_set_reconnect_max_attempts(o, 4),
                ipc_result::IPC_OK
            );
            assert_eq!(ipc_options_set_max_value_size(o, 0), ipc_result::IPC_OK);
            let v = try_ref(o, "o").unwrap();
            assert_eq!(v.connect_timeout, std::time::Duration::from_millis(250));
            assert_eq!(v.client_name.as_deref(), Some("svc"));
            assert_eq!(v.reconnect.max_attempts, Some(4));
            let bad = [0xffu8, 0];
            assert_eq!(
                ipc_options_set_client_name(o, bad.as_ptr().cast()),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                ipc_options_set_resp3(std::ptr::null_mut(), true),
                ipc_result::IPC_ERR_NULL_ARG
            );
            ipc_options_free(o);
            ipc_options_free(std::ptr::null_mut());

            #[cfg(any(feature = "queues", feature = "rpc"))]
            {
                let mut w: *mut ipc_worker_options = std::ptr::null_mut();
                assert_eq!(ipc_worker_options_new(&mut w), ipc_result::IPC_OK);
                assert_eq!(ipc_worker_options_set_concurrency(w, 0), ipc_result::IPC_OK);
                assert_eq!(try_ref(w, "w").unwrap().concurrency, 0);
                ipc_worker_options_free(w);
            }

            assert_eq!(ipc_subscribe_options_new(&mut s), ipc_result::IPC_OK);
            assert_eq!(
                ipc_subscribe_options_set_overflow(s, 3),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            assert_eq!(ipc_subscribe_options_set_overflow(s, 2), ipc_result::IPC_OK);
            assert_eq!(try_ref(s, "s").unwrap().overflow, Overflow::DropNewest);
            ipc_subscribe_options_free(s);
        }
    }

    #[test]
    #[cfg(all(feature = "rpc", feature = "state"))]
    fn fleet_settings_store_and_enums_convert() {
        let mut w: *mut ipc_worker_options = std::ptr::null_mut();
        let mut c: *mut ipc_call_options = std::ptr::null_mut();
        let mut h: *mut ipc_hash_write_options = std::ptr::null_mut();
        let mut o: *mut ipc_hash_watch_options = std::ptr::null_mut();
        // SAFETY: valid out pointers; the handles are used and freed here only.
        unsafe {
            assert_eq!(ipc_worker_options_new(&mut w), ipc_result::IPC_OK);
            assert_eq!(ipc_worker_options_set_bare(w, true), ipc_result::IPC_OK);
            assert_eq!(
                ipc_worker_options_set_protocol(w, ipc_protocol::IPC_PROTOCOL_REDIS_IPC as c_int),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_worker_options_set_protocol(w, 2),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            let v = try_ref(w, "w").unwrap();
            assert!(v.bare);
            assert_eq!(v.protocol, redipc::Protocol::RedisIpc);
            ipc_worker_options_free(w);

            assert_eq!(ipc_call_options_new(&mut c), ipc_result::IPC_OK);
            assert_eq!(try_ref(c, "c").unwrap().protocol, redipc::Protocol::Redipc);
            assert_eq!(ipc_call_options_set_protocol(c, 1), ipc_result::IPC_OK);
            assert_eq!(
                try_ref(c, "c").unwrap().protocol,
                redipc::Protocol::RedisIpc
            );
            ipc_call_options_free(c);

            assert_eq!(ipc_hash_write_options_new(&mut h), ipc_result::IPC_OK);
            assert_eq!(*try_ref(h, "h").unwrap(), redipc::HashWrite::new());
            assert_eq!(
                ipc_hash_write_options_set_channel(h, c"blinker".as_ptr(), 7),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_hash_write_options_set_announce(h, c"replaced".as_ptr(), 8),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_hash_write_options_set_timestamp(h, 2),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_hash_write_options_set_timestamp(h, 3),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                *try_ref(h, "h").unwrap(),
                redipc::HashWrite::new()
                    .channel("blinker")
                    .announce("replaced")
                    .timestamp(redipc::TimestampFormat::UnixMillis)
            );
            assert_eq!(
                ipc_hash_write_options_set_timestamp(h, 0),
                ipc_result::IPC_OK
            );
            assert_eq!(try_ref(h, "h").unwrap().timestamp, None);
            ipc_hash_write_options_free(h);

            assert_eq!(ipc_hash_watch_options_new(&mut o), ipc_result::IPC_OK);
            assert_eq!(
                ipc_hash_watch_options_set_every_notification(o, true),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_hash_watch_options_set_channel(o, c"battery".as_ptr(), 7),
                ipc_result::IPC_OK
            );
            let core = try_ref(o, "o").unwrap().to_core();
            assert!(core.every_notification && core.initial_sync);
            assert_eq!(core.channel.as_deref(), Some(&b"battery"[..]));
            ipc_hash_watch_options_free(o);
        }
    }
}

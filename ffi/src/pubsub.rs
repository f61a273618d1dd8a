//! Pub/sub: subscriptions delivering to a C callback, their options and counters, and poll
//! mode (`ipc_client_poll()`, `ipc_client_fd()`).
//!
//! Ownership: an `ipc_subscription` owns a `redipc::blocking::Subscription`; the core owns
//! the handler closure made here, and the closure owns the caller's `(userdata,
//! userdata_free)` through a [`Finalizer`] guard whose `Drop` calls `userdata_free`. The core
//! drops a handler exactly once, when its subscription is closed, so `userdata_free` runs
//! exactly once — unless the subscribe call fails, in which case the guard is disowned and
//! the caller keeps `userdata`.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redipc::{Event, Overflow, SubscribeOptions, SubscriptionKind};

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::{borrow, borrow_mut, free_handle, to_handle, write_out};

/// What a subscription does when its queue is full and another message arrives (see
/// `ipc_subscribe_options_set_overflow()`). Connection events (`IPC_EVENT_ACTIVATED`, ...)
/// are never dropped.
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

/// The kind of a subscription, and of the messages it receives.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_sub_kind {
    /// `SUBSCRIBE` to channels (publish with `ipc_publish()`).
    IPC_SUB_CHANNEL = 0,
    /// `PSUBSCRIBE` to glob patterns such as `"news.*"`; messages carry the pattern.
    IPC_SUB_PATTERN = 1,
    /// `SSUBSCRIBE` to shard channels (publish with `ipc_spublish()`).
    IPC_SUB_SHARD = 2,
}

/// What an `ipc_message` reports. A subscription receives these in order, interleaved with
/// its messages as they happened.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ipc_event_kind {
    /// A published message: `channel`, `payload`, and for pattern subscriptions `pattern`.
    IPC_EVENT_MESSAGE = 0,
    /// The server confirmed a name of the subscription for the first time (`channel` holds
    /// the name): messages published from now on arrive.
    IPC_EVENT_ACTIVATED = 1,
    /// The pub/sub connection broke (`payload` holds the error text). Messages published
    /// until `IPC_EVENT_REACTIVATED` are lost; the library reconnects and resubscribes by
    /// itself.
    IPC_EVENT_DISCONNECTED = 2,
    /// After a reconnect, the server confirmed a name again (`channel` holds the name).
    IPC_EVENT_REACTIVATED = 3,
}

/// One event of a subscription, passed to its `ipc_message_cb`.
///
/// Lifetime: the struct and every pointer in it are valid only during the callback call
/// that receives them; copy what you need to keep. The library owns all of it.
///
/// Byte strings are (pointer, length) pairs, not NUL-terminated (except the error text of
/// `IPC_EVENT_DISCONNECTED`, which is); a field that does not apply is NULL with length 0,
/// a field that applies is never NULL (an empty payload is a valid pointer with length 0).
///
/// | kind | `channel` | `pattern` | `payload` |
/// |---|---|---|---|
/// | `IPC_EVENT_MESSAGE` | the channel published on | the matching pattern (`IPC_SUB_PATTERN` only) | the message |
/// | `IPC_EVENT_ACTIVATED`, `IPC_EVENT_REACTIVATED` | the confirmed name (a pattern for `IPC_SUB_PATTERN`, also in `pattern`) | see `channel` | NULL |
/// | `IPC_EVENT_DISCONNECTED` | NULL | NULL | the error text, NUL-terminated (`payload_len` excludes the NUL) |
#[repr(C)]
#[derive(Debug)]
pub struct ipc_message {
    /// What happened.
    pub kind: ipc_event_kind,
    /// The kind of the subscription receiving it.
    pub sub_kind: ipc_sub_kind,
    /// The channel (see the table above).
    pub channel: *const u8,
    /// Length of `channel` in bytes.
    pub channel_len: usize,
    /// The pattern, NULL when none.
    pub pattern: *const u8,
    /// Length of `pattern` in bytes; 0 when none.
    pub pattern_len: usize,
    /// The payload of a message; for `IPC_EVENT_DISCONNECTED` the error text.
    pub payload: *const u8,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
}

/// A subscription's callback: `userdata` as given to `ipc_subscribe()`, and the event.
///
/// Thread: by default one of the library's dispatcher threads (`redipc-dispatch`; never
/// the thread that subscribed, and not always the same thread), but never two calls of one
/// subscription at the same time: its events are delivered one at a time, in the order
/// they arrived. Different subscriptions run in parallel; a slow callback delays only its
/// own subscription (with `IPC_OVERFLOW_BLOCK`, once its queue is full, the whole client's
/// pub/sub reading waits for it). In poll mode (`ipc_options_set_poll_mode()`) callbacks run
/// only inside `ipc_client_poll()`, on the thread that calls it.
///
/// `msg` and everything it points to are valid only during the call. The callback must not
/// unwind (C++ exceptions) or `longjmp` out. It may use the library, including calls that
/// wait for the server (`ipc_publish()`, `ipc_command()`, `ipc_subscribe()`, ...), and
/// `ipc_subscription_free()` on its own subscription (no further call of it follows).
/// It must not free its client (`ipc_client_free()`), nor call `ipc_client_poll()`.
pub type ipc_message_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, msg: *const ipc_message)>;

/// Frees a subscription's `userdata`; see `ipc_subscribe()` for when it runs.
pub type ipc_userdata_free_cb = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Counters of a subscription's queue (`ipc_subscription_stats()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ipc_sub_stats {
    /// Events handed to the callback so far (messages and connection events).
    pub delivered: u64,
    /// Messages dropped by the overflow policy (always 0 with `IPC_OVERFLOW_BLOCK`).
    pub dropped: u64,
    /// Events waiting in the queue now.
    pub queued: u64,
    /// The queue's capacity.
    pub capacity: u64,
}

/// Options of one subscription: queue capacity and overflow policy.
///
/// Owns two plain values (nothing is connected). Made by `ipc_subscribe_options_new()` with
/// the defaults (capacity 10000 events, `IPC_OVERFLOW_BLOCK`), changed by the
/// `ipc_subscribe_options_set_*` functions, read by `ipc_subscribe_ex()` (which copies
/// them), freed by `ipc_subscribe_options_free()`.
///
/// Thread safety: not synchronized; use one from one thread at a time (reading it in
/// `ipc_subscribe_ex()` from several threads at once is fine).
pub struct ipc_subscribe_options {
    capacity: usize,
    overflow: Overflow,
}

impl Default for ipc_subscribe_options {
    fn default() -> Self {
        ipc_subscribe_options {
            capacity: 10_000,
            overflow: Overflow::Block,
        }
    }
}

/// A subscription: some channels (or patterns, or shard channels) of one kind, a queue, and
/// the callback its events go to.
///
/// Owns a `redipc::blocking::Subscription` (which keeps the client's pub/sub multiplexer
/// alive) and, through it, the callback with its `userdata`. Made by `ipc_subscribe()` and
/// its siblings, freed by `ipc_subscription_free()`, which unsubscribes.
///
/// Thread safety: `ipc_subscription_add()`, `ipc_subscription_remove()` and
/// `ipc_subscription_stats()` may be called from any thread, concurrently;
/// `ipc_subscription_free()` must come after every other call on it has returned (a call
/// from inside its own callback is the exception, see there).
pub struct ipc_subscription {
    inner: redipc::blocking::Subscription,
    /// Set when the handle is freed: the callback loop stops before the next event (the
    /// core closes at batch granularity; this makes a free from inside the callback take
    /// effect at the very next event).
    stopped: Arc<AtomicBool>,
}

impl Drop for ipc_subscription {
    fn drop(&mut self) {
        // Before `inner` is dropped (which closes the core subscription).
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// The caller's `userdata`, handed across threads on the caller's word (documented on
/// `ipc_subscribe()`).
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the C caller promises that `userdata` may be used from the dispatcher thread
// (documented on `ipc_subscribe()`); the library itself never dereferences it.
unsafe impl Send for UserData {}
// SAFETY: as above; the library only copies the pointer.
unsafe impl Sync for UserData {}

/// Who will call `userdata_free`: decided once the subscribe call knows whether it worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// The subscribe call is still running.
    Pending,
    /// It succeeded: the handler's drop runs `userdata_free`.
    Armed,
    /// The handler was dropped while pending (the client closed meanwhile): the subscribe
    /// call runs `userdata_free` if it succeeds.
    DroppedWhilePending,
    /// It failed (the caller keeps `userdata`), or `userdata_free` already ran.
    Settled,
}

/// `(userdata, userdata_free)` and the [`Claim`] on them, shared by the handler's
/// [`HandlerOwns`] guard and the subscribe call.
struct Finalizer {
    userdata: UserData,
    free: ipc_userdata_free_cb,
    claim: Mutex<Claim>,
}

/// One step of a [`Claim`]: the next claim, and whether `userdata_free` must run now.
type ClaimStep = fn(Claim) -> (Claim, bool);

impl Claim {
    /// The subscribe call succeeded; returns whether `userdata_free` must run now.
    fn on_success(self) -> (Claim, bool) {
        match self {
            Claim::Pending => (Claim::Armed, false),
            Claim::DroppedWhilePending => (Claim::Settled, true),
            other => (other, false),
        }
    }

    /// The subscribe call failed: the caller keeps `userdata`.
    fn on_failure(self) -> (Claim, bool) {
        (Claim::Settled, false)
    }

    /// The core dropped the handler.
    fn on_handler_drop(self) -> (Claim, bool) {
        match self {
            Claim::Armed => (Claim::Settled, true),
            Claim::Pending => (Claim::DroppedWhilePending, false),
            other => (other, false),
        }
    }
}

impl Finalizer {
    /// Move the claim on; run `userdata_free` (outside the lock) if the step says so.
    fn step(&self, f: ClaimStep) {
        let run = {
            let mut claim = self.claim.lock().unwrap_or_else(|p| p.into_inner());
            let (next, run) = f(*claim);
            *claim = next;
            run
        };
        if run && let Some(free) = self.free {
            // SAFETY: `free` and `userdata` come from the caller, who promises that `free`
            // may be called once with `userdata` from any thread; the claim makes it once.
            unsafe { free(self.userdata.0) };
        }
    }
}

/// Owned by the handler closure; its drop (exactly once, by the core) releases `userdata`.
struct HandlerOwns(Arc<Finalizer>);

impl Drop for HandlerOwns {
    fn drop(&mut self) {
        self.0.step(Claim::on_handler_drop);
    }
}

fn sub_kind(kind: SubscriptionKind, fallback: ipc_sub_kind) -> ipc_sub_kind {
    match kind {
        SubscriptionKind::Channel => ipc_sub_kind::IPC_SUB_CHANNEL,
        SubscriptionKind::Pattern => ipc_sub_kind::IPC_SUB_PATTERN,
        SubscriptionKind::Shard => ipc_sub_kind::IPC_SUB_SHARD,
        _ => fallback,
    }
}

/// `(ptr, len)` of bytes that are present: never NULL, even when empty.
fn present(b: &[u8]) -> (*const u8, usize) {
    if b.is_empty() {
        (b"".as_ptr(), 0)
    } else {
        (b.as_ptr(), b.len())
    }
}

const ABSENT: (*const u8, usize) = (std::ptr::null(), 0);

/// Call `cb` with one event; unknown (future) event kinds are skipped.
///
/// # Safety
/// `cb` and `userdata` are the caller's, who promises `cb` may be called with `userdata`
/// on this thread.
unsafe fn deliver(
    cb: unsafe extern "C" fn(*mut c_void, *const ipc_message),
    userdata: UserData,
    kind: ipc_sub_kind,
    event: &Event,
) {
    let error_text;
    let (ev, sk, channel, pattern, payload) = match event {
        Event::Message(m) => (
            ipc_event_kind::IPC_EVENT_MESSAGE,
            sub_kind(m.kind, kind),
            present(&m.channel),
            m.pattern.as_deref().map_or(ABSENT, present),
            present(&m.payload),
        ),
        Event::Activated { kind: k, name } | Event::Reactivated { kind: k, name } => {
            let ev = if matches!(event, Event::Activated { .. }) {
                ipc_event_kind::IPC_EVENT_ACTIVATED
            } else {
                ipc_event_kind::IPC_EVENT_REACTIVATED
            };
            let sk = sub_kind(*k, kind);
            let pattern = if sk == ipc_sub_kind::IPC_SUB_PATTERN {
                present(name)
            } else {
                ABSENT
            };
            (ev, sk, present(name), pattern, ABSENT)
        }
        Event::Disconnected { error } => {
            let mut text = error.to_string().replace('\0', "\\0").into_bytes();
            text.push(0);
            error_text = text;
            (
                ipc_event_kind::IPC_EVENT_DISCONNECTED,
                kind,
                ABSENT,
                ABSENT,
                (error_text.as_ptr(), error_text.len() - 1),
            )
        }
        _ => return,
    };
    let msg = ipc_message {
        kind: ev,
        sub_kind: sk,
        channel: channel.0,
        channel_len: channel.1,
        pattern: pattern.0,
        pattern_len: pattern.1,
        payload: payload.0,
        payload_len: payload.1,
    };
    // SAFETY: forwarded from the caller; `msg` and what it points to outlive the call.
    unsafe { cb(userdata.0, &msg) };
}

/// Names passed by C: `n` pointers, with lengths or NUL-terminated.
///
/// # Safety
/// `names` is NULL or holds `n` pointers; `lens` is NULL or holds `n` lengths; each name is
/// readable for its length (or NUL-terminated when `lens` is NULL).
unsafe fn names_arg<'a>(
    names: *const *const u8,
    lens: *const usize,
    n: usize,
    what: &'static str,
) -> Result<Vec<&'a [u8]>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if names.is_null() {
        return Err(Error::null_arg(what));
    }
    if n > isize::MAX as usize / size_of::<*const u8>() {
        return Err(Error::invalid(format!("`{what}`: count {n} is too large")));
    }
    // SAFETY: `names` is not NULL and holds `n` pointers (caller contract); the size fits.
    let ptrs = unsafe { std::slice::from_raw_parts(names, n) };
    let lens = if lens.is_null() {
        None
    } else {
        // SAFETY: `lens` holds `n` lengths (caller contract).
        Some(unsafe { std::slice::from_raw_parts(lens, n) })
    };
    let mut out = Vec::with_capacity(n);
    for (i, &p) in ptrs.iter().enumerate() {
        if p.is_null() {
            return Err(Error::new(
                ipc_result::IPC_ERR_NULL_ARG,
                format!("argument `{what}[{i}]` is NULL"),
            ));
        }
        let name = match lens {
            // SAFETY: `p` is readable for `lens[i]` bytes (caller contract, NULL checked).
            Some(lens) => unsafe { crate::bytes_arg(p, lens[i], "name") }?,
            // SAFETY: without lengths, `p` is a NUL-terminated string (caller contract).
            None => unsafe { CStr::from_ptr(p.cast::<c_char>()) }.to_bytes(),
        };
        out.push(name);
    }
    Ok(out)
}

fn kind_arg(kind: c_int) -> Result<SubscriptionKind, Error> {
    match kind {
        k if k == ipc_sub_kind::IPC_SUB_CHANNEL as c_int => Ok(SubscriptionKind::Channel),
        k if k == ipc_sub_kind::IPC_SUB_PATTERN as c_int => Ok(SubscriptionKind::Pattern),
        k if k == ipc_sub_kind::IPC_SUB_SHARD as c_int => Ok(SubscriptionKind::Shard),
        other => Err(Error::invalid(format!(
            "unknown subscription kind {other}: use IPC_SUB_CHANNEL, IPC_SUB_PATTERN or IPC_SUB_SHARD"
        ))),
    }
}

/// The body of every subscribe function.
///
/// # Safety
/// `client` is a live handle, `out` is writable, and `cb`/`userdata`/`userdata_free` follow
/// the contract of `ipc_subscribe()`.
#[allow(clippy::too_many_arguments)]
unsafe fn subscribe(
    client: *const ipc_client,
    kind: SubscriptionKind,
    names: &[&[u8]],
    opts: &ipc_subscribe_options,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_subscription,
) -> Result<(), Error> {
    // SAFETY: `client` is a live handle (caller contract).
    let client = &unsafe { borrow(client, "client") }?.inner;
    let Some(cb) = cb else {
        return Err(Error::null_arg("cb"));
    };
    let c_kind = sub_kind(kind, ipc_sub_kind::IPC_SUB_CHANNEL);
    let userdata = UserData(userdata);
    let finalizer = Arc::new(Finalizer {
        userdata,
        free: userdata_free,
        claim: Mutex::new(Claim::Pending),
    });
    let owns = HandlerOwns(finalizer.clone());
    let stopped = Arc::new(AtomicBool::new(false));
    let stop = stopped.clone();
    let sub_opts = SubscribeOptions::default()
        .capacity(opts.capacity)
        .overflow(opts.overflow)
        .batch_handler(move |events| {
            let _owns = &owns;
            for event in events {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                // SAFETY: the caller of ipc_subscribe promised that `cb` may be called
                // with `userdata` on the dispatcher (or polling) thread.
                unsafe { deliver(cb, userdata, c_kind, event) };
            }
        });
    let result = match kind {
        SubscriptionKind::Pattern => client.psubscribe(names, sub_opts),
        SubscriptionKind::Shard => client.ssubscribe(names, sub_opts),
        _ => client.subscribe(names, sub_opts),
    };
    match result {
        Ok(inner) => {
            finalizer.step(Claim::on_success);
            let handle = to_handle(ipc_subscription { inner, stopped });
            // SAFETY: `out` is writable (caller contract, NULL checked by the boundary).
            unsafe { out.write(handle) };
            Ok(())
        }
        Err(e) => {
            finalizer.step(Claim::on_failure);
            Err(e.into())
        }
    }
}

/// Subscribe to `n` channels (`SUBSCRIBE`), delivering their events to `cb`.
///
/// `channels` holds `n` NUL-terminated channel names (binary names: `ipc_subscribe_ex()`);
/// none may be empty. `n` may be 0 (then `channels` may be NULL): an empty subscription to
/// fill later with `ipc_subscription_add()`. Several subscriptions, of this client or not,
/// may share a channel: each gets every message, Redis is subscribed once, and unsubscribed
/// when the last one leaves. Uses the default options (capacity 10000, `IPC_OVERFLOW_BLOCK`).
///
/// Returns once the server confirmed every channel (within the response timeout), or at
/// once if the pub/sub connection is down — the channels are then subscribed when it comes
/// back, with `IPC_EVENT_ACTIVATED`.
///
/// Callback: `cb` (not NULL) is called with `userdata` for every event: an
/// `IPC_EVENT_ACTIVATED` per channel, then messages, and `IPC_EVENT_DISCONNECTED` /
/// `IPC_EVENT_REACTIVATED` around reconnects — see `ipc_message_cb` for the thread it runs
/// on and `ipc_message` for the fields. Events of one subscription come one at a time, in
/// arrival order. The first calls (`IPC_EVENT_ACTIVATED`) may run before this function
/// returns, that is before `*out` is written.
///
/// `userdata` is the caller's: the library only passes it to `cb` and `userdata_free`,
/// possibly from another thread. `userdata_free` may be NULL. On `IPC_OK` it runs exactly
/// once, when the subscription ends: in `ipc_subscription_free()`, or in
/// `ipc_client_close()` / `ipc_client_free()` of its client, whichever comes first, and
/// before that call returns — on that call's thread, or, if a callback of the subscription
/// is running at that moment, on the callback's thread as soon as the callback returns.
/// When the subscription is freed from inside its own callback, it runs on that thread
/// right after the callback returns. On failure it does not run and the caller still owns
/// `userdata` (`cb` may have been called for channels confirmed before the failure, but not
/// after this call returned).
///
/// Output: on `IPC_OK`, `*out` is the subscription, owned by the caller; free it with
/// `ipc_subscription_free()` (also after its client was freed). Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `cb`, `out`, `channels` when `n > 0`, any
/// `channels[i]`); `IPC_ERR_INVALID_ARGUMENT` for an empty channel name;
/// `IPC_ERR_TIMEOUT` if the server did not confirm in time; `IPC_ERR_SERVER` if it refused;
/// `IPC_ERR_CLOSED` after `ipc_client_close()`.
///
/// Thread safety: any thread, concurrently with other calls on the client; subscribe
/// commands of many threads are pipelined together.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe(
    client: *const ipc_client,
    channels: *const *const c_char,
    n: usize,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_subscription,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe(client, #[nullable] channels, n, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let names = names_arg(channels.cast(), std::ptr::null(), n, "channels")?;
            let opts = ipc_subscribe_options::default();
            let kind = SubscriptionKind::Channel;
            subscribe(client, kind, &names, &opts, cb, userdata, userdata_free, out)
        }
    })
}

/// Subscribe to `n` glob patterns (`PSUBSCRIBE`, e.g. `"news.*"`), delivering their events
/// to `cb`. Messages carry the matching pattern in `msg->pattern` and the channel they were
/// published on in `msg->channel`.
///
/// Everything else is as `ipc_subscribe()` (NULL `patterns` allowed when `n` is 0;
/// `userdata_free` may be NULL): callback thread, ordering, events, `userdata_free`.
///
/// Errors: as `ipc_subscribe()`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_psubscribe(
    client: *const ipc_client,
    patterns: *const *const c_char,
    n: usize,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_subscription,
) -> ipc_result {
    ffi_boundary!(ipc_psubscribe(client, #[nullable] patterns, n, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let names = names_arg(patterns.cast(), std::ptr::null(), n, "patterns")?;
            let opts = ipc_subscribe_options::default();
            let kind = SubscriptionKind::Pattern;
            subscribe(client, kind, &names, &opts, cb, userdata, userdata_free, out)
        }
    })
}

/// Subscribe to `n` shard channels (`SSUBSCRIBE`; publish with `ipc_spublish()`),
/// delivering their events to `cb`. Needs Redis 7 or later.
///
/// Everything else is as `ipc_subscribe()` (NULL `channels` allowed when `n` is 0;
/// `userdata_free` may be NULL).
///
/// Errors: as `ipc_subscribe()`; `IPC_ERR_SERVER` from a server without shard channels.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_ssubscribe(
    client: *const ipc_client,
    channels: *const *const c_char,
    n: usize,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_subscription,
) -> ipc_result {
    ffi_boundary!(ipc_ssubscribe(client, #[nullable] channels, n, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let names = names_arg(channels.cast(), std::ptr::null(), n, "channels")?;
            let opts = ipc_subscribe_options::default();
            let kind = SubscriptionKind::Shard;
            subscribe(client, kind, &names, &opts, cb, userdata, userdata_free, out)
        }
    })
}

/// The general subscribe: any kind, binary-safe names, and options.
///
/// `kind` is an `ipc_sub_kind` (`IPC_SUB_CHANNEL`, `IPC_SUB_PATTERN`, `IPC_SUB_SHARD`;
/// taken as an `int` so that any number is safe to pass). Name `i` is `lens[i]` bytes at
/// `names[i]` (not empty; NUL bytes allowed); if `lens` is NULL every name is a
/// NUL-terminated string. `names` may be NULL when `n` is 0. `opts` may be NULL for the
/// defaults; it is copied, not kept. `userdata_free` may be NULL.
///
/// Callback, events, `userdata` and `userdata_free`, output: as `ipc_subscribe()`.
///
/// Errors: as `ipc_subscribe()`; `IPC_ERR_INVALID_ARGUMENT` for an unknown `kind`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_ex(
    client: *const ipc_client,
    kind: c_int,
    names: *const *const u8,
    lens: *const usize,
    n: usize,
    opts: *const ipc_subscribe_options,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_subscription,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_ex(client, kind, #[nullable] names, #[nullable] lens, n, #[nullable] opts, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let kind = kind_arg(kind)?;
        let defaults = ipc_subscribe_options::default();
        // SAFETY: the caller contract of this function (pointers checked).
        unsafe {
            let names = names_arg(names, lens, n, "names")?;
            let opts = if opts.is_null() { &defaults } else { borrow(opts, "opts")? };
            subscribe(client, kind, &names, opts, cb, userdata, userdata_free, out)
        }
    })
}

/// Add `n` names (channels, patterns or shard channels: the subscription's kind) to a
/// subscription, as NUL-terminated strings; names it already has are skipped. `n` may be 0
/// (then `names` may be NULL). Returns once the server confirmed them (an
/// `IPC_EVENT_ACTIVATED` per new name reaches the callback), or at once while the pub/sub
/// connection is down (they activate when it is back).
///
/// Errors: `IPC_ERR_NULL_ARG` (`sub`, `names` when `n > 0`, any `names[i]`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty name; `IPC_ERR_TIMEOUT` (also when called from a
/// callback while an `IPC_OVERFLOW_BLOCK` queue of the client is full: the confirmation
/// waits behind it); `IPC_ERR_SERVER`; `IPC_ERR_CLOSED` after its client was closed. On
/// failure no name of this call stays added.
///
/// Thread safety: see `ipc_subscription`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_add(
    sub: *const ipc_subscription,
    names: *const *const c_char,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_subscription_add(sub, #[nullable] names, n) {
        // SAFETY: `sub` is a live handle (caller contract, NULL checked).
        let sub = unsafe { borrow(sub, "sub") }?;
        // SAFETY: `names` holds `n` NUL-terminated strings (caller contract).
        let names = unsafe { names_arg(names.cast(), std::ptr::null(), n, "names") }?;
        if names.is_empty() {
            return Ok(());
        }
        sub.inner.add(&names)?;
        Ok(())
    })
}

/// Remove `n` names (NUL-terminated strings) from a subscription; names it does not have
/// are ignored. Redis is unsubscribed from a name when no subscription of the client has it
/// any more. Does not wait for the server: messages of a removed name that are already
/// queued may still reach the callback. `n` may be 0 (then `names` may be NULL).
///
/// Errors: `IPC_ERR_NULL_ARG` (`sub`, `names` when `n > 0`, any `names[i]`).
///
/// Thread safety: see `ipc_subscription`; it does not block.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_remove(
    sub: *const ipc_subscription,
    names: *const *const c_char,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_subscription_remove(sub, #[nullable] names, n) {
        // SAFETY: `sub` is a live handle (caller contract, NULL checked).
        let sub = unsafe { borrow(sub, "sub") }?;
        // SAFETY: `names` holds `n` NUL-terminated strings (caller contract).
        let names = unsafe { names_arg(names.cast(), std::ptr::null(), n, "names") }?;
        if !names.is_empty() {
            sub.inner.remove(&names);
        }
        Ok(())
    })
}

/// Unsubscribe and free the subscription. NULL is a no-op.
///
/// Guarantee: after it returns, no call of the subscription's callback runs or will run
/// (a call running on another thread is waited for), queued events are discarded, and its
/// `userdata_free` has run (exactly once over the subscription's life; see
/// `ipc_subscribe()` for the thread). Called from inside the subscription's own callback,
/// it returns at once and takes effect when that callback returns: no further event is
/// delivered (not even the rest of a batch), and `userdata_free` runs then, on that
/// thread.
///
/// Thread safety: every other call on `sub` must have returned (except the running callback
/// that frees it); the handle must not be used afterwards. Any thread, including callbacks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_free(sub: *mut ipc_subscription) {
    ffi_boundary!(ipc_subscription_free(#[nullable] sub) {
        // SAFETY: `sub` is NULL or a handle from a subscribe function, freed once with no
        // other call running on it (caller contract).
        unsafe { free_handle(sub) };
        Ok(())
    })
}

/// The counters of a subscription's queue: events delivered to the callback, messages
/// dropped by the overflow policy, events queued now, and the capacity.
///
/// Output: on `IPC_OK`, `*out` holds the counters. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, also from a callback; see `ipc_subscription`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_stats(
    sub: *const ipc_subscription,
    out: *mut ipc_sub_stats,
) -> ipc_result {
    ffi_boundary!(ipc_subscription_stats(sub, out) {
        // SAFETY: `sub` is a live handle (caller contract, NULL checked).
        let st = unsafe { borrow(sub, "sub") }?.inner.stats();
        let stats = ipc_sub_stats {
            delivered: st.delivered,
            dropped: st.dropped,
            queued: st.queued,
            capacity: st.capacity,
        };
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, stats, "out") }
    })
}

/// Make subscription options with the defaults: capacity 10000 events,
/// `IPC_OVERFLOW_BLOCK`.
///
/// Output: on `IPC_OK`, `*out` is a new handle owned by the caller; free it with
/// `ipc_subscribe_options_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` if `out` is NULL.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_new(
    out: *mut *mut ipc_subscribe_options,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_new(out) {
        let opts = to_handle(ipc_subscribe_options::default());
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, opts, "out") }
    })
}

/// Free subscription options. NULL is a no-op. Subscriptions made with them keep their own
/// copy.
///
/// Thread safety: no other thread may use `opts` during or after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_free(opts: *mut ipc_subscribe_options) {
    ffi_boundary!(ipc_subscribe_options_free(#[nullable] opts) {
        // SAFETY: NULL or a handle from ipc_subscribe_options_new, freed once.
        unsafe { free_handle(opts) };
        Ok(())
    })
}

/// Set the queue capacity in events (default 10000; at least 1). Events beyond it wait or
/// are dropped according to the overflow policy.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for 0.
///
/// Thread safety: see `ipc_subscribe_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_set_capacity(
    opts: *mut ipc_subscribe_options,
    capacity: usize,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_set_capacity(opts, capacity) {
        if capacity == 0 {
            return Err(Error::invalid("capacity must be at least 1"));
        }
        // SAFETY: `opts` is a live handle used by this thread only (caller contract).
        unsafe { borrow_mut(opts, "opts") }?.capacity = capacity;
        Ok(())
    })
}

/// Set the overflow policy: an `ipc_overflow` (`IPC_OVERFLOW_BLOCK`, the default,
/// `IPC_OVERFLOW_DROP_OLDEST`, `IPC_OVERFLOW_DROP_NEWEST`), taken as an `int` so that any
/// number is safe to pass. Dropped messages are counted in `ipc_subscription_stats()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for another number.
///
/// Thread safety: see `ipc_subscribe_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_options_set_overflow(
    opts: *mut ipc_subscribe_options,
    overflow: c_int,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_options_set_overflow(opts, overflow) {
        let policy = match overflow {
            o if o == ipc_overflow::IPC_OVERFLOW_BLOCK as c_int => Overflow::Block,
            o if o == ipc_overflow::IPC_OVERFLOW_DROP_OLDEST as c_int => Overflow::DropOldest,
            o if o == ipc_overflow::IPC_OVERFLOW_DROP_NEWEST as c_int => Overflow::DropNewest,
            other => {
                return Err(Error::invalid(format!(
                    "unknown overflow policy {other}: use IPC_OVERFLOW_BLOCK, IPC_OVERFLOW_DROP_OLDEST or IPC_OVERFLOW_DROP_NEWEST"
                )));
            }
        };
        // SAFETY: `opts` is a live handle used by this thread only (caller contract).
        unsafe { borrow_mut(opts, "opts") }?.overflow = policy;
        Ok(())
    })
}

/// Poll mode: run the callbacks of waiting events on this thread.
///
/// Only for a client made with `ipc_options_set_poll_mode(opts, true)`: its callbacks run
/// nowhere else. If no event waits, waits up to `timeout_ms` milliseconds for one (see
/// below). Runs at most one batch (256 events) per subscription per
/// call, so that no subscription starves the others; what is left keeps `ipc_client_fd()`
/// readable for the next call.
///
/// Output: on `IPC_OK`, if `n_dispatched` is not NULL, `*n_dispatched` is the number of
/// events handed to callbacks (0 when the time passed with none).
///
/// `timeout_ms`: 0 does not wait, a positive number waits up to that many milliseconds,
/// a negative number waits without limit (until there is work or the client is closed).
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`); `IPC_ERR_INVALID_ARGUMENT` if the client is not
/// in poll mode; `IPC_ERR_CLOSED` once the client is closed (`ipc_client_close()` wakes a
/// waiting call).
///
/// Thread safety: any thread (usually the host's event-loop thread; callbacks run on the
/// calling thread); calls from several threads at once share out the waiting work. Not
/// from inside a callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_poll(
    client: *const ipc_client,
    timeout_ms: c_int,
    n_dispatched: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_client_poll(client, timeout_ms, #[nullable] n_dispatched) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let client = unsafe { borrow(client, "client") }?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let n = client.inner.poll(timeout)?;
        if !n_dispatched.is_null() {
            // SAFETY: `n_dispatched` is writable (caller contract, NULL checked).
            unsafe { n_dispatched.write(n) };
        }
        Ok(())
    })
}

/// Poll mode: a file descriptor that is readable whenever `ipc_client_poll()` has events
/// to run, for the host's `select()`/`poll()`/`epoll` set (watch it for `POLLIN`).
///
/// It stays readable until `ipc_client_poll()` took the waiting work; do not read from,
/// write to or close it. It belongs to the client and is valid until `ipc_client_free()`.
///
/// Output: on `IPC_OK`, `*fd` is the descriptor. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if the client is not in poll
/// mode.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_client_fd(client: *const ipc_client, fd: *mut c_int) -> ipc_result {
    ffi_boundary!(ipc_client_fd(client, fd) {
        // SAFETY: `client` is a live handle (caller contract, NULL checked).
        let raw = unsafe { borrow(client, "client") }?.inner.poll_fd()?;
        // SAFETY: `fd` is writable (caller contract, NULL checked).
        unsafe { write_out(fd, raw, "fd") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the steps from `Pending`; how many times `userdata_free` would run.
    fn frees(steps: &[ClaimStep]) -> usize {
        let mut claim = Claim::Pending;
        let mut n = 0;
        for step in steps {
            let (next, run) = step(claim);
            claim = next;
            n += usize::from(run);
        }
        n
    }

    #[test]
    fn userdata_free_runs_once_on_success_and_never_on_failure() {
        // Success, then the handler is dropped (freed subscription or closed client).
        assert_eq!(frees(&[Claim::on_success, Claim::on_handler_drop]), 1);
        // The handler dropped before success is known (client closed meanwhile).
        assert_eq!(frees(&[Claim::on_handler_drop, Claim::on_success]), 1);
        // Failure, the handler dropped before or after: never.
        assert_eq!(frees(&[Claim::on_handler_drop, Claim::on_failure]), 0);
        assert_eq!(frees(&[Claim::on_failure, Claim::on_handler_drop]), 0);
        // A second drop never runs it twice.
        assert_eq!(
            frees(&[
                Claim::on_success,
                Claim::on_handler_drop,
                Claim::on_handler_drop
            ]),
            1
        );
    }

    #[test]
    fn option_setters_check_their_numbers() {
        let mut opts: *mut ipc_subscribe_options = std::ptr::null_mut();
        // SAFETY: valid out pointer; the handle is used and freed here only.
        unsafe {
            assert_eq!(ipc_subscribe_options_new(&mut opts), ipc_result::IPC_OK);
            assert_eq!(
                ipc_subscribe_options_set_capacity(opts, 0),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                ipc_subscribe_options_set_capacity(opts, 5),
                ipc_result::IPC_OK
            );
            assert_eq!(
                ipc_subscribe_options_set_overflow(opts, 3),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                ipc_subscribe_options_set_overflow(opts, 2),
                ipc_result::IPC_OK
            );
            assert_eq!((*opts).capacity, 5);
            assert_eq!((*opts).overflow, Overflow::DropNewest);
            ipc_subscribe_options_free(opts);
            ipc_subscribe_options_free(std::ptr::null_mut());
        }
        assert!(kind_arg(3).is_err());
        assert!(kind_arg(-1).is_err());
        assert_eq!(kind_arg(1).unwrap(), SubscriptionKind::Pattern);
    }
}

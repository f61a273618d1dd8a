//! Pub/sub: subscriptions (`ipc_subscribe()`) and subscription groups
//! (`ipc_subscribe_group()`: one subscription, a callback per channel) delivering to C
//! callbacks.
//!
//! Ownership: an `ipc_subscription` owns a `redipc::blocking::Subscription`, an `ipc_group`
//! a `redipc::blocking::SubscriptionGroup`. The core owns the handler closures made here;
//! `userdata_free` hangs on the core's `on_closed` (subscriptions) and `on_removed` (group
//! routes), which run once, after the last callback returned.

use std::ffi::{c_char, c_int, c_void};

use redipc::{Event, SubscriptionKind};

use crate::client::ipc_client;
use crate::convert::{UserData, c_text, ipc_userdata_free_cb, millis, present};
use crate::error::{Error, ipc_result};
use crate::handle::to_boxed;
use crate::options::{ipc_subscribe_options, or_default};

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
/// | `IPC_EVENT_ACTIVATED`, `IPC_EVENT_REACTIVATED` | the confirmed name | the name, for `IPC_SUB_PATTERN` | NULL |
/// | `IPC_EVENT_DISCONNECTED` | NULL | NULL | the error text, NUL-terminated (`payload_len` excludes the NUL) |
#[repr(C)]
#[derive(Debug)]
pub struct ipc_message {
    /// What happened.
    pub kind: ipc_event_kind,
    /// The kind of the subscription receiving it.
    pub sub_kind: ipc_sub_kind,
    /// The channel (see the table above).
    pub channel: *const c_char,
    /// Length of `channel` in bytes.
    pub channel_len: usize,
    /// The pattern, NULL when none.
    pub pattern: *const c_char,
    /// Length of `pattern` in bytes; 0 when none.
    pub pattern_len: usize,
    /// The payload of a message; for `IPC_EVENT_DISCONNECTED` the error text.
    pub payload: *const c_char,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
}

/// A subscription's (or a group route's) callback: `userdata` as given with it, and the
/// event.
///
/// Thread: by default one of the library's dispatcher threads (never the thread that
/// subscribed, and not always the same thread), but never two calls of one subscription at
/// the same time: its events are delivered one at a time, in the order they arrived.
/// Different subscriptions run in parallel; a slow callback delays only its own
/// subscription (with `IPC_OVERFLOW_BLOCK`, once its queue is full, the whole client's
/// pub/sub reading waits for it). In poll mode callbacks run only inside
/// `ipc_client_poll()`, on the thread that calls it.
///
/// `msg` and everything it points to are valid only during the call. The callback may use
/// the library, including calls that wait for the server, and `_stop()` / `_free()` of its
/// own subscription or group (no further call of it follows). It must not free its client,
/// call `ipc_client_poll()`, unwind (C++ exceptions) or `longjmp` out.
pub type ipc_message_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, msg: *const ipc_message)>;

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

/// A subscription: some channels (or patterns, or shard channels) of one kind, a queue, and
/// the callback its events go to.
///
/// Owns a `redipc::blocking::Subscription` (which keeps the client's pub/sub multiplexer
/// alive) and, through it, the callback with its `userdata`. Made by `ipc_subscribe()`,
/// stopped by `ipc_subscription_stop()`, freed by `ipc_subscription_free()`.
///
/// Thread safety: `ipc_subscription_add()`, `_remove()`, `_stats()` and `_stop()` may be
/// called from any thread, concurrently; `ipc_subscription_free()` must come after every
/// other call on it has returned (a call from inside its own callback is the exception).
pub struct ipc_subscription {
    _private: [u8; 0],
}
box_castable!(ipc_subscription => redipc::blocking::Subscription);

/// A subscription group: one channel subscription whose channels each have a callback of
/// their own (`ipc_group_handle()`).
///
/// Owns a `redipc::blocking::SubscriptionGroup` and, through it, each channel's callback
/// with its `userdata`. Made by `ipc_subscribe_group()`, stopped by `ipc_group_stop()`,
/// freed by `ipc_group_free()`.
///
/// Thread safety: `ipc_group_handle()`, `_unhandle()` and `_stop()` may be called from any
/// thread, concurrently, also from the group's callbacks; `ipc_group_free()` must come after
/// every other call on it has returned (a call from inside a callback of the group is the
/// exception).
pub struct ipc_group {
    _private: [u8; 0],
}
box_castable!(ipc_group => redipc::blocking::SubscriptionGroup);

fn sub_kind(kind: SubscriptionKind) -> ipc_sub_kind {
    match kind {
        SubscriptionKind::Pattern => ipc_sub_kind::IPC_SUB_PATTERN,
        SubscriptionKind::Shard => ipc_sub_kind::IPC_SUB_SHARD,
        _ => ipc_sub_kind::IPC_SUB_CHANNEL,
    }
}

fn kind_arg(kind: c_int) -> Result<SubscriptionKind, Error> {
    use ipc_sub_kind as K;
    match kind {
        k if k == K::IPC_SUB_CHANNEL as c_int => Ok(SubscriptionKind::Channel),
        k if k == K::IPC_SUB_PATTERN as c_int => Ok(SubscriptionKind::Pattern),
        k if k == K::IPC_SUB_SHARD as c_int => Ok(SubscriptionKind::Shard),
        other => Err(Error::invalid(format!(
            "{other} is not an ipc_sub_kind: use IPC_SUB_CHANNEL, IPC_SUB_PATTERN or IPC_SUB_SHARD"
        ))),
    }
}

const ABSENT: (*const c_char, usize) = (std::ptr::null(), 0);

/// The handler of a C callback: each event converted to an `ipc_message`; events of kinds
/// this version does not know are skipped.
fn handler(
    cb: unsafe extern "C" fn(*mut c_void, *const ipc_message),
    userdata: UserData,
    kind: SubscriptionKind,
) -> impl FnMut(&Event) + Send + 'static {
    move |event| {
        let error_text;
        let (ev, k, channel, pattern, payload) = match event {
            Event::Message(m) => (
                ipc_event_kind::IPC_EVENT_MESSAGE,
                m.kind,
                present(&m.channel),
                m.pattern.as_deref().map_or(ABSENT, present),
                present(&m.payload),
            ),
            Event::Activated { kind: k, name } | Event::Reactivated { kind: k, name } => {
                let ev = match event {
                    Event::Activated { .. } => ipc_event_kind::IPC_EVENT_ACTIVATED,
                    _ => ipc_event_kind::IPC_EVENT_REACTIVATED,
                };
                let pattern = match k {
                    SubscriptionKind::Pattern => present(name),
                    _ => ABSENT,
                };
                (ev, *k, present(name), pattern, ABSENT)
            }
            Event::Disconnected { error } => {
                error_text = c_text(&error.to_string());
                let text = error_text.as_bytes();
                let payload = (error_text.as_ptr(), text.len());
                (
                    ipc_event_kind::IPC_EVENT_DISCONNECTED,
                    kind,
                    ABSENT,
                    ABSENT,
                    payload,
                )
            }
            _ => return,
        };
        let msg = ipc_message {
            kind: ev,
            sub_kind: sub_kind(k),
            channel: channel.0,
            channel_len: channel.1,
            pattern: pattern.0,
            pattern_len: pattern.1,
            payload: payload.0,
            payload_len: payload.1,
        };
        // SAFETY: the caller gave `cb` to be called with `userdata` on the dispatcher (or
        // polling) thread; `msg` and what it points to outlive the call.
        unsafe { cb(userdata.ptr(), &msg) };
    }
}

/// Subscribe to `n` names of `kind` (an `ipc_sub_kind` taken as an `int`: channels,
/// patterns or shard channels), delivering their events to `cb`.
///
/// `names` is an array of byte strings (`lens` NULL for NUL-terminated names). `n` may be 0
/// (then `names` may be NULL): an empty subscription to fill later with
/// `ipc_subscription_add()`. Several subscriptions, of this client or not, may share a name:
/// each gets every message; Redis is subscribed once, and unsubscribed when the last one
/// leaves. `opts` may be NULL for the defaults; it is copied.
///
/// Returns once the server confirmed every name (within the response timeout), or at once
/// if the pub/sub connection is down: the names are then subscribed when it comes back,
/// with `IPC_EVENT_ACTIVATED`.
///
/// Callback: `cb` is called with `userdata` for every event: an `IPC_EVENT_ACTIVATED` per
/// name, then messages, and `IPC_EVENT_DISCONNECTED` / `IPC_EVENT_REACTIVATED` around
/// reconnects (see `ipc_message_cb` for its thread, `ipc_message` for the fields). The first
/// calls may run before this function returns, that is before `*out` is written.
/// `userdata_free` (may be NULL) runs exactly once, after the last callback returned, when
/// the subscription ends: in `ipc_subscription_stop()` / `_free()` (on that thread, or on
/// the callback's thread when one was running), or when its client is closed. If this call
/// fails, it never runs and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the subscription, owned by the caller; free it with
/// `ipc_subscription_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `names` when `n > 0`, any `names[i]`, `cb`,
/// `out`); `IPC_ERR_INVALID_ARGUMENT` for an unknown `kind` or an empty name;
/// `IPC_ERR_TIMEOUT` when the server did not confirm in time; `IPC_ERR_SERVER`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client, also from a
/// callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe(
    client: *const ipc_client,
    kind: c_int,
    names: *const *const c_char,
    lens: *const usize,
    n: usize,
    opts: *const ipc_subscribe_options,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_subscription,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe(client, kind, #[nullable] names, #[nullable] lens, n, #[nullable] opts, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let kind = kind_arg(kind)?;
        let userdata = UserData(userdata);
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) }.to_core().handler(handler(callback!(cb), userdata, kind));
        let sub = try_ref!(client).subscribe_kind(kind, &byte_list!(names, lens, n), opts)?;
        sub.on_closed(userdata.release(userdata_free));
        put!(out, to_boxed(sub));
        Ok(())
    })
}

/// Add `n` names (of the subscription's kind; an array of byte strings, `lens` NULL for
/// NUL-terminated names) to a subscription; names it already has are skipped. `n` may be 0
/// (then `names` may be NULL). Returns once the server confirmed them (an
/// `IPC_EVENT_ACTIVATED` per new name reaches the callback), or at once while the pub/sub
/// connection is down or when called from a callback (they activate later).
///
/// Errors: `IPC_ERR_NULL_ARG` (`sub`, `names` when `n > 0`, any `names[i]`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty name; `IPC_ERR_TIMEOUT`; `IPC_ERR_SERVER`;
/// `IPC_ERR_CLOSED` after the subscription or its client was closed. On failure no name of
/// this call stays added.
///
/// Thread safety: see `ipc_subscription`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_add(
    sub: *const ipc_subscription,
    names: *const *const c_char,
    lens: *const usize,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_subscription_add(sub, #[nullable] names, #[nullable] lens, n) {
        try_ref!(sub).add(&byte_list!(names, lens, n))?;
        Ok(())
    })
}

/// Remove `n` names (an array of byte strings, `lens` NULL for NUL-terminated names) from a
/// subscription; names it does not have are ignored. Redis is unsubscribed from a name when
/// no subscription of the client has it any more. Does not wait for the server: messages of
/// a removed name that are already queued may still reach the callback. `n` may be 0 (then
/// `names` may be NULL).
///
/// Errors: `IPC_ERR_NULL_ARG` (`sub`, `names` when `n > 0`, any `names[i]`).
///
/// Thread safety: see `ipc_subscription`; it does not block.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_remove(
    sub: *const ipc_subscription,
    names: *const *const c_char,
    lens: *const usize,
    n: usize,
) -> ipc_result {
    ffi_boundary!(ipc_subscription_remove(sub, #[nullable] names, #[nullable] lens, n) {
        try_ref!(sub).remove(&byte_list!(names, lens, n));
        Ok(())
    })
}

/// The counters of a subscription's queue: events delivered to the callback, messages
/// dropped by the overflow policy, events queued now, and the capacity.
///
/// Output: on `IPC_OK`, `*out` holds the counters.
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
        let st = try_ref!(sub).stats();
        put!(out, ipc_sub_stats { delivered: st.delivered, dropped: st.dropped, queued: st.queued, capacity: st.capacity });
        Ok(())
    })
}

/// Unsubscribe and stop the callbacks, waiting up to `timeout_ms` milliseconds for a
/// callback call running on another thread. Queued events are discarded. Stopping twice is
/// fine. The handle stays allocated: free it with `ipc_subscription_free()`.
///
/// `IPC_OK` means no callback of the subscription runs or will run, and its `userdata_free`
/// has run (or runs right now on the thread of the callback that just returned). From inside
/// the subscription's own callback it returns `IPC_OK` at once: the stop is asked for, no
/// further event is delivered (not even the rest of a batch), and `userdata_free` runs when
/// that callback returns.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if a callback was still running at the
/// deadline (the subscription is stopped all the same: no new call starts, and
/// `userdata_free` runs when that call returns).
///
/// Thread safety: any thread, also from the subscription's own callback; see
/// `ipc_subscription`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_stop(
    sub: *const ipc_subscription,
    timeout_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_subscription_stop(sub, timeout_ms) {
        try_ref!(sub).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// Unsubscribe, stop the callbacks and free the subscription. NULL is a no-op.
///
/// Guarantee: after it returns, no call of the subscription's callback runs or will run (a
/// call running on another thread is waited for, without a time limit: use
/// `ipc_subscription_stop()` first to bound the wait), and its `userdata_free` has run.
/// Called from inside the subscription's own callback, it returns at once and takes effect
/// when that callback returns: no further event is delivered, and `userdata_free` runs
/// then, on that thread.
///
/// Thread safety: every other call on `sub` must have returned (except the running callback
/// that frees it); the handle must not be used afterwards. Any thread, including callbacks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscription_free(sub: *mut ipc_subscription) {
    ffi_boundary!(ipc_subscription_free(#[nullable] sub) { free_box!(sub) })
}

/// Make a subscription group: one channel subscription (no channel yet) whose channels are
/// each handled by a callback of their own, added with `ipc_group_handle()`. Connection
/// events (`IPC_EVENT_DISCONNECTED`) go to every channel's callback. `opts` may be NULL for
/// the defaults (queue capacity and overflow apply to the whole group); it is copied.
///
/// Output: on `IPC_OK`, `*out` is the group, owned by the caller; free it with
/// `ipc_group_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `out`); `IPC_ERR_CLOSED`; `IPC_ERR_TIMEOUT`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_subscribe_group(
    client: *const ipc_client,
    opts: *const ipc_subscribe_options,
    out: *mut *mut ipc_group,
) -> ipc_result {
    ffi_boundary!(ipc_subscribe_group(client, #[nullable] opts, out) {
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) }.to_core();
        put!(out, to_boxed(try_ref!(client).subscribe_group(opts)?));
        Ok(())
    })
}

/// Handle `channel` (a byte string) with `cb` and subscribe the group to it, replacing the
/// channel's earlier callback if it had one. Returns once the server confirmed the channel
/// (or at once while the connection is down, or when called from a callback of the group).
///
/// Callback: as for `ipc_subscribe()` (see `ipc_message_cb`), with the channel's events:
/// `IPC_EVENT_ACTIVATED`, its messages, `IPC_EVENT_REACTIVATED`, and every
/// `IPC_EVENT_DISCONNECTED` of the group. The callbacks of one group never run at the same
/// time. `userdata_free` (may be NULL) runs exactly once, after the callback's last call
/// returned, when the callback is gone for good: replaced by another `ipc_group_handle()`
/// of the channel, removed by `ipc_group_unhandle()`, or the group stopped, freed, or its
/// client closed. If this call fails, it never runs and the caller keeps `userdata`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`group`, `channel`, `cb`); `IPC_ERR_INVALID_ARGUMENT` for an
/// empty channel; `IPC_ERR_TIMEOUT`; `IPC_ERR_SERVER`; `IPC_ERR_CLOSED` after the group or
/// its client was closed.
///
/// Thread safety: see `ipc_group`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_group_handle(
    group: *const ipc_group,
    channel: *const c_char,
    channel_len: usize,
    cb: ipc_message_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
) -> ipc_result {
    ffi_boundary!(ipc_group_handle(group, channel, channel_len, cb, #[nullable] userdata, #[nullable] userdata_free) {
        let userdata = UserData(userdata);
        let f = handler(callback!(cb), userdata, SubscriptionKind::Channel);
        try_ref!(group).handle_with(bytes!(channel, channel_len), f, userdata.release(userdata_free))?;
        Ok(())
    })
}

/// Stop handling `channel` (a byte string) and unsubscribe the group from it; a channel
/// the group does not handle is ignored. A call of its callback running now finishes, then
/// its `userdata_free` runs.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: see `ipc_group`; it does not block.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_group_unhandle(
    group: *const ipc_group,
    channel: *const c_char,
    channel_len: usize,
) -> ipc_result {
    ffi_boundary!(ipc_group_unhandle(group, channel, channel_len) {
        try_ref!(group).unhandle(bytes!(channel, channel_len));
        Ok(())
    })
}

/// Unsubscribe the group and stop its callbacks, waiting up to `timeout_ms` milliseconds
/// for a callback call running on another thread; as `ipc_subscription_stop()`. On `IPC_OK`
/// no callback of the group runs or will run, and every channel's `userdata_free` has run.
/// From inside one of the group's callbacks it returns `IPC_OK` at once and takes effect
/// when that callback returns. The handle stays allocated: free it with `ipc_group_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if a callback was still running at the
/// deadline (the group is stopped all the same; the `userdata_free`s run when it returns).
///
/// Thread safety: see `ipc_group`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_group_stop(group: *const ipc_group, timeout_ms: u64) -> ipc_result {
    ffi_boundary!(ipc_group_stop(group, timeout_ms) {
        try_ref!(group).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// Unsubscribe, stop the callbacks and free the group. NULL is a no-op. As
/// `ipc_subscription_free()`: after it returns no callback of the group runs, and every
/// channel's `userdata_free` has run; from inside one of the group's callbacks it takes
/// effect when that callback returns.
///
/// Thread safety: see `ipc_group`; the handle must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_group_free(group: *mut ipc_group) {
    ffi_boundary!(ipc_group_free(#[nullable] group) { free_box!(group) })
}

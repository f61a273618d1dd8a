//! Event streams: publishing with a length bound, reading, following, consumer groups with
//! acknowledgement, claiming and dead letters (`ipc_stream_*`), and the entries they return
//! (`ipc_entries`, `ipc_entry`, `ipc_field`).
//!
//! Ownership: an `ipc_entries` owns the core's `StreamEntry` values and the C views of them.
//! An `ipc_stream_follower` owns a `redipc::blocking::StreamFollower`. An
//! `ipc_stream_consumer` owns a `redipc::StreamConsumer`; its thread owns the handler
//! closure made here, and `userdata_free` hangs on the core's `StreamConsumer::on_stopped`.

use std::ffi::{CString, c_char, c_int, c_void};

use redipc::StreamEntry;

use crate::client::ipc_client;
use crate::convert::{
    UserData, c_text, fields_arg, ipc_field, ipc_userdata_free_cb, millis, present,
};
use crate::error::{Error, ipc_result};
use crate::handle::to_boxed;
use crate::handler::{handler_result, ipc_error_out};
use crate::options::{ipc_consumer_options, or_default};

/// The size of a buffer that always holds a stream entry id with its NUL terminator
/// (`"1700000000000-0"`; at most 41 characters). `ipc_stream_publish()` and
/// `ipc_stream_follower_position()` take buffers of at least this size.
pub const IPC_STREAM_ID_MAX: usize = 48;

/// One stream entry, read-only, owned by the library.
///
/// Lifetime: an entry from `ipc_entries_get()` lives as long as its `ipc_entries`; one
/// passed to an `ipc_entry_cb` only during that call. So do the strings it points to.
#[repr(C)]
#[derive(Debug)]
pub struct ipc_entry {
    /// The entry id, NUL-terminated (`"1700000000000-0"`); never NULL.
    pub id: *const c_char,
    /// The fields in the order they were published (`field_count` of them; never NULL).
    pub fields: *const ipc_field,
    /// The number of fields.
    pub field_count: usize,
    /// How many times the entry was delivered to a group consumer (1 the first time, more
    /// after it was claimed again); 0 for entries read outside consumer groups.
    pub deliveries: u64,
}

/// The C view of one core entry: the id as a C string and the fields as `ipc_field`s,
/// pointing into `entry` (whose byte buffers do not move when the view moves).
struct View {
    entry: StreamEntry,
    id: CString,
    fields: Box<[ipc_field]>,
}

impl View {
    fn new(entry: StreamEntry) -> View {
        let id = c_text(&entry.id);
        let fields = entry
            .fields
            .iter()
            .map(|(k, v)| {
                let (name, name_len) = present(k);
                let (value, value_len) = present(v);
                ipc_field {
                    name,
                    name_len,
                    value,
                    value_len,
                }
            })
            .collect();
        View { entry, id, fields }
    }

    /// The `ipc_entry` of this view; valid while the view lives, moved or not.
    fn c_entry(&self) -> ipc_entry {
        ipc_entry {
            id: self.id.as_ptr(),
            fields: match self.fields.is_empty() {
                true => std::ptr::NonNull::<ipc_field>::dangling().as_ptr(),
                false => self.fields.as_ptr(),
            },
            field_count: self.fields.len(),
            deliveries: self.entry.deliveries,
        }
    }
}

/// The entries of an `ipc_entries` list and the views they point into.
pub(crate) struct Entries {
    /// Owns what `entries` points to; never changed after construction.
    _views: Box<[View]>,
    entries: Box<[ipc_entry]>,
}

// SAFETY: the raw pointers in `entries` point into `_views`, owned by the same value and
// never mutated; sharing or sending the whole is as safe as sharing the owned data.
unsafe impl Send for Entries {}
// SAFETY: as above; nothing is mutated after construction.
unsafe impl Sync for Entries {}

/// Hand `list` to C as a new `ipc_entries`.
fn new_entries(list: impl IntoIterator<Item = StreamEntry>) -> *mut ipc_entries {
    let views: Box<[View]> = list.into_iter().map(View::new).collect();
    let entries = views.iter().map(View::c_entry).collect();
    to_boxed(Entries {
        _views: views,
        entries,
    })
}

/// A list of stream entries returned by a call (`ipc_stream_read()`, ...), oldest first.
///
/// Owns copies of the entries; read them with `ipc_entries_len()` and `ipc_entries_get()`,
/// free them with `ipc_entries_free()`, which invalidates every `ipc_entry` taken from it.
///
/// Thread safety: read-only; any number of threads may read it at once.
pub struct ipc_entries {
    _private: [u8; 0],
}
box_castable!(ipc_entries => Entries);

/// Copy `text` and its NUL into `(buf, cap)`.
///
/// # Safety
/// `buf` is writable for `cap` bytes.
unsafe fn write_id(text: &str, buf: *mut c_char, cap: usize) -> Result<(), Error> {
    if cap < IPC_STREAM_ID_MAX || text.len() >= cap {
        return Err(Error::invalid(format!(
            "a buffer of {cap} bytes is below IPC_STREAM_ID_MAX ({IPC_STREAM_ID_MAX})"
        )));
    }
    // SAFETY: `buf` is writable for `cap` bytes, which hold the text and its NUL.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// `XADD stream [MAXLEN ~ maxlen] * name value ...`: append an entry of `n` fields (at least
/// one) to a stream (a byte string), creating the stream if needed.
///
/// `maxlen`: -1 uses the client's default bound (`ipc_options_set_stream_maxlen()`, default
/// 100000 entries), 0 means unbounded, a positive number trims the stream to about that
/// many entries (`~`: whole nodes are removed, so a few more may stay).
///
/// Output: if `id_out` is not NULL, on `IPC_OK` it holds the new entry's id,
/// NUL-terminated; `id_cap` is its size and must be at least `IPC_STREAM_ID_MAX`. With
/// `id_out` NULL, `id_cap` is ignored.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `stream`, `fields`, a field's pointers);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty stream name, no field, `maxlen` below -1,
/// `id_cap` below `IPC_STREAM_ID_MAX`, or a value over the size limit (nothing is sent);
/// `IPC_ERR_SERVER` (`WRONGTYPE` when the key is not a stream); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_publish(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    fields: *const ipc_field,
    n: usize,
    maxlen: i64,
    id_out: *mut c_char,
    id_cap: usize,
) -> ipc_result {
    ffi_boundary!(ipc_stream_publish(client, stream, stream_len, #[nullable] fields, n, maxlen, #[nullable] id_out, id_cap) {
        let maxlen = match maxlen {
            -1 => None,
            m => Some(usize::try_from(m).map_err(|_| Error::invalid(format!("maxlen {m}: use -1 (the client's default), 0 (unbounded) or a bound")))?),
        };
        if !id_out.is_null() && id_cap < IPC_STREAM_ID_MAX {
            return Err(Error::invalid(format!("id_cap {id_cap} is below IPC_STREAM_ID_MAX ({IPC_STREAM_ID_MAX})")));
        }
        // SAFETY: `fields` holds `n` fields (C's contract).
        let fields = unsafe { fields_arg(fields, n) }?;
        let id = try_ref!(client).stream_publish(bytes!(stream, stream_len), &fields, maxlen)?;
        if !id_out.is_null() {
            // SAFETY: `id_out` is writable for `id_cap` bytes (C's contract).
            unsafe { write_id(&id, id_out, id_cap) }?;
        }
        Ok(())
    })
}

/// `XREAD COUNT count [BLOCK block_ms] STREAMS stream from_id`: up to `count` entries with
/// ids after `from_id`.
///
/// `from_id` (NUL-terminated): `"0"` reads from the start, an entry id (`"MS-SEQ"` or
/// `"MS"`) reads after that entry (pass the id of the last entry you got to continue),
/// `"$"` only entries added from now on (useful with `block_ms`). `block_ms` > 0 waits up
/// to that many milliseconds for an entry when there is none (on a connection of its own,
/// so other calls are not held up); 0 or negative does not wait.
///
/// Output: on `IPC_OK`, `*out` is a new, possibly empty, list owned by the caller; free it
/// with `ipc_entries_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `stream`, `from_id`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty stream name or an invalid `from_id` (nothing is
/// sent); `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_read(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    from_id: *const c_char,
    count: usize,
    block_ms: i64,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_read(client, stream, stream_len, from_id, count, block_ms, out) {
        let block = u64::try_from(block_ms).ok().filter(|b| *b > 0).map(millis);
        let list = try_ref!(client).stream_read(bytes!(stream, stream_len), text!(from_id), count, block)?;
        put!(out, new_entries(list));
        Ok(())
    })
}

/// The last entry of a stream (`XREVRANGE stream + - COUNT 1`).
///
/// Output: on `IPC_OK`, `*out` is a new list owned by the caller holding the last entry, or
/// no entry for an empty or missing stream; free it with `ipc_entries_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream name;
/// `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_last(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_last(client, stream, stream_len, out) {
        put!(out, new_entries(try_ref!(client).stream_last(bytes!(stream, stream_len))?));
        Ok(())
    })
}

/// `XLEN stream`: the number of entries (0 for a missing stream).
///
/// Output: on `IPC_OK`, `*len`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream name;
/// `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`;
/// `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_len(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    len: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_stream_len(client, stream, stream_len, len) {
        put!(len, try_ref!(client).stream_len(bytes!(stream, stream_len))?);
        Ok(())
    })
}

/// `XGROUP CREATE stream group from_id MKSTREAM`: create a consumer group (and the stream if
/// it is missing) whose consumers start after `from_id` (NUL-terminated): `"$"` for entries
/// added from now on, `"0"` for every entry, or an entry id. A group that already exists is
/// not an error: `*created` is false then and the group is unchanged.
///
/// Output: on `IPC_OK`, `*created` says whether the group was made by this call.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream or group name
/// or an invalid `from_id` (nothing is sent); `IPC_ERR_SERVER` (`WRONGTYPE` when the key is
/// not a stream); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_group_create(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    group: *const c_char,
    group_len: usize,
    from_id: *const c_char,
    created: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_stream_group_create(client, stream, stream_len, group, group_len, from_id, created) {
        put!(created, try_ref!(client).stream_group_create(bytes!(stream, stream_len), bytes!(group, group_len), text!(from_id))?);
        Ok(())
    })
}

/// `XPENDING stream group`: how many entries of the group were delivered and not yet
/// acknowledged (being handled, failed and waiting to be claimed again).
///
/// Output: on `IPC_OK`, `*count`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty name;
/// `IPC_ERR_SERVER` (`NOGROUP` for a missing group or stream, `WRONGTYPE`);
/// `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_pending(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    group: *const c_char,
    group_len: usize,
    count: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_stream_pending(client, stream, stream_len, group, group_len, count) {
        put!(count, try_ref!(client).stream_pending(bytes!(stream, stream_len), bytes!(group, group_len))?.count);
        Ok(())
    })
}

/// The dead letters of a stream: up to `count` entries of the stream `<stream>:dead`,
/// oldest first. Each has the fields of the original entry followed by `_id` (its id in
/// `stream`), `_group`, `_deliveries` (how many times it was delivered) and `_error` (the
/// last error of its handler); look them up with `ipc_entry_get()`.
///
/// Output: on `IPC_OK`, `*out` is a new, possibly empty, list owned by the caller; free it
/// with `ipc_entries_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream name;
/// `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_dead_letters(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    count: usize,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_dead_letters(client, stream, stream_len, count, out) {
        put!(out, new_entries(try_ref!(client).stream_dead_letters(bytes!(stream, stream_len), count)?));
        Ok(())
    })
}

/// The number of entries in a list.
///
/// Errors: returns 0 (and sets the last error) for a NULL `entries`.
///
/// Thread safety: any thread; see `ipc_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entries_len(entries: *const ipc_entries) -> usize {
    ffi_boundary!(ipc_entries_len(entries) { Ok(try_ref!(entries).entries.len()) })
}

/// Entry `i` (from 0) of a list: a pointer valid until `ipc_entries_free(entries)`; read its
/// fields directly (see `ipc_entry`).
///
/// Errors: returns NULL (and sets the last error) for a NULL `entries` or `i` out of range.
///
/// Thread safety: any thread; see `ipc_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entries_get(
    entries: *const ipc_entries,
    i: usize,
) -> *const ipc_entry {
    ffi_boundary!(ipc_entries_get(entries, i) {
        let list = &try_ref!(entries).entries;
        list.get(i).map(|e| e as *const ipc_entry).ok_or_else(|| {
            Error::invalid(format!("index {i} is out of range (the list has {} entries)", list.len()))
        })
    })
}

/// Free a list of entries; every `ipc_entry` taken from it becomes invalid. NULL is a no-op.
///
/// Thread safety: no other thread may use `entries` (or its entries) during or after this
/// call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entries_free(entries: *mut ipc_entries) {
    ffi_boundary!(ipc_entries_free(#[nullable] entries) { free_box!(entries) })
}

/// The value of the first field of `entry` named `name` (a byte string).
///
/// Output: on `IPC_OK`, `*found` says whether there is such a field; if so `(*value,
/// *value_len)` is its value (owned by the entry, never NULL, not NUL-terminated), else
/// NULL and 0.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread; the entry is read-only.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entry_get(
    entry: *const ipc_entry,
    name: *const c_char,
    name_len: usize,
    value: *mut *const c_char,
    value_len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_entry_get(entry, name, name_len, value, value_len, found) {
        // SAFETY: `entry` is a live entry (C's contract, NULL checked): it holds
        // `field_count` fields whose pointers are readable for their lengths.
        let fields = unsafe { fields_arg((*entry).fields, (*entry).field_count) }?;
        let wanted = bytes!(name, name_len);
        let hit = fields.iter().find(|(k, _)| *k == wanted).map(|(_, v)| present(v));
        let (p, n) = hit.unwrap_or((std::ptr::null(), 0));
        put!(value, p);
        put!(value_len, n);
        put!(found, hit.is_some());
        Ok(())
    })
}

/// Follows a stream: remembers its position and returns the entries after it, one per
/// `ipc_stream_follower_next()`, as they come.
///
/// Owns a `redipc::blocking::StreamFollower` (with a connection of its own, made on the
/// first wait, so that its blocking reads hold up no other call) and a buffer of entries
/// already read. Made by `ipc_stream_follow()`, freed by `ipc_stream_follower_free()`.
///
/// Thread safety: not synchronized: use one follower from one thread at a time (it may move
/// between threads).
pub struct ipc_stream_follower {
    _private: [u8; 0],
}
box_castable!(ipc_stream_follower => redipc::blocking::StreamFollower);

/// Start following `stream` (a byte string) after `from_id` (NUL-terminated): `"$"` for
/// entries added from now on, `"0"` for every entry from the start, or an entry id. Nothing
/// is read until `ipc_stream_follower_next()`.
///
/// Output: on `IPC_OK`, `*out` is the follower, owned by the caller; free it with
/// `ipc_stream_follower_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream name or an
/// invalid `from_id`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_follow(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    from_id: *const c_char,
    out: *mut *mut ipc_stream_follower,
) -> ipc_result {
    ffi_boundary!(ipc_stream_follow(client, stream, stream_len, from_id, out) {
        put!(out, to_boxed(try_ref!(client).stream_follow(bytes!(stream, stream_len), text!(from_id))?));
        Ok(())
    })
}

/// The next entry after the follower's position, waiting up to `timeout_ms` milliseconds
/// (0: about one millisecond) for one to be added. Entries come one per call, in stream
/// order, each exactly once; the follower reads ahead up to 100 at a time.
///
/// Output: on `IPC_OK`, `*out` is a new list owned by the caller holding the next entry, or
/// no entry when the time passed without one (not an error); free it with
/// `ipc_entries_free()`. The position does not move on failure.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT` if the
/// server did not answer in time; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_stream_follower`; blocks the calling thread up to `timeout_ms`
/// plus the response timeout.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_follower_next(
    follower: *mut ipc_stream_follower,
    timeout_ms: u64,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_follower_next(follower, timeout_ms, out) {
        put!(out, new_entries(try_mut!(follower).next(millis(timeout_ms))?));
        Ok(())
    })
}

/// The follower's position: the id of the last entry it returned, or the `from_id` it
/// started from. Pass it to `ipc_stream_follow()` later to go on where it stopped.
///
/// Output: on `IPC_OK`, `buf` holds the position, NUL-terminated; `cap` is its size and must
/// be at least `IPC_STREAM_ID_MAX`.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if `cap` is below
/// `IPC_STREAM_ID_MAX`.
///
/// Thread safety: see `ipc_stream_follower`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_follower_position(
    follower: *const ipc_stream_follower,
    buf: *mut c_char,
    cap: usize,
) -> ipc_result {
    ffi_boundary!(ipc_stream_follower_position(follower, buf, cap) {
        let position = try_ref!(follower).position();
        // SAFETY: `buf` is writable for `cap` bytes (C's contract).
        unsafe { write_id(position, buf, cap) }
    })
}

/// Free a follower and close its connection. NULL is a no-op.
///
/// Thread safety: every other call on it must have returned; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_follower_free(follower: *mut ipc_stream_follower) {
    ffi_boundary!(ipc_stream_follower_free(#[nullable] follower) { free_box!(follower) })
}

/// A group consumer's handler: handle `entry` and return 0 to acknowledge it (`XACK`), or
/// any other number for a failure, after `ipc_error_set(err, "why")`. A failed entry is
/// never acknowledged: it stays pending, is claimed again after the consumer's
/// `min_idle_ms` (by this or another consumer of the group) and handed to a handler again,
/// and after `max_deliveries` deliveries it is moved to the dead-letter stream
/// `<stream>:dead` with the last error (see `ipc_stream_dead_letters()`). Failures are
/// reported (`IPC_REPORT_HANDLER_FAILED`).
///
/// Thread: the consumer's own thread, one call at a time, in the order the entries were
/// read. `entry` and `err` are valid only during the call. The handler may use the library
/// (also the same client) and `ipc_stream_consumer_stop()` / `_free()` of its own consumer
/// (they only ask for the stop from here); it must not unwind or `longjmp` out.
pub type ipc_entry_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        entry: *const ipc_entry,
        err: *mut ipc_error_out,
    ) -> c_int,
>;

/// Counters of a group consumer (`ipc_stream_consumer_stats()`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ipc_consumer_stats {
    /// Entries handled successfully and acknowledged.
    pub acked: u64,
    /// Handler failures (each failed delivery counts).
    pub failed: u64,
    /// Entries claimed (taken over from idle consumers, or retried after failing).
    pub claimed: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

/// A running group consumer: a thread of its own reading the group with `XREADGROUP`,
/// calling the handler and acknowledging what succeeded, claiming idle entries with
/// `XAUTOCLAIM`, and moving entries delivered too often to the dead-letter stream.
///
/// Owns a `redipc::StreamConsumer` (its thread and a connection of its own) and, through
/// it, the handler with its `userdata`. Made by `ipc_stream_consume()`, stopped by
/// `ipc_stream_consumer_stop()`, freed by `ipc_stream_consumer_free()`.
///
/// Thread safety: as `ipc_worker`.
pub struct ipc_stream_consumer {
    _private: [u8; 0],
}
box_castable!(ipc_stream_consumer => redipc::StreamConsumer);

/// Consume the group `group` of `stream` as the consumer `consumer` (byte strings; use a
/// distinct consumer name per process or thread), calling `cb` for each entry. The group is
/// created, starting at `"0"`, if it is missing (create it yourself with
/// `ipc_stream_group_create()` to start at `"$"`). Returns at once; reading happens on the
/// consumer's own thread until it is stopped. `opts` may be NULL for the defaults; it is
/// copied and checked here.
///
/// Delivery is at least once: an entry whose handler fails (or whose consumer dies
/// mid-entry) stays pending and is handled again after `min_idle_ms`; with no failures every
/// entry is handled exactly once across the group's consumers. Handler failures and
/// connection problems are reported (`ipc_report`).
///
/// Callback: see `ipc_entry_cb` for its thread and contract. `userdata_free` (may be NULL)
/// runs exactly once, after the last handler call returned, when the consumer has stopped
/// (as for `ipc_worker_new()`). If this call fails, it never runs and the caller keeps
/// `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the consumer, owned by the caller; free it with
/// `ipc_stream_consumer_free()`.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, the names, `cb`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty name or an option out of range;
/// `IPC_ERR_UNSUPPORTED` if no thread can be started. Errors of the server (a key that is
/// not a stream, ...) do not fail this call: the consumer reports them and retries.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consume(
    client: *const ipc_client,
    stream: *const c_char,
    stream_len: usize,
    group: *const c_char,
    group_len: usize,
    consumer: *const c_char,
    consumer_len: usize,
    opts: *const ipc_consumer_options,
    cb: ipc_entry_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    out: *mut *mut ipc_stream_consumer,
) -> ipc_result {
    ffi_boundary!(ipc_stream_consume(client, stream, stream_len, group, group_len, consumer, consumer_len, #[nullable] opts, cb, #[nullable] userdata, #[nullable] userdata_free, out) {
        let cb = callback!(cb);
        let userdata = UserData(userdata);
        let handler = move |e: &StreamEntry| {
            let view = View::new(e.clone());
            let entry = view.c_entry();
            // SAFETY: the caller gave `cb` to be called with `userdata` on the consumer's
            // thread; `entry` and `err` outlive the call.
            handler_result(|err| unsafe { cb(userdata.ptr(), &entry, err) })
        };
        // SAFETY: `opts` is NULL or a live handle (C's contract).
        let opts = unsafe { or_default(opts) };
        let c = try_ref!(client).stream_consume(bytes!(stream, stream_len), bytes!(group, group_len), bytes!(consumer, consumer_len), handler, opts)?;
        c.on_stopped(userdata.release(userdata_free));
        put!(out, to_boxed(c));
        Ok(())
    })
}

/// Stop reading and wait up to `timeout_ms` milliseconds for the consumer: its current read
/// (woken at once) and the handler calls of the batch it is in finish first. Entries not
/// handled stay in the group for other consumers. Stopping twice is fine. Free it with
/// `ipc_stream_consumer_free()`.
///
/// On `IPC_OK` no handler runs or will run, and `userdata_free` has run. From inside its own
/// handler it returns `IPC_OK` at once (the stop is asked for; the rest of the batch is not
/// handed to the handler, those entries stay pending).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if a handler was still running at the
/// deadline (the consumer stops when it returns).
///
/// Thread safety: any thread, also the consumer's own handler; see `ipc_stream_consumer`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consumer_stop(
    consumer: *const ipc_stream_consumer,
    timeout_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_stream_consumer_stop(consumer, timeout_ms) {
        try_ref!(consumer).stop(millis(timeout_ms))?;
        Ok(())
    })
}

/// The consumer's counters: entries acknowledged, handler failures, entries claimed, and
/// entries dead-lettered.
///
/// Output: on `IPC_OK`, `*out`.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread, also from the handler; see `ipc_stream_consumer`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consumer_stats(
    consumer: *const ipc_stream_consumer,
    out: *mut ipc_consumer_stats,
) -> ipc_result {
    ffi_boundary!(ipc_stream_consumer_stats(consumer, out) {
        let s = try_ref!(consumer).stats();
        put!(out, ipc_consumer_stats { acked: s.acked, failed: s.failed, claimed: s.claimed, dead_lettered: s.dead_lettered });
        Ok(())
    })
}

/// Stop the consumer (waiting up to 10 s, as `ipc_stream_consumer_stop()`) and free it.
/// NULL is a no-op. `userdata_free` runs as for `ipc_worker_free()`. Called from inside the
/// consumer's own handler, it returns at once.
///
/// Thread safety: every other call on it must have returned (except the running handler
/// that frees it); the handle must not be used afterwards. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consumer_free(consumer: *mut ipc_stream_consumer) {
    ffi_boundary!(ipc_stream_consumer_free(#[nullable] consumer) { free_box!(consumer) })
}

//! Event streams: publishing with a length bound, reading, following, consumer groups with
//! acknowledgement, claiming and dead letters (`ipc_stream_*`), and the entries they return
//! (`ipc_entries`, `ipc_entry`, `ipc_field`).
//!
//! Ownership: an `ipc_entries` owns the core's `StreamEntry` values and the C views of them
//! (`ipc_entry`, `ipc_field`), which point into those values. An `ipc_stream_follower` owns
//! a `redipc::blocking::StreamFollower` (its own connection). An `ipc_stream_consumer` owns a
//! `redipc::StreamConsumer` (a thread of its own); the core owns the handler closure made
//! here, which owns the caller's `(userdata, userdata_free)` (see `userdata.rs`).

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use redipc::{ConsumerOptions, StreamEntry};

use crate::client::ipc_client;
use crate::error::{Error, ipc_result};
use crate::handler::{ErrorOut, ipc_error_out};
use crate::options::ipc_options;
use crate::pubsub::ipc_userdata_free_cb;
use crate::userdata::{Finalizer, Stopped, UserData, present};
use crate::{borrow, borrow_mut, bytes_arg, free_handle, str_arg, to_handle, write_out};

/// The size of a buffer that always holds a stream entry id with its NUL terminator
/// (`"1700000000000-0"`; at most 41 characters). `ipc_stream_publish()` and
/// `ipc_stream_follower_position()` take buffers of at least this size.
pub const IPC_STREAM_ID_MAX: usize = 48;

/// One field of a stream entry or of a hash: a name and a value, both (pointer, length),
/// binary-safe, not NUL-terminated.
///
/// As input (`ipc_stream_publish()`, `ipc_hash_set_many()`, `ipc_hash_replace_all()`) the
/// caller owns the bytes; neither pointer may be NULL, even for length 0 (pass `""`).
/// As output (`ipc_entry.fields`) the library owns them: they live as long as the entry,
/// and are never NULL.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ipc_field {
    /// The field name.
    pub name: *const c_char,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// The value.
    pub value: *const u8,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

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
        let id = CString::new(entry.id.replace('\0', "")).unwrap_or_default();
        let fields = entry
            .fields
            .iter()
            .map(|(k, v)| {
                let (name, name_len) = present(k);
                let (value, value_len) = present(v);
                ipc_field {
                    name: name.cast(),
                    name_len,
                    value,
                    value_len,
                }
            })
            .collect();
        View { entry, id, fields }
    }

    /// The `ipc_entry` of this view; valid while the view lives, unmoved or not.
    fn c_entry(&self) -> ipc_entry {
        ipc_entry {
            id: self.id.as_ptr(),
            fields: if self.fields.is_empty() {
                std::ptr::NonNull::<ipc_field>::dangling().as_ptr()
            } else {
                self.fields.as_ptr()
            },
            field_count: self.fields.len(),
            deliveries: self.entry.deliveries,
        }
    }
}

/// A list of stream entries returned by a call (`ipc_stream_read()`, ...), oldest first.
///
/// Owns copies of the entries; read them with `ipc_entries_len()` and
/// `ipc_entries_get()`, free them with `ipc_entries_free()`, which invalidates every
/// `ipc_entry` taken from it.
///
/// Thread safety: read-only; any number of threads may read it at once.
pub struct ipc_entries {
    /// Owns what `entries` points to; never changed after construction.
    _views: Box<[View]>,
    entries: Box<[ipc_entry]>,
}

// SAFETY: the raw pointers in `entries` point into `_views`, owned by the same value and
// never mutated; sharing or sending the whole is as safe as sharing the owned data.
unsafe impl Send for ipc_entries {}
// SAFETY: as above; nothing is mutated after construction.
unsafe impl Sync for ipc_entries {}

impl ipc_entries {
    fn new(list: Vec<StreamEntry>) -> ipc_entries {
        let views: Box<[View]> = list.into_iter().map(View::new).collect();
        let entries = views.iter().map(View::c_entry).collect();
        ipc_entries {
            _views: views,
            entries,
        }
    }
}

/// Hand `list` to C through `out`.
///
/// # Safety
/// `out` is writable (NULL is refused).
unsafe fn write_entries(list: Vec<StreamEntry>, out: *mut *mut ipc_entries) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::null_arg("out"));
    }
    let handle = to_handle(ipc_entries::new(list));
    // SAFETY: `out` is writable (caller contract, NULL checked).
    unsafe { out.write(handle) };
    Ok(())
}

/// The client behind a handle.
///
/// # Safety
/// `client` is NULL or a live handle.
pub(crate) unsafe fn client_arg<'a>(
    client: *const ipc_client,
) -> Result<&'a redipc::blocking::Client, Error> {
    // SAFETY: forwarded from the caller.
    Ok(&unsafe { borrow(client, "client") }?.inner)
}

/// A name given as (pointer, length) that must not be empty.
///
/// # Safety
/// As [`bytes_arg`].
pub(crate) unsafe fn name_arg<'a>(
    ptr: *const c_char,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Error> {
    // SAFETY: forwarded from the caller.
    let b = unsafe { bytes_arg(ptr.cast(), len, what) }?;
    if b.is_empty() {
        return Err(Error::invalid(format!("`{what}` must not be empty")));
    }
    Ok(b)
}

/// Fields as `(name, value)` byte strings.
pub(crate) type FieldPairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// `n` fields passed by C (`fields` may be NULL when `n` is 0).
///
/// # Safety
/// `fields` is NULL or holds `n` fields whose bytes are readable during the call.
pub(crate) unsafe fn fields_arg<'a>(
    fields: *const ipc_field,
    n: usize,
) -> Result<FieldPairs<'a>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if fields.is_null() {
        return Err(Error::null_arg("fields"));
    }
    if n > isize::MAX as usize / size_of::<ipc_field>() {
        return Err(Error::invalid(format!("`n`: count {n} is too large")));
    }
    // SAFETY: `fields` is not NULL and holds `n` fields (caller contract); the size fits.
    let list = unsafe { std::slice::from_raw_parts(fields, n) };
    let mut out = Vec::with_capacity(n);
    for (i, f) in list.iter().enumerate() {
        if f.name.is_null() || f.value.is_null() {
            let which = if f.name.is_null() { "name" } else { "value" };
            return Err(Error::new(
                ipc_result::IPC_ERR_NULL_ARG,
                format!("argument `fields[{i}].{which}` is NULL"),
            ));
        }
        // SAFETY: both pointers are readable for their lengths (caller contract).
        let (k, v) = unsafe {
            (
                bytes_arg(f.name.cast(), f.name_len, "fields[i].name")?,
                bytes_arg(f.value, f.value_len, "fields[i].value")?,
            )
        };
        out.push((k, v));
    }
    Ok(out)
}

/// A stream position: `"$"` (when `dollar` is allowed), `"0"`, `"MS"` or `"MS-SEQ"`.
fn id_arg<'a>(ptr: *const c_char, what: &'static str, dollar: bool) -> Result<&'a str, Error> {
    // SAFETY: `ptr` is NULL or a NUL-terminated string (caller contract).
    let id = unsafe { str_arg(ptr, what) }?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = (dollar && id == "$")
        || match id.split_once('-') {
            Some((ms, seq)) => digits(ms) && digits(seq),
            None => digits(id),
        };
    if ok {
        Ok(id)
    } else {
        Err(Error::invalid(format!(
            "invalid stream id {id:?} in `{what}`: use {}\"0\", \"MS\" or \"MS-SEQ\"",
            if dollar { "\"$\", " } else { "" }
        )))
    }
}

/// Copy `text` and its NUL into `(buf, cap)`.
///
/// # Safety
/// `buf` is writable for `cap` bytes.
unsafe fn write_id(text: &str, buf: *mut c_char, cap: usize) -> Result<(), Error> {
    if text.len() + 1 > cap {
        return Err(Error::invalid(format!(
            "the id {text:?} does not fit in {cap} bytes"
        )));
    }
    // SAFETY: `buf` is writable for `cap` bytes (caller contract), which hold the text
    // and its NUL (checked).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// Set the default length bound of `ipc_stream_publish()` called with `maxlen` -1: the
/// stream is trimmed to about this many entries (`MAXLEN ~`); 0 for unbounded. Default
/// 100000.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for a number over `SIZE_MAX`.
///
/// Thread safety: see `ipc_options`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_options_set_stream_maxlen(
    opts: *mut ipc_options,
    maxlen: u64,
) -> ipc_result {
    ffi_boundary!(ipc_options_set_stream_maxlen(opts, maxlen) {
        let n = usize::try_from(maxlen)
            .map_err(|_| Error::invalid(format!("maxlen {maxlen} is too large")))?;
        // SAFETY: `opts` is a live handle used by this thread only (caller contract).
        unsafe { borrow_mut(opts, "opts") }?.inner.stream_maxlen = n;
        Ok(())
    })
}

/// `XADD stream [MAXLEN ~ maxlen] * name value ...`: append an entry of `n` fields (at
/// least one) to a stream, creating the stream if needed.
///
/// `maxlen`: -1 uses the client's default bound (`ipc_options_set_stream_maxlen()`,
/// default 100000 entries), 0 means unbounded, a positive number trims the stream to about
/// that many entries (`~`: whole nodes are removed, so a few more may stay).
///
/// Output: if `id_out` is not NULL, on `IPC_OK` it holds the new entry's id,
/// NUL-terminated; `id_cap` is its size and must be at least `IPC_STREAM_ID_MAX`. With
/// `id_out` NULL, `id_cap` is ignored. Untouched on failure.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `stream`, `fields`, a field's pointers);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty stream name, `n` 0, `maxlen` below -1, `id_cap`
/// below `IPC_STREAM_ID_MAX`, or a value over the size limit (nothing is sent);
/// `IPC_ERR_SERVER` (`WRONGTYPE` when the key is not a stream); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_publish(
    client: *const ipc_client,
    stream: *const c_char,
    slen: usize,
    fields: *const ipc_field,
    n: usize,
    maxlen: i64,
    id_out: *mut c_char,
    id_cap: usize,
) -> ipc_result {
    ffi_boundary!(ipc_stream_publish(client, stream, slen, fields, n, maxlen, #[nullable] id_out, id_cap) {
        let maxlen = match maxlen {
            -1 => None,
            m if m >= 0 => Some(usize::try_from(m).map_err(|_| Error::invalid("maxlen is too large"))?),
            m => return Err(Error::invalid(format!("maxlen {m}: use -1 (default), 0 (unbounded) or a bound"))),
        };
        if !id_out.is_null() && id_cap < IPC_STREAM_ID_MAX {
            return Err(Error::invalid(format!(
                "id_cap {id_cap} is below IPC_STREAM_ID_MAX ({IPC_STREAM_ID_MAX})"
            )));
        }
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let fields = fields_arg(fields, n)?;
            if fields.is_empty() {
                return Err(Error::invalid("give at least one field (n is 0)"));
            }
            let id = client_arg(client)?.stream_publish(stream, &fields, maxlen)?;
            if !id_out.is_null() {
                write_id(&id, id_out, id_cap)?;
            }
        }
        Ok(())
    })
}

/// `XREAD COUNT count [BLOCK block_ms] STREAMS stream from_id`: up to `count` entries with
/// ids after `from_id`.
///
/// `from_id` (NUL-terminated): `"0"` reads from the start, an entry id (`"MS-SEQ"` or
/// `"MS"`) reads after that entry (pass the id of the last entry you got to continue),
/// `"$"` only entries added from now on (useful with `block_ms`). `count` must be at
/// least 1. `block_ms` > 0 waits up to that many milliseconds for an entry when there is
/// none (on a connection of its own, so other calls are not held up); 0 or negative does
/// not wait.
///
/// Output: on `IPC_OK`, `*out` is a new, possibly empty, list owned by the caller; free it
/// with `ipc_entries_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, `stream`, `from_id`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty stream name, `count` 0 or an invalid `from_id`
/// (nothing is sent); `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT`;
/// `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_read(
    client: *const ipc_client,
    stream: *const c_char,
    slen: usize,
    from_id: *const c_char,
    count: usize,
    block_ms: i64,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_read(client, stream, slen, from_id, count, block_ms, out) {
        if count == 0 {
            return Err(Error::invalid("count must be at least 1"));
        }
        let block = u64::try_from(block_ms).ok().filter(|b| *b > 0).map(Duration::from_millis);
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let from = id_arg(from_id, "from_id", true)?;
            let list = client_arg(client)?.stream_read(stream, from, count, block)?;
            write_entries(list, out)
        }
    })
}

/// The last entry of a stream (`XREVRANGE stream + - COUNT 1`).
///
/// Output: on `IPC_OK`, `*out` is a new list owned by the caller holding the last entry,
/// or no entry for an empty or missing stream; free it with `ipc_entries_free()`.
/// Untouched otherwise.
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
    slen: usize,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_last(client, stream, slen, out) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let last = client_arg(client)?.stream_last(stream)?;
            write_entries(last.into_iter().collect(), out)
        }
    })
}

/// `XLEN stream`: the number of entries (0 for a missing stream).
///
/// Output: on `IPC_OK`, `*len`. Untouched otherwise.
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
    slen: usize,
    len: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_stream_len(client, stream, slen, len) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let n = client_arg(client)?.stream_len(stream)?;
            write_out(len, n, "len")
        }
    })
}

/// `XGROUP CREATE stream group from_id MKSTREAM`: create a consumer group (and the stream
/// if it is missing) whose consumers start after `from_id`: `"$"` for entries added from
/// now on, `"0"` for every entry, or an entry id. A group that already exists is not an
/// error: `*created` is false then and the group is unchanged.
///
/// Output: on `IPC_OK`, `*created` says whether the group was made by this call.
/// Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream or group
/// name or an invalid `from_id` (nothing is sent); `IPC_ERR_SERVER` (`WRONGTYPE` when the
/// key is not a stream); `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_group_create(
    client: *const ipc_client,
    stream: *const c_char,
    slen: usize,
    group: *const c_char,
    glen: usize,
    from_id: *const c_char,
    created: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_stream_group_create(client, stream, slen, group, glen, from_id, created) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let group = name_arg(group, glen, "group")?;
            let from = id_arg(from_id, "from_id", true)?;
            let made = client_arg(client)?.stream_group_create(stream, group, from)?;
            write_out(created, made, "created")
        }
    })
}

/// `XPENDING stream group`: how many entries of the group were delivered and not yet
/// acknowledged (being handled, failed and waiting to be claimed again).
///
/// Output: on `IPC_OK`, `*count`. Untouched otherwise.
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
    slen: usize,
    group: *const c_char,
    glen: usize,
    count: *mut u64,
) -> ipc_result {
    ffi_boundary!(ipc_stream_pending(client, stream, slen, group, glen, count) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let group = name_arg(group, glen, "group")?;
            let info = client_arg(client)?.stream_pending(stream, group)?;
            write_out(count, info.count, "count")
        }
    })
}

/// The dead letters of a stream: up to `count` (at least 1) entries of the stream
/// `<stream>:dead`, oldest first. Each has the fields of the original entry followed by
/// `_id` (its id in `stream`), `_group`, `_deliveries` (how many times it was delivered)
/// and `_error` (the last error of its handler); look them up with `ipc_entry_get()`.
///
/// Output: on `IPC_OK`, `*out` is a new, possibly empty, list owned by the caller; free it
/// with `ipc_entries_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` for an empty stream name or
/// `count` 0; `IPC_ERR_SERVER`; `IPC_ERR_TIMEOUT`; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_dead_letters(
    client: *const ipc_client,
    stream: *const c_char,
    slen: usize,
    count: usize,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_dead_letters(client, stream, slen, count, out) {
        if count == 0 {
            return Err(Error::invalid("count must be at least 1"));
        }
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let list = client_arg(client)?.stream_dead_letters(stream, count)?;
            write_entries(list, out)
        }
    })
}

/// The number of entries in a list. 0 for NULL (which also sets the last error).
///
/// Errors: none besides a NULL `entries` (returns 0).
///
/// Thread safety: any thread; see `ipc_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entries_len(entries: *const ipc_entries) -> usize {
    ffi_boundary!(ipc_entries_len(entries) {
        // SAFETY: `entries` is a live handle (caller contract, NULL checked).
        Ok(unsafe { borrow(entries, "entries") }?.entries.len())
    })
}

/// Entry `i` (from 0) of a list: a pointer valid until `ipc_entries_free(entries)`; read
/// its fields directly (see `ipc_entry`).
///
/// Errors: returns NULL (and sets the last error) for a NULL `entries` or `i` out of
/// range.
///
/// Thread safety: any thread; see `ipc_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entries_get(
    entries: *const ipc_entries,
    i: usize,
) -> *const ipc_entry {
    ffi_boundary!(ipc_entries_get(entries, i) {
        // SAFETY: `entries` is a live handle (caller contract, NULL checked).
        let list = &unsafe { borrow(entries, "entries") }?.entries;
        list.get(i).map(|e| e as *const ipc_entry).ok_or_else(|| {
            Error::invalid(format!("index {i} is out of range (the list has {} entries)", list.len()))
        })
    })
}

/// Free a list of entries; every `ipc_entry` taken from it becomes invalid. NULL is a
/// no-op.
///
/// Thread safety: no other thread may use `entries` (or its entries) during or after
/// this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entries_free(entries: *mut ipc_entries) {
    ffi_boundary!(ipc_entries_free(#[nullable] entries) {
        // SAFETY: NULL or a handle made by this library, freed once (caller contract).
        unsafe { free_handle(entries) };
        Ok(())
    })
}

/// The value of the first field of `entry` named `name` (`nlen` bytes).
///
/// Output: on `IPC_OK`, `*found` says whether there is such a field; if so `(*value,
/// *value_len)` is its value (owned by the entry, never NULL, not NUL-terminated), else
/// NULL and 0. Untouched on failure.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread; the entry is read-only.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_entry_get(
    entry: *const ipc_entry,
    name: *const c_char,
    nlen: usize,
    value: *mut *const u8,
    value_len: *mut usize,
    found: *mut bool,
) -> ipc_result {
    ffi_boundary!(ipc_entry_get(entry, name, nlen, value, value_len, found) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked); an entry
        // holds `field_count` fields whose pointers are readable for their lengths.
        unsafe {
            let e = borrow(entry, "entry")?;
            let name = bytes_arg(name.cast(), nlen, "name")?;
            let fields: &[ipc_field] = if e.field_count == 0 || e.fields.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(e.fields, e.field_count)
            };
            let hit = fields.iter().find(|f| {
                bytes_arg(f.name.cast(), f.name_len, "name").is_ok_and(|n| n == name)
            });
            let (p, n) = hit.map_or((std::ptr::null(), 0), |f| (f.value, f.value_len));
            write_out(value, p, "value")?;
            write_out(value_len, n, "value_len")?;
            write_out(found, hit.is_some(), "found")
        }
    })
}

/// Follows a stream: remembers its position and returns the entries after it, one per
/// `ipc_stream_follower_next()`, as they come.
///
/// Owns a `redipc::blocking::StreamFollower` (with a connection of its own, made on the
/// first wait, so that its blocking reads hold up no other call) and a buffer of entries
/// already read. Made by `ipc_stream_follow()`, freed by `ipc_stream_follower_free()`.
///
/// Thread safety: calls on one follower are serialized (a second thread waits for the
/// first); it may move between threads.
pub struct ipc_stream_follower {
    inner: Mutex<redipc::blocking::StreamFollower>,
}

/// Start following `stream` after `from_id`: `"$"` for entries added from now on, `"0"`
/// for every entry from the start, or an entry id. Nothing is read until
/// `ipc_stream_follower_next()`.
///
/// Output: on `IPC_OK`, `*out` is the follower, owned by the caller; free it with
/// `ipc_stream_follower_free()`. Untouched otherwise.
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
    slen: usize,
    from_id: *const c_char,
    out: *mut *mut ipc_stream_follower,
) -> ipc_result {
    ffi_boundary!(ipc_stream_follow(client, stream, slen, from_id, out) {
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        unsafe {
            let stream = name_arg(stream, slen, "stream")?;
            let from = id_arg(from_id, "from_id", true)?;
            let inner = client_arg(client)?.stream_follow(stream, from)?;
            let handle = to_handle(ipc_stream_follower { inner: Mutex::new(inner) });
            write_out(out, handle, "out")
        }
    })
}

/// The next entry after the follower's position, waiting up to `timeout_ms` milliseconds
/// (0: about one millisecond) for one to be added. Entries come one per call, in stream
/// order, each exactly once; the follower reads ahead up to 100 at a time.
///
/// Output: on `IPC_OK`, `*out` is a new list owned by the caller holding the next entry,
/// or no entry when the time passed without one (not an error); free it with
/// `ipc_entries_free()`. Untouched otherwise; the position does not move on failure.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_SERVER` (`WRONGTYPE`); `IPC_ERR_TIMEOUT` if the
/// server did not answer in time; `IPC_ERR_CONNECTION`; `IPC_ERR_CLOSED`.
///
/// Thread safety: see `ipc_stream_follower`; blocks the calling thread up to `timeout_ms`
/// plus the response timeout.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_follower_next(
    follower: *const ipc_stream_follower,
    timeout_ms: u64,
    out: *mut *mut ipc_entries,
) -> ipc_result {
    ffi_boundary!(ipc_stream_follower_next(follower, timeout_ms, out) {
        // SAFETY: `follower` is a live handle (caller contract, NULL checked).
        let f = unsafe { borrow(follower, "follower") }?;
        let mut inner = f.inner.lock().unwrap_or_else(|p| p.into_inner());
        let next = inner.next(Duration::from_millis(timeout_ms))?;
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_entries(next.into_iter().collect(), out) }
    })
}

/// The follower's position: the id of the last entry it returned, or the `from_id` it
/// started from. Pass it to `ipc_stream_follow()` later to go on where it stopped.
///
/// Output: on `IPC_OK`, `buf` holds the position, NUL-terminated; `cap` is its size and
/// must be at least `IPC_STREAM_ID_MAX`. Untouched otherwise.
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
        if cap < IPC_STREAM_ID_MAX {
            return Err(Error::invalid(format!(
                "cap {cap} is below IPC_STREAM_ID_MAX ({IPC_STREAM_ID_MAX})"
            )));
        }
        // SAFETY: `follower` is a live handle (caller contract, NULL checked).
        let f = unsafe { borrow(follower, "follower") }?;
        let inner = f.inner.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: `buf` is writable for `cap` bytes (caller contract, NULL checked).
        unsafe { write_id(inner.position(), buf, cap) }
    })
}

/// Free a follower and close its connection. NULL is a no-op.
///
/// Thread safety: every other call on it must have returned; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_follower_free(follower: *mut ipc_stream_follower) {
    ffi_boundary!(ipc_stream_follower_free(#[nullable] follower) {
        // SAFETY: NULL or a handle from ipc_stream_follow, freed once (caller contract).
        unsafe { free_handle(follower) };
        Ok(())
    })
}

/// A group consumer's handler: handle `entry` and return 0 to acknowledge it (`XACK`), or
/// any other number for a failure — then call `ipc_error_set(err, "why")` first to record
/// why. A failed entry is never acknowledged: it stays pending, is claimed again after
/// `min_idle_ms` (by this or another consumer of the group) and handed to a handler again,
/// and after `max_deliveries` deliveries it is moved to the dead-letter stream
/// `<stream>:dead` with the last error (see `ipc_stream_dead_letters()`).
///
/// Thread: the consumer's own thread (`redipc-stream`), one call at a time, in the order
/// the entries were read. `entry` and `err` are valid only during the call. The handler
/// may use the library (also the same client); it must not unwind or `longjmp` out, and
/// must not call `ipc_stream_consumer_stop()` expecting it to wait (from here it only asks
/// the consumer to stop); `ipc_stream_consumer_free()` from here is allowed (see there).
pub type ipc_entry_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        entry: *const ipc_entry,
        err: *mut ipc_error_out,
    ) -> c_int,
>;

/// Settings of a group consumer, a plain struct: fill it with
/// `ipc_consumer_options_init()`, change the fields you need, pass it to
/// `ipc_stream_consume()` (which copies it).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ipc_consumer_options {
    /// Entries read per round trip (default 10; at least 1).
    pub count: usize,
    /// How long one read waits on the server for new entries, in milliseconds (default
    /// 1000; at least 1). A stop wakes a blocked read at once (`CLIENT UNBLOCK`; where ACLs
    /// forbid it, within this time).
    pub block_ms: u64,
    /// Entries pending (delivered, not acknowledged) longer than this, in milliseconds, are
    /// claimed and handled again: failed ones, and those of consumers that died (default
    /// 30000; at least 1).
    pub min_idle_ms: u64,
    /// An entry already delivered this many times is moved to the dead-letter stream
    /// instead of being handled again (default 5; at least 1).
    pub max_deliveries: u64,
    /// How often to look for entries to claim, in milliseconds (default 0: `min_idle_ms /
    /// 2`; at least 10). Claiming happens between reads, so the effective interval is at
    /// least `block_ms` while the stream is idle.
    pub claim_interval_ms: u64,
}

impl Default for ipc_consumer_options {
    fn default() -> Self {
        ipc_consumer_options {
            count: 10,
            block_ms: 1000,
            min_idle_ms: 30_000,
            max_deliveries: 5,
            claim_interval_ms: 0,
        }
    }
}

impl ipc_consumer_options {
    fn to_core(self) -> Result<ConsumerOptions, Error> {
        if self.count == 0
            || self.block_ms == 0
            || self.min_idle_ms == 0
            || self.max_deliveries == 0
        {
            return Err(Error::invalid(
                "consumer options: count, block_ms, min_idle_ms and max_deliveries must be at least 1",
            ));
        }
        let mut o = ConsumerOptions::default()
            .count(self.count)
            .block(Duration::from_millis(self.block_ms))
            .min_idle(Duration::from_millis(self.min_idle_ms))
            .max_deliveries(self.max_deliveries);
        if self.claim_interval_ms > 0 {
            o = o.claim_interval(Duration::from_millis(self.claim_interval_ms));
        }
        Ok(o)
    }
}

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

/// Fill `opts` with the defaults: count 10, block 1000 ms, min_idle 30000 ms,
/// max_deliveries 5, claim interval `min_idle_ms / 2`.
///
/// Errors: `IPC_ERR_NULL_ARG`.
///
/// Thread safety: any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_consumer_options_init(opts: *mut ipc_consumer_options) -> ipc_result {
    ffi_boundary!(ipc_consumer_options_init(opts) {
        // SAFETY: `opts` is writable (caller contract, NULL checked).
        unsafe { write_out(opts, ipc_consumer_options::default(), "opts") }
    })
}

/// A running group consumer: a thread of its own reading the group with `XREADGROUP`,
/// calling the handler and acknowledging what succeeded, claiming idle entries with
/// `XAUTOCLAIM`, and moving entries delivered too often to the dead-letter stream.
///
/// Owns a `redipc::StreamConsumer` (its thread and a connection of its own) and, through
/// it, the handler with its `userdata`. Made by `ipc_stream_consume()`, freed by
/// `ipc_stream_consumer_free()`.
///
/// Thread safety: `ipc_stream_consumer_stats()` and `ipc_stream_consumer_stop()` may be
/// called from any thread (they are serialized); `ipc_stream_consumer_free()` must come
/// after every other call on it has returned.
pub struct ipc_stream_consumer {
    inner: Mutex<redipc::StreamConsumer>,
    stopped: Stopped,
    /// The consumer thread, known from the first handler call.
    thread: Arc<OnceLock<ThreadId>>,
}

impl ipc_stream_consumer {
    fn on_consumer_thread(&self) -> bool {
        self.thread.get() == Some(&std::thread::current().id())
    }
}

/// Stop `inner` and wait for its thread without limit.
fn stop_and_drop(inner: Mutex<redipc::StreamConsumer>) {
    let c = inner.into_inner().unwrap_or_else(|p| p.into_inner());
    while c.stop(Duration::from_secs(60)).is_err() {}
    drop(c);
}

/// Consume the group `group` of `stream` as the consumer `consumer` (names of the
/// group's members; use a distinct one per process or thread), calling `handler` for each
/// entry. The group is created, starting at `"0"`, if it is missing (create it yourself
/// with `ipc_stream_group_create()` to start at `"$"`). Returns at once; reading happens
/// on the consumer's own thread until `ipc_stream_consumer_stop()` or
/// `ipc_stream_consumer_free()`.
///
/// Delivery is at least once: an entry whose handler fails (or whose consumer dies
/// mid-entry) stays pending and is handled again after `min_idle_ms`; with no failures
/// every entry is handled exactly once across the group's consumers. Handler failures and
/// connection problems are reported on stderr.
///
/// `opts` may be NULL for the defaults (see `ipc_consumer_options_init()`); it is copied.
///
/// Callback: see `ipc_entry_cb` for its thread and contract. `userdata` is the caller's:
/// the library only passes it to `handler` and `userdata_free`, from other threads.
/// `userdata_free` may be NULL. On `IPC_OK` it runs exactly once, when the consumer is
/// freed, before `ipc_stream_consumer_free()` returns (on that thread; after the running
/// handler call has returned). On failure it does not run and the caller keeps `userdata`.
///
/// Output: on `IPC_OK`, `*out` is the consumer, owned by the caller; free it with
/// `ipc_stream_consumer_free()`. Untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG` (`client`, the names, `handler`, `out`);
/// `IPC_ERR_INVALID_ARGUMENT` for an empty name or an option below its minimum;
/// `IPC_ERR_UNSUPPORTED` if no thread can be started. Errors of the server (a key that is
/// not a stream, ...) do not fail this call: the consumer reports them and retries.
///
/// Thread safety: any thread, concurrently with other calls on the client.
#[must_use]
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consume(
    client: *const ipc_client,
    stream: *const c_char,
    slen: usize,
    group: *const c_char,
    glen: usize,
    consumer: *const c_char,
    clen: usize,
    handler: ipc_entry_cb,
    userdata: *mut c_void,
    userdata_free: ipc_userdata_free_cb,
    opts: *const ipc_consumer_options,
    out: *mut *mut ipc_stream_consumer,
) -> ipc_result {
    ffi_boundary!(ipc_stream_consume(client, stream, slen, group, glen, consumer, clen, handler, #[nullable] userdata, #[nullable] userdata_free, #[nullable] opts, out) {
        let Some(cb) = handler else {
            return Err(Error::null_arg("handler"));
        };
        // SAFETY: all pointers are valid per the caller contract (NULL checked).
        let (client, stream, group, consumer, opts) = unsafe {
            (
                client_arg(client)?,
                name_arg(stream, slen, "stream")?,
                name_arg(group, glen, "group")?,
                name_arg(consumer, clen, "consumer")?,
                if opts.is_null() { ipc_consumer_options::default() } else { *borrow(opts, "opts")? },
            )
        };
        let core_opts = opts.to_core()?;
        let userdata = UserData(userdata);
        let (finalizer, owner) = Finalizer::new(userdata, userdata_free);
        let stopped = Stopped::default();
        let thread: Arc<OnceLock<ThreadId>> = Arc::default();
        let (st, th) = (stopped.clone(), thread.clone());
        let wrapper = move |e: &StreamEntry| -> redipc::Result<()> {
            let _owns = &owner;
            let _ = th.set(std::thread::current().id());
            if st.is_stopped() {
                return Err("the consumer was freed before handling it".into());
            }
            let view = View::new(e.clone());
            let entry = view.c_entry();
            let mut err = ErrorOut::new();
            // SAFETY: the caller of ipc_stream_consume promised that `cb` may be called
            // with `userdata` on the consumer thread; `entry` and `err` outlive the call.
            let rc = unsafe { cb(userdata.ptr(), &entry, err.as_ptr()) };
            if rc == 0 {
                Ok(())
            } else {
                Err(err.into_message().unwrap_or_else(|| format!("the handler returned {rc}")).into())
            }
        };
        match client.stream_consume(stream, group, consumer, wrapper, core_opts) {
            Ok(inner) => {
                finalizer.succeeded();
                let handle = to_handle(ipc_stream_consumer { inner: Mutex::new(inner), stopped, thread });
                // SAFETY: `out` is writable (caller contract, NULL checked).
                unsafe { out.write(handle) };
                Ok(())
            }
            Err(e) => {
                finalizer.failed();
                Err(e.into())
            }
        }
    })
}

/// Ask the consumer to stop reading and wait up to `deadline_ms` milliseconds for it:
/// its current read (at most `block_ms`) and the handler calls of the batch it is in
/// finish first. Entries not read stay in the group for other consumers. Stopping twice is
/// fine. From inside its own handler it only asks (returns `IPC_OK` at once; the consumer
/// stops after the handler returns).
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_TIMEOUT` if it was still running after
/// `deadline_ms` (it stops later; `ipc_stream_consumer_free()` waits for it).
///
/// Thread safety: any thread; see `ipc_stream_consumer`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consumer_stop(
    consumer: *const ipc_stream_consumer,
    deadline_ms: u64,
) -> ipc_result {
    ffi_boundary!(ipc_stream_consumer_stop(consumer, deadline_ms) {
        // SAFETY: `consumer` is a live handle (caller contract, NULL checked).
        let c = unsafe { borrow(consumer, "consumer") }?;
        let inside = c.on_consumer_thread();
        let deadline = Instant::now() + Duration::from_millis(deadline_ms);
        loop {
            // `stop(ZERO)` raises the flag and joins the thread if it has finished. The lock
            // is not held while waiting, so that the handler may call
            // ipc_stream_consumer_stats() meanwhile.
            let r = c.inner.lock().unwrap_or_else(|p| p.into_inner()).stop(Duration::ZERO);
            if r.is_ok() || inside {
                // From the handler: waiting would wait for this very thread.
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ipc_result::IPC_ERR_TIMEOUT,
                    format!("the consumer was still running after {deadline_ms} ms"),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

/// The consumer's counters: entries acknowledged, handler failures, entries claimed, and
/// entries dead-lettered.
///
/// Output: on `IPC_OK`, `*out`. Untouched otherwise.
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
        // SAFETY: `consumer` is a live handle (caller contract, NULL checked).
        let c = unsafe { borrow(consumer, "consumer") }?;
        let s = c.inner.lock().unwrap_or_else(|p| p.into_inner()).stats();
        let stats = ipc_consumer_stats {
            acked: s.acked,
            failed: s.failed,
            claimed: s.claimed,
            dead_lettered: s.dead_lettered,
        };
        // SAFETY: `out` is writable (caller contract, NULL checked).
        unsafe { write_out(out, stats, "out") }
    })
}

/// Stop the consumer and free it. NULL is a no-op.
///
/// Guarantee: after it returns, no handler call runs or will run, and `userdata_free` has
/// run (on this thread). It waits without limit for the running read (at most
/// `block_ms`) and the handler calls of the current batch. Called from inside the
/// consumer's own handler, it returns at once: the rest of the batch is not handed to the
/// handler (those entries stay pending, to be claimed after `min_idle_ms`), and
/// `userdata_free` runs on a library thread after the handler returns.
///
/// Thread safety: every other call on it must have returned (except the running handler
/// that frees it); the handle must not be used afterwards. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_stream_consumer_free(consumer: *mut ipc_stream_consumer) {
    ffi_boundary!(ipc_stream_consumer_free(#[nullable] consumer) {
        if consumer.is_null() {
            return Ok(());
        }
        // SAFETY: a handle from ipc_stream_consume, freed once with no other call running
        // on it (caller contract).
        let c = unsafe { Box::from_raw(consumer) };
        if c.on_consumer_thread() {
            c.stopped.stop();
            let _ = c.inner.lock().unwrap_or_else(|p| p.into_inner()).stop(Duration::ZERO);
            // This thread is the consumer's: wait for it on another one.
            let inner = c.inner;
            let spawned = std::thread::Builder::new()
                .name("redipc-stream-free".into())
                .spawn(move || stop_and_drop(inner));
            if let Err(e) = spawned {
                return Err(Error::new(ipc_result::IPC_ERR_UNSUPPORTED, format!("cannot start a thread: {e}")));
            }
            return Ok(());
        }
        stop_and_drop(c.inner);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["0", "$", "1-0", "1700000000000-12", "5"] {
            let s = CString::new(good).unwrap();
            assert!(id_arg(s.as_ptr(), "id", true).is_ok(), "{good}");
        }
        for bad in [
            "", "abc", "1-x", "-1", "1-", ">", "+", "-", "1-*", "0-0-0", " 1",
        ] {
            let s = CString::new(bad).unwrap();
            assert_eq!(
                id_arg(s.as_ptr(), "id", true).unwrap_err().code(),
                ipc_result::IPC_ERR_INVALID_ARGUMENT,
                "{bad}"
            );
        }
        let s = CString::new("$").unwrap();
        assert!(id_arg(s.as_ptr(), "id", false).is_err());
    }

    #[test]
    fn consumer_options_have_minimums() {
        let d = ipc_consumer_options::default();
        assert!(d.to_core().is_ok());
        for bad in [
            ipc_consumer_options { count: 0, ..d },
            ipc_consumer_options { block_ms: 0, ..d },
            ipc_consumer_options {
                min_idle_ms: 0,
                ..d
            },
            ipc_consumer_options {
                max_deliveries: 0,
                ..d
            },
        ] {
            assert!(bad.to_core().is_err(), "{bad:?}");
        }
    }
}

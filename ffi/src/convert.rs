//! Conversions between C arguments and Rust values, and the caller's `userdata`.
//!
//! Arguments: `bytes!(ptr, len)` (a byte string), `text!(ptr)` (NUL-terminated UTF-8),
//! `byte_list!(ptrs, lens, n)` (an array of byte strings), `callback!(cb)`; outputs:
//! `put!(out, value)`. Each refuses what it cannot convert with `IPC_ERR_NULL_ARG` or
//! `IPC_ERR_INVALID_ARGUMENT`; whether a value is *allowed* is the core's decision.

use std::ffi::{CStr, CString, c_char, c_void};
use std::time::Duration;

use crate::error::{Error, ipc_result};

/// Frees the `userdata` of a callback; see each function taking one for when it runs.
pub type ipc_userdata_free_cb = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// The bytes `(ptr, len)` of a byte-string argument (`?`-style).
macro_rules! bytes {
    ($ptr:ident, $len:ident) => {
        // SAFETY: C's contract (top of the header): `ptr` is readable for `len` bytes that
        // stay unchanged during the call.
        unsafe { $crate::convert::bytes($ptr, $len, stringify!($ptr)) }?
    };
}

/// A NUL-terminated UTF-8 string argument (`?`-style).
macro_rules! text {
    ($ptr:ident) => {
        // SAFETY: C's contract: `ptr` is a NUL-terminated string unchanged during the call.
        unsafe { $crate::convert::text($ptr, stringify!($ptr)) }?
    };
}

/// An array of `n` byte strings `(ptrs, lens, n)` (`?`-style); see [`byte_list`].
macro_rules! byte_list {
    ($ptrs:ident, $lens:ident, $n:ident) => {
        // SAFETY: C's contract: `ptrs` (and `lens` unless NULL) hold `n` elements, each
        // readable for its length (or NUL-terminated), unchanged during the call.
        unsafe { $crate::convert::byte_list($ptrs, $lens, $n, stringify!($ptrs)) }?
    };
}

/// Write an output parameter (checked for NULL by `ffi_boundary!`).
macro_rules! put {
    ($out:ident, $value:expr) => {{
        let value = $value;
        // SAFETY: `out` is not NULL (checked by the boundary) and valid for a write (C's
        // contract: out-parameters point at writable memory).
        unsafe { $out.write(value) }
    }};
}

/// The function of a callback argument (checked for NULL by `ffi_boundary!`).
macro_rules! callback {
    ($cb:ident) => {
        match $cb {
            Some(f) => f,
            None => return Err($crate::error::Error::null_arg(stringify!($cb))),
        }
    };
}

/// `(ptr, len)` passed by C as a byte slice. `len == 0` needs no readable memory.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes that stay unchanged during `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const c_char,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Error> {
    if ptr.is_null() {
        return Err(Error::null_arg(what));
    }
    if len == 0 {
        return Ok(&[]);
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "`{what}`: length {len} is too large"
        )));
    }
    // SAFETY: not NULL, `len` fits in isize, readable per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// A NUL-terminated UTF-8 string passed by C.
///
/// # Safety
/// `ptr` is NULL or points at a NUL-terminated string that stays unchanged during `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &'static str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::null_arg(what));
    }
    // SAFETY: not NULL and NUL-terminated per the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|e| Error::invalid(format!("`{what}` is not valid UTF-8: {e}")))
}

/// `n` elements passed by C as `(ptr, n)`; `ptr` may be NULL when `n` is 0 (`what` names
/// the array in the NULL error, `count` the count in the size error).
///
/// # Safety
/// `ptr` is NULL or holds `n` elements that stay unchanged during `'a`.
pub(crate) unsafe fn c_slice<'a, T>(
    ptr: *const T,
    n: usize,
    what: &'static str,
    count: &'static str,
) -> Result<&'a [T], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::null_arg(what));
    }
    if n > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Error::invalid(format!("`{count}`: count {n} is too large")));
    }
    // SAFETY: not NULL and holds `n` elements (caller contract); the size fits.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// `n` byte strings passed by C as `(ptrs, lens, n)`: element `i` is `lens[i]` bytes at
/// `ptrs[i]`, or, when `lens` is NULL, the NUL-terminated string `ptrs[i]`. `ptrs` may be
/// NULL when `n` is 0.
///
/// # Safety
/// `ptrs` is NULL or holds `n` pointers; `lens` is NULL or holds `n` lengths; each element
/// is readable for its length (or NUL-terminated), unchanged during `'a`.
pub(crate) unsafe fn byte_list<'a>(
    ptrs: *const *const c_char,
    lens: *const usize,
    n: usize,
    what: &'static str,
) -> Result<Vec<&'a [u8]>, Error> {
    // SAFETY: `ptrs` holds `n` pointers and `lens` (when not NULL) `n` lengths, per the
    // caller; the sizes of both fit once that of `ptrs` does (the same element size).
    let ptrs = unsafe { c_slice(ptrs, n, what, what) }?;
    let lens = (!lens.is_null()).then(|| unsafe { std::slice::from_raw_parts(lens, n) });
    ptrs.iter()
        .enumerate()
        .map(|(i, &p)| {
            if p.is_null() {
                return Err(Error::new(
                    ipc_result::IPC_ERR_NULL_ARG,
                    format!("argument `{what}[{i}]` is NULL"),
                ));
            }
            match lens {
                // SAFETY: readable for `lens[i]` bytes per the caller.
                Some(lens) => unsafe { bytes(p, lens[i], what) },
                // SAFETY: NUL-terminated per the caller.
                None => Ok(unsafe { CStr::from_ptr(p) }.to_bytes()),
            }
        })
        .collect()
}

/// Milliseconds from C as a `Duration`.
pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// `(ptr, len)` for bytes handed to C: never NULL, even when empty.
pub(crate) fn present(b: &[u8]) -> (*const c_char, usize) {
    if b.is_empty() {
        (c"".as_ptr(), 0)
    } else {
        (b.as_ptr().cast(), b.len())
    }
}

/// Text for C, NUL-terminated (a NUL inside is shown as `\0`).
pub(crate) fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

/// Hand a buffer to C: the caller frees it with `ipc_buf_free(ptr, len)`.
pub(crate) fn into_buf(v: Vec<u8>) -> (*mut c_char, usize) {
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b).cast::<c_char>(), len)
}

/// The caller's `userdata`, handed to the library's threads on the caller's word (every
/// function taking one documents the threads its callbacks run on).
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the C caller promises that `userdata` may be used from the library's threads
// (documented on each function taking one); the library never dereferences it.
unsafe impl Send for UserData {}
// SAFETY: as above; the library only copies the pointer.
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer. (A method, so that closures capture the whole `Send` wrapper.)
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }

    /// What calls `free(userdata)`: hand it to the core's `on_stopped` / `on_closed` /
    /// `on_removed`, which run it exactly once, after the last callback returned.
    pub(crate) fn release(self, free: ipc_userdata_free_cb) -> impl FnOnce() + Send + 'static {
        move || {
            if let Some(free) = free {
                // SAFETY: the caller gave `free` to be called once with `userdata`, from
                // any thread; the core runs this action once.
                unsafe { free(self.ptr()) }
            }
        }
    }
}

/// One field of a stream entry or of a hash: a name and a value, both byte strings.
///
/// As input (`ipc_stream_publish()`, `ipc_hash_set_many()`, `ipc_hash_replace_all()`) the
/// caller owns the bytes; neither pointer may be NULL, even for length 0 (pass `""`). As
/// output (`ipc_entry.fields`, `ipc_instance.metadata`) the library owns them: they live as
/// long as the entry (or instance), and are never NULL.
#[cfg(any(feature = "streams", feature = "state", feature = "registry"))]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ipc_field {
    /// The field name.
    pub name: *const c_char,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// The value.
    pub value: *const c_char,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// A field as `(name, value)` byte strings.
#[cfg(any(feature = "streams", feature = "state"))]
pub(crate) type FieldPair<'a> = (&'a [u8], &'a [u8]);

/// `n` fields passed by C (`fields` may be NULL when `n` is 0) as byte-string pairs.
///
/// # Safety
/// `fields` is NULL or holds `n` fields whose bytes are readable during `'a`.
#[cfg(any(feature = "streams", feature = "state"))]
pub(crate) unsafe fn fields_arg<'a>(
    fields: *const ipc_field,
    n: usize,
) -> Result<Vec<FieldPair<'a>>, Error> {
    // SAFETY: NULL or `n` fields (caller contract).
    let list = unsafe { c_slice(fields, n, "fields", "n") }?;
    list.iter()
        .map(|f| {
            let (name, name_len, value, value_len) = (f.name, f.name_len, f.value, f.value_len);
            Ok((bytes!(name, name_len), bytes!(value, value_len)))
        })
        .collect()
}

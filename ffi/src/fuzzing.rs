//! Internals for the fuzz targets in `fuzz/` (the `fuzzing` feature; not part of the C API):
//! the C-argument conversions of [`crate::convert`] and the reply tree of [`crate::reply`],
//! which the exported functions reach only with a live client.

use std::ffi::{CString, c_char};

use crate::reply::ipc_reply;

/// The error of a conversion: its `ipc_result` code's name and its message.
pub type Failure = (&'static str, String);

fn failure(e: crate::error::Error) -> Failure {
    (
        e.code().name().to_str().unwrap_or("?"),
        e.message().to_owned(),
    )
}

/// `bytes!(ptr, len)`.
///
/// # Safety
/// As `convert::bytes`: `ptr` is NULL or readable for `len` bytes during `'a`.
pub unsafe fn bytes<'a>(ptr: *const c_char, len: usize) -> Result<&'a [u8], Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { crate::convert::bytes(ptr, len, "arg") }.map_err(failure)
}

/// `text!(ptr)`.
///
/// # Safety
/// As `convert::text`: `ptr` is NULL or a NUL-terminated string alive during `'a`.
pub unsafe fn text<'a>(ptr: *const c_char) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { crate::convert::text(ptr, "arg") }.map_err(failure)
}

/// `byte_list!(ptrs, lens, n)`.
///
/// # Safety
/// As `convert::byte_list`.
pub unsafe fn byte_list<'a>(
    ptrs: *const *const c_char,
    lens: *const usize,
    n: usize,
) -> Result<Vec<&'a [u8]>, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { crate::convert::byte_list(ptrs, lens, n, "args") }.map_err(failure)
}

/// Text for C (`convert::c_text`).
pub fn c_text(text: &str) -> CString {
    crate::convert::c_text(text)
}

/// `(ptr, len)` of bytes handed to C (`convert::present`).
pub fn present(b: &[u8]) -> (*const c_char, usize) {
    crate::convert::present(b)
}

/// A buffer handed to C (`convert::into_buf`), freed with `ipc_buf_free`.
pub fn into_buf(v: Vec<u8>) -> (*mut c_char, usize) {
    crate::convert::into_buf(v)
}

/// A reply of the core as a root `ipc_reply` (freed with `ipc_reply_free`).
pub fn new_reply(reply: redipc::Reply) -> *mut ipc_reply {
    crate::reply::new_reply(reply)
}

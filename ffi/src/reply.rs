//! `ipc_reply`: one server reply as a read-only tree, and its accessors.
//!
//! A `redipc::Reply` is converted once, when the call returns, into a tree of
//! `ipc_reply` nodes: every element lives in a boxed slice of its parent that is never
//! changed afterwards, so the element pointers handed to C stay valid (and equal) for as
//! long as the root lives.

use std::ffi::{c_char, c_int};

use redipc::Reply;

use crate::error::{Error, ipc_result};
use crate::handle::{as_const_handle, to_boxed};

/// The type of an `ipc_reply`. The numbers are stable.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ipc_reply_kind {
    /// The null reply: a missing key (RESP2 `$-1`/`*-1`, RESP3 `_`).
    IPC_REPLY_NIL = 0,
    /// An integer: `ipc_reply_integer()`.
    IPC_REPLY_INT = 1,
    /// A bulk string, binary-safe: `ipc_reply_string()`.
    IPC_REPLY_BULK = 2,
    /// A status such as `OK` or `PONG`: `ipc_reply_string()`.
    IPC_REPLY_STATUS = 3,
    /// An error reply inside an aggregate (for example one slot of an `EXEC` result);
    /// `ipc_reply_string()` gives its full text, `"CODE message"`. A top-level error reply
    /// is returned as `IPC_ERR_SERVER` instead.
    IPC_REPLY_ERROR = 4,
    /// An array: `ipc_reply_len()` and `ipc_reply_element()`.
    IPC_REPLY_ARRAY = 5,
    /// A RESP3 map: `ipc_reply_len()` is twice the number of pairs and
    /// `ipc_reply_element()` alternates key, value, key, value, in the server's order.
    IPC_REPLY_MAP = 6,
    /// A RESP3 set: as an array.
    IPC_REPLY_SET = 7,
    /// A RESP3 double: `ipc_reply_double()`.
    IPC_REPLY_DOUBLE = 8,
    /// A RESP3 boolean: `ipc_reply_bool()`.
    IPC_REPLY_BOOL = 9,
    /// A RESP3 big number, as its decimal text: `ipc_reply_string()`.
    IPC_REPLY_BIGNUMBER = 10,
    /// A RESP3 verbatim string: `ipc_reply_string()` gives the text without its format.
    IPC_REPLY_VERBATIM = 11,
    /// A RESP3 push: as an array whose first element is the kind (`"message"`,
    /// `"invalidate"`, ...) as a bulk string.
    IPC_REPLY_PUSH = 12,
}

impl ipc_reply_kind {
    const ALL: [ipc_reply_kind; 13] = [
        ipc_reply_kind::IPC_REPLY_NIL,
        ipc_reply_kind::IPC_REPLY_INT,
        ipc_reply_kind::IPC_REPLY_BULK,
        ipc_reply_kind::IPC_REPLY_STATUS,
        ipc_reply_kind::IPC_REPLY_ERROR,
        ipc_reply_kind::IPC_REPLY_ARRAY,
        ipc_reply_kind::IPC_REPLY_MAP,
        ipc_reply_kind::IPC_REPLY_SET,
        ipc_reply_kind::IPC_REPLY_DOUBLE,
        ipc_reply_kind::IPC_REPLY_BOOL,
        ipc_reply_kind::IPC_REPLY_BIGNUMBER,
        ipc_reply_kind::IPC_REPLY_VERBATIM,
        ipc_reply_kind::IPC_REPLY_PUSH,
    ];

    /// The name as written in C: `"IPC_REPLY_NIL"`, ...
    pub fn name(self) -> &'static std::ffi::CStr {
        match self {
            ipc_reply_kind::IPC_REPLY_NIL => c"IPC_REPLY_NIL",
            ipc_reply_kind::IPC_REPLY_INT => c"IPC_REPLY_INT",
            ipc_reply_kind::IPC_REPLY_BULK => c"IPC_REPLY_BULK",
            ipc_reply_kind::IPC_REPLY_STATUS => c"IPC_REPLY_STATUS",
            ipc_reply_kind::IPC_REPLY_ERROR => c"IPC_REPLY_ERROR",
            ipc_reply_kind::IPC_REPLY_ARRAY => c"IPC_REPLY_ARRAY",
            ipc_reply_kind::IPC_REPLY_MAP => c"IPC_REPLY_MAP",
            ipc_reply_kind::IPC_REPLY_SET => c"IPC_REPLY_SET",
            ipc_reply_kind::IPC_REPLY_DOUBLE => c"IPC_REPLY_DOUBLE",
            ipc_reply_kind::IPC_REPLY_BOOL => c"IPC_REPLY_BOOL",
            ipc_reply_kind::IPC_REPLY_BIGNUMBER => c"IPC_REPLY_BIGNUMBER",
            ipc_reply_kind::IPC_REPLY_VERBATIM => c"IPC_REPLY_VERBATIM",
            ipc_reply_kind::IPC_REPLY_PUSH => c"IPC_REPLY_PUSH",
        }
    }

    fn text(self) -> &'static str {
        self.name().to_str().unwrap_or("IPC_REPLY_?")
    }
}

/// One reply of the server, returned by `ipc_command()`, `ipc_batch_exec()`,
/// `ipc_transaction()`, ...
///
/// Owns the whole reply as a read-only tree (converted from a `redipc::Reply` when the call
/// returned). The root is owned by the caller and freed with `ipc_reply_free()`; elements
/// (`ipc_reply_element()`) are borrowed from their root, stay valid until the root is
/// freed, and are never freed themselves.
///
/// Thread safety: nothing changes a reply after it is made, so several threads may read
/// one at the same time, but `ipc_reply_free()` must not overlap any other use.
pub struct ipc_reply {
    _private: [u8; 0],
}
box_castable!(ipc_reply => Node);

/// Hand a reply of the core to C as a root `ipc_reply` (freed with `ipc_reply_free()`).
pub(crate) fn new_reply(reply: Reply) -> *mut ipc_reply {
    let mut node = Node::convert(reply);
    node.root = true;
    to_boxed(node)
}

/// A node of a reply tree.
pub(crate) struct Node {
    kind: ipc_reply_kind,
    value: Value,
    /// Whether this node is a root handed to C (only roots may be freed).
    root: bool,
}

enum Value {
    None,
    Int(i64),
    Double(f64),
    Bool(bool),
    Bytes(Box<[u8]>),
    Elements(Box<[Node]>),
}

impl Node {
    fn new(kind: ipc_reply_kind, value: Value) -> Node {
        Node {
            kind,
            value,
            root: false,
        }
    }

    fn elements(kind: ipc_reply_kind, items: impl IntoIterator<Item = Reply>) -> Node {
        let elems: Box<[Node]> = items.into_iter().map(Node::convert).collect();
        Node::new(kind, Value::Elements(elems))
    }

    fn bytes(kind: ipc_reply_kind, b: impl Into<Vec<u8>>) -> Node {
        Node::new(kind, Value::Bytes(b.into().into_boxed_slice()))
    }

    fn convert(reply: Reply) -> Node {
        use ipc_reply_kind as K;
        match reply {
            Reply::Nil => Node::new(K::IPC_REPLY_NIL, Value::None),
            Reply::Int(i) => Node::new(K::IPC_REPLY_INT, Value::Int(i)),
            Reply::Double(d) => Node::new(K::IPC_REPLY_DOUBLE, Value::Double(d)),
            Reply::Bool(b) => Node::new(K::IPC_REPLY_BOOL, Value::Bool(b)),
            Reply::Bulk(b) => Node::bytes(K::IPC_REPLY_BULK, b),
            Reply::Status(s) => Node::bytes(K::IPC_REPLY_STATUS, s),
            Reply::BigNumber(s) => Node::bytes(K::IPC_REPLY_BIGNUMBER, s),
            Reply::Verbatim { text, .. } => Node::bytes(K::IPC_REPLY_VERBATIM, text),
            Reply::Error(e) => {
                let text = if e.message.is_empty() {
                    e.code
                } else {
                    format!("{} {}", e.code, e.message)
                };
                Node::bytes(K::IPC_REPLY_ERROR, text)
            }
            Reply::Array(v) => Node::elements(K::IPC_REPLY_ARRAY, v),
            Reply::Set(v) => Node::elements(K::IPC_REPLY_SET, v),
            Reply::Map(pairs) => Node::elements(
                K::IPC_REPLY_MAP,
                pairs.into_iter().flat_map(|(k, v)| [k, v]),
            ),
            Reply::Push { kind, data } => Node::elements(
                K::IPC_REPLY_PUSH,
                std::iter::once(Reply::Bulk(kind.into_bytes())).chain(data),
            ),
            // `Reply` is non-exhaustive: a type added later is shown as its debug text.
            other => Node::bytes(K::IPC_REPLY_STATUS, format!("{other:?}")),
        }
    }

    fn mismatch(&self, wanted: &str) -> Error {
        Error::invalid(format!("the reply is {}, not {wanted}", self.kind.text()))
    }
}

/// The type of `reply`.
///
/// Errors: returns `IPC_REPLY_NIL` (and sets the last error) if `reply` is NULL.
///
/// Thread safety: see `ipc_reply`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_type(reply: *const ipc_reply) -> ipc_reply_kind {
    ffi_boundary!(ipc_reply_type(reply) {
        Ok(try_ref!(reply).kind)
    })
}

/// The name of a reply type as written in this header: `"IPC_REPLY_NIL"`, ...;
/// `"IPC_REPLY_UNKNOWN"` for a number that is not a reply type.
///
/// Takes an `int` so that any number is safe to pass; an `ipc_reply_kind` converts to it.
///
/// Lifetime: a static string, never NULL. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ipc_reply_kind_name(kind: c_int) -> *const c_char {
    ffi_boundary!(ipc_reply_kind_name(kind) {
        Ok(ipc_reply_kind::ALL
            .iter()
            .find(|k| **k as c_int == kind)
            .map_or(c"IPC_REPLY_UNKNOWN", |k| k.name())
            .as_ptr())
    })
}

/// The value of an `IPC_REPLY_INT` reply.
///
/// Output: on `IPC_OK`, `*out` is the integer; untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if the reply is of another type
/// (the message names its type).
///
/// Thread safety: see `ipc_reply`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_integer(reply: *const ipc_reply, out: *mut i64) -> ipc_result {
    ffi_boundary!(ipc_reply_integer(reply, out) {
        let r = try_ref!(reply);
        let Value::Int(i) = r.value else { return Err(r.mismatch("IPC_REPLY_INT")) };
        put!(out, i);
        Ok(())
    })
}

/// The value of an `IPC_REPLY_DOUBLE` reply (RESP3; for example `ZSCORE`, `ZINCRBY`).
///
/// Output: on `IPC_OK`, `*out` is the number; untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if the reply is of another type
/// (RESP2 sends doubles as bulk strings).
///
/// Thread safety: see `ipc_reply`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_double(reply: *const ipc_reply, out: *mut f64) -> ipc_result {
    ffi_boundary!(ipc_reply_double(reply, out) {
        let r = try_ref!(reply);
        let Value::Double(d) = r.value else { return Err(r.mismatch("IPC_REPLY_DOUBLE")) };
        put!(out, d);
        Ok(())
    })
}

/// The value of an `IPC_REPLY_BOOL` reply (RESP3).
///
/// Output: on `IPC_OK`, `*out` is the boolean; untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if the reply is of another type.
///
/// Thread safety: see `ipc_reply`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_bool(reply: *const ipc_reply, out: *mut bool) -> ipc_result {
    ffi_boundary!(ipc_reply_bool(reply, out) {
        let r = try_ref!(reply);
        let Value::Bool(b) = r.value else { return Err(r.mismatch("IPC_REPLY_BOOL")) };
        put!(out, b);
        Ok(())
    })
}

/// The bytes of a string-like reply: `IPC_REPLY_BULK`, `IPC_REPLY_STATUS`,
/// `IPC_REPLY_VERBATIM` (the text), `IPC_REPLY_BIGNUMBER` (decimal digits) or
/// `IPC_REPLY_ERROR` (`"CODE message"`). Binary-safe; the bytes are **not**
/// NUL-terminated.
///
/// Output: on `IPC_OK`, `*ptr` points at `*len` bytes owned by the reply, valid until its
/// root is freed (never NULL, even for an empty string); untouched otherwise.
///
/// Errors: `IPC_ERR_NULL_ARG`; `IPC_ERR_INVALID_ARGUMENT` if the reply is of another type.
///
/// Thread safety: see `ipc_reply`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_string(
    reply: *const ipc_reply,
    ptr: *mut *const c_char,
    len: *mut usize,
) -> ipc_result {
    ffi_boundary!(ipc_reply_string(reply, ptr, len) {
        let r = try_ref!(reply);
        let Value::Bytes(b) = &r.value else { return Err(r.mismatch("a string")) };
        put!(ptr, b.as_ptr().cast());
        put!(len, b.len());
        Ok(())
    })
}

/// The number of elements of an aggregate reply: an array, set or push (its elements) or
/// a map (twice its pairs: keys and values alternate); 0 for every other type.
///
/// Errors: returns 0 (and sets the last error) if `reply` is NULL.
///
/// Thread safety: see `ipc_reply`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_len(reply: *const ipc_reply) -> usize {
    ffi_boundary!(ipc_reply_len(reply) {
        let r = try_ref!(reply);
        Ok(match &r.value {
            Value::Elements(e) => e.len(),
            _ => 0,
        })
    })
}

/// Element `index` of an aggregate reply (see `ipc_reply_len()`); for a map, even indexes
/// are keys and odd ones their values.
///
/// Lifetime: the element is borrowed from the root reply: valid until the root is freed,
/// and the same pointer for every call; never pass it to `ipc_reply_free()`.
///
/// Errors: returns NULL (and sets the last error) if `reply` is NULL, not an aggregate, or
/// `index` is out of range.
///
/// Thread safety: see `ipc_reply`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_element(
    reply: *const ipc_reply,
    index: usize,
) -> *const ipc_reply {
    ffi_boundary!(ipc_reply_element(reply, index) {
        let r = try_ref!(reply);
        let Value::Elements(e) = &r.value else {
            return Err(r.mismatch("an aggregate (array, map, set, push)"));
        };
        match e.get(index) {
            Some(el) => Ok(as_const_handle(el)),
            None => Err(Error::invalid(format!(
                "index {index} is out of range: the {} has {} elements",
                r.kind.text(),
                e.len()
            ))),
        }
    })
}

/// Free a reply (a root, as returned by `ipc_command()` and the other functions that
/// return one), with all its elements. NULL is a no-op, and
/// so is an element pointer (elements belong to their root; the last error says so).
///
/// Thread safety: no other thread may use the reply or its elements during or after this
/// call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ipc_reply_free(reply: *mut ipc_reply) {
    ffi_boundary!(ipc_reply_free(#[nullable] reply) {
        if !reply.is_null() && !try_ref!(reply).root {
            return Err(Error::invalid(
                "this is an element of a reply (from ipc_reply_element); free its root instead",
            ));
        }
        free_box!(reply)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    #[test]
    fn maps_flatten_and_elements_are_stable() {
        let reply = Reply::Map(vec![
            (Reply::Bulk(b"f1".to_vec()), Reply::Bulk(b"v1".to_vec())),
            (Reply::Bulk(b"f2".to_vec()), Reply::Int(7)),
        ]);
        let root = new_reply(reply);
        // SAFETY: `root` is a live root reply, freed at the end.
        unsafe {
            assert_eq!(ipc_reply_type(root), ipc_reply_kind::IPC_REPLY_MAP);
            assert_eq!(ipc_reply_len(root), 4);
            let e0 = ipc_reply_element(root, 0);
            assert_eq!(e0, ipc_reply_element(root, 0));
            let (mut p, mut n) = (ptr::null(), 0usize);
            assert_eq!(ipc_reply_string(e0, &mut p, &mut n), ipc_result::IPC_OK);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), b"f1");
            let mut i = 0i64;
            assert_eq!(
                ipc_reply_integer(ipc_reply_element(root, 3), &mut i),
                ipc_result::IPC_OK
            );
            assert_eq!(i, 7);
            assert!(ipc_reply_element(root, 4).is_null());
            assert_eq!(
                ipc_reply_integer(e0, &mut i),
                ipc_result::IPC_ERR_INVALID_ARGUMENT
            );
            let msg = std::ffi::CStr::from_ptr(crate::error::ipc_last_error_message());
            assert!(msg.to_string_lossy().contains("IPC_REPLY_BULK"), "{msg:?}");
            // Freeing an element is refused; the root frees everything.
            ipc_reply_free(e0.cast_mut());
            ipc_reply_free(root);
            ipc_reply_free(ptr::null_mut());
        }
    }

    #[test]
    fn errors_and_pushes_keep_their_text() {
        let reply = Reply::Array(vec![
            Reply::Error(redipc::ServerError {
                code: "MYERR".into(),
                message: "boom".into(),
            }),
            Reply::Push {
                kind: "message".into(),
                data: vec![Reply::Bulk(b"ch".to_vec())],
            },
        ]);
        let root = new_reply(reply);
        // SAFETY: `root` is a live root reply, freed at the end.
        unsafe {
            let (mut p, mut n) = (ptr::null(), 0usize);
            let e = ipc_reply_element(root, 0);
            assert_eq!(ipc_reply_type(e), ipc_reply_kind::IPC_REPLY_ERROR);
            assert_eq!(ipc_reply_string(e, &mut p, &mut n), ipc_result::IPC_OK);
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), b"MYERR boom");
            let push = ipc_reply_element(root, 1);
            assert_eq!(ipc_reply_len(push), 2);
            assert_eq!(
                ipc_reply_string(ipc_reply_element(push, 0), &mut p, &mut n),
                ipc_result::IPC_OK
            );
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), b"message");
            ipc_reply_free(root);
        }
    }

    #[test]
    fn kind_names() {
        for (i, k) in ipc_reply_kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
            // SAFETY: ipc_reply_kind_name returns a static NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr(ipc_reply_kind_name(i as c_int)) };
            assert_eq!(name, k.name());
        }
        // SAFETY: as above.
        let name = unsafe { std::ffi::CStr::from_ptr(ipc_reply_kind_name(13)) };
        assert_eq!(name, c"IPC_REPLY_UNKNOWN");
    }
}

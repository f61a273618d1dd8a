//! Ownership of handles, declared once per handle (model: rustls-ffi `librustls/src/ffi.rs`).
//!
//! A handle is an opaque C struct (`pub struct ipc_client { _private: [u8; 0] }`, written out
//! so that cbindgen sees it and its documentation) whose pointer is really a pointer to a
//! Rust value, its [`Castable::RustType`]. One line next to the struct says how C holds it:
//!
//! - `box_castable!(ipc_client => redipc::blocking::Client)`: C owns a `Box` of the value,
//!   made by [`to_boxed`] and freed by its `_free` function with [`free_box`];
//! - `ref_castable!(ipc_watch => redipc::blocking::WatchSession)`: C borrows a value the
//!   library owns, for the duration of a callback ([`as_handle`]); it never frees it.
//!
//! Every function borrows its handles back with `try_ref!(ptr)` / `try_mut!(ptr)` (NULL is
//! refused by `ffi_boundary!` before the body runs), so no function repeats the casts.

use crate::error::Error;

/// C owns a `Box` of the handle's Rust value (made by [`to_boxed`], freed by [`free_box`]).
pub(crate) struct OwnershipBox;

/// C borrows the handle's Rust value from the library for the duration of a call.
pub(crate) struct OwnershipRef;

/// The relation between an opaque C handle type and the Rust value behind its pointers.
pub(crate) trait Castable {
    /// [`OwnershipBox`] or [`OwnershipRef`]: what the C pointer stands for.
    type Ownership;
    /// The Rust value behind the pointer.
    type RustType;
}

/// Declare that C owns a `Box` of `$rust` through `*mut $handle` / `*const $handle`.
macro_rules! box_castable {
    ($handle:ident => $rust:ty) => {
        impl $crate::handle::Castable for $handle {
            type Ownership = $crate::handle::OwnershipBox;
            type RustType = $rust;
        }
    };
}

/// Declare that C borrows a `$rust` owned by the library through `*mut $handle`.
macro_rules! ref_castable {
    ($handle:ident => $rust:ty) => {
        impl $crate::handle::Castable for $handle {
            type Ownership = $crate::handle::OwnershipRef;
            type RustType = $rust;
        }
    };
}

/// Borrow the value behind a handle argument (`?`-style: NULL gives `IPC_ERR_NULL_ARG`).
///
/// The caller's contract (stated at the top of the header): a handle passed to a function
/// is NULL or a live handle of its type, not freed while the call runs.
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: see the macro's documentation: a live handle of its type (C's contract).
        unsafe { $crate::handle::try_ref($ptr, stringify!($ptr)) }?
    };
}

/// Borrow the value behind a handle argument mutably: as [`try_ref!`], for handles that
/// are used by one thread at a time (their documentation says so).
macro_rules! try_mut {
    ($ptr:ident) => {
        // SAFETY: a live handle of its type, used by this thread only (C's contract).
        unsafe { $crate::handle::try_mut($ptr, stringify!($ptr)) }?
    };
}

/// Free a `box_castable!` handle argument; NULL is a no-op.
macro_rules! free_box {
    ($ptr:ident) => {{
        // SAFETY: NULL or a handle made by this library, freed once, with no other call
        // running on it (C's contract, stated on every `_free` function).
        unsafe { $crate::handle::free_box($ptr) };
        Ok(())
    }};
}

/// The value behind `ptr`.
///
/// # Safety
/// `ptr` is NULL or points at a live `C::RustType` that nothing mutates during `'a`.
pub(crate) unsafe fn try_ref<'a, C: Castable>(
    ptr: *const C,
    what: &'static str,
) -> Result<&'a C::RustType, Error> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.cast::<C::RustType>().as_ref() }.ok_or_else(|| Error::null_arg(what))
}

/// The value behind `ptr`, mutably.
///
/// # Safety
/// As [`try_ref`], and no other reference to the value exists during `'a`.
pub(crate) unsafe fn try_mut<'a, C: Castable>(
    ptr: *mut C,
    what: &'static str,
) -> Result<&'a mut C::RustType, Error> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.cast::<C::RustType>().as_mut() }.ok_or_else(|| Error::null_arg(what))
}

/// Box `value` into a new handle owned by the caller (freed by the handle's `_free`).
pub(crate) fn to_boxed<C: Castable<Ownership = OwnershipBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Free a handle made by [`to_boxed`]; NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or a pointer made by [`to_boxed`] for `C`, freed only this once.
pub(crate) unsafe fn free_box<C: Castable<Ownership = OwnershipBox>>(ptr: *mut C) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `Box::into_raw` in `to_boxed` and is freed once.
        drop(unsafe { Box::from_raw(ptr.cast::<C::RustType>()) });
    }
}

/// A handle lending `value` to C for the duration of a callback.
pub(crate) fn as_handle<C: Castable<Ownership = OwnershipRef>>(value: &mut C::RustType) -> *mut C {
    (value as *mut C::RustType).cast()
}

/// A const handle pointing at `value`, which lives inside a handle C owns (a reply's
/// elements, a list's entries): valid as long as that owner.
pub(crate) fn as_const_handle<C: Castable>(value: &C::RustType) -> *const C {
    (value as *const C::RustType).cast()
}

//! # redipc-ffi — the C API of redipc (`libredipc.so`, `libredipc.a`, `include/redipc.h`)
//!
//! The bindings only convert: every behaviour (lifecycles, retries, defaults, validation,
//! reports) is the core's. A function here turns C arguments into Rust values, calls the
//! core, and turns the result into C values and an `ipc_result`.
//!
//! - [`ffi_boundary!`] wraps every exported body: it clears the thread's last error, refuses
//!   NULL pointer arguments (except those marked `#[nullable]`), catches panics, and turns
//!   the body's `Result` into the C return value, recording the error text of a failure.
//! - [`handle`] declares once per handle what the C pointer owns (`box_castable!`: a
//!   `Box` of a core value; `ref_castable!`: a borrowed one) and the helpers that borrow it
//!   back (`try_ref!`, `try_mut!`) and free it (`free_box`).
//! - [`convert`] turns C arguments into Rust values (`bytes!`, `text!`, `byte_list!`) and
//!   carries `userdata` to the core's `on_stopped`/`on_closed`/`on_removed`.
//!
//! The header is generated from these sources by cbindgen (see `cbindgen.toml`); the doc
//! comment of every exported item is the C documentation.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![allow(non_camel_case_types)]
// The exported functions are `unsafe` because C hands them raw pointers; their contract is
// the C documentation on each function and the pointer rules at the top of the header.
#![allow(clippy::missing_safety_doc)]
// C functions take their arguments flat: (pointer, length) pairs add up.
#![allow(clippy::too_many_arguments)]

/// The one wrapper of every exported body. Use it as the whole body of an `extern "C"`
/// function, naming the function and **all** of its parameters in order; pointer
/// parameters that may be NULL are marked `#[nullable]`:
///
/// ```ignore
/// pub unsafe extern "C" fn ipc_x(client: *const ipc_client, n: usize, out: *mut i64) -> ipc_result {
///     ffi_boundary!(ipc_x(client, n, out) {
///         // the body returns Result<R::Value, Error>; `?` works
///         Ok(())
///     })
/// }
/// ```
///
/// `tests/boundary.rs` checks that every exported function is written this way.
macro_rules! ffi_boundary {
    (@check $arg:ident) => {
        if $crate::boundary::MaybeNull::is_null_arg(&$arg) {
            return Err($crate::error::Error::null_arg(stringify!($arg)));
        }
    };
    (@check #[nullable] $arg:ident) => {
        let _ = &$arg;
    };
    ($name:ident ( $( $(#[$attr:ident])? $arg:ident ),* $(,)? ) $body:block) => {
        $crate::boundary::run(stringify!($name), || -> ::std::result::Result<_, $crate::error::Error> {
            $( $crate::ffi_boundary!(@check $(#[$attr])? $arg); )*
            $body
        })
    };
}
pub(crate) use ffi_boundary;

#[macro_use]
pub mod handle;
#[macro_use]
pub mod convert;

// The modules in the order their items appear in the header.
pub mod version;

pub mod error;

pub mod options;

pub mod report;

pub mod logging;

pub mod client;
/// Redis Cluster helpers: `ipc_keyslot`, `ipc_hash_tag_for_slot`.
pub mod cluster;

pub mod stats;

pub mod commands;

pub mod reply;

pub mod script;

pub mod batch;

pub mod pubsub;

#[cfg(any(feature = "queues", feature = "rpc", feature = "streams"))]
pub mod handler;

#[cfg(feature = "queues")]
pub mod queue;

#[cfg(feature = "rpc")]
pub mod rpc;

#[cfg(feature = "streams")]
pub mod stream;

#[cfg(feature = "state")]
pub mod state;

#[cfg(feature = "cache")]
pub mod cache;

#[cfg(feature = "coordination")]
pub mod lock;

#[cfg(feature = "coordination")]
pub mod ratelimit;

#[cfg(feature = "coordination")]
pub mod semaphore;

#[cfg(feature = "registry")]
pub mod registry;

pub mod keyspace;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

// The arches here and in build.rs (which links with `--wrap=pow`) agree.
#[cfg(all(
    not(miri),
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]
mod nolibm;

pub use client::ipc_client;
pub use error::ipc_result;

/// The machinery behind [`ffi_boundary!`]: return values for failures and the NULL test.
mod boundary {
    use std::ffi::c_char;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use crate::error::{self, Error, ipc_result};
    use crate::reply::{ipc_reply, ipc_reply_kind};

    /// What an exported function returns: its value on success, and what it returns when
    /// it fails (an error code, or a neutral value such as NULL, 0 or false).
    pub trait FfiReturn: Sized {
        /// What the body produces on success.
        type Value;
        /// Whether a call clears the thread's last error when it starts (only calls that
        /// return `ipc_result` do).
        const CLEARS_ERROR: bool = false;
        /// The return value for a success.
        fn ok(v: Self::Value) -> Self;
        /// The return value for a failure with `code`.
        fn failed(code: ipc_result) -> Self;
    }

    impl FfiReturn for ipc_result {
        type Value = ();
        const CLEARS_ERROR: bool = true;
        fn ok(_: ()) -> Self {
            ipc_result::IPC_OK
        }
        fn failed(code: ipc_result) -> Self {
            code
        }
    }

    macro_rules! neutral_on_failure {
        ($($(#[$m:meta])* $t:ty => $v:expr),* $(,)?) => {$(
            $(#[$m])*
            impl FfiReturn for $t {
                type Value = $t;
                fn ok(v: $t) -> Self {
                    v
                }
                fn failed(_: ipc_result) -> Self {
                    $v
                }
            }
        )*};
    }

    neutral_on_failure! {
        () => (),
        bool => false,
        usize => 0,
        ipc_reply_kind => ipc_reply_kind::IPC_REPLY_NIL,
        *const ipc_reply => std::ptr::null(),
        #[cfg(feature = "streams")]
        *const crate::stream::ipc_entry => std::ptr::null(),
        #[cfg(feature = "registry")]
        *const crate::registry::ipc_instance => std::ptr::null(),
        // Strings returned to C are never NULL.
        *const c_char => c"".as_ptr(),
    }

    /// Whether an argument is a NULL pointer; false for every non-pointer type.
    pub trait MaybeNull {
        /// True for a NULL pointer.
        fn is_null_arg(&self) -> bool;
    }

    impl<T> MaybeNull for *const T {
        fn is_null_arg(&self) -> bool {
            self.is_null()
        }
    }

    impl<T> MaybeNull for *mut T {
        fn is_null_arg(&self) -> bool {
            self.is_null()
        }
    }

    macro_rules! never_null {
        ($($t:ty),*) => {$(
            impl MaybeNull for $t {
                fn is_null_arg(&self) -> bool {
                    false
                }
            }
        )*};
    }

    never_null!(bool, i32, u16, u32, i64, u64, usize, f64);

    /// A nullable function pointer (`Option<extern "C" fn ...>`) is NULL when `None`.
    impl<T> MaybeNull for Option<T> {
        fn is_null_arg(&self) -> bool {
            self.is_none()
        }
    }

    /// Run the body of exported function `name`: see [`ffi_boundary!`](crate::ffi_boundary).
    pub fn run<R, F>(name: &'static str, body: F) -> R
    where
        R: FfiReturn,
        F: FnOnce() -> Result<R::Value, Error>,
    {
        if R::CLEARS_ERROR {
            error::clear_last_error();
        }
        // The body only sees raw pointers and values owned by the caller; after a panic
        // nothing it touched is used again by this call, so asserting unwind safety is fine.
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(v)) => R::ok(v),
            Ok(Err(e)) => {
                let code = e.code();
                error::set_last_error(name, e);
                R::failed(code)
            }
            Err(payload) => {
                let e = Error::panic(payload.as_ref());
                // Dropping the payload could itself panic: dropped inside a catch of its own
                // (forgetting it leaked it, ~40 bytes per panic, found under ASan).
                let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
                error::set_last_error(name, e);
                R::failed(ipc_result::IPC_ERR_PANIC)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ipc_last_error_message;
    use std::ffi::CStr;

    fn last_message() -> String {
        // SAFETY: the returned pointer is a NUL-terminated string valid until the next call.
        unsafe { CStr::from_ptr(ipc_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    fn panicking(flag: *const u8) -> ipc_result {
        ffi_boundary!(panicking(flag) {
            panic!("boom {}", flag.is_null());
        })
    }

    fn nullable(p: *const u8, q: *const u8) -> usize {
        ffi_boundary!(nullable(#[nullable] p, q) { Ok(7) })
    }

    #[test]
    fn a_panic_becomes_ipc_err_panic() {
        let x = 1u8;
        assert_eq!(panicking(&x), ipc_result::IPC_ERR_PANIC);
        let msg = last_message();
        assert!(msg.starts_with("panicking: "), "{msg}");
        assert!(msg.contains("boom false"), "{msg}");
    }

    #[test]
    fn null_pointers_are_refused_before_the_body_runs() {
        assert_eq!(panicking(std::ptr::null()), ipc_result::IPC_ERR_NULL_ARG);
        assert_eq!(last_message(), "panicking: argument `flag` is NULL");
        let x = 1u8;
        assert_eq!(nullable(std::ptr::null(), &x), 7);
        assert_eq!(nullable(&x, std::ptr::null()), 0);
        assert_eq!(last_message(), "nullable: argument `q` is NULL");
    }
}

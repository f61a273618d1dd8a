//! The library version: `IPC_VERSION_MAJOR/MINOR/PATCH` and `ipc_version()`.

use std::ffi::c_char;

/// Major version of the header (compare with `ipc_version()` at run time).
pub const IPC_VERSION_MAJOR: u32 = 0;
/// Minor version of the header.
pub const IPC_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const IPC_VERSION_PATCH: u32 = 0;

/// A decimal number at compile time (the pieces of `CARGO_PKG_VERSION`).
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version part is not a number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// cbindgen can only copy literal constants into the header, so the numbers above are
// written by hand; the build fails when they disagree with Cargo's version.
const _: () = assert!(
    IPC_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR"))
        && IPC_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR"))
        && IPC_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
    "IPC_VERSION_* in ffi/src/version.rs must equal the version in Cargo.toml"
);

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version of the library that is running, `"MAJOR.MINOR.PATCH"` (for example
/// `"0.1.0"`); it may differ from the `IPC_VERSION_*` macros of the header a program was
/// compiled with.
///
/// Lifetime: a static string, never NULL. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ipc_version() -> *const c_char {
    ffi_boundary!(ipc_version() { Ok(VERSION.as_ptr().cast::<c_char>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_cargos() {
        // SAFETY: ipc_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(ipc_version()) };
        assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(
            format!("{IPC_VERSION_MAJOR}.{IPC_VERSION_MINOR}.{IPC_VERSION_PATCH}"),
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(redipc::VERSION, env!("CARGO_PKG_VERSION"));
    }
}

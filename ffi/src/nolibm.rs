//! libredipc.so without libm.
//!
//! The one libm function the library calls is `pow`: tokio's multi-thread scheduler (the
//! runtime of `io_threads > 1`) keeps an average of its poll times with it. Linked against
//! libm for that, every C process that loads libredipc maps libm too: ≈ 0.33 MB more resident
//! memory in a program that has no other use for it (docs/SIZE.md, "Idle memory").
//!
//! So the library brings its own: [`pow`] (the `libm` crate's, a port of musl's) under the
//! hidden name `__wrap_pow`, and `build.rs` links the shared library with `--wrap=pow`,
//! which makes the linker bind the scheduler's call to `pow` to `__wrap_pow` as it reads
//! it; nothing refers to libm any more, and it is left out (`--as-needed`; GNU ld and lld
//! alike). Hidden, the function is not exported (the library exports only `ipc_*`):
//! programs and other libraries keep libm's `pow`. The static library is not changed (a
//! program linking libredipc.a links libm as before, and no `pow` of ours can take the
//! place of its own).
//!
//! Only where the directives below are known to work (ELF, no Thumb-style interworking);
//! elsewhere the library links libm as usual.

/// `pow` for the scheduler's average.
extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

// A global, hidden symbol with the name `--wrap=pow` binds to (`build.rs`): an alias of the
// Rust function, so it is neither exported nor mangled.
core::arch::global_asm!(
    ".globl __wrap_pow",
    ".hidden __wrap_pow",
    ".set __wrap_pow, {f}",
    f = sym pow,
);

#[cfg(test)]
mod tests {
    #[test]
    fn pow_is_libm_pow() {
        for (x, y) in [
            (0.9, 3.0),
            (0.9, 0.5),
            (2.0, 10.0),
            (0.9, 1e6),
            (1.0, f64::NAN),
        ] {
            let ours = super::pow(x, y);
            let std = f64::powf(x, y);
            assert!(
                ours == std
                    || (ours.is_nan() && std.is_nan())
                    || (ours - std).abs() <= std.abs() * 1e-15
            );
        }
    }
}

//! Give libredipc.so a SONAME that carries the major version (libredipc.so.0), so programs
//! link against the ABI they were built for and `make install` can ship the usual
//! libredipc.so -> libredipc.so.MAJOR -> libredipc.so.VERSION links.
//!
//! And make the no-install path work: a program linked with `-Ltarget/release -lredipc`
//! asks the loader for the SONAME, so the profile directory gets a link
//! `libredipc.so.MAJOR -> libredipc.so` next to the library cargo builds there
//! (`LD_LIBRARY_PATH=target/release ./app` then runs; CARGO_TARGET_DIR is honoured).

use std::path::{Path, PathBuf};

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libredipc.so.{major}");
        // The library's own `pow`, so it does not need libm (src/nolibm.rs: the same arches).
        let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
        if ["x86_64", "aarch64", "riscv64"].contains(&arch.as_str()) {
            println!("cargo:rustc-cdylib-link-arg=-Wl,--wrap=pow");
        }
        #[cfg(unix)]
        if let Some(dir) = profile_dir() {
            link_soname(&dir, &major);
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    // `make` links the library with this script (Makefile, LINK_ORDER): relink when it changes.
    println!("cargo:rerun-if-changed=link-order.ld");
}

#[cfg_attr(not(unix), allow(dead_code))]
/// The directory cargo puts the library in: OUT_DIR is `<profile dir>/build/<pkg>-<hash>/out`.
fn profile_dir() -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    Some(out.ancestors().nth(3)?.to_path_buf())
}

#[cfg(unix)]
/// `dir/libredipc.so.MAJOR -> libredipc.so` (relative, so the directory may move). The
/// library itself is linked after this runs; until then the link dangles.
fn link_soname(dir: &Path, major: &str) {
    let link = dir.join(format!("libredipc.so.{major}"));
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("libredipc.so")) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink("libredipc.so", &link) {
        println!("cargo:warning=cannot link {}: {e}", link.display());
    }
}

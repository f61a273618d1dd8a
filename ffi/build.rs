//! Give libredipc.so a SONAME that carries the major version (libredipc.so.0), so programs
//! link against the ABI they were built for and `make install` can ship the usual
//! libredipc.so -> libredipc.so.MAJOR -> libredipc.so.VERSION links.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libredipc.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

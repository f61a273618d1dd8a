//! The network layer: our RESP reader (`resp`), one socket and its driver task (`wire`),
//! TLS (`tls`), the command connection with reconnect and the pool of dedicated connections (`conn`),
//! and the process runtime (`runtime`). Nothing here knows about patterns or bindings.

// The cluster router (the `cluster` feature, on by default); without it an uninhabited
// stand-in that refuses a cluster at connect time.
#[cfg(feature = "cluster")]
pub(crate) mod cluster;
#[cfg(not(feature = "cluster"))]
#[path = "no_cluster.rs"]
pub(crate) mod cluster;
pub(crate) mod conn;
pub(crate) mod dial;
pub(crate) mod direct;
pub(crate) mod local;
pub(crate) mod node;
pub(crate) mod plain;
pub(crate) mod resp;
pub(crate) mod runtime;
// Redis Sentinel (the `sentinel` feature, on by default); without it an uninhabited
// stand-in, and sentinel URLs are refused.
#[cfg(feature = "sentinel")]
pub(crate) mod sentinel;
#[cfg(not(feature = "sentinel"))]
#[path = "no_sentinel.rs"]
pub(crate) mod sentinel;
pub(crate) mod spawn;
pub(crate) mod timer;
pub(crate) mod tls;
pub(crate) mod wire;

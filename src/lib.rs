//! # redipc — inter-process communication over Redis
//!
//! One Rust core used from C (`libredipc`), from Python (the `redipc` wheel) and from Rust.
//!
//! ```no_run
//! # fn main() -> redipc::Result<()> {
//! let client = redipc::blocking::Client::connect("redis://127.0.0.1:6379/0", redipc::Options::default())?;
//! client.set("greeting", "hello")?;
//! assert_eq!(client.get("greeting")?.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```
//!
//! The async [`Client`] is the core; [`blocking::Client`] waits on it from synchronous
//! code. Both share one auto-pipelined connection per client, re-established
//! automatically after it drops. See `docs/ARCHITECTURE.md` for the layers.
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod blocking;
mod client;
mod cluster;
mod config;
mod delivery;
mod error;
mod fork;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
mod net;
mod patterns;
mod pubsub;
mod reply;
mod report;
mod stats;
mod taken;

pub use client::{Client, SetOptions};
pub use cluster::{SLOTS, hash_tag_for_slot, keyslot};
pub use config::{
    ClusterMode, DEFAULT_DIRECT_CONNECTIONS, DEFAULT_MAX_REPLY_SIZE, DEFAULT_MAX_VALUE_SIZE,
    MAX_DIRECT_CONNECTIONS, Options, Pem, ReconnectPolicy, TlsOptions,
};
pub use delivery::completions::{Abort, Completions};
pub use delivery::{BatchFn, Handler, Overflow, QueueStats};
pub use error::{Error, ErrorKind, Result};
pub use fork::fork_generation;
pub use net::local::{Finished, LocalWire, Sent};
pub use patterns::batch::{Batch, WatchSession};
pub use patterns::call::Call;
pub use patterns::keyspace::{KeyHandler, KeyspaceWatch};
pub use patterns::lock::{LockGuard, LockOptions};
pub use patterns::queue::{
    DeadLetter, Protocol, QueueCounts, Request, RequestHandler, Worker, WorkerOptions, WorkerStats,
};
pub use patterns::ratelimit::RateLimiter;
pub use patterns::registry::Instance;
pub use patterns::rpc::{CallOptions, RpcHandler, RpcServer};
pub use patterns::script::Script;
pub use patterns::semaphore::{Permit, Semaphore};
pub use patterns::state::{
    EventHandler, FieldHandler, HashWatcher, HashWrite, TimestampFormat, WatchOptions,
};
pub use patterns::stream::{
    ConsumerOptions, ConsumerStats, EntryHandler, PendingInfo, StreamConsumer, StreamEntry,
    StreamFollower,
};
pub use pubsub::group::SubscriptionGroup;
pub use pubsub::{
    Event, EventBatch, Events, Message, SubscribeOptions, Subscription, SubscriptionKind,
};
pub use reply::{Reply, ReplyType, ServerError};
pub use report::{ErrorHook, Report, ReportKind, ReportSource};
pub use stats::{ClientStats, LatencyStats, NodeStats};
pub use taken::Taken;

/// How long dropping a handle that runs handlers (a worker, RPC server, stream consumer or
/// watcher) waits for a running handler: also what the bindings' `stop()` waits by default.
pub const DEFAULT_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The version of this library (`MAJOR.MINOR.PATCH`), from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

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

pub mod blocking;
mod cache;
mod client;
mod config;
mod conn;
mod dispatch;
mod error;
mod group;
mod keyspace;
mod lock;
mod notify;
mod pubsub;
mod queue;
mod reply;
mod resp;
mod rpc;
mod runtime;
mod state;
mod stream;
mod tx;
mod wire;

pub use client::{Client, SetOptions};
pub use config::{DEFAULT_MAX_VALUE_SIZE, Options, ReconnectPolicy};
pub use dispatch::{ErrorHook, Handler, Overflow, QueueStats};
pub use error::{Error, ErrorKind, Result};
pub use group::SubscriptionGroup;
pub use keyspace::{KeyHandler, KeyspaceWatch};
pub use lock::{LockGuard, LockOptions};
pub use pubsub::{Event, Message, SubscribeOptions, Subscription, SubscriptionKind};
pub use queue::{
    DeadLetter, QueueCounts, Request, RequestHandler, Worker, WorkerOptions, WorkerStats,
};
pub use reply::{Reply, ReplyType, ServerError};
pub use rpc::{Call, CallOptions, RpcHandler, RpcServer};
pub use state::{FieldHandler, HashWatcher, WatchOptions};
pub use stream::{
    ConsumerOptions, ConsumerStats, EntryHandler, PendingInfo, StreamConsumer, StreamEntry,
    StreamFollower,
};
pub use tx::{Pipeline, Transaction, WatchSession};

/// The version of this library (`MAJOR.MINOR.PATCH`), from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

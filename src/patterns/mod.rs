//! The IPC patterns, one concept a file, each built on [`crate::Client`]: batches
//! (pipelines and transactions), request queues, RPC, streams, cache, hash state, locks,
//! keyspace events, and the notifier that wakes cache and lock waiters.

pub(crate) mod batch;
pub(crate) mod cache;
pub(crate) mod call;
pub(crate) mod keyspace;
pub(crate) mod lock;
pub(crate) mod notify;
pub(crate) mod queue;
pub(crate) mod ratelimit;
pub(crate) mod registry;
pub(crate) mod rpc;
pub(crate) mod rpc_json;
pub(crate) mod script;
pub(crate) mod semaphore;
pub(crate) mod state;
pub(crate) mod stream;

//! Lua scripts run by SHA: [`Script`] keeps its source and SHA1; [`Client::run_script`]
//! sends `EVALSHA` and, when the server does not know the script (`NOSCRIPT`: after a
//! restart, a failover or `SCRIPT FLUSH`), sends it once more as `EVAL` (which loads it).
//! The first call of a script sends `EVAL` at once, so a fresh script costs one round trip,
//! not two. Every Lua script of the library runs through here.
//!
//! Why scripts and not Redis 7 Functions: functions need `FUNCTION LOAD` before the first
//! call and are replicated as data, so after `FUNCTION FLUSH` (or on a server that never saw
//! them) a call fails until somebody loads them again, and they are shared by every client
//! of the server (two library versions would fight over one library name). A script
//! carries its own source: any call can heal the server, and Redis 6 servers work too.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::reply::Reply;

/// A Lua script, run by SHA with [`Client::run_script`](crate::Client::run_script) (or in a
/// batch with [`Batch::add_script`](crate::Batch::add_script)). Cheap to share: make it once
/// (a `static` with `LazyLock`, or an `Arc`) and run it from anywhere.
#[derive(Debug)]
pub struct Script {
    source: String,
    sha: String,
    /// A call succeeded with it (so `EVALSHA` is worth trying first).
    loaded: AtomicBool,
}

impl Script {
    /// A script with this Lua source.
    pub fn new(source: impl Into<String>) -> Script {
        let source = source.into();
        let sha = sha1_smol::Sha1::from(source.as_bytes())
            .digest()
            .to_string();
        Script {
            source,
            sha,
            loaded: AtomicBool::new(false),
        }
    }

    /// Its SHA1, in hex (what `SCRIPT LOAD` answers).
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// Its source.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    pub(crate) fn set_loaded(&self, on: bool) {
        self.loaded.store(on, Ordering::Relaxed);
    }

    /// The whole command: `EVALSHA sha` when `by_sha`, else `EVAL source`, then the number
    /// of keys, the keys and the arguments.
    pub(crate) fn args<'a>(
        &'a self,
        by_sha: bool,
        numkeys: &'a [u8],
        keys: &'a [impl AsRef<[u8]>],
        args: &'a [impl AsRef<[u8]>],
    ) -> Vec<&'a [u8]> {
        let mut v: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        if by_sha {
            v.push(b"EVALSHA");
            v.push(self.sha.as_bytes());
        } else {
            v.push(b"EVAL");
            v.push(self.source.as_bytes());
        }
        v.push(numkeys);
        v.extend(keys.iter().map(AsRef::as_ref));
        v.extend(args.iter().map(AsRef::as_ref));
        v
    }
}

/// Whether an error is the server saying it does not know a script.
pub(crate) fn is_noscript(e: &Error) -> bool {
    e.code() == Some("NOSCRIPT")
}

client_methods! {
    /// Run `script` with `keys` and `args`: `EVALSHA`, and when the server answers
    /// `NOSCRIPT` (restart, failover, `SCRIPT FLUSH`) the same call once more as `EVAL`,
    /// which loads it again; the caller sees one result either way. A script's own error
    /// is a [`ErrorKind::Server`](crate::ErrorKind::Server) error.
    pub async fn run_script(
        &self,
        script: &Script,
        keys: &[impl AsRef<[u8]>],
        args: &[impl AsRef<[u8]>],
    ) -> Result<Reply> {
        let numkeys = keys.len().to_string();
        let by_sha = script.loaded();
        // One call for the statistics, whether or not it had to be sent again.
        let timer = self.counters().start();
        let send = |by_sha: bool| {
            let args = script.args(by_sha, numkeys.as_bytes(), keys, args);
            async move {
                let cmd = self.build(&args)?;
                match self.conn().send(&cmd).await {
                    Ok(Reply::Error(e)) => Err(Error::from(e)),
                    other => other,
                }
            }
        };
        let result = match send(by_sha).await {
            Err(e) if by_sha && is_noscript(&e) => send(false).await,
            other => other,
        };
        timer.finish(&result);
        let result = result.map_err(|e| e.context(format!("script {}", &script.sha[..8])));
        // A script that compiled is loaded now, whatever it answered.
        let compiled = match &result {
            Ok(_) => true,
            Err(e) => e.code().is_some() && !is_noscript(e) && !e.message().contains("compiling"),
        };
        script.set_loaded(compiled);
        result
    }
}

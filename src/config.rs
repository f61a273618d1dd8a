//! Connection URL parsing and [`Options`].

use std::time::Duration;

/// The pub/sub health check's interval over TCP when none is set.
pub(crate) const DEFAULT_HEALTH_CHECK: Duration = Duration::from_secs(3);

use redis::IntoConnectionInfo;

use crate::error::{Error, Result};
use crate::report::ErrorHook;

pub use crate::net::tls::{Pem, TlsOptions};

pub use crate::net::resp::{DEFAULT_MAX_REPLY_SIZE, DEFAULT_MAX_VALUE_SIZE};

/// How a broken connection is re-established: capped exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// The first delay (default 10 ms).
    pub min_delay: Duration,
    /// The longest delay between attempts (default 2 s).
    pub max_delay: Duration,
    /// Give up after this many attempts (`None`, the default: never give up).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// The delay before attempt number `attempt` (0-based): a random point in
    /// `[d/2, d]` where `d = min(max_delay, min_delay * 2^attempt)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .min_delay
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let half = base / 2;
        let jitter = random_u64() % (half.as_micros().max(1) as u64 + 1);
        half + Duration::from_micros(jitter)
    }
}

/// A random number for jitter (not for secrets): std's hasher keys are random per thread
/// and step per `RandomState`. Without `rand` here, a C library without the patterns
/// (which use `rand` for their ids and tokens) leaves it out: 13 KB (docs/SIZE.md).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Options of a [`Client`](crate::Client); start from [`Options::default`] and chain the
/// builder methods. Values given here override those in the URL. `Debug` does not show
/// the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// Limit on establishing a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Limit on every call, from sending to the reply, including waiting for a reconnect
    /// (default 5 s).
    pub response_timeout: Duration,
    /// Name set with `CLIENT SETNAME` on every connection.
    pub client_name: Option<String>,
    /// Database number (`SELECT`).
    pub database: Option<i64>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// ACL user name for the sentinels of a `redis-sentinel://` URL (default: none).
    pub sentinel_username: Option<String>,
    /// Password of the sentinels of a `redis-sentinel://` URL (default: none; the URL's
    /// credentials are the master's).
    pub sentinel_password: Option<String>,
    /// Prefix of the keys the library itself creates (queues, streams ...), default `ipc:`.
    pub key_prefix: String,
    /// I/O threads of the process-wide runtime (0: the default, 1).
    pub io_threads: usize,
    /// Speak RESP3 (default) or RESP2.
    pub resp3: bool,
    /// Reconnection policy.
    pub reconnect: ReconnectPolicy,
    /// Largest value accepted in one argument; larger ones are refused before anything is
    /// sent. The smaller of this and the server's `proto-max-bulk-len` applies. A reply
    /// announcing a string longer than this (or than 64 KiB, whichever is larger: the
    /// handshake's own replies must fit) is a protocol error (the connection is dropped)
    /// before anything of it is buffered.
    pub max_value_size: usize,
    /// Largest reply accepted (default 1 GiB, at least 64 KiB): a reply, or a pub/sub
    /// message, larger than this is a protocol error that drops that connection (it is
    /// re-established), refused as soon as what has arrived of it grows past the limit,
    /// instead of memory growing with what the server announces.
    pub max_reply_size: usize,
    /// How long the pub/sub connection may be quiet before it is checked with a PING; a
    /// connection that does not answer is declared dead within 1.5 times this (an idle
    /// subscriber wakes twice per interval). `None` (the default): 3 s over TCP, off over a
    /// unix socket, which cannot be half-open (an idle subscriber then never wakes).
    /// `Some(Duration::ZERO)` turns the check off, only over a unix socket (over TCP it is
    /// refused).
    pub health_check_interval: Option<Duration>,
    /// Default length bound of [`crate::Client::stream_publish`] (`MAXLEN ~`); 0 for
    /// unbounded (default 100,000).
    pub stream_maxlen: usize,
    /// Poll mode: handlers run only inside [`crate::Client::poll`] on the host's thread,
    /// never in the background (default off: they run on dispatcher threads).
    pub poll_mode: bool,
    /// Where the [`Report`](crate::Report)s of this client's handles go (workers, RPC
    /// servers, stream consumers, watchers, subscription handlers) when the handle has no
    /// hook of its own; default: none. Every report is logged either way (`log` crate,
    /// target `redipc::report`); nothing is printed.
    pub error_hook: Option<ErrorHook>,
    /// TLS settings, used when the URL is `rediss://` (giving them with another URL is an
    /// error: the connection would not be encrypted).
    pub tls: TlsOptions,
    /// Standalone server or Redis Cluster (default [`ClusterMode::Auto`]: the first node
    /// that answers says).
    pub cluster: ClusterMode,
    /// On a cluster, send read-only commands (`GET`, `HGETALL`, `XRANGE`, ...) to a replica
    /// of their slot's primary (default off). A replica may lag behind its primary: a
    /// read may not see a write that was just acknowledged.
    pub read_from_replicas: bool,
    /// At most this many direct connections per server (default 16, at most
    /// [`MAX_DIRECT_CONNECTIONS`]; 0: none). A blocking caller's single command takes one
    /// nobody else holds and is written and read on the caller's own thread; they are
    /// opened only as concurrent blocking callers overlap (a lone caller has one). Every
    /// other call, and callers beyond this many at once, share the auto-pipelined
    /// connection. A board that counts its server's connections lowers it (0: one
    /// connection per server for commands, whatever the threads).
    pub direct_connections: usize,
}

/// The default of [`Options::direct_connections`].
pub const DEFAULT_DIRECT_CONNECTIONS: usize = 16;
/// The largest [`Options::direct_connections`] accepted.
pub const MAX_DIRECT_CONNECTIONS: usize = 256;

/// Whether a client talks to one server or to a Redis Cluster ([`Options::cluster`]).
///
/// A build without the crate's `cluster` feature (on by default) refuses a cluster with
/// an `Unsupported` error at connect time: `Cluster` always, `Auto` when the node answers
/// with a slot map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClusterMode {
    /// Ask the first node that answers (`CLUSTER SLOTS`: a node of a cluster answers with
    /// the slot map, a standalone server that cluster support is disabled). A `unix://` or
    /// sentinel URL is always standalone.
    #[default]
    Auto,
    /// One server (or the master the sentinels name): no cluster routing.
    Standalone,
    /// A Redis Cluster: connecting to a node that is not in cluster mode is an error.
    Cluster,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("client_name", &self.client_name)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<hidden>"),
            )
            .field("key_prefix", &self.key_prefix)
            .field("io_threads", &self.io_threads)
            .field("resp3", &self.resp3)
            .field("reconnect", &self.reconnect)
            .field("max_value_size", &self.max_value_size)
            .field("max_reply_size", &self.max_reply_size)
            .field("health_check_interval", &self.health_check_interval)
            .field("stream_maxlen", &self.stream_maxlen)
            .field("poll_mode", &self.poll_mode)
            .field("error_hook", &self.error_hook.is_some())
            .field("tls", &self.tls)
            .field("cluster", &self.cluster)
            .field("read_from_replicas", &self.read_from_replicas)
            .field("direct_connections", &self.direct_connections)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            client_name: None,
            database: None,
            username: None,
            password: None,
            sentinel_username: None,
            sentinel_password: None,
            key_prefix: "ipc:".to_string(),
            io_threads: 0,
            resp3: true,
            reconnect: ReconnectPolicy::default(),
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            health_check_interval: None,
            poll_mode: false,
            stream_maxlen: 100_000,
            error_hook: None,
            tls: TlsOptions::default(),
            cluster: ClusterMode::Auto,
            read_from_replicas: false,
            direct_connections: DEFAULT_DIRECT_CONNECTIONS,
        }
    }
}

impl Options {
    /// Set the connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    /// Set the response timeout.
    pub fn response_timeout(mut self, t: Duration) -> Self {
        self.response_timeout = t;
        self
    }
    /// Set the client name.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }
    /// Set the database number.
    pub fn database(mut self, db: i64) -> Self {
        self.database = Some(db);
        self
    }
    /// Set the ACL user name.
    pub fn username(mut self, user: impl Into<String>) -> Self {
        self.username = Some(user.into());
        self
    }
    /// Set the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
    /// Set the ACL user name of the sentinels.
    pub fn sentinel_username(mut self, user: impl Into<String>) -> Self {
        self.sentinel_username = Some(user.into());
        self
    }
    /// Set the password of the sentinels.
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }
    /// Set the key prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }
    /// Set the number of runtime I/O threads (only the first client of a process that
    /// starts the runtime decides it).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n;
        self
    }
    /// Choose RESP3 (`true`) or RESP2.
    pub fn resp3(mut self, on: bool) -> Self {
        self.resp3 = on;
        self
    }
    /// Choose standalone or cluster (default [`ClusterMode::Auto`]).
    pub fn cluster(mut self, mode: ClusterMode) -> Self {
        self.cluster = mode;
        self
    }
    /// On a cluster, read from replicas (see [`Options::read_from_replicas`]).
    pub fn read_from_replicas(mut self, on: bool) -> Self {
        self.read_from_replicas = on;
        self
    }
    /// At most `n` direct connections per server, 0 for none (see
    /// [`Options::direct_connections`]).
    pub fn direct_connections(mut self, n: usize) -> Self {
        self.direct_connections = n;
        self
    }
    /// Set the reconnection policy.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }
    /// Set the largest accepted value size.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }
    /// Set the largest accepted reply size.
    pub fn max_reply_size(mut self, bytes: usize) -> Self {
        self.max_reply_size = bytes;
        self
    }

    /// Set the TLS settings (used with `rediss://` URLs).
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// The limits replies are read with.
    pub(crate) fn limits(&self) -> crate::net::resp::Limits {
        crate::net::resp::Limits {
            value: self.max_value_size.max(crate::net::resp::MIN_REPLY_LIMIT),
            reply: self.max_reply_size,
        }
    }

    /// Set the pub/sub health-check interval (also over a unix socket, where the default
    /// is no check).
    pub fn health_check_interval(mut self, t: Duration) -> Self {
        self.health_check_interval = Some(t);
        self
    }

    /// The health-check interval in effect over a unix socket (`unix`) or TCP
    /// (`Duration::ZERO`: off).
    pub(crate) fn health_check_for(&self, unix: bool) -> Duration {
        match self.health_check_interval {
            Some(t) => t,
            None if unix => Duration::ZERO,
            None => DEFAULT_HEALTH_CHECK,
        }
    }
    /// Set the default stream length bound.
    pub fn stream_maxlen(mut self, n: usize) -> Self {
        self.stream_maxlen = n;
        self
    }
    /// Turn poll mode on or off.
    pub fn poll_mode(mut self, on: bool) -> Self {
        self.poll_mode = on;
        self
    }
    /// Send the reports of this client's handles to `hook` (see
    /// [`error_hook`](Options::error_hook)).
    pub fn error_hook(mut self, hook: impl Fn(&crate::Report) + Send + Sync + 'static) -> Self {
        self.error_hook = Some(std::sync::Arc::new(hook));
        self
    }

    fn validate(&self) -> Result<()> {
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err(Error::invalid("timeouts must be greater than zero"));
        }
        if self.reconnect.min_delay > self.reconnect.max_delay {
            return Err(Error::invalid(
                "reconnect min_delay must not be greater than max_delay",
            ));
        }
        if self.direct_connections > MAX_DIRECT_CONNECTIONS {
            return Err(Error::invalid(format!(
                "direct_connections must be at most {MAX_DIRECT_CONNECTIONS} (0: none), not {}",
                self.direct_connections
            )));
        }
        if let Some(t) = self.health_check_interval
            && !t.is_zero()
            && t < Duration::from_millis(10)
        {
            return Err(Error::invalid(
                "health_check_interval must be at least 10 ms (or 0: off, over a unix socket)",
            ));
        }
        if let Some(name) = &self.client_name
            && (name.is_empty() || name.bytes().any(|b| b <= b' '))
        {
            return Err(Error::invalid(format!(
                "client name {name:?} must be non-empty and contain no spaces or control characters"
            )));
        }
        if matches!(self.database, Some(db) if db < 0) {
            return Err(Error::invalid("database number must not be negative"));
        }
        if self.max_value_size == 0 {
            return Err(Error::invalid("max_value_size must be at least 1 byte"));
        }
        if self.max_reply_size < crate::net::resp::MIN_REPLY_LIMIT {
            return Err(Error::invalid(
                "max_reply_size must be at least 64 KiB (65536 bytes)",
            ));
        }
        Ok(())
    }
}

/// Where to connect, parsed from a URL and merged with [`Options`].
#[derive(Clone)]
pub(crate) struct Target {
    pub info: redis::ConnectionInfo,
    /// `host:port` or the socket path, for messages.
    pub display: String,
    /// TLS, for a `rediss://` URL.
    pub tls: Option<std::sync::Arc<crate::net::tls::Tls>>,
    /// The URL with its password hidden.
    pub url: String,
    /// The sentinels, for a `redis-sentinel://` URL.
    pub sentinel: Option<std::sync::Arc<crate::net::sentinel::Sentinel>>,
    /// The nodes a `redis://` or `rediss://` URL names (`host:port,host:port`), in order:
    /// connections go to the first that answers; empty for a unix socket or sentinels.
    pub seeds: Vec<(String, u16)>,
    /// Send `READONLY` after the handshake (a cluster replica read from).
    pub readonly: bool,
}

impl Target {
    /// The same target at another node (`host:port`): the seed list and sentinels dropped.
    pub(crate) fn at(&self, host: &str, port: u16) -> Target {
        let display = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Target {
            info: self
                .info
                .clone()
                .set_addr(redis::ConnectionAddr::Tcp(host.to_owned(), port)),
            display,
            tls: self.tls.clone(),
            url: self.url.clone(),
            sentinel: None,
            seeds: Vec::new(),
            readonly: false,
        }
    }

    /// Where connections go.
    pub(crate) fn endpoint(&self) -> crate::net::wire::Endpoint {
        crate::net::wire::Endpoint {
            addr: self.info.addr().clone(),
            tls: self.tls.clone(),
            sentinel: self.sentinel.clone(),
        }
    }
}

/// `url` with its password hidden (`redis://user:***@host`, `?pass=***`), for messages: no
/// credential ever appears in an error or a log line.
pub(crate) fn redact(url: &str) -> String {
    // A password may hold any character (`@ / ? # &` too, unescaped by mistake), which makes
    // a URL ambiguous: every span that some reading of it makes a password is hidden (found
    // by fuzz/url: `redis://u:pa/ss@host` was shown whole in the error).
    let mut hide = Vec::new();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        // The user info ends at the last `@`, wherever it is.
        if let Some(at) = url[start..].rfind('@').map(|i| start + i)
            && let Some(colon) = url[start..at].find(':').map(|i| start + i)
        {
            hide.push((colon + 1, at));
        }
    }
    // A `pass=` or `password=` parameter, after any `?` or `&`: its value may hold `&`, so
    // all of the rest is hidden.
    let b = url.as_bytes();
    let query = url.find('?').unwrap_or(url.len());
    if let Some(value) = (query..b.len())
        .filter(|&i| matches!(b[i], b'?' | b'&'))
        .find_map(|i| {
            ["pass=", "password="].iter().find_map(|k| {
                b.get(i + 1..i + 1 + k.len())
                    .filter(|s| s.eq_ignore_ascii_case(k.as_bytes()))
                    .map(|_| i + 1 + k.len())
            })
        })
    {
        hide.push((value, url.len()));
    }
    hide.sort_unstable();
    let (mut out, mut p) = (String::new(), 0);
    for (from, to) in hide {
        if from >= p {
            out.push_str(&url[p..from]);
            out.push_str("***");
        }
        p = p.max(to);
    }
    out.push_str(&url[p..]);
    out
}

/// Parse `redis://[user:pass@]host[:port][/db]`, `rediss://` (the same over TLS, see
/// [`Options::tls`]), `unix:///path[?db=N]` (also `redis+unix://`).
pub(crate) fn parse_url(url: &str, opts: &Options) -> Result<Target> {
    opts.validate()?;
    let shown = redact(url);
    let url_for_parse = url;
    let url = shown.clone();
    let url = url.as_str();
    // Only what can be a scheme (RFC 3986: a letter, then letters, digits, `+ - .`) is one;
    // anything else before `://` may hold a password (found by fuzz/url).
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .filter(|s| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
    let (tls, sentinel) = match scheme.as_deref() {
        Some("redis") | Some("unix") | Some("redis+unix") => (false, false),
        Some("rediss") => (true, false),
        Some("redis-sentinel") => (false, true),
        Some("rediss-sentinel") => (true, true),
        Some(other) => {
            return Err(Error::invalid(format!(
                "invalid URL {url:?}: unknown scheme {other:?} (use redis://host:port/db, rediss:// for TLS, redis-sentinel://host:26379,host2:26379/db#master, or unix:///path/to.sock)"
            )));
        }
        // Not a URL at all (it is not repeated: it might be a password given by mistake).
        None => {
            return Err(Error::invalid(
                "invalid URL: it has no scheme; expected redis://host:port/db, rediss:// for TLS, or unix:///path/to.sock",
            ));
        }
    };
    if !sentinel && (opts.sentinel_username.is_some() || opts.sentinel_password.is_some()) {
        return Err(Error::invalid(format!(
            "sentinel credentials are set but the URL {url:?} is not redis-sentinel://"
        )));
    }
    if !tls && opts.tls.is_set() {
        return Err(Error::invalid(format!(
            "TLS options are set but the URL {url:?} is not rediss://: the connection would not be encrypted"
        )));
    }
    // A list of nodes (`redis://h1:7000,h2:7000/`): the redis crate reads the URL with the
    // first one; the list is kept as the seeds.
    let listed;
    let mut seeds = None;
    let (url_for_parse, url) = match (sentinel, node_list(url_for_parse, url)?) {
        (false, Some((nodes, given, shown))) => {
            listed = (given, shown);
            seeds = Some(nodes);
            (listed.0.as_str(), listed.1.as_str())
        }
        _ => (url_for_parse, url),
    };
    // The redis crate (built without TLS) parses a rediss:// URL as the same redis:// one;
    // a sentinel URL is read here, and its credentials and database by the redis crate
    // from `redis://[user:pass@]first-sentinel[/db]`.
    let plain;
    let mut sentinel_of = None;
    let (url_for_parse, url) = if sentinel {
        let (master, sentinels, parts) = sentinel_url(url_for_parse, url)?;
        plain = parts;
        sentinel_of = Some((master, sentinels));
        (plain.0.as_str(), plain.1.as_str())
    } else if tls {
        let rest = |u: &str| {
            u.split_once("://")
                .map_or(String::new(), |(_, r)| r.to_owned())
        };
        plain = (
            format!("redis://{}", rest(url_for_parse)),
            format!("redis://{}", rest(url)),
        );
        (plain.0.as_str(), plain.1.as_str())
    } else {
        (url_for_parse, url)
    };
    // What the redis crate says of a bad URL may repeat pieces of it (a parameter's value):
    // when a password was hidden, what it says of the redacted URL is shown (found by
    // fuzz/url).
    let info = url_for_parse.into_connection_info().map_err(|e| {
        let why = if url == url_for_parse {
            e.to_string()
        } else {
            url.into_connection_info()
                .map_or_else(|e| e.to_string(), |_| "it does not parse".to_owned())
        };
        Error::invalid(format!("invalid URL {url:?}: {why}"))
    })?;
    let address = |addr: &redis::ConnectionAddr| match addr {
        redis::ConnectionAddr::Tcp(h, p) => format!("{h}:{p}"),
        redis::ConnectionAddr::Unix(p) => p.display().to_string(),
        other => format!("{other}"),
    };
    let mut display = address(info.addr());
    if display.is_empty() || display.starts_with(':') {
        return Err(Error::invalid(format!("invalid URL {url:?}: no host")));
    }
    // In a URL made ambiguous by a password holding `/ ? # @` the address may hold a piece
    // of it (`unix://a/b:pw@/s.sock` is the path `/b:pw@/s.sock`): it is shown only when the
    // redacted URL has the same address (found by fuzz/url).
    let hidden = url != url_for_parse
        && url.into_connection_info().map(|i| address(i.addr())).ok() != Some(display.clone());
    if hidden {
        display = "(address hidden: the URL holds a password where it could be)".to_owned();
    }
    let mut redis = info.redis_settings().clone();
    if let Some(db) = opts.database {
        redis = redis.set_db(db);
    }
    if let Some(user) = &opts.username {
        redis = redis.set_username(user);
    }
    if let Some(pass) = &opts.password {
        redis = redis.set_password(pass);
    }
    redis = redis.set_protocol(if opts.resp3 {
        redis::ProtocolVersion::RESP3
    } else {
        redis::ProtocolVersion::RESP2
    });
    redis = redis.set_lib_name("redipc", env!("CARGO_PKG_VERSION"));
    if opts.health_check_interval == Some(Duration::ZERO)
        && !matches!(info.addr(), redis::ConnectionAddr::Unix(_))
    {
        return Err(Error::invalid(format!(
            "health_check_interval 0 (off) is only for a unix socket: over TCP ({url:?}) a half-open connection would never be found"
        )));
    }
    #[cfg(not(feature = "sentinel"))]
    if sentinel_of.is_some() {
        return Err(crate::net::sentinel::unsupported(&shown));
    }
    #[cfg(feature = "sentinel")]
    if let Some((master, sentinels)) = sentinel_of {
        let tls = if tls {
            Some(crate::net::tls::Tls::new(&opts.tls, None)?)
        } else {
            None
        };
        let s = crate::net::sentinel::Sentinel::new(
            master,
            sentinels,
            opts.sentinel_username.clone(),
            opts.sentinel_password.clone(),
            tls.clone(),
            opts.connect_timeout,
        );
        let display = format!("master {:?} (sentinels {})", s.master, s.describe());
        return Ok(Target {
            info: info.set_redis_settings(redis),
            display,
            tls,
            url: shown,
            sentinel: Some(std::sync::Arc::new(s)),
            seeds: Vec::new(),
            readonly: false,
        });
    }
    let tls = if tls {
        match info.addr() {
            redis::ConnectionAddr::Tcp(host, _) => {
                // Its errors quote the host, which may then be a piece of a password
                // (found by fuzz/url).
                Some(
                    crate::net::tls::Tls::new(&opts.tls, Some(host)).map_err(|e| match hidden {
                        true => Error::invalid(
                            "TLS: the URL's host is not a valid server name (not shown: the URL holds a password where it could be)",
                        ),
                        false => e,
                    })?,
                )
            }
            _ => {
                return Err(Error::invalid(
                    "rediss:// needs a host and port: a unix socket never uses TLS",
                ));
            }
        }
    } else {
        None
    };
    let seeds = match (seeds, info.addr()) {
        (Some(list), _) => list,
        (None, redis::ConnectionAddr::Tcp(host, port)) => vec![(host.clone(), *port)],
        (None, _) => Vec::new(),
    };
    Ok(Target {
        info: info.set_redis_settings(redis),
        display,
        tls,
        url: shown,
        sentinel: None,
        seeds,
        readonly: false,
    })
}

/// `host[:port]` items of a comma-separated list (`default_port` when none is given);
/// `what` names an item in errors (`"sentinel"`, `"node"`).
fn host_list(hosts: &str, url: &str, default_port: u16, what: &str) -> Result<Vec<(String, u16)>> {
    let mut out = Vec::new();
    for h in hosts.split(',') {
        // `url` is redacted: an item it does not show as it is may be a piece of a password
        // that an ambiguous URL put among the hosts (found by fuzz/url: `u:p@x?y=//v:w@h1,
        // h2&password=...`); such a list is refused, never dialled or quoted.
        if !url.contains(h) {
            return Err(Error::invalid(format!(
                "invalid URL {url:?}: a {what} of the list may be a piece of a password (escape @ ? # & / in a password: %40 %3F %23 %26 %2F)"
            )));
        }
        let bad = |why: &str| Error::invalid(format!("invalid URL {url:?}: {what} {h:?}: {why}"));
        let (host, port) = if let Some(v6) = h.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
            (host.to_owned(), after.strip_prefix(':'))
        } else {
            match h.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (h.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().map_err(|_| bad("not a port"))?,
        };
        out.push((host, port));
    }
    Ok(out)
}

/// How to show a URL made of pieces of a given one (its user info, its first host `first`,
/// the path and parameters after the hosts) for the parser to read: redacted, and without
/// the path when the given URL, redacted (`url`), does not show it as it is: an ambiguous
/// URL can carry the rest of a password there (found by fuzz/url: `redis://no
/// host,h2/?pass=...` was shown whole in the parser's error, and pieces of a password
/// after a `#`). The hosts need no such check: [`host_list`] refuses a list that `url`
/// does not show.
fn shown_pieces(scheme: &str, userinfo: &str, first: &str, path: &str, url: &str) -> String {
    let path = if url.ends_with(path) { path } else { "***" };
    redact(&format!("{scheme}://{userinfo}{first}{path}"))
}

/// A `redis://` or `rediss://` URL naming several nodes (`redis://[user:pass@]h1:7000,h2:7000/`):
/// the nodes, and the URL (given, redacted) with only the first, for the redis crate to read
/// the rest from. `None` for a URL with one host.
#[allow(clippy::type_complexity)]
fn node_list(given: &str, url: &str) -> Result<Option<(Vec<(String, u16)>, String, String)>> {
    let split = |u: &str| {
        u.split_once("://")
            .map(|(s, r)| (s.to_owned(), r.to_owned()))
            .unwrap_or_default()
    };
    let (scheme, given_rest) = split(given);
    if scheme.to_ascii_lowercase().contains("unix") {
        return Ok(None);
    }
    let userinfo_end = |r: &str| r.rfind('@').map_or(0, |i| i + 1);
    let at = userinfo_end(&given_rest);
    let body = &given_rest[at..];
    let (hosts, path) = body.split_at(body.find(['/', '?', '#']).unwrap_or(body.len()));
    if !hosts.contains(',') {
        return Ok(None);
    }
    let nodes = host_list(hosts, url, 6379, "node")?;
    let (host, port) = &nodes[0];
    let first = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // What the parser reads: the first node and the rest of the given URL.
    let given_first = format!("{scheme}://{}{first}{path}", &given_rest[..at]);
    let shown_first = shown_pieces(&scheme, &given_rest[..at], &first, path, url);
    Ok(Some((nodes.clone(), given_first, shown_first)))
}

/// Read `redis-sentinel://[user:pass@]host[:port][,host[:port]...][/db]#master` (or
/// `rediss-sentinel://`): the master's name, the sentinels, and the URL (given, redacted)
/// as `redis://[user:pass@]first-sentinel[/db]` for the redis crate to read the credentials
/// and database from. `url` is `given` redacted, for messages.
#[allow(clippy::type_complexity)]
fn sentinel_url(
    given: &str,
    url: &str,
) -> Result<(String, Vec<crate::net::sentinel::Addr>, (String, String))> {
    let rest = |u: &str| {
        u.split_once("://")
            .map_or(String::new(), |(_, r)| r.to_owned())
    };
    let given_rest = rest(given);
    let userinfo_end = |r: &str| r.rfind('@').map_or(0, |i| i + 1);
    let at = userinfo_end(&given_rest);
    // The master's name follows the last `#` after the user info (a `#` before it may be
    // part of a password, which is never shown).
    let Some(hash) = given_rest.rfind('#').filter(|&h| h >= at) else {
        return Err(Error::invalid(format!(
            "invalid URL {url:?}: a sentinel URL names the master after '#' (redis-sentinel://host:26379,host2:26379/0#mymaster)"
        )));
    };
    let master = &given_rest[hash + 1..];
    if master.is_empty() {
        return Err(Error::invalid(format!(
            "invalid URL {url:?}: the master's name after '#' is empty"
        )));
    }
    let body = &given_rest[at..hash];
    let (hosts, path) = body.split_at(body.find(['/', '?']).unwrap_or(body.len()));
    let sentinels = host_list(hosts, url, crate::net::sentinel::DEFAULT_PORT, "sentinel")?;
    let (host, port) = &sentinels[0];
    let first = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let given_first = format!("redis://{}{first}{path}", &given_rest[..at]);
    let shown_first = shown_pieces("redis", &given_rest[..at], &first, path, url);
    Ok((
        master.to_owned(),
        sentinels.clone(),
        (given_first, shown_first),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn no_error_repeats_a_password() {
        let o = Options::default();
        for url in [
            "rediss://app:S3cr3tPw@host:6379/0",
            "ftp://app:S3cr3tPw@host",
            "redis://:S3cr3tPw@:6379",
            "redis://app:S3cr3tPw@host:notaport/0",
            "redis://app:S3cr3tPw@[::1/0",
            "unix:///tmp/x.sock?pass=S3cr3tPw",
            "S3cr3tPw",
        ] {
            if let Err(e) = parse_url(url, &o) {
                let text = format!("{e} {e:?}");
                assert!(!text.contains("S3cr3tPw"), "{url}: {text}");
            }
        }
        assert_eq!(redact("redis://u:p@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:p@h"), "redis://:***@h");
        assert_eq!(
            redact("unix:///s.sock?db=1&pass=p"),
            "unix:///s.sock?db=1&pass=***"
        );
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(
            redact("redis-sentinel://u:p@a:1,b:2/0#m"),
            "redis-sentinel://u:***@a:1,b:2/0#m"
        );
    }

    #[test]
    fn parses_the_documented_forms() {
        let o = Options::default();
        let t = parse_url("redis://127.0.0.1:7000/3", &o).unwrap();
        assert_eq!(t.display, "127.0.0.1:7000");
        assert_eq!(t.info.redis_settings().db(), 3);
        let t = parse_url("redis://user:secret@localhost", &o).unwrap();
        assert_eq!(t.display, "localhost:6379");
        assert_eq!(t.info.redis_settings().username(), Some("user"));
        let t = parse_url("unix:///tmp/r.sock?db=2", &o).unwrap();
        assert_eq!(t.display, "/tmp/r.sock");
        assert_eq!(t.info.redis_settings().db(), 2);
        let t = parse_url("unix:///tmp/r.sock", &o.clone().database(5)).unwrap();
        assert_eq!(t.info.redis_settings().db(), 5);
    }

    #[cfg(feature = "sentinel")]
    #[test]
    fn parses_sentinel_urls() {
        let o = Options::default();
        let t = parse_url("redis-sentinel://u:pw@a:26380,[::1]:26381,c/2#mymaster", &o).unwrap();
        let s = t.sentinel.as_ref().unwrap();
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.describe(), "a:26380,::1:26381,c:26379");
        assert_eq!(t.info.redis_settings().db(), 2);
        assert_eq!(t.info.redis_settings().username(), Some("u"));
        assert_eq!(t.info.redis_settings().password(), Some("pw"));
        assert!(t.tls.is_none());
        let t = parse_url("rediss-sentinel://a#m", &o);
        #[cfg(feature = "tls")]
        assert!(t.is_ok_and(|t| t.tls.is_some() && t.sentinel.is_some()));
        #[cfg(not(feature = "tls"))]
        assert_eq!(t.err().map(|e| e.kind()), Some(ErrorKind::Unsupported));
        for bad in [
            "redis-sentinel://a:1",
            "redis-sentinel://a:1#",
            "redis-sentinel://a:x#m",
            "redis-sentinel://a,,b#m",
            "redis-sentinel://u:S3cr3t#x@a:1",
        ] {
            let e = parse_url(bad, &o).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(!e.to_string().contains("S3cr3t"), "{e}");
        }
    }

    #[test]
    #[cfg(not(feature = "tls"))]
    fn rediss_is_unsupported_without_the_tls_feature() {
        let e = parse_url("rediss://h:6380/2", &Options::default())
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("`tls` feature"), "{e}");
    }

    #[test]
    #[cfg(feature = "tls")]
    fn parses_rediss_urls() {
        let o = Options::default();
        let tls = o.clone().tls(TlsOptions::default().insecure(true));
        let t = parse_url("rediss://h:6380/2", &tls).unwrap();
        assert!(t.tls.is_some());
        assert_eq!(t.display, "h:6380");
        assert_eq!(t.info.redis_settings().db(), 2);
        let e = parse_url("redis://host:6380", &tls).err().unwrap();
        assert!(e.message().contains("not rediss://"), "{e}");
        let e = parse_url(
            "rediss://host:6380",
            &o.clone()
                .tls(TlsOptions::default().ca(Pem::file("/nonexistent/ca.pem"))),
        )
        .err()
        .unwrap();
        assert!(
            e.message().contains("cannot read file /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn refuses_bad_urls_clearly() {
        let o = Options::default();
        let e = parse_url(
            "redis://host:6380",
            &o.clone().tls(TlsOptions::default().insecure(true)),
        )
        .err()
        .unwrap();
        assert!(e.message().contains("not rediss://"), "{e}");
        for bad in [
            "",
            "localhost:6379",
            "http://x",
            "redis://",
            "redis://h:notaport",
        ] {
            let e = parse_url(bad, &o).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = ReconnectPolicy::default();
        for attempt in 0..40 {
            let d = p.delay(attempt);
            assert!(d <= p.max_delay, "{attempt}: {d:?}");
        }
        assert!(p.delay(0) <= p.min_delay);
        // A random point in [max/2, max]: spread, not one value.
        let seen: std::collections::HashSet<Duration> = (0..50).map(|_| p.delay(30)).collect();
        assert!(seen.len() > 10, "{seen:?}");
        assert!(
            seen.iter()
                .all(|d| *d >= p.max_delay / 2 && *d <= p.max_delay)
        );
    }
}

//! A private redis-server for each test binary: a free TCP port on 127.0.0.1 and a unix
//! socket in a temporary directory; never 6379, never shared state. A private Redis
//! Cluster: [`cluster::Cluster`].
#![allow(dead_code)]

pub mod cluster;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl Server {
    /// Start a server with default settings.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Start a server with extra `redis-server` arguments (`["--proto-max-bulk-len", "1mb"]`).
    pub fn start_with(extra: &[&str]) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..5 {
            let mut s = Server {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("temp dir"),
                extra: extra.clone(),
            };
            if s.spawn() {
                return s;
            }
        }
        panic!("could not start redis-server (is it installed? apt-get install redis-server)");
    }

    /// Start a server that also listens with TLS on `tls_port`, with the certificates of
    /// [`tls_certs`] in `certs`; `require_client_cert`: mutual TLS
    /// (`--tls-auth-clients yes`). Extra arguments follow.
    pub fn start_tls(
        certs: &std::path::Path,
        tls_port: u16,
        require_client_cert: bool,
        extra: &[&str],
    ) -> Server {
        let file = |name: &str| certs.join(name).display().to_string();
        let port = tls_port.to_string();
        let mut args: Vec<String> = vec![
            "--tls-port".into(),
            port,
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            if require_client_cert { "yes" } else { "no" }.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_with(&args)
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn tcp_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    /// Both URLs, for tests that run over TCP and the unix socket.
    pub fn urls(&self) -> [String; 2] {
        [self.tcp_url(), self.unix_url()]
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("server not running")
    }

    fn spawn(&mut self) -> bool {
        let _ = std::fs::remove_file(self.sock());
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--unixsocket")
            .arg(self.sock())
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(child) = cmd.spawn() else {
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false; // exited: port taken or bad arguments
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.tcp_url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// Run a command on a fresh plain connection (not through redipc).
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.tcp_url()).expect("client");
        let mut conn = client.get_connection().expect("connection");
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut conn).expect("command")
    }

    /// Run a command on a fresh plain connection; `None` if it cannot be run.
    pub fn try_cmd(&self, args: &[&str]) -> Option<redis::Value> {
        try_cmd_at(self.port, args)
    }

    /// SIGKILL the server and wait for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the server again on the same port and socket.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Freeze the server (SIGSTOP): its sockets stay open but nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resume a frozen server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        self.kill();
    }
}
/// The shared connection's id: a pipeline always takes it.
pub fn shared_id(c: &redipc::blocking::Client) -> i64 {
    let mut p = c.pipeline();
    p.add(&["CLIENT", "ID"]).unwrap();
    p.exec().unwrap()[0].clone().into_int().unwrap()
}

/// The server-side id of the connection a lone `CLIENT ID` takes, once the direct
/// connection (`net/direct.rs`) is up (the first calls take the shared one while it is
/// dialled).
pub fn direct_id(c: &redipc::blocking::Client, shared: i64) -> i64 {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let id = c.command(&["CLIENT", "ID"]).unwrap().into_int().unwrap();
        if id != shared {
            return id;
        }
        assert!(Instant::now() < end, "no direct connection within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fresh test certificates (`scripts/lib/tls-certs.sh`: ca, server for 127.0.0.1 and
/// localhost, client, other-ca) in a temporary directory.
pub fn tls_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/tls-certs.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .status()
        .expect("run tls-certs.sh");
    assert!(status.success(), "tls-certs.sh failed");
    dir
}

/// Re-run this test binary as a child process running only the test `name` (a `child_*`
/// test that does nothing unless `env` is set), with `env=url`. Its output is discarded
/// unless `capture` (then read it with `wait_with_output`).
#[allow(dead_code)] // not every test binary has children
pub fn spawn_child(name: &str, env: &str, url: &str, capture: bool) -> Child {
    let out = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(env, url)
        .stdout(out())
        .stderr(out())
        .spawn()
        .unwrap()
}

/// A command on a fresh plain connection to 127.0.0.1:`port` (not through redipc); `None`
/// if it cannot be run.
pub fn try_cmd_at(port: u16, args: &[&str]) -> Option<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(&mut conn).ok()
}

/// A sentinel process (`redis-server CONF --sentinel`) on a free port, with its config in a
/// temporary directory (sentinels rewrite it).
pub struct SentinelProc {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SentinelProc {
    /// Start a sentinel monitoring each `(name, master port)` on 127.0.0.1 (quorum 2, a
    /// master is down after 1 s).
    pub fn start(masters: &[(&str, u16)]) -> SentinelProc {
        Self::start_with(masters, |_| String::new())
    }

    /// [`SentinelProc::start`] with more config lines (given the sentinel's port).
    pub fn start_with(masters: &[(&str, u16)], extra: impl Fn(u16) -> String) -> SentinelProc {
        for _ in 0..5 {
            let mut s = SentinelProc {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("temp dir"),
            };
            let mut conf = format!(
                "port {}\nbind 127.0.0.1\ndir {}\n",
                s.port,
                s.dir.path().display()
            );
            for (name, port) in masters {
                conf.push_str(&format!(
                    "sentinel monitor {name} 127.0.0.1 {port} 2\n\
                     sentinel down-after-milliseconds {name} 1000\n\
                     sentinel failover-timeout {name} 4000\n\
                     sentinel parallel-syncs {name} 1\n"
                ));
            }
            conf.push_str(&extra(s.port));
            std::fs::write(s.dir.path().join("sentinel.conf"), conf).expect("write conf");
            if s.spawn() {
                return s;
            }
        }
        panic!("could not start a sentinel");
    }

    fn spawn(&mut self) -> bool {
        let Ok(child) = Command::new("redis-server")
            .arg(self.dir.path().join("sentinel.conf"))
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            if self.try_cmd(&["PING"]).is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// A command on a fresh connection to this sentinel; `None` if it cannot be run.
    pub fn try_cmd(&self, args: &[&str]) -> Option<redis::Value> {
        try_cmd_at(self.port, args)
    }

    /// The port of the master `name` as this sentinel sees it.
    pub fn master_port(&self, name: &str) -> Option<u16> {
        match self.try_cmd(&["SENTINEL", "get-master-addr-by-name", name])? {
            redis::Value::Array(v) => match v.get(1)? {
                redis::Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// How many replicas and other sentinels of `name` this sentinel knows.
    pub fn knows(&self, name: &str) -> (usize, usize) {
        let count = |what: &str| match self.try_cmd(&["SENTINEL", what, name]) {
            Some(redis::Value::Array(v)) => v.len(),
            _ => 0,
        };
        (count("replicas"), count("sentinels"))
    }

    /// SIGKILL it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port with the config it rewrote.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart the sentinel on port {}", self.port);
    }
}

impl Drop for SentinelProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The commands in `buf` that are complete (RESP arrays of bulk strings), removed from it.
pub fn commands(buf: &mut Vec<u8>) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let mut p = 0;
        let line = |p: &mut usize, buf: &[u8]| -> Option<Vec<u8>> {
            let rest = buf.get(*p..)?;
            let i = rest.windows(2).position(|w| w == b"\r\n")?;
            let l = rest[..i].to_vec();
            *p += i + 2;
            Some(l)
        };
        let Some(head) = line(&mut p, buf) else { break };
        let n: usize = std::str::from_utf8(&head[1..]).unwrap().parse().unwrap();
        let mut args = Vec::new();
        let mut complete = true;
        for _ in 0..n {
            let Some(h) = line(&mut p, buf) else {
                complete = false;
                break;
            };
            let len: usize = std::str::from_utf8(&h[1..]).unwrap().parse().unwrap();
            if buf.len() < p + len + 2 {
                complete = false;
                break;
            }
            args.push(buf[p..p + len].to_vec());
            p += len + 2;
        }
        if !complete {
            break;
        }
        buf.drain(..p);
        out.push(args);
    }
    out
}

/// A fake server on a free port of 127.0.0.1 (for what a real one cannot be made to do):
/// each connection gets a number (1, 2, ...), and every complete command is given to
/// `handle(connection, command, socket)`, which writes the reply itself and returns
/// whether to go on with this connection. Returns the port, and a flag that, once set,
/// makes the server close every connection it accepts from then on.
pub fn serve_commands(
    handle: impl Fn(usize, &[Vec<u8>], &mut std::net::TcpStream) -> bool + Send + Sync + 'static,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::sync::Arc::new(handle);
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            if d.load(Ordering::SeqCst) {
                return;
            }
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    for cmd in commands(&mut buf) {
                        if !handle(i + 1, &cmd, &mut s) {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, done)
}

/// [`serve_commands`] answering each command with `answer(connection, command)`'s bytes
/// (`None`: close the connection). Returns the port.
pub fn scripted_server(
    answer: impl Fn(usize, &[Vec<u8>]) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> u16 {
    use std::io::Write;
    serve_commands(move |conn, cmd, s| {
        answer(conn, cmd).is_some_and(|reply| s.write_all(&reply).is_ok())
    })
    .0
}

//! A private Redis Cluster for a test binary: six `redis-server --cluster-enabled yes`
//! processes on 127.0.0.1 (three primaries, three replicas) with their files in a temporary
//! directory, created with `redis-cli --cluster create ... --cluster-replicas 1`. The same
//! steps as `scripts/lib/cluster.sh` (which the C and Python tests share), without bash.
//!
//! Ports: a node listens on P and on its cluster bus P+10000; both must be free. They are
//! drawn from 15000-21999 (bus 25000-31999), below the kernel's ephemeral range, so they do
//! not collide with the ports other tests get from bind(0); never 6379.
//!
//! Start it once per test binary (a scenario test owns it): [`Cluster::start`] returns once
//! every node says `cluster_state:ok`, knows the six nodes, sees the 16384 slots assigned
//! and three primaries and three replicas, and every replica is in sync. Dropping it (also
//! when a test panics) kills every node by PID and removes the directory.

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

/// Milliseconds without an answer before a node is failed (low, for failover tests).
pub const NODE_TIMEOUT_MS: u64 = 2000;

struct Node {
    port: u16,
    /// The TLS port of a cluster started with [`Cluster::start_tls`].
    tls_port: Option<u16>,
    child: Child,
}

pub struct Cluster {
    nodes: Vec<Node>,
    primaries: Vec<u16>,
    dir: tempfile::TempDir,
    /// The certificates of a TLS cluster (`scripts/lib/tls-certs.sh`).
    certs: Option<std::path::PathBuf>,
}

/// `n` distinct ports P of 127.0.0.1 with P and P+10000 free (P in 15000-21999).
fn free_cluster_ports(n: usize) -> Vec<u16> {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut rng = rand::rng();
    let mut ports = Vec::new();
    while ports.len() < n {
        let p: u16 = rng.random_range(15000..22000);
        if p != 6379 && !ports.contains(&p) && free(p) && free(p + 10000) {
            ports.push(p);
        }
    }
    ports
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".into(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("not a string reply: {other:?}"),
    }
}

/// `CLUSTER NODES` lines as (port, flags, link state), e.g. (7000, "myself,master",
/// "connected").
fn parse_nodes(nodes: &str) -> Vec<(u16, String, String)> {
    nodes
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // 127.0.0.1:7000@17000
            let port = f[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            (port, f[2].to_string(), f[7].to_string())
        })
        .collect()
}

impl Cluster {
    /// Start a cluster of six nodes (three tries on fresh ports); panics with the nodes'
    /// logs if it is not up within 30 s.
    pub fn start() -> Cluster {
        Self::start_with(None)
    }

    /// [`Cluster::start`] with TLS (the certificates of `tls-certs.sh` in `certs`): each
    /// node has a TLS port besides its plain one (which the helpers here use), and the
    /// cluster bus and replication are TLS too (`tls-cluster yes`), so the nodes announce
    /// their TLS ports to TLS clients. [`Cluster::tls_seed_url`] lists them.
    #[allow(dead_code)] // not every test binary has a TLS cluster
    pub fn start_tls(certs: &std::path::Path) -> Cluster {
        Self::start_with(Some(certs))
    }

    fn start_with(certs: Option<&std::path::Path>) -> Cluster {
        let mut why = String::new();
        for _ in 0..3 {
            let mut c = Cluster {
                nodes: Vec::new(),
                primaries: Vec::new(),
                dir: tempfile::Builder::new()
                    .prefix("redipc-cluster-")
                    .tempdir()
                    .expect("temp dir"),
                certs: certs.map(|p| p.to_path_buf()),
            };
            match c.try_start() {
                Ok(()) => return c,
                Err(e) => why = format!("{e}\n{}", c.logs()),
            }
        }
        panic!("could not start a redis cluster (redis-server and redis-cli installed?): {why}");
    }

    /// `redis-server` / `redis-cli` arguments for TLS (none for a plain cluster).
    fn tls_args(&self, server: bool) -> Vec<String> {
        let Some(certs) = &self.certs else {
            return Vec::new();
        };
        let file = |name: &str| certs.join(name).display().to_string();
        if server {
            [
                "--tls-cert-file",
                &file("server.crt"),
                "--tls-key-file",
                &file("server.key"),
                // The bus and replication connections check the certificate a node shows
                // as a client: the server's is for serverAuth only.
                "--tls-client-cert-file",
                &file("client.crt"),
                "--tls-client-key-file",
                &file("client.key"),
                "--tls-ca-cert-file",
                &file("ca.crt"),
                "--tls-auth-clients",
                "no",
                "--tls-cluster",
                "yes",
                "--tls-replication",
                "yes",
            ]
            .map(String::from)
            .to_vec()
        } else {
            vec!["--tls".into(), "--cacert".into(), file("ca.crt")]
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let tls = self.certs.is_some();
        // A TLS cluster's bus is on its TLS port + 10000: those ports come from the same draw.
        let drawn = free_cluster_ports(if tls { 12 } else { 6 });
        let (ports, tls_ports) = drawn.split_at(6);
        for (i, &port) in ports.iter().enumerate() {
            let dir = self.dir.path().join(port.to_string());
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let tls_port = tls_ports.get(i).copied();
            let mut tls_args = self.tls_args(true);
            if let Some(t) = tls_port {
                tls_args.extend(["--tls-port".into(), t.to_string()]);
            }
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(&tls_args)
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(dir.join("nodes.conf"))
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .args([
                    "--repl-diskless-sync",
                    "yes",
                    "--repl-diskless-sync-delay",
                    "0",
                ])
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(dir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("redis-server: {e}"))?;
            self.nodes.push(Node {
                port,
                tls_port,
                child,
            });
        }
        // Every node answers (one that exited: its port was taken meanwhile).
        for node in &mut self.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while super::try_cmd_at(node.port, &["PING"]).is_none() {
                if let Ok(Some(status)) = node.child.try_wait() {
                    return Err(format!("node {} exited: {status}", node.port));
                }
                if Instant::now() > deadline {
                    return Err(format!("node {} does not answer", node.port));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A TLS cluster is made through the TLS ports: the nodes meet on the TLS bus.
        let create_ports = if tls { tls_ports } else { ports };
        let out = Command::new("redis-cli")
            .args(self.tls_args(false))
            .arg("--cluster")
            .arg("create")
            .args(create_ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ports.iter().all(|&p| self.node_ready(p)) {
            if Instant::now() > deadline {
                return Err("the cluster is not ready within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.primaries = ports
            .iter()
            .copied()
            .filter(|&p| self.role(p) == "master")
            .collect();
        Ok(())
    }

    /// The node on `port` sees the whole cluster up: `cluster_state:ok`, six known nodes,
    /// 16384 slots assigned, three primaries and three replicas all connected and none
    /// failing; and, if it is a replica, it is in sync with its primary.
    fn node_ready(&self, port: u16) -> bool {
        let Some(info) = super::try_cmd_at(port, &["CLUSTER", "INFO"]) else {
            return false;
        };
        let info = text(&info);
        let has = |line: &str| info.lines().any(|l| l.trim() == line);
        if !(has("cluster_state:ok")
            && has("cluster_known_nodes:6")
            && has("cluster_slots_assigned:16384"))
        {
            return false;
        }
        let Some(nodes) = super::try_cmd_at(port, &["CLUSTER", "NODES"]) else {
            return false;
        };
        let nodes = parse_nodes(&text(&nodes));
        let count = |role: &str| nodes.iter().filter(|(_, f, _)| f.contains(role)).count();
        let healthy = nodes.iter().all(|(_, flags, link)| {
            link == "connected"
                && !["fail", "handshake", "noaddr"]
                    .iter()
                    .any(|bad| flags.contains(bad))
        });
        if !(healthy && count("master") == 3 && count("slave") == 3) {
            return false;
        }
        let Some(repl) = super::try_cmd_at(port, &["INFO", "replication"]) else {
            return false;
        };
        let repl = text(&repl);
        repl.lines()
            .any(|l| l.trim() == "role:master" || l.trim() == "master_link_status:up")
    }

    /// The first element of `ROLE` on `port`: "master" or "slave".
    pub fn role(&self, port: u16) -> String {
        match self.cmd_at(port, &["ROLE"]) {
            redis::Value::Array(v) if !v.is_empty() => text(&v[0]),
            other => panic!("ROLE on {port}: {other:?}"),
        }
    }

    /// The ports of the six nodes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The ports of the three primaries (as created; a failover changes who is primary:
    /// ask [`Cluster::role`]).
    pub fn primaries(&self) -> Vec<u16> {
        self.primaries.clone()
    }

    /// The ports of the three replicas (as created).
    pub fn replicas(&self) -> Vec<u16> {
        let primaries: HashSet<u16> = self.primaries.iter().copied().collect();
        self.ports()
            .into_iter()
            .filter(|p| !primaries.contains(p))
            .collect()
    }

    /// The process ids of the six nodes (the same order as [`Cluster::ports`]).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }

    /// Every node as a seed list: `redis://127.0.0.1:P1,127.0.0.1:P2,.../`.
    pub fn seed_url(&self) -> String {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis://{}/", seeds.join(","))
    }

    /// Every node's TLS port as a seed list: `rediss://127.0.0.1:T1,.../` (a cluster
    /// started with [`Cluster::start_tls`]).
    #[allow(dead_code)]
    pub fn tls_seed_url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.tls_port.expect("not a TLS cluster")))
            .collect();
        format!("rediss://{}/", seeds.join(","))
    }

    /// The TLS port of the node whose plain port is `port`.
    #[allow(dead_code)]
    pub fn tls_port(&self, port: u16) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.tls_port)
            .expect("not a node of a TLS cluster")
    }

    /// The plain URL of one node: `redis://127.0.0.1:P/`.
    pub fn node_url(&self, port: u16) -> String {
        format!("redis://127.0.0.1:{port}/")
    }

    /// The temporary directory (one sub-directory per port: nodes.conf, redis.log).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Run a command on a fresh plain connection to the node on `port` (not through
    /// redipc, no redirects followed); panics if it cannot be run or the server answers
    /// with an error.
    pub fn cmd_at(&self, port: u16, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.node_url(port)).expect("client");
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connect to node {port}: {e}"));
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut conn)
            .unwrap_or_else(|e| panic!("{args:?} on node {port}: {e}"))
    }

    /// [`Cluster::cmd_at`] for a command whose reply is a string (`CLUSTER INFO`,
    /// `CLUSTER NODES`, `GET`).
    pub fn text_at(&self, port: u16, args: &[&str]) -> String {
        text(&self.cmd_at(port, args))
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`, asked of the first node).
    pub fn keyslot(&self, key: &str) -> u16 {
        match self.cmd_at(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key]) {
            redis::Value::Int(n) => n as u16,
            other => panic!("CLUSTER KEYSLOT: {other:?}"),
        }
    }

    /// The port of the primary serving `slot`, from `CLUSTER SLOTS` on the first node.
    pub fn owner(&self, slot: u16) -> u16 {
        self.slots()
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| port)
            .unwrap_or_else(|| panic!("slot {slot} is not covered"))
    }

    /// `CLUSTER SLOTS` on the first live node: (first slot, last slot, primary's port) per
    /// range.
    pub fn slots(&self) -> Vec<(u16, u16, u16)> {
        let live = self
            .nodes
            .iter()
            .find(|n| std::net::TcpStream::connect(("127.0.0.1", n.port)).is_ok())
            .map_or(self.nodes[0].port, |n| n.port);
        let redis::Value::Array(ranges) = self.cmd_at(live, &["CLUSTER", "SLOTS"]) else {
            panic!("CLUSTER SLOTS: not an array");
        };
        let int = |v: &redis::Value| match v {
            redis::Value::Int(n) => *n as u16,
            other => panic!("CLUSTER SLOTS: not an integer: {other:?}"),
        };
        ranges
            .iter()
            .map(|r| match r {
                redis::Value::Array(r) if r.len() >= 3 => {
                    let redis::Value::Array(primary) = &r[2] else {
                        panic!("CLUSTER SLOTS: no primary in {r:?}");
                    };
                    (int(&r[0]), int(&r[1]), int(&primary[1]))
                }
                other => panic!("CLUSTER SLOTS: bad range {other:?}"),
            })
            .collect()
    }

    /// The end of every node's log (for a failure message).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log =
                std::fs::read_to_string(self.dir.path().join(format!("{}/redis.log", n.port)))
                    .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            out.push_str(&format!("--- node {} ---\n", n.port));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// SIGKILL the node on `port` and wait until it has exited (`kill -9`: no goodbye to
    /// its clients or the cluster).
    #[allow(dead_code)]
    pub fn kill_node(&mut self, port: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }

    /// SIGKILL every node and wait until each has exited.
    pub fn kill_all(&mut self) {
        for n in &mut self.nodes {
            // A node a test froze (SIGSTOP) dies of SIGKILL all the same.
            let _ = n.child.kill();
        }
        for n in &mut self.nodes {
            let _ = n.child.wait();
        }
        self.nodes.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        // The temporary directory is removed when `dir` is dropped, after this.
    }
}

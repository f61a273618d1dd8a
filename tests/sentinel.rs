//! Sentinel: a primary and a replica watched by three sentinels (and a second master, with
//! its own replica, that the same sentinels watch), all on free ports in temp dirs. One
//! test walks through discovery, `SENTINEL FAILOVER`, a failover for another master name
//! (ignored), a sentinel restarted while the client follows it, and `kill -9` of the
//! master: commands recover within 10 s, subscriptions are restored with events, and the
//! reliable queue loses nothing.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{SentinelProc, Server};
use redipc::{
    ConsumerOptions, ErrorKind, Event, Options, SubscribeOptions, WorkerOptions, blocking,
};

fn wait(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Topology {
    servers: Vec<Server>,
    sentinels: Vec<SentinelProc>,
}

impl Topology {
    fn start() -> Topology {
        // Replicas sync at once (Redis waits 5 s for more replicas by default), and are in
        // sync before anything starts: a failover to a replica that never synced loses data
        // no client could keep.
        let quick = ["--repl-diskless-sync-delay", "0"];
        let master = Server::start_with(&quick);
        let replica = Server::start_with(
            &[
                &quick[..],
                &["--replicaof", "127.0.0.1", &master.port.to_string()],
            ]
            .concat(),
        );
        let other = Server::start_with(&quick);
        let other_replica = Server::start_with(
            &[
                &quick[..],
                &["--replicaof", "127.0.0.1", &other.port.to_string()],
            ]
            .concat(),
        );
        for r in [&replica, &other_replica] {
            wait(
                "the replicas sync",
                Duration::from_secs(20),
                || matches!(r.try_cmd(&["INFO", "replication"]), Some(redis::Value::BulkString(b)) if String::from_utf8_lossy(&b).contains("master_link_status:up")),
            );
        }
        let monitors = [("mymaster", master.port), ("other", other.port)];
        let sentinels: Vec<SentinelProc> = (0..3).map(|_| SentinelProc::start(&monitors)).collect();
        // Every sentinel knows the replicas and the other sentinels (a failover needs them).
        for s in &sentinels {
            for name in ["mymaster", "other"] {
                wait("the sentinels meet", Duration::from_secs(20), || {
                    let (replicas, peers) = s.knows(name);
                    replicas >= 1 && peers >= 2
                });
            }
        }
        Topology {
            servers: vec![master, replica, other, other_replica],
            sentinels,
        }
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis-sentinel://{}/0#mymaster", hosts.join(","))
    }

    /// The port all sentinels agree is the master of `name`.
    fn master_port(&self, name: &str) -> Option<u16> {
        let ports: HashSet<Option<u16>> = self
            .sentinels
            .iter()
            .filter(|s| s.try_cmd(&["PING"]).is_some())
            .map(|s| s.master_port(name))
            .collect();
        match ports.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(p)] => Some(*p),
            _ => None,
        }
    }

    fn server(&mut self, port: u16) -> &mut Server {
        self.servers.iter_mut().find(|s| s.port == port).unwrap()
    }

    /// `SENTINEL FAILOVER name`, then wait until every sentinel names a new master that
    /// says it is one.
    fn failover(&mut self, name: &str) -> u16 {
        let old = self.master_port(name).unwrap();
        // Replicated before the failover (replication is asynchronous).
        replicated(self.server(old));
        self.start_failover(1, name);
        self.await_new_master(name, old)
    }

    /// `SENTINEL FAILOVER name` on sentinel `i`, again while it answers that the last one
    /// is still in progress (it ends only once the old master is reconfigured).
    fn start_failover(&self, i: usize, name: &str) {
        wait(
            "SENTINEL FAILOVER accepted",
            Duration::from_secs(30),
            || {
                self.sentinels[i]
                    .try_cmd(&["SENTINEL", "FAILOVER", name])
                    .is_some()
            },
        );
    }

    fn await_new_master(&mut self, name: &str, old: u16) -> u16 {
        let mut new = 0;
        wait("the failover", Duration::from_secs(20), || {
            match self.master_port(name) {
                Some(p) if p != old => {
                    new = p;
                    true
                }
                _ => false,
            }
        });
        new
    }
}

/// Wait until a replica has everything the master `s` has (`WAIT 1`; after a failover the
/// sentinels make the old master a replica of the new one only after a while).
fn replicated(s: &Server) {
    wait("a replica in sync", Duration::from_secs(30), || {
        s.cmd(&["WAIT", "1", "1000"]) == redis::Value::Int(1)
    });
}

/// Send `payload` until it is sent (a send that failed may have run: the queue holds
/// it at least once).
fn send(c: &blocking::Client, payload: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = c.send_request("jobs", payload) {
        assert!(Instant::now() < deadline, "send {payload}: {e}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_client_follows_the_master_through_failovers() {
    let mut t = Topology::start();
    let opts = || {
        Options::default()
            .health_check_interval(Duration::from_millis(300))
            .response_timeout(Duration::from_secs(10))
    };
    let c = blocking::Client::connect(&t.url(), opts()).unwrap();
    let first = t.master_port("mymaster").unwrap();
    c.set("k", "1").unwrap();
    assert_eq!(
        t.server(first).cmd(&["GET", "k"]),
        redis::Value::BulkString(b"1".to_vec())
    );
    assert!(c.url().starts_with("redis-sentinel://"));

    // A subscription and a reliable worker follow the master too.
    let sub = c.subscribe(&["news"], SubscribeOptions::default()).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(Mutex::new(HashSet::new()));
    let h = handled.clone();
    let worker = c
        .handle_requests(
            &["jobs"],
            move |r| {
                h.lock().unwrap().insert(r.payload.to_vec());
                Ok(())
            },
            WorkerOptions::default()
                .reliable(true)
                .lease(Duration::from_secs(2)),
        )
        .unwrap();
    // A stream consumer (group) too.
    let reports = Arc::new(Mutex::new(Vec::new()));
    let rep = reports.clone();
    let consumed = Arc::new(Mutex::new(HashSet::new()));
    let k = consumed.clone();
    let consumer = c
        .stream_consume(
            "events",
            "g",
            "me",
            move |e| {
                if let Some(v) = e.get(b"n") {
                    k.lock().unwrap().insert(v.to_vec());
                }
                Ok(())
            },
            ConsumerOptions::default().error_hook(move |r| rep.lock().unwrap().push(r.to_string())),
        )
        .unwrap();
    let publish = |c: &blocking::Client, n: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Err(e) = c.stream_publish("events", &[("n", n)], None) {
            assert!(Instant::now() < deadline, "publish {n}: {e}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let collect = |sub: &redipc::blocking::Subscription, events: &Arc<Mutex<Vec<Event>>>| {
        while let Ok(Some(e)) = sub.next(Some(Duration::from_millis(10))) {
            events.lock().unwrap().push(e);
        }
    };
    for i in 0..20 {
        send(&c, &format!("a{i}"));
        publish(&c, &format!("a{i}"));
    }

    // 1. SENTINEL FAILOVER: the old master is demoted; the client moves to the new one.
    let second = t.failover("mymaster");
    assert_ne!(second, first);
    wait("writes on the new master", Duration::from_secs(10), || {
        c.set("k", "2").is_ok()
            && t.server(second).cmd(&["GET", "k"]) == redis::Value::BulkString(b"2".to_vec())
    });
    for i in 0..20 {
        send(&c, &format!("b{i}"));
    }
    wait("pub/sub back", Duration::from_secs(10), || {
        collect(&sub, &events);
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Reactivated { .. }))
    });
    c.publish("news", "after").unwrap();
    wait(
        "a message after the failover",
        Duration::from_secs(5),
        || {
            collect(&sub, &events);
            events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::Message(m) if &m.payload[..] == b"after"))
        },
    );
    let reconnects = c.stats().reconnects;
    assert!(reconnects >= 1, "{reconnects}");

    // 2. A failover of another master name is none of this client's business.
    events.lock().unwrap().clear();
    let other = t.master_port("other").unwrap();
    replicated(t.server(other));
    t.start_failover(0, "other");
    t.await_new_master("other", other);
    std::thread::sleep(Duration::from_millis(1000));
    c.set("k", "3").unwrap();
    assert_eq!(
        c.stats().reconnects,
        reconnects,
        "moved by another master's failover"
    );
    collect(&sub, &events);
    assert!(
        !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "pub/sub moved by another master's failover"
    );

    // 3. The sentinel the client asked first is restarted: the client goes on, and follows
    // the next failover through the others.
    t.sentinels[0].kill();
    c.set("k", "4").unwrap();
    let third = {
        let old = t.master_port("mymaster").unwrap();
        replicated(t.server(old));
        t.start_failover(1, "mymaster");
        t.await_new_master("mymaster", old)
    };
    t.sentinels[0].restart();
    wait(
        "writes after a failover with one sentinel down",
        Duration::from_secs(10),
        || {
            c.set("k", "5").is_ok()
                && t.server(third).cmd(&["GET", "k"]) == redis::Value::BulkString(b"5".to_vec())
        },
    );
    for i in 0..20 {
        send(&c, &format!("c{i}"));
    }

    // 4. kill -9 of the master: the sentinels elect the replica; commands recover within
    // 10 s of the kill, a fresh client finds the new master.
    replicated(t.server(third));
    let killed = Instant::now();
    t.server(third).kill();
    let fourth = t.await_new_master("mymaster", third);
    wait("commands after kill -9", Duration::from_secs(10), || {
        c.set("k", "6").is_ok()
    });
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(10), "recovered after {took:?}");
    assert_eq!(
        t.server(fourth).cmd(&["GET", "k"]),
        redis::Value::BulkString(b"6".to_vec())
    );
    let fresh = blocking::Client::connect(&t.url(), opts()).unwrap();
    assert_eq!(fresh.get("k").unwrap().as_deref(), Some(&b"6"[..]));
    for i in 0..20 {
        send(&c, &format!("d{i}"));
        publish(&c, &format!("d{i}"));
    }

    // The reliable queue lost nothing.
    let want: HashSet<Vec<u8>> = ["a", "b", "c", "d"]
        .iter()
        .flat_map(|p| (0..20).map(move |i| format!("{p}{i}").into_bytes()))
        .collect();
    wait("every request handled", Duration::from_secs(15), || {
        want.is_subset(&handled.lock().unwrap())
    });
    worker.stop(Duration::from_secs(5)).unwrap();
    // And the stream consumer got what was published before the failovers and after.
    let entries: HashSet<Vec<u8>> = ["a", "d"]
        .iter()
        .flat_map(|p| (0..20).map(move |i| format!("{p}{i}").into_bytes()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !entries.is_subset(&consumed.lock().unwrap()) {
        let got: Vec<String> = consumed
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(
            Instant::now() < deadline,
            "consumed only {got:?}; reports {:?}",
            reports.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    consumer.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn discovery_errors_are_clear_and_show_no_password() {
    let secret = "s3nt1nel-Pa55";
    // No sentinel answers.
    let port = common::free_port();
    let url = format!("redis-sentinel://:{secret}@127.0.0.1:{port}/0#mymaster");
    let e = blocking::Client::connect(
        &url,
        Options::default()
            .connect_timeout(Duration::from_millis(500))
            .sentinel_password(secret),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    let text = format!("{e} {e:?}");
    assert!(text.contains("sentinel"), "{text}");
    assert!(!text.contains(secret), "{text}");
    // A sentinel that does not know the master's name.
    let master = Server::start();
    let s = SentinelProc::start(&[("known", master.port)]);
    let url = format!("redis-sentinel://:{secret}@127.0.0.1:{}/0#unknown", s.port);
    let e = blocking::Client::connect(
        &url,
        Options::default().connect_timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("does not know the master \"unknown\""),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
    // The sentinels' own password: a wrong one is refused by the sentinel.
    s.try_cmd(&["ACL", "SETUSER", "default", "on", &format!(">{secret}")])
        .unwrap();
    let url = format!("redis-sentinel://127.0.0.1:{}/0#known", s.port);
    let e = blocking::Client::connect(
        &url,
        Options::default()
            .connect_timeout(Duration::from_secs(1))
            .sentinel_password(format!("{secret}-wrong")),
    )
    .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("WRONGPASS") || text.contains("invalid"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
    let c = blocking::Client::connect(&url, Options::default().sentinel_password(secret)).unwrap();
    c.set("x", "y").unwrap();
    assert!(!format!("{:?}", c.options()).contains(secret));
}

/// A master demoted under the client answers `READONLY`: the refused command is sent again
/// to the master the sentinels name (scripted servers: a real one cannot be made to refuse
/// exactly one write).
#[test]
fn a_command_refused_with_readonly_is_sent_to_the_new_master() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sets = Arc::new(Mutex::new(Vec::new()));
    let seen = sets.clone();
    let master = common::scripted_server(move |conn, cmd| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        Some(match name.as_str() {
            "HELLO" => b"%1\r\n+server\r\n+fake\r\n".to_vec(),
            "ROLE" => b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n".to_vec(),
            "CONFIG" => b"*0\r\n".to_vec(),
            "SET" => {
                seen.lock().unwrap().push(conn);
                if conn == 1 {
                    b"-READONLY You can't write against a read only replica.\r\n".to_vec()
                } else {
                    b"+OK\r\n".to_vec()
                }
            }
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let sentinel = common::scripted_server(move |_, cmd| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        Some(match name.as_str() {
            "HELLO" => b"%1\r\n+server\r\n+fake-sentinel\r\n".to_vec(),
            "SENTINEL" => {
                a.fetch_add(1, Ordering::SeqCst);
                let port = master.to_string();
                format!(
                    "%3\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n${}\r\n{port}\r\n\
                     $12\r\nconfig-epoch\r\n$1\r\n0\r\n",
                    port.len()
                )
                .into_bytes()
            }
            "SUBSCRIBE" => b">3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        })
    });
    let c = blocking::Client::connect(
        &format!("redis-sentinel://127.0.0.1:{sentinel}/0#mymaster"),
        Options::default(),
    )
    .unwrap();
    c.set("k", "v").unwrap();
    // Refused on the first connection, sent again on the second: once each.
    assert_eq!(*sets.lock().unwrap(), vec![1, 2]);
    assert_eq!(c.stats().reconnects, 1);
    // Every connection asked the sentinel first.
    assert!(asked.load(Ordering::SeqCst) >= 2);
}

/// `rediss-sentinel://`: the sentinel and the master both over TLS (the sentinel monitors
/// the master's TLS port with `tls-replication yes`), with the client's TLS settings.
#[cfg(feature = "tls")]
#[test]
fn rediss_sentinel_uses_tls_to_the_sentinels_and_the_master() {
    let certs = common::tls_certs();
    let dir = certs.path().to_path_buf();
    let master_tls = common::free_port();
    let master = Server::start_tls(&dir, master_tls, false, &[]);
    let file = |n: &str| dir.join(n).display().to_string();
    let sentinel_tls = common::free_port();
    let s = SentinelProc::start_with(&[("mymaster", master_tls)], |_| {
        format!(
            "tls-port {sentinel_tls}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
             tls-auth-clients no\ntls-replication yes\n",
            file("server.crt"),
            file("server.key"),
            file("ca.crt")
        )
    });
    assert_eq!(s.master_port("mymaster"), Some(master_tls));
    let tls = redipc::TlsOptions::default().ca(redipc::Pem::file(dir.join("ca.crt")));
    let url = format!("rediss-sentinel://127.0.0.1:{sentinel_tls}/0#mymaster");
    let c = blocking::Client::connect(&url, Options::default().tls(tls.clone())).unwrap();
    c.set("k", "tls").unwrap();
    let list = c.command(&["CLIENT", "LIST"]).unwrap();
    assert!(
        format!("{list:?}").contains(&format!("laddr=127.0.0.1:{master_tls}")),
        "{list:?}"
    );
    assert_eq!(
        master.cmd(&["GET", "k"]),
        redis::Value::BulkString(b"tls".to_vec())
    );
    // The sentinel's plain port does not speak TLS: the client says so.
    let plain = format!("rediss-sentinel://127.0.0.1:{}/0#mymaster", s.port);
    let e = blocking::Client::connect(
        &plain,
        Options::default()
            .tls(tls)
            .connect_timeout(Duration::from_millis(800)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("TLS"), "{e}");
}

//! The client against a Redis Cluster (issue 12): one cluster of six nodes for the whole
//! file (one test owns it, scenarios run in order), routing by key over every slot, the
//! split and refused multi-key commands, batches, transactions, redirects while slots move
//! (`MOVED` after `CLUSTER SETSLOT ... NODE`, `ASK` during a migration with keys), the
//! mode option and seed lists.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use redipc::{ClusterMode, ErrorKind, Options, Reply, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

/// The node id of the node on `port`.
fn node_id(cluster: &Cluster, port: u16) -> String {
    cluster.text_at(port, &["CLUSTER", "MYID"])
}

#[test]
fn cluster_client() {
    let t0 = Instant::now();
    let cluster = Cluster::start();
    eprintln!("cluster up in {:?}", t0.elapsed());

    let step = Instant::now();
    mode_and_seeds(&cluster);
    eprintln!("mode_and_seeds: {:?}", step.elapsed());

    let step = Instant::now();
    keys_over_every_slot(&cluster);
    eprintln!("keys_over_every_slot: {:?}", step.elapsed());

    let step = Instant::now();
    multi_key_commands(&cluster);
    eprintln!("multi_key_commands: {:?}", step.elapsed());

    let step = Instant::now();
    batches_and_transactions(&cluster);
    eprintln!("batches_and_transactions: {:?}", step.elapsed());

    let step = Instant::now();
    node_stats_and_tags(&cluster);
    eprintln!("node_stats_and_tags: {:?}", step.elapsed());

    let step = Instant::now();
    empty_slot_move(&cluster);
    eprintln!("empty_slot_move: {:?}", step.elapsed());

    let step = Instant::now();
    local_wire(&cluster);
    eprintln!("local_wire: {:?}", step.elapsed());

    let step = Instant::now();
    redirect_loop(&cluster);
    eprintln!("redirect_loop: {:?}", step.elapsed());

    let step = Instant::now();
    migration_with_keys(&cluster);
    eprintln!("migration_with_keys: {:?}", step.elapsed());

    let step = Instant::now();
    publish_order(&cluster);
    eprintln!("publish_order: {:?}", step.elapsed());

    let step = Instant::now();
    replica_reads(&cluster);
    eprintln!("replica_reads: {:?}", step.elapsed());

    let step = Instant::now();
    shard_and_keyspace(&cluster);
    eprintln!("shard_and_keyspace: {:?}", step.elapsed());

    let step = Instant::now();
    keyspace_flags_per_node(&cluster);
    eprintln!("keyspace_flags_per_node: {:?}", step.elapsed());

    // Last: these change the cluster for good.
    let mut cluster = cluster;
    let step = Instant::now();
    failovers(&mut cluster);
    eprintln!("failovers: {:?}", step.elapsed());
}

/// The client's statistics of the node on `port`.
fn node(c: &blocking::Client, port: u16) -> redipc::NodeStats {
    let addr = format!("127.0.0.1:{port}");
    let all = c.node_stats();
    all.iter()
        .find(|s| s.addr == addr)
        .unwrap_or_else(|| panic!("{addr} not in {all:?}"))
        .clone()
}

/// `node_stats`: every node with its slots and counters; `hash_tag_for_node`: a tag per
/// primary whose keys that node serves; `MEMORY USAGE key` routed by its key.
fn node_stats_and_tags(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let all = c.node_stats();
    // Replicas that have not synced yet are absent from CLUSTER SLOTS.
    assert!((3..=6).contains(&all.len()), "{all:?}");
    let primaries: Vec<_> = all.iter().filter(|s| s.primary).collect();
    assert_eq!(primaries.len(), 3, "{all:?}");
    let covered: u32 = primaries
        .iter()
        .flat_map(|s| &s.slots)
        .map(|&(a, b)| u32::from(b - a) + 1)
        .sum();
    assert_eq!(covered, 16384, "every slot once: {all:?}");
    for r in all.iter().filter(|s| !s.primary) {
        assert!(!r.connected, "replicas are not read from: {r:?}");
        assert!(primaries.iter().any(|p| p.slots == r.slots), "{r:?}");
    }
    for p in cluster.primaries() {
        let tag = c.hash_tag_for_node(&format!("127.0.0.1:{p}")).unwrap();
        let key = format!("{{{tag}}}:jobs");
        assert_eq!(cluster.owner(redipc::keyslot(&key)), p, "{key}");
        // The node's connection is opened on first use (its handshake counts too).
        c.set(&key, "warm").unwrap();
        let before = node(&c, p);
        for i in 0..50 {
            c.set(&key, i.to_string()).unwrap();
        }
        let after = node(&c, p);
        assert!(after.connected && after.primary, "{after:?}");
        assert_eq!(after.commands - before.commands, 50, "{after:?}");
        assert!(after.bytes_out > before.bytes_out && after.bytes_in > before.bytes_in);
        assert_eq!((after.failed, after.redirects), (0, 0));
        match c.command(&["MEMORY", "USAGE", &key]).unwrap() {
            Reply::Int(n) => assert!(n > 0),
            other => panic!("MEMORY USAGE {key}: {other:?}"),
        }
        c.del(&[&key]).unwrap();
    }
    // The per-node counts add up to the client's.
    let sum: u64 = c.node_stats().iter().map(|s| s.commands).sum();
    assert_eq!(sum, c.stats().commands);
    let e = c.hash_tag_for_node("127.0.0.1:1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("its primaries: 127.0.0.1:"), "{e}");
    assert!(c.command(&["MEMORY", "DOCTOR"]).is_ok());
    // Standalone (a node talked to as one server): one entry, no tags.
    let one = blocking::Client::connect(
        &cluster.node_url(cluster.primaries()[0]),
        Options::default().cluster(ClusterMode::Standalone),
    )
    .unwrap();
    one.command(&["PING"]).unwrap();
    let s = one.node_stats();
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].primary && s[0].connected && s[0].slots.is_empty() && s[0].commands > 0);
    assert_eq!(s[0].commands, one.stats().commands);
    let e = one.hash_tag_for_node("127.0.0.1:1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

/// `cmdstat_<name>` calls on the node on `port` (0 when never called).
fn calls(cluster: &Cluster, port: u16, name: &str) -> u64 {
    let info = cluster.text_at(port, &["INFO", "commandstats"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How many times the node on `port` was sent `name`: run, failed or refused (`MOVED`).
fn sent(cluster: &Cluster, port: u16, name: &str) -> u64 {
    let info = cluster.text_at(port, &["INFO", "commandstats"]);
    let Some(line) = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
    else {
        return 0;
    };
    line.split(',')
        .filter_map(|f| f.split_once('='))
        .filter(|(k, _)| matches!(*k, "calls" | "rejected_calls" | "failed_calls"))
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// With `read_from_replicas`, single reads go to replicas (the primaries see none of them)
/// and writes to primaries; without it, everything goes to primaries.
fn replica_reads(cluster: &Cluster) {
    let writer = connect(&cluster.seed_url());
    let keys: Vec<String> = (0..30).map(|i| format!("replica:{i}")).collect();
    for k in &keys {
        writer.set(k, "v").unwrap();
    }
    // CLUSTER SLOTS lists a replica only once the cluster bus told its replication offset
    // (non-zero after its primary's first write): wait until every range has one, so that
    // the reader's first map knows them.
    let t0 = Instant::now();
    while !matches!(
        cluster.cmd_at(cluster.primaries()[0], &["CLUSTER", "SLOTS"]),
        redis::Value::Array(ranges)
            if ranges.iter().all(|r| matches!(r, redis::Value::Array(v) if v.len() >= 4))
    ) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "replicas never listed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reader = blocking::Client::connect(
        &cluster.seed_url(),
        Options::default().read_from_replicas(true),
    )
    .unwrap();
    // Replication is asynchronous: wait until every replica has them.
    let t0 = Instant::now();
    'wait: loop {
        for k in &keys {
            if reader.get(k).unwrap().is_none() {
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "{k} never replicated"
                );
                std::thread::sleep(Duration::from_millis(10));
                continue 'wait;
            }
        }
        break;
    }
    for p in cluster.ports() {
        cluster.cmd_at(p, &["CONFIG", "RESETSTAT"]);
    }
    for k in &keys {
        assert_eq!(reader.get(k).unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(reader.command(&["STRLEN", k]).unwrap(), Reply::Int(1));
    }
    reader.set("replica:w", "1").unwrap();
    let on = |ports: Vec<u16>, name: &str| -> u64 {
        ports.iter().map(|&p| calls(cluster, p, name)).sum()
    };
    assert_eq!(on(cluster.replicas(), "get"), 30);
    assert_eq!(on(cluster.replicas(), "strlen"), 30);
    assert_eq!(on(cluster.primaries(), "get"), 0);
    assert_eq!(on(cluster.primaries(), "set"), 1, "writes go to primaries");
    // Off (the default): reads go to primaries.
    for k in &keys {
        writer.get(k).unwrap();
    }
    assert_eq!(on(cluster.primaries(), "get"), 30);
    assert_eq!(on(cluster.replicas(), "get"), 30);
}

/// Wait for the next event that is not a message; panics after 5 s.
fn next_event(sub: &blocking::Subscription) -> redipc::Event {
    match sub.next(Some(Duration::from_secs(5))).unwrap() {
        Some(e) => e,
        None => panic!("no event within 5 s"),
    }
}

/// `PUBSUB SHARDNUMSUB channel` on the node on `port`.
fn shardnumsub(cluster: &Cluster, port: u16, channel: &str) -> i64 {
    match cluster.cmd_at(port, &["PUBSUB", "SHARDNUMSUB", channel]) {
        redis::Value::Array(v) => match v.get(1) {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Shard channels on their slots' owners, keyspace notifications from every primary, and
/// an empty slot moved (`CLUSTER SETSLOT <slot> NODE <id>` on every primary, the old owner
/// first and the new one last) while a client holds shard, classic and pattern
/// subscriptions: the shard subscription hears of the gap (`Disconnected`), the lanes do not
/// bounce the channel between the two nodes while they disagree, it is `Reactivated` on the
/// new owner within 3 s once they agree, delivery resumes with no
/// duplicate, and no subscription is left on the old node; the classic and pattern ones
/// never notice.
fn shard_and_keyspace(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let publisher = connect(&cluster.seed_url());
    // Shard channels on each of the three primaries.
    let channels: Vec<String> = {
        let mut out: Vec<String> = Vec::new();
        let mut owners = Vec::new();
        for i in 0.. {
            let ch = format!("shard:{i}");
            let slot = redipc::keyslot(&ch);
            let owner = cluster.owner(slot);
            // The slot of each is empty (earlier scenarios wrote keys): it can be moved.
            let empty = matches!(
                cluster.cmd_at(owner, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
                redis::Value::Int(0)
            );
            if empty && !owners.contains(&owner) {
                owners.push(owner);
                out.push(ch);
            }
            if out.len() == 3 {
                break;
            }
        }
        out
    };
    let shard = c
        .ssubscribe(&channels, redipc::SubscribeOptions::default())
        .unwrap();
    let classic = c
        .subscribe(&["classic"], redipc::SubscribeOptions::default())
        .unwrap();
    let pattern = c
        .psubscribe(&["pat:*"], redipc::SubscribeOptions::default())
        .unwrap();
    for s in [&shard, &shard, &shard, &classic, &pattern] {
        assert!(matches!(next_event(s), redipc::Event::Activated { .. }));
    }
    for ch in &channels {
        assert_eq!(
            shardnumsub(cluster, cluster.owner(redipc::keyslot(ch)), ch),
            1,
            "{ch}"
        );
        assert_eq!(publisher.spublish(ch, "first").unwrap(), 1, "{ch}");
        match next_event(&shard) {
            redipc::Event::Message(m) => assert_eq!(&m.channel[..], ch.as_bytes()),
            other => panic!("{other:?}"),
        }
    }

    // Keyspace notifications from every primary's keys.
    for p in cluster.primaries() {
        cluster.cmd_at(p, &["CONFIG", "SET", "notify-keyspace-events", "KA"]);
    }
    let ks = c
        .psubscribe(
            &["__keyspace@0__:ks:*"],
            redipc::SubscribeOptions::default(),
        )
        .unwrap();
    assert!(matches!(next_event(&ks), redipc::Event::Activated { .. }));
    // Every primary's lane confirms it; give the others a moment.
    std::thread::sleep(Duration::from_millis(300));
    let keys: Vec<String> = (0..30).map(|i| format!("ks:{i}")).collect();
    let owners: std::collections::HashSet<u16> = keys
        .iter()
        .map(|k| cluster.owner(redipc::keyslot(k)))
        .collect();
    assert_eq!(
        owners.len(),
        3,
        "the keys are spread over the three primaries"
    );
    for k in &keys {
        c.set(k, "1").unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < keys.len() {
        match next_event(&ks) {
            redipc::Event::Message(m) => {
                seen.insert(String::from_utf8_lossy(&m.channel).into_owned());
            }
            other => panic!("{other:?}"),
        }
    }

    // Move the (empty) slot of the first shard channel to another primary.
    let ch = &channels[0];
    let slot = redipc::keyslot(ch);
    let from = cluster.owner(slot);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let to_id = node_id(cluster, to);
    let setslot = |p: u16| {
        cluster.cmd_at(
            p,
            &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &to_id],
        );
    };
    // The old owner is told first, the new owner last (the worst order): the old owner
    // unsubscribes the channel at once, while the others still name it the owner, so a map
    // the client refreshes then may be the old one (CI once saw the subscription wait for
    // the 30 s periodic refresh), and the two nodes send each other's `MOVED`.
    for p in [from, to] {
        cluster.cmd_at(p, &["CONFIG", "RESETSTAT"]);
    }
    setslot(from);
    assert!(matches!(
        next_event(&shard),
        redipc::Event::Disconnected { .. }
    ));
    std::thread::sleep(Duration::from_millis(500));
    let bounced = sent(cluster, from, "ssubscribe") + sent(cluster, to, "ssubscribe");
    assert!(
        bounced <= 25,
        "{bounced} SSUBSCRIBE in 0.5 s while the nodes disagree (a MOVED per lane per 100 ms)"
    );
    let t0 = Instant::now();
    for p in cluster.primaries() {
        if p != from && p != to {
            setslot(p);
        }
    }
    setslot(to);
    loop {
        match next_event(&shard) {
            redipc::Event::Disconnected { .. } => {}
            redipc::Event::Reactivated { name, .. } => {
                assert_eq!(&name[..], ch.as_bytes());
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(
        shardnumsub(cluster, from, ch),
        0,
        "nothing left on the old owner"
    );
    assert_eq!(shardnumsub(cluster, to, ch), 1);
    for i in 0..20 {
        publisher.spublish(ch, i.to_string()).unwrap();
    }
    for i in 0..20 {
        match next_event(&shard) {
            redipc::Event::Message(m) => assert_eq!(m.payload, i.to_string().as_bytes()),
            other => panic!("{other:?}"),
        }
    }
    assert!(shard.try_next().unwrap().is_none(), "no duplicate");
    // The classic and pattern subscriptions never noticed.
    publisher.publish("classic", "c").unwrap();
    publisher.publish("pat:x", "p").unwrap();
    assert!(matches!(next_event(&classic), redipc::Event::Message(_)));
    assert!(matches!(next_event(&pattern), redipc::Event::Message(_)));
}

/// `watch_keys` with `configure_server` on primaries configured differently: each keeps its
/// own `notify-keyspace-events` flags and gains the ones the watch needs (`K` and `$` for
/// `set`), and the watch hears `set` on keys of every primary.
fn keyspace_flags_per_node(cluster: &Cluster) {
    let primaries = cluster.primaries();
    let own = ["Eg", "Klx", ""];
    for (p, flags) in primaries.iter().zip(own) {
        cluster.cmd_at(*p, &["CONFIG", "SET", "notify-keyspace-events", flags]);
    }
    let c = connect(&cluster.seed_url());
    let (tx, rx) = std::sync::mpsc::channel::<(Vec<u8>, String)>();
    let tx = std::sync::Mutex::new(tx);
    let watch = c
        .watch_keys("kf:*", &["set"], true, move |key, event| {
            let _ = tx.lock().unwrap().send((key.to_vec(), event.to_string()));
        })
        .unwrap();
    for (p, flags) in primaries.iter().zip(own) {
        let now = match cluster.cmd_at(*p, &["CONFIG", "GET", "notify-keyspace-events"]) {
            redis::Value::Array(v) => match v.get(1) {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        for f in flags.chars().chain("K$".chars()) {
            assert!(
                now.contains(f),
                "node {p}: {now:?} lacks {f:?} (had {flags:?})"
            );
        }
    }
    // A key on each primary.
    let mut keys: Vec<String> = Vec::new();
    for p in &primaries {
        let k = (0..)
            .map(|i| format!("kf:{i}"))
            .find(|k| cluster.owner(redipc::keyslot(k)) == *p)
            .unwrap();
        keys.push(k);
    }
    std::thread::sleep(Duration::from_millis(300));
    for k in &keys {
        c.set(k, "1").unwrap();
    }
    let mut heard = std::collections::HashSet::new();
    while heard.len() < keys.len() {
        let (key, event) = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("heard only {heard:?} of {keys:?}"));
        assert_eq!(event, "set");
        heard.insert(String::from_utf8(key).unwrap());
    }
    watch.stop(Duration::from_secs(5)).unwrap();
}

/// One channel's messages from one publisher arrive in order: `PUBLISH` is routed by its
/// channel's slot, so they all enter the cluster through the same node (sent to a random
/// node each, the cluster bus reorders them).
fn publish_order(cluster: &Cluster) {
    let sub_client = connect(&cluster.seed_url());
    let publisher = connect(&cluster.seed_url());
    let sub = sub_client
        .subscribe(&["order"], redipc::SubscribeOptions::default())
        .unwrap();
    assert!(matches!(
        sub.next(Some(Duration::from_secs(5))).unwrap(),
        Some(redipc::Event::Activated { .. })
    ));
    for i in 0..500 {
        publisher.publish("order", i.to_string()).unwrap();
    }
    for i in 0..500 {
        match sub.next(Some(Duration::from_secs(5))).unwrap() {
            Some(redipc::Event::Message(m)) => {
                assert_eq!(m.payload, i.to_string().as_bytes(), "message {i}")
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
}

/// `CLUSTER FAILOVER` on a replica while a thread writes (the client follows the new
/// primary; no write fails), then `kill -9` of a primary: writes to its slots fail for a
/// while (connection errors or timeouts, never a wrong answer) and work again within
/// 10 s, on the promoted replica.
fn failovers(cluster: &mut Cluster) {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let c = connect(&cluster.seed_url());
    // The queue `fq` (keys `ipc:{q:fq}:...`), the stream and the counter share one slot:
    // the one whose primary fails.
    let key = "{q:fq}:n";
    let slot = redipc::keyslot(key);
    assert_eq!(slot, redipc::keyslot("ipc:{q:fq}:pending"));
    let stream = "{q:fq}:events";
    // A reliable worker and a stream group consumer on that slot, from another client.
    let wc = connect(&cluster.seed_url());
    let handled: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
    let h = handled.clone();
    let worker = wc
        .handle_requests(
            &["fq"],
            move |r| {
                h.lock().unwrap().insert(r.payload.to_vec());
                Ok(())
            },
            redipc::WorkerOptions::default()
                .reliable(true)
                .block_timeout(Duration::from_millis(200))
                .lease(Duration::from_secs(2)),
        )
        .unwrap();
    wc.stream_group_create(stream, "g", "0").unwrap();
    let acked: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
    let a = acked.clone();
    let consumer = wc
        .stream_consume(
            stream,
            "g",
            "c1",
            move |e| {
                a.lock().unwrap().insert(e.fields[0].1.to_vec());
                Ok(())
            },
            redipc::ConsumerOptions::default()
                .block(Duration::from_millis(200))
                .min_idle(Duration::from_secs(1)),
        )
        .unwrap();
    let send = |from: usize, to: usize| {
        for i in from..to {
            c.send_request("fq", i.to_string()).unwrap();
            c.stream_publish(stream, &[("n", i.to_string())], None)
                .unwrap();
        }
    };
    send(0, 100);
    // A graceful failover: the replica of the key's primary takes over.
    let primary = cluster.owner(slot);
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|&r| {
            matches!(cluster.cmd_at(r, &["ROLE"]), redis::Value::Array(ref v)
                if v.get(2) == Some(&redis::Value::Int(primary as i64)))
        })
        .expect("the primary's replica");
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match c.incr_by(key, 1) {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        });
        std::thread::sleep(Duration::from_millis(200));
        cluster.cmd_at(replica, &["CLUSTER", "FAILOVER"]);
        let t0 = Instant::now();
        while cluster.owner(slot) != replica {
            assert!(t0.elapsed() < Duration::from_secs(10), "no failover");
            std::thread::sleep(Duration::from_millis(50));
        }
        let before = done.load(Ordering::Relaxed);
        let t0 = Instant::now();
        while done.load(Ordering::Relaxed) < before + 100 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "writes did not resume"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        let failures = w.join().unwrap();
        assert!(
            failures.is_empty(),
            "writes failed during a graceful failover: {failures:?}"
        );
    });
    let n: i64 = String::from_utf8(c.get(key).unwrap().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        n as u64,
        done.load(Ordering::Relaxed),
        "every acknowledged write is there"
    );

    // kill -9 of the new primary: its replica (the old primary) takes over. A client
    // whose pub/sub connection is on that node has its subscription moved to another.
    let victim = cluster.owner(slot);
    let listener = connect(&cluster.node_url(victim));
    let sub = listener
        .subscribe(&["after-failover"], redipc::SubscribeOptions::default())
        .unwrap();
    assert!(matches!(
        sub.next(Some(Duration::from_secs(5))).unwrap(),
        Some(redipc::Event::Activated { .. })
    ));
    // And a shard channel of the victim's slot: it moves to the promoted replica.
    let shard = listener
        .ssubscribe(&["{q:fq}:shard"], redipc::SubscribeOptions::default())
        .unwrap();
    assert!(matches!(
        next_event(&shard),
        redipc::Event::Activated { .. }
    ));
    cluster.kill_node(victim);
    let t0 = Instant::now();
    let mut errors = 0;
    loop {
        match c.incr_by(key, 1) {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
                    "{e}"
                );
                errors += 1;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "writes did not recover within 10 s of kill -9"
        );
    }
    eprintln!(
        "writes recovered {:?} after kill -9 of {victim} ({errors} failed calls)",
        t0.elapsed()
    );
    assert_ne!(cluster.owner(slot), victim);
    let t0 = Instant::now();
    loop {
        match sub.next(Some(Duration::from_secs(10))).unwrap() {
            Some(redipc::Event::Disconnected { .. }) => {}
            Some(redipc::Event::Reactivated { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    eprintln!("the subscription moved in {:?}", t0.elapsed());
    loop {
        match shard.next(Some(Duration::from_secs(10))).unwrap() {
            Some(redipc::Event::Disconnected { .. }) => {}
            Some(redipc::Event::Reactivated { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    eprintln!("the shard subscription moved in {:?}", t0.elapsed());
    assert_eq!(c.spublish("{q:fq}:shard", "hi").unwrap(), 1);
    match next_event(&shard) {
        redipc::Event::Message(m) => assert_eq!(&m.payload[..], b"hi"),
        other => panic!("{other:?}"),
    }
    c.publish("after-failover", "hello").unwrap();
    match sub.next(Some(Duration::from_secs(5))).unwrap() {
        Some(redipc::Event::Message(m)) => assert_eq!(&m.payload[..], b"hello"),
        other => panic!("{other:?}"),
    }
    // The worker and the consumer carry on on the promoted replica: nothing sent is lost.
    send(100, 200);
    let all: HashSet<Vec<u8>> = (0..200)
        .map(|i: usize| i.to_string().into_bytes())
        .collect();
    let t0 = Instant::now();
    while *handled.lock().unwrap() != all || *acked.lock().unwrap() != all {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "handled {} of 200 requests, acked {} of 200 entries",
            handled.lock().unwrap().len(),
            acked.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "worker and consumer caught up {:?} after the second batch",
        t0.elapsed()
    );
    worker.stop(Duration::from_secs(5)).unwrap();
    consumer.stop(Duration::from_secs(5)).unwrap();
    // Keys of the other primaries were never concerned.
    let other = (0..1000)
        .map(|i| format!("other:{i}"))
        .find(|k| cluster.owner(redipc::keyslot(k)) != cluster.owner(slot))
        .unwrap();
    c.set(&other, "1").unwrap();
}

/// Auto mode finds the cluster from any node; a seed list skips nodes that do not answer;
/// `ClusterMode::Cluster` against a standalone server is a clear error; standalone mode
/// against a cluster node talks to that node alone.
fn mode_and_seeds(cluster: &Cluster) {
    let ports = cluster.ports();
    // Through one replica's address only: the map still comes.
    let c = connect(&cluster.node_url(cluster.replicas()[0]));
    for i in 0..50 {
        let k = format!("mode:{i}");
        c.set(&k, k.as_bytes()).unwrap();
        assert_eq!(c.get(&k).unwrap().as_deref(), Some(k.as_bytes()));
    }
    assert!(c.is_connected());
    // A seed list whose first entries are closed ports.
    let dead = common::free_port();
    let url = format!("redis://127.0.0.1:{dead},127.0.0.1:{}/", ports[2]);
    let c = connect(&url);
    assert_eq!(c.get("mode:7").unwrap().as_deref(), Some(&b"mode:7"[..]));
    // A list of dead nodes only: a connection error naming how many were tried.
    let e = blocking::Client::connect(
        &format!(
            "redis://127.0.0.1:{dead},127.0.0.1:{}/",
            common::free_port()
        ),
        Options::default().connect_timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.to_string().contains("none of the 2 nodes"), "{e}");
    // Standalone mode on a cluster node: that node only, MOVED comes back as an error.
    let primary = cluster.primaries()[0];
    let c = blocking::Client::connect(
        &cluster.node_url(primary),
        Options::default().cluster(ClusterMode::Standalone),
    )
    .unwrap();
    let elsewhere = (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| cluster.owner(redipc::keyslot(k)) != primary)
        .unwrap();
    let e = c.get(&elsewhere).unwrap_err();
    assert_eq!(e.code(), Some("MOVED"), "{e}");
    // Cluster mode on a standalone server: refused, saying why.
    let server = common::Server::start();
    let e = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().cluster(ClusterMode::Cluster),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("not a cluster node"), "{e}");
    // Auto on a standalone server: standalone, as always.
    let c = connect(&server.tcp_url());
    c.set("plain", "1").unwrap();
    assert_eq!(c.get("plain").unwrap().as_deref(), Some(&b"1"[..]));
    // Cluster mode with a unix socket: refused.
    let e = blocking::Client::connect(
        &server.unix_url(),
        Options::default().cluster(ClusterMode::Cluster),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

/// 10,000 keys spread over the slots land on their owners and read back, one by one and
/// from 8 threads sharing the client; typed helpers too.
fn keys_over_every_slot(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = c.clone();
            s.spawn(move || {
                for i in (t..10_000).step_by(8) {
                    c.set(format!("spread:{i}"), i.to_string()).unwrap();
                }
            });
        }
    });
    for i in (0..10_000).step_by(7) {
        let v = c.get(format!("spread:{i}")).unwrap();
        assert_eq!(v, Some(i.to_string().into_bytes()), "spread:{i}");
    }
    // Each key is on the owner of its slot (asked directly, no redirects).
    for i in [0, 1, 4242, 9999] {
        let k = format!("spread:{i}");
        let owner = cluster.owner(redipc::keyslot(&k));
        assert_eq!(cluster.text_at(owner, &["GET", &k]), i.to_string());
    }
    // Every primary holds a share.
    for p in cluster.primaries() {
        match cluster.cmd_at(p, &["DBSIZE"]) {
            redis::Value::Int(n) => assert!(n > 2000, "node {p}: {n} keys"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(c.incr_by("spread:counter", 5).unwrap(), 5);
    c.hset("spread:h", &[("f", "v")]).unwrap();
    assert_eq!(c.hget("spread:h", "f").unwrap().as_deref(), Some(&b"v"[..]));
    // A key after a subcommand (the table's `one(2)`).
    assert_eq!(
        c.command(&["OBJECT", "ENCODING", "spread:h"]).unwrap(),
        Reply::Bulk(b"listpack".to_vec())
    );
    // SORT is not in the key table: COMMAND INFO (asked once) says its keys move with
    // its arguments (STORE), so COMMAND GETKEYS finds them: routed right, no redirect.
    c.rpush("spread:sort", &["3", "1", "2"]).unwrap();
    let before = c.stats().redirects;
    for _ in 0..3 {
        assert_eq!(
            c.command(&["SORT", "spread:sort"]).unwrap(),
            Reply::Array(vec![
                Reply::Bulk(b"1".to_vec()),
                Reply::Bulk(b"2".to_vec()),
                Reply::Bulk(b"3".to_vec())
            ])
        );
    }
    assert_eq!(c.stats().redirects, before);
    // KEYS gathers every primary's keys.
    match c.command(&["KEYS", "spread:999*"]).unwrap() {
        Reply::Array(v) => assert_eq!(v.len(), 11, "{v:?}"),
        other => panic!("{other:?}"),
    }
    // SCRIPT LOAD goes to every primary; SCRIPT EXISTS is 1 only where all have it.
    let sha = match c
        .command(&["SCRIPT", "LOAD", "return 'everywhere'"])
        .unwrap()
    {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    for p in cluster.primaries() {
        assert_eq!(
            cluster.cmd_at(p, &["SCRIPT", "EXISTS", &sha]),
            redis::Value::Array(vec![redis::Value::Int(1)])
        );
    }
    assert_eq!(
        c.command(&["SCRIPT", "EXISTS", &sha]).unwrap(),
        Reply::Array(vec![Reply::Int(1)])
    );
    let one = cluster.primaries()[0];
    let local = match cluster.cmd_at(one, &["SCRIPT", "LOAD", "return 'one node'"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        c.command(&["SCRIPT", "EXISTS", &local]).unwrap(),
        Reply::Array(vec![Reply::Int(0)])
    );
    assert_eq!(
        c.command(&["XINFO", "HELP"])
            .map(|_| ())
            .map_err(|e| e.kind()),
        Ok(())
    );
    // Keyless commands: any node; DBSIZE sums every primary.
    assert_eq!(c.command(&["PING"]).unwrap(), Reply::Status("PONG".into()));
    match c.command(&["DBSIZE"]).unwrap() {
        Reply::Int(n) => assert!(n >= 10_000, "{n}"),
        other => panic!("{other:?}"),
    }
}

/// MGET/DEL/EXISTS over several slots are split and merged in the keys' order; any other
/// multi-key command over several slots is refused before anything is sent.
fn multi_key_commands(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let keys: Vec<String> = (0..20).map(|i| format!("multi:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            c.set(k, i.to_string()).unwrap();
        }
    }
    let mut args: Vec<&str> = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    let Reply::Array(values) = c.command(&args).unwrap() else {
        panic!("MGET")
    };
    for (i, v) in values.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(*v, Reply::Nil, "{i}");
        } else {
            assert_eq!(*v, Reply::Bulk(i.to_string().into_bytes()), "{i}");
        }
    }
    assert_eq!(c.exists(&keys).unwrap(), 13);
    assert_eq!(c.del(&keys).unwrap(), 13);
    assert_eq!(c.exists(&keys).unwrap(), 0);
    // Same slot by hash tag: one command, as standalone.
    c.command(&["MSET", "{t}a", "1", "{t}b", "2"]).unwrap();
    assert_eq!(
        c.command(&["MGET", "{t}a", "{t}b"]).unwrap(),
        Reply::Array(vec![Reply::Bulk(b"1".to_vec()), Reply::Bulk(b"2".to_vec())])
    );
    // Cross-slot MSET / RENAME / SUNIONSTORE: refused, naming the keys, nothing written.
    let (a, b) = ("cross:a", "cross:b");
    assert_ne!(redipc::keyslot(a), redipc::keyslot(b));
    for args in [
        vec!["MSET", a, "1", b, "2"],
        vec!["RENAME", a, b],
        vec!["SUNIONSTORE", a, b],
    ] {
        let e = c.command(&args).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("cross:a (slot") && text.contains("cross:b (slot"),
            "{text}"
        );
        assert!(text.contains("nothing was sent"), "{text}");
    }
    assert_eq!(c.exists(&[a, b]).unwrap(), 0);
    // EVAL routes by its keys; keys of two slots are refused.
    assert_eq!(
        c.command(&[
            "EVAL",
            "return redis.call('SET', KEYS[1], ARGV[1])",
            "1",
            a,
            "x"
        ])
        .unwrap(),
        Reply::Status("OK".into())
    );
    let e = c.command(&["EVAL", "return 1", "2", a, b]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    c.del(&[a]).unwrap();
}

/// A pipeline over every node comes back in the caller's order; a transaction must touch
/// one slot (a clear error before anything is sent otherwise) and runs on its owner.
fn batches_and_transactions(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let mut p = c.pipeline();
    for i in 0..1000 {
        p.add(&["SET", &format!("batch:{i}"), &i.to_string()])
            .unwrap();
    }
    let r = p.exec().unwrap();
    assert_eq!(r.len(), 1000);
    let mut p = c.pipeline();
    for i in 0..1000 {
        p.add(&["GET", &format!("batch:{i}")]).unwrap();
    }
    let r = p.exec().unwrap();
    for (i, v) in r.iter().enumerate() {
        assert_eq!(*v, Reply::Bulk(i.to_string().into_bytes()), "batch:{i}");
    }
    // Transactions: one slot.
    let mut tx = c.tx();
    tx.add(&["INCR", "{acct}:a"]).unwrap();
    tx.add(&["INCR", "{acct}:b"]).unwrap();
    assert_eq!(tx.exec().unwrap(), vec![Reply::Int(1), Reply::Int(1)]);
    let mut tx = c.tx();
    tx.add(&["INCR", "tx:a"]).unwrap();
    tx.add(&["INCR", "tx:b"]).unwrap();
    let e = tx.exec().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("one slot"), "{e}");
    assert_eq!(c.exists(&["tx:a", "tx:b"]).unwrap(), 0);
    // WATCH transactions on a hash-tagged pair.
    let r = c
        .transaction(&["{acct}:a"], 3, |s| {
            let v = s.command(&["GET", "{acct}:a"])?;
            let n: i64 = match v {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).parse().unwrap_or(0),
                _ => 0,
            };
            s.queue(&["SET", "{acct}:a", &(n + 10).to_string()])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(c.get("{acct}:a").unwrap().as_deref(), Some(&b"11"[..]));
    let e = c.transaction(&["tx:a", "tx:b"], 3, |_| Ok(())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

/// An empty slot moved with `CLUSTER SETSLOT <slot> NODE <id>` on every primary: the client's
/// next command there follows the `MOVED` and later ones go straight to the new owner.
fn empty_slot_move(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let key = "{moving}:k";
    let slot = redipc::keyslot(key);
    c.set(key, "before").unwrap();
    c.del(&[key]).unwrap();
    let from = cluster.owner(slot);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let to_id = node_id(cluster, to);
    for p in cluster.primaries() {
        cluster.cmd_at(
            p,
            &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &to_id],
        );
    }
    let before = c.stats().redirects;
    c.set(key, "after").unwrap();
    assert_eq!(c.stats().redirects, before + 1);
    // Counted on the node that sent the client away.
    assert_eq!(node(&c, from).redirects, 1);
    assert_eq!(node(&c, to).redirects, 0);
    assert_eq!(cluster.text_at(to, &["GET", key]), "after");
    for _ in 0..100 {
        assert_eq!(c.get(key).unwrap().as_deref(), Some(&b"after"[..]));
    }
    assert_eq!(
        c.stats().redirects,
        before + 1,
        "later calls go straight to the owner"
    );
    c.del(&[key]).unwrap();
}

/// The outcomes of a `LocalWire`'s calls, by the way they came: answered on the loop's own
/// connections (`ready`, `flush`) or through the router (the completions queue).
#[derive(Default)]
struct Came {
    local: Vec<(u32, redipc::Result<Reply>)>,
    routed: Vec<(u32, redipc::Result<Reply>)>,
}

type Out = (u32, redipc::Result<Reply>);

fn wrap(t: u32, r: redipc::Result<redipc::Taken>) -> Out {
    (t, r.map(redipc::Taken::into_reply))
}

/// Send each command (tagged by its index) on `w` and drive it as an event loop would
/// until every outcome came (10 s at most).
fn drive(
    w: &mut redipc::LocalWire<u32, Out>,
    done: &redipc::Completions<Out>,
    cmds: &[Vec<String>],
) -> Came {
    let mut came = Came::default();
    let mut timer = None;
    for (i, cmd) in cmds.iter().enumerate() {
        let sent = w.send(cmd, i as u32).unwrap();
        if let Some(after) = sent.arm {
            timer = Some(Instant::now() + after);
        }
        if sent.flush {
            came.local.extend(w.flush());
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    while came.local.len() + came.routed.len() < cmds.len() {
        assert!(Instant::now() < end, "outcomes missing");
        let mut pfd = libc::pollfd {
            fd: w.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        came.local.extend(w.ready());
        done.drain(|o| came.routed.push(o));
        if let Some(at) = timer
            && Instant::now() >= at
        {
            let (out, next) = w.expire();
            came.local.extend(out);
            timer = next.map(|d| Instant::now() + d);
        }
    }
    came
}

/// Every primary told that `slot` (empty) is the node on `port`'s.
fn give_slot(cluster: &Cluster, slot: u16, port: u16) {
    let id = node_id(cluster, port);
    for p in cluster.primaries() {
        cluster.cmd_at(p, &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &id]);
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// An event loop's own connections on a cluster (`LocalWire`, under `redipc.asyncio`): one
/// per primary, dialled when the first command for it comes; each single-slot command
/// goes to its slot's owner there and is answered on the loop's thread; commands without a
/// key, of several slots, or refused by the node (`MOVED`) go through the router, and a
/// `MOVED` moves the next commands to the new owner's connection.
fn local_wire(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let done = std::sync::Arc::new(redipc::Completions::new().unwrap());
    let mut w = redipc::LocalWire::new(&c, done.clone(), wrap)
        .unwrap()
        .expect("a plain cluster has local connections");
    let keys: Vec<String> = (0..300).map(|i| format!("local:{i}")).collect();
    for k in &keys {
        c.set(k, k).unwrap();
    }
    // The first commands for each node dial its connection (and take the router
    // meanwhile); then every GET is answered on the loop's own connections.
    let gets: Vec<Vec<String>> = keys.iter().map(|k| strings(&["GET", k])).collect();
    let t = Instant::now();
    loop {
        let came = drive(&mut w, &done, &gets);
        for (i, r) in came.local.iter().chain(came.routed.iter()) {
            let want = keys[*i as usize].as_bytes();
            assert_eq!(r.as_ref().unwrap(), &Reply::Bulk(want.to_vec()), "GET #{i}");
        }
        if came.routed.is_empty() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "never all local");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(w.connections_up(), cluster.primaries().len());
    // Keys of several slots, or none: the router.
    let came = drive(
        &mut w,
        &done,
        &[
            strings(&["MGET", "local:1", "local:2", "local:3"]),
            strings(&["DBSIZE"]),
        ],
    );
    assert_eq!(came.routed.len(), 2);
    let mget = came.routed.iter().find(|(i, _)| *i == 0).unwrap();
    assert_eq!(
        mget.1.as_ref().unwrap(),
        &Reply::Array(vec![
            Reply::Bulk(b"local:1".to_vec()),
            Reply::Bulk(b"local:2".to_vec()),
            Reply::Bulk(b"local:3".to_vec()),
        ])
    );
    // One slot, one node: on the loop's connection.
    let came = drive(
        &mut w,
        &done,
        &[strings(&["MGET", "{local}:a", "{local}:b"])],
    );
    assert_eq!(came.local.len(), 1);

    // A slot moved under the loop's connection: its node answers MOVED, the command goes
    // through the router to the new owner (once), and the next ones go to the new owner's
    // connection.
    let key = "{local-moving}:k";
    let slot = redipc::keyslot(key);
    let from = cluster.owner(slot);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let came = drive(&mut w, &done, &[strings(&["DEL", key])]);
    assert_eq!(came.local.len(), 1);
    give_slot(cluster, slot, to);
    let before = c.stats().redirects;
    let came = drive(&mut w, &done, &[strings(&["SET", key, "moved"])]);
    assert_eq!(came.routed.len(), 1, "the refused command took the router");
    assert_eq!(
        came.routed[0].1.as_ref().unwrap(),
        &Reply::Status("OK".into())
    );
    assert_eq!(c.stats().redirects, before + 1);
    assert_eq!(cluster.text_at(to, &["GET", key]), "moved");
    let came = drive(&mut w, &done, &[strings(&["GET", key])]);
    assert_eq!(
        came.local.len(),
        1,
        "the next command went to the new owner directly"
    );
    assert_eq!(
        came.local[0].1.as_ref().unwrap(),
        &Reply::Bulk(b"moved".to_vec())
    );
    assert_eq!(c.stats().redirects, before + 1);
    // A node closes the loop's connection (`CLIENT KILL`, as a restart or an idle timeout
    // would): the loop sees the end of it, the next command takes the router while the
    // connection is dialled again, and later ones are answered on it again.
    let up = w.connections_up();
    cluster.cmd_at(to, &["CLIENT", "KILL", "TYPE", "normal"]);
    let t = Instant::now();
    while w.connections_up() == up {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the close went unseen"
        );
        let mut pfd = libc::pollfd {
            fd: w.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        assert!(w.ready().is_empty(), "nothing was in flight");
    }
    let t = Instant::now();
    loop {
        let came = drive(&mut w, &done, &[strings(&["GET", key])]);
        let (_, r) = came.local.iter().chain(came.routed.iter()).next().unwrap();
        match r {
            // `TYPE normal` killed the router's connection to that node too: a GET it wrote
            // there before it saw the close fails as a command lost with its connection
            // (seen under ThreadSanitizer's slowdown); the next one is dialled again.
            Err(e) if came.local.is_empty() && e.kind() == ErrorKind::Connection => {}
            r => assert_eq!(r.as_ref().unwrap(), &Reply::Bulk(b"moved".to_vec())),
        }
        if !came.local.is_empty() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "never redialled");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(w.connections_up(), up);
    // Back where it was (empty again), for the scenarios after this one.
    drive(&mut w, &done, &[strings(&["DEL", key])]);
    give_slot(cluster, slot, from);
    for k in &keys {
        c.del(&[k]).unwrap();
    }
    let closed = w.close();
    assert!(closed.is_empty());
}

/// Two nodes that send a slot's commands to each other (`CLUSTER SETSLOT ... NODE` told to
/// one of them only): a call fails with a clear error within its response timeout instead
/// of bouncing forever, and works again once the nodes agree.
fn redirect_loop(cluster: &Cluster) {
    let c = blocking::Client::connect(
        &cluster.seed_url(),
        Options::default().response_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let key = "{bouncing}:k";
    let slot = redipc::keyslot(key).to_string();
    c.del(&[key]).unwrap();
    let a = cluster.owner(redipc::keyslot(key));
    let b = *cluster.primaries().iter().find(|&&p| p != a).unwrap();
    cluster.cmd_at(
        a,
        &["CLUSTER", "SETSLOT", &slot, "NODE", &node_id(cluster, b)],
    );
    let t = Instant::now();
    let e = c.get(key).unwrap_err();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(2600), "{took:?}");
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    let text = e.to_string();
    assert!(text.contains("more than 16 redirects"), "{e}");
    assert!(
        text.contains(&format!("GET {key}: slot {slot} at 127.0.0.1:")),
        "{e}"
    );
    cluster.cmd_at(
        a,
        &["CLUSTER", "SETSLOT", &slot, "NODE", &node_id(cluster, a)],
    );
    let t = Instant::now();
    while c.get(key).is_err() {
        assert!(t.elapsed() < Duration::from_secs(5), "no recovery");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.set(key, "v").unwrap();
    assert_eq!(cluster.text_at(a, &["GET", key]), "v");
    c.del(&[key]).unwrap();
}

/// A slot migrated with its keys (`SETSLOT IMPORTING/MIGRATING`, `MIGRATE ... KEYS`,
/// `SETSLOT NODE`) while 4 threads run commands and same-slot pipelines on it: `ASK` and
/// `MOVED` are followed, nothing is lost, each thread's order is kept.
fn migration_with_keys(cluster: &Cluster) {
    let c = connect(&cluster.seed_url());
    let tag = "{mig}";
    let slot = redipc::keyslot(tag);
    let from = cluster.owner(slot);
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let (from_id, to_id) = (node_id(cluster, from), node_id(cluster, to));
    let s = slot.to_string();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let mut workers = Vec::new();
        for t in 0..4 {
            let (c, stop) = (c.clone(), &stop);
            workers.push(sc.spawn(move || {
                let list = format!("{tag}:list:{t}");
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 200 {
                    c.rpush(&list, &[n.to_string()]).unwrap();
                    let mut p = c.pipeline();
                    p.add(&["RPUSH", &list, &(n + 1).to_string()]).unwrap();
                    p.add(&["SET", &format!("{tag}:last:{t}"), &(n + 1).to_string()])
                        .unwrap();
                    p.exec().unwrap();
                    n += 2;
                }
                (list, n)
            }));
        }
        std::thread::sleep(Duration::from_millis(200));
        cluster.cmd_at(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]);
        cluster.cmd_at(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]);
        // Move the keys over in small steps, with the workers still writing.
        loop {
            let keys = match cluster.cmd_at(from, &["CLUSTER", "GETKEYSINSLOT", &s, "2"]) {
                redis::Value::Array(v) => v,
                other => panic!("{other:?}"),
            };
            if keys.is_empty() {
                break;
            }
            let names: Vec<String> = keys
                .iter()
                .map(|k| match k {
                    redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let mut args = vec![
                "MIGRATE".to_string(),
                "127.0.0.1".into(),
                to.to_string(),
                String::new(),
                "0".into(),
                "5000".into(),
                "KEYS".into(),
            ];
            args.extend(names);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cluster.cmd_at(from, &args);
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in cluster.primaries() {
            cluster.cmd_at(p, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            let (list, n) = w.join().unwrap();
            // Everything there, in order.
            let Reply::Array(items) = c.command(&["LRANGE", &list, "0", "-1"]).unwrap() else {
                panic!("LRANGE")
            };
            assert_eq!(items.len() as u64, n, "{list}");
            for (i, item) in items.iter().enumerate() {
                assert_eq!(
                    *item,
                    Reply::Bulk(i.to_string().into_bytes()),
                    "{list}[{i}]"
                );
            }
        }
    });
    assert_eq!(cluster.owner(slot), to);
    assert!(c.stats().redirects > 0, "{:?}", c.stats());
    eprintln!(
        "redirects followed during the migration: {}",
        c.stats().redirects
    );
}

//! The Redis Cluster test harness itself (tests/common/cluster.rs): one cluster of six
//! nodes, started once, checked for its topology (three primaries with one replica each,
//! the 16384 slots covered), a key written on the owner of its slot and through
//! `redis-cli -c`, and no node left once it is dropped.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;

/// Whether a process with this id exists (`kill -0`).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[test]
fn cluster_harness() {
    let t0 = Instant::now();
    let cluster = Cluster::start();
    eprintln!("cluster up in {:?}: {}", t0.elapsed(), cluster.seed_url());

    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 6);
    assert!(!ports.contains(&6379));
    let primaries: HashSet<u16> = cluster.primaries().into_iter().collect();
    let replicas: HashSet<u16> = cluster.replicas().into_iter().collect();
    assert_eq!(primaries.len(), 3, "primaries: {primaries:?}");
    assert_eq!(replicas.len(), 3, "replicas: {replicas:?}");
    assert!(
        cluster
            .seed_url()
            .starts_with(&format!("redis://127.0.0.1:{},", ports[0]))
    );

    // ROLE: each replica follows a primary, each primary has exactly one replica.
    let mut followed: HashMap<u16, u16> = HashMap::new();
    for &p in &ports {
        let role = cluster.role(p);
        assert_eq!(
            role == "master",
            primaries.contains(&p),
            "ROLE of {p}: {role}"
        );
        if role == "slave" {
            let redis::Value::Array(v) = cluster.cmd_at(p, &["ROLE"]) else {
                panic!("ROLE");
            };
            let redis::Value::Int(master) = v[2] else {
                panic!("ROLE of {p}: {v:?}");
            };
            assert!(primaries.contains(&(master as u16)), "{p} follows {master}");
            *followed.entry(master as u16).or_default() += 1;
        }
    }
    assert_eq!(followed.len(), 3, "{followed:?}");
    assert!(followed.values().all(|&n| n == 1), "{followed:?}");

    // Every node sees the same topology.
    for &p in &ports {
        let info = cluster.text_at(p, &["CLUSTER", "INFO"]);
        for line in [
            "cluster_state:ok",
            "cluster_known_nodes:6",
            "cluster_slots_assigned:16384",
            "cluster_slots_ok:16384",
            "cluster_size:3",
        ] {
            assert!(
                info.lines().any(|l| l.trim() == line),
                "{p}: {line}: {info}"
            );
        }
        let nodes = cluster.text_at(p, &["CLUSTER", "NODES"]);
        let flags: Vec<&str> = nodes
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        assert_eq!(flags.iter().filter(|f| f.contains("master")).count(), 3);
        assert_eq!(flags.iter().filter(|f| f.contains("slave")).count(), 3);
    }

    // CLUSTER SLOTS: the ranges cover 0..=16383 exactly once, served by the primaries.
    let mut slots = cluster.slots();
    slots.sort();
    let mut next = 0u32;
    for &(start, end, owner) in &slots {
        assert_eq!(start as u32, next, "gap or overlap at {start}: {slots:?}");
        assert!(end >= start);
        assert!(primaries.contains(&owner), "{owner} serves {start}-{end}");
        next = end as u32 + 1;
    }
    assert_eq!(next, 16384, "{slots:?}");
    let owners: HashSet<u16> = slots.iter().map(|s| s.2).collect();
    assert_eq!(owners, primaries);

    // A key on the owner of its slot; elsewhere, MOVED.
    for key in ["harness:a", "harness:b", "{user1}:x", "harness:c"] {
        let slot = cluster.keyslot(key);
        let owner = cluster.owner(slot);
        assert_eq!(cluster.text_at(owner, &["SET", key, "v"]), "OK");
        assert_eq!(cluster.text_at(owner, &["GET", key]), "v");
        let other = *primaries.iter().find(|&&p| p != owner).unwrap();
        let mut conn = redis::Client::open(cluster.node_url(other))
            .unwrap()
            .get_connection()
            .unwrap();
        let err = redis::cmd("GET")
            .arg(key)
            .query::<redis::Value>(&mut conn)
            .unwrap_err();
        let said = format!("{err} {err:?}").to_uppercase();
        assert!(said.contains("MOVED"), "GET {key} on {other}: {err}");
    }

    // Through redis-cli -c on a replica: redirected to the owner.
    let replica = *replicas.iter().next().unwrap();
    let out = Command::new("redis-cli")
        .args(["-c", "-p", &replica.to_string(), "SET", "harness:cli", "42"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let owner = cluster.owner(cluster.keyslot("harness:cli"));
    assert_eq!(cluster.text_at(owner, &["GET", "harness:cli"]), "42");

    // redipc's keyslot agrees with the server's on a spread of keys (plain, tagged, binary
    // edge cases), in one pipeline; a key tagged with hash_tag_for_slot lands on its slot.
    let mut keys: Vec<String> = (0..2000).map(|i| format!("key:{i}")).collect();
    keys.extend((0..200).map(|i| format!("{{user{i}}}:cart")));
    keys.extend(["", "{", "}", "{}", "{}x", "a{}{b}", "a{{b}}c", "x{y}{z}"].map(String::from));
    let conn = redis::Client::open(cluster.node_url(cluster.ports()[0])).unwrap();
    let mut conn = conn.get_connection().unwrap();
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("CLUSTER").arg("KEYSLOT").arg(k);
    }
    let slots: Vec<i64> = pipe.query(&mut conn).unwrap();
    for (k, s) in keys.iter().zip(slots) {
        assert_eq!(i64::from(redipc::keyslot(k)), s, "keyslot({k:?})");
    }
    for slot in [0u16, 1, 5461, 5462, 10923, 16383] {
        let tag = redipc::hash_tag_for_slot(slot).unwrap();
        let key = format!("{{{tag}}}:jobs");
        assert_eq!(cluster.keyslot(&key), slot, "{key}");
    }

    // Dropped: every node is gone, the directory too.
    let pids = cluster.pids();
    let dir = cluster.dir().to_path_buf();
    assert!(pids.iter().all(|&p| alive(p)));
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) {
        assert!(Instant::now() < deadline, "nodes left: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!dir.exists(), "{dir:?} left");
    for &p in &ports {
        assert!(
            common::try_cmd_at(p, &["PING"]).is_none(),
            "{p} still answers"
        );
    }
}

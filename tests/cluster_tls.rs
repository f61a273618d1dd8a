//! The client against a Redis Cluster over TLS (`rediss://` seeds, `tls-cluster yes`): the
//! nodes announce their TLS ports, and every connection the client opens to a node —
//! the router's per-node connections, a lone caller's direct ones, the pub/sub connection
//! and the shard lanes — is TLS with the client's settings. One cluster, one test.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use redipc::{ErrorKind, Event, Options, Pem, Reply, SubscribeOptions, TlsOptions, blocking};

fn connect(url: &str, certs: &Path) -> redipc::Result<blocking::Client> {
    blocking::Client::connect(
        url,
        Options::default()
            .tls(TlsOptions::default().ca(Pem::file(certs.join("ca.crt"))))
            .connect_timeout(Duration::from_secs(3)),
    )
}

fn next_event(sub: &blocking::Subscription) -> Event {
    match sub.next(Some(Duration::from_secs(5))).unwrap() {
        Some(e) => e,
        None => panic!("no event within 5 s"),
    }
}

#[test]
fn a_cluster_over_tls() {
    let certs = common::tls_certs();
    let t0 = Instant::now();
    let cluster = Cluster::start_tls(certs.path());
    eprintln!("TLS cluster up in {:?}", t0.elapsed());
    let c = connect(&cluster.tls_seed_url(), certs.path()).unwrap();

    // Keys over every node, from several threads (each node's direct TLS connections) and
    // one caller (its command connection), then read back.
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = c.clone();
            s.spawn(move || {
                for i in (t..2_000).step_by(4) {
                    c.set(format!("tls:{i}"), i.to_string()).unwrap();
                }
            });
        }
    });
    for i in (0..2_000).step_by(7) {
        assert_eq!(
            c.get(format!("tls:{i}")).unwrap(),
            Some(i.to_string().into_bytes()),
            "tls:{i}"
        );
    }
    for p in cluster.primaries() {
        match cluster.cmd_at(p, &["DBSIZE"]) {
            redis::Value::Int(n) => assert!(n > 400, "node {p}: {n} keys"),
            other => panic!("{other:?}"),
        }
    }
    // A pipeline over every slot, split per node and put back in order; a split MGET.
    let mut p = c.pipeline();
    for i in 0..500 {
        p.add(&["GET", &format!("tls:{i}")]).unwrap();
    }
    for (i, v) in p.exec().unwrap().iter().enumerate() {
        assert_eq!(*v, Reply::Bulk(i.to_string().into_bytes()), "tls:{i}");
    }
    let mut mget = vec!["MGET".to_string()];
    mget.extend((0..50).map(|i| format!("tls:{i}")));
    match c.command(&mget).unwrap() {
        Reply::Array(v) => {
            assert_eq!(v.len(), 50);
            assert_eq!(v[49], Reply::Bulk(b"49".to_vec()));
        }
        other => panic!("{other:?}"),
    }
    // The router's nodes are the TLS ports the nodes announced to a TLS client.
    let tls_primaries: Vec<String> = cluster
        .primaries()
        .iter()
        .map(|&p| format!("127.0.0.1:{}", cluster.tls_port(p)))
        .collect();
    let stats = c.node_stats();
    for addr in &tls_primaries {
        let n = stats
            .iter()
            .find(|n| &n.addr == addr)
            .unwrap_or_else(|| panic!("{addr} not in {stats:?}"));
        assert!(n.primary && n.commands > 0, "{n:?}");
    }

    // Shard channels on their owners' lanes, a classic channel on the main pub/sub
    // connection: all over TLS.
    let channels: Vec<String> = cluster
        .primaries()
        .iter()
        .map(|&p| {
            let tag = c
                .hash_tag_for_node(&format!("127.0.0.1:{}", cluster.tls_port(p)))
                .unwrap();
            format!("{{{tag}}}:ch")
        })
        .collect();
    let shard = c
        .ssubscribe(&channels, SubscribeOptions::default())
        .unwrap();
    let classic = c
        .subscribe(&["tls:classic"], SubscribeOptions::default())
        .unwrap();
    for s in [&shard, &shard, &shard, &classic] {
        assert!(matches!(next_event(s), Event::Activated { .. }));
    }
    for ch in &channels {
        assert_eq!(c.spublish(ch, "hello").unwrap(), 1, "{ch}");
        match next_event(&shard) {
            Event::Message(m) => {
                assert_eq!(&m.channel[..], ch.as_bytes());
                assert_eq!(&m.payload[..], b"hello");
            }
            other => panic!("{other:?}"),
        }
    }
    // (PUBLISH counts the receivers of the node it reached only; the bus carries it on.)
    c.publish("tls:classic", "hi").unwrap();
    assert!(matches!(next_event(&classic), Event::Message(_)));

    // A plain port is not TLS: rediss:// to it is a clear error within the connect
    // timeout.
    let t = Instant::now();
    let plain = cluster.primaries()[0];
    let e = connect(&format!("rediss://127.0.0.1:{plain}/"), certs.path()).unwrap_err();
    eprintln!("rediss:// to a plain port: {e}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(
        matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{e}"
    );
    c.close();
}

//! Hostile or broken servers: a scripted fake server on loopback (what a real Redis cannot be
//! made to do) announces huge strings and aggregates; the client must refuse them with a
//! protocol error before buffering them, drop only that connection, and stay usable.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redipc::blocking::Client;
use redipc::{ErrorKind, Options};

/// A fake server: answers the client's connection setup like Redis 7, and `GET` with
/// `on_get` (which may write forever: it stops when the client goes away).
fn fake_server(on_get: fn(&mut TcpStream)) -> (String, Arc<AtomicBool>) {
    fake_server_with(on_get, |_| {})
}

/// [`fake_server`] that also answers `SUBSCRIBE` with `on_subscribe` (which may write
/// forever: it stops when the client goes away).
fn fake_server_with(
    on_get: fn(&mut TcpStream),
    on_subscribe: fn(&mut TcpStream),
) -> (String, Arc<AtomicBool>) {
    let (port, done) = common::serve_commands(move |_, cmd, s| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        let reply: &[u8] = match name.as_str() {
            "HELLO" => b"%1\r\n+server\r\n+fake\r\n",
            "CONFIG" => b"*0\r\n",
            "GET" => {
                on_get(s);
                return false;
            }
            "SUBSCRIBE" => {
                on_subscribe(s);
                return false;
            }
            "PING" => b"+PONG\r\n",
            _ => b"+OK\r\n",
        };
        s.write_all(reply).is_ok()
    });
    (format!("redis://127.0.0.1:{port}"), done)
}

/// Keep writing filler after a header, as fast as the client reads.
fn flood(s: &mut TcpStream) {
    let filler = vec![b'x'; 1 << 20];
    while s.write_all(&filler).is_ok() {}
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

#[test]
fn a_huge_announced_string_is_refused_before_it_is_buffered() {
    let (url, done) = fake_server(|s| {
        let _ = s.write_all(b"$2000000000\r\n");
        flood(s);
    });
    let c = Client::connect(&url, Options::default()).unwrap();
    let before = rss_mib();
    let t = Instant::now();
    let e = c.get("k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("value-size limit"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        rss_mib() < before + 64,
        "{} MiB -> {} MiB",
        before,
        rss_mib()
    );
    // The client stays usable: the next call gets a fresh connection.
    assert_eq!(
        c.command(&["SET", "a", "b"]).unwrap(),
        redipc::Reply::Status("OK".into())
    );
    done.store(true, Ordering::SeqCst);
}

#[test]
fn a_reply_growing_past_the_maximum_reply_size_is_a_protocol_error() {
    // Each string is allowed, but the array never ends: the frame stops at the reply limit.
    let (url, done) = fake_server(|s| {
        let _ = s.write_all(b"*1000000\r\n");
        let item = b"$1000\r\n"
            .iter()
            .copied()
            .chain(vec![b'y'; 1000])
            .chain(*b"\r\n");
        let item: Vec<u8> = item.collect();
        let mut many = Vec::new();
        for _ in 0..100 {
            many.extend_from_slice(&item);
        }
        while s.write_all(&many).is_ok() {}
    });
    let c = Client::connect(
        &url,
        Options::default()
            .max_value_size(3 << 30)
            .max_reply_size(8 << 20),
    )
    .unwrap();
    let before = rss_mib();
    let e = c.get("k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("maximum reply size"), "{e}");
    assert!(
        rss_mib() < before + 64,
        "{} MiB -> {} MiB",
        before,
        rss_mib()
    );
    done.store(true, Ordering::SeqCst);
}

#[test]
fn a_huge_announced_aggregate_is_refused_at_once() {
    let (url, done) = fake_server(|s| {
        let _ = s.write_all(b"*2000000000\r\n");
        flood(s);
    });
    let c = Client::connect(&url, Options::default().max_reply_size(1 << 20)).unwrap();
    let e = c.get("k").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("elements"), "{e}");
    done.store(true, Ordering::SeqCst);
}

#[test]
fn a_huge_pubsub_message_drops_the_pubsub_connection_only() {
    let (url, done) = fake_server_with(
        |_| {},
        |s| {
            let _ = s.write_all(b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
            let _ = s.write_all(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2000000000\r\n");
            flood(s);
        },
    );
    let c = Client::connect(&url, Options::default()).unwrap();
    let before = rss_mib();
    let sub = c
        .subscribe(&["ch"], redipc::SubscribeOptions::default())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut disconnected = false;
    while !disconnected {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next_blocking(Some(left)).unwrap() {
            Some(redipc::Event::Disconnected { error }) => {
                assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
                assert!(error.to_string().contains("value-size limit"), "{error}");
                disconnected = true;
            }
            Some(redipc::Event::Message(m)) => panic!("a message got through: {m:?}"),
            Some(_) => {}
            None => panic!("no Disconnected within 5 s"),
        }
    }
    assert!(
        rss_mib() < before + 64,
        "{} MiB -> {} MiB",
        before,
        rss_mib()
    );
    // The command connection is untouched.
    assert_eq!(
        c.command(&["SET", "a", "b"]).unwrap(),
        redipc::Reply::Status("OK".into())
    );
    drop(sub);
    done.store(true, Ordering::SeqCst);
}

/// A `CLUSTER SLOTS` reply: every slot on the node at `port` (no replicas).
fn all_slots_at(port: u16) -> Vec<u8> {
    format!("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$2\r\nid\r\n")
        .into_bytes()
}

/// A cluster primary demoted under the client (what a real cluster shows only in a race: a
/// write reaching a node between its failover and the client's next map) answers `READONLY`:
/// the write was not run, so the router asks for the map again and sends it to the new
/// owner within the call's deadline; later calls go there directly.
#[cfg(feature = "cluster")]
#[test]
fn a_demoted_cluster_node_that_answers_readonly_sends_the_write_to_the_new_owner() {
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicUsize;
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let (new_port, _) = common::serve_commands(move |_, cmd, s| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        let reply: Vec<u8> = match name.as_str() {
            "HELLO" => b"%1\r\n+server\r\n+fake\r\n".to_vec(),
            "SET" => {
                w.fetch_add(1, Ordering::SeqCst);
                b"+OK\r\n".to_vec()
            }
            "PING" => b"+PONG\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        };
        s.write_all(&reply).is_ok()
    });
    let old_port = Arc::new(OnceLock::<u16>::new());
    let demoted = Arc::new(AtomicBool::new(false));
    let maps_asked = Arc::new(AtomicUsize::new(0));
    let (op, d, asked) = (old_port.clone(), demoted.clone(), maps_asked.clone());
    let (port, _) = common::serve_commands(move |_, cmd, s| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        let reply: Vec<u8> = match name.as_str() {
            "HELLO" => b"%1\r\n+server\r\n+fake\r\n".to_vec(),
            "CLUSTER" => {
                asked.fetch_add(1, Ordering::SeqCst);
                if d.load(Ordering::SeqCst) {
                    all_slots_at(new_port)
                } else {
                    all_slots_at(*op.get().unwrap())
                }
            }
            "SET" => {
                d.store(true, Ordering::SeqCst);
                b"-READONLY You can't write against a read only replica.\r\n".to_vec()
            }
            "PING" => b"+PONG\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        };
        s.write_all(&reply).is_ok()
    });
    old_port.set(port).unwrap();
    let c = Client::connect(
        &format!("redis://127.0.0.1:{port}"),
        Options::default()
            .cluster(redipc::ClusterMode::Cluster)
            .response_timeout(Duration::from_secs(3)),
    )
    .unwrap();
    let t = Instant::now();
    c.set("k", "v").unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        demoted.load(Ordering::SeqCst),
        "the old primary was asked first"
    );
    assert_eq!(
        written.load(Ordering::SeqCst),
        1,
        "run once, on the new owner"
    );
    assert!(
        maps_asked.load(Ordering::SeqCst) >= 2,
        "the map was asked for again"
    );
    for _ in 0..10 {
        c.set("k", "v").unwrap();
    }
    assert_eq!(
        written.load(Ordering::SeqCst),
        11,
        "later writes go to the new owner"
    );
    let new_node = format!("127.0.0.1:{new_port}");
    assert!(
        c.node_stats()
            .iter()
            .any(|n| n.addr == new_node && n.commands >= 11),
        "{:?}",
        c.node_stats()
    );
}

/// A slot moved, and no node the client reads the map from knows it yet (the cluster tells
/// its nodes one by one): the map each refresh reads still gives the slot to the node that
/// answered `MOVED` for it. The client keeps what `MOVED` said: the slot's commands go to
/// the new owner from then on, not back to the old one after every refresh (which cost a
/// redirect per refresh: the old node answered 6 of 6 calls here before).
#[cfg(feature = "cluster")]
#[test]
fn a_map_read_from_nodes_not_told_of_a_move_does_not_undo_the_moved_answer() {
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicUsize;
    let slot = redipc::keyslot("k");
    let old_port = Arc::new(OnceLock::<u16>::new());
    let (new_gets, old_gets, maps) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    // A node that answers the map as it was before the move (every slot at the old node:
    // no node was told of it) and `GET` with `get`, counting both.
    let node = |get: Vec<u8>, gets: Arc<AtomicUsize>| {
        let (op, m) = (old_port.clone(), maps.clone());
        common::serve_commands(move |_, cmd, s| {
            let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
            let reply: Vec<u8> = match name.as_str() {
                "HELLO" => b"%1\r\n+server\r\n+fake\r\n".to_vec(),
                "CLUSTER" => {
                    m.fetch_add(1, Ordering::SeqCst);
                    all_slots_at(*op.get().unwrap())
                }
                "GET" => {
                    gets.fetch_add(1, Ordering::SeqCst);
                    get.clone()
                }
                "PING" => b"+PONG\r\n".to_vec(),
                _ => b"+OK\r\n".to_vec(),
            };
            s.write_all(&reply).is_ok()
        })
        .0
    };
    let new_port = node(b"$1\r\nv\r\n".to_vec(), new_gets.clone());
    let port = node(
        format!("-MOVED {slot} 127.0.0.1:{new_port}\r\n").into_bytes(),
        old_gets.clone(),
    );
    old_port.set(port).unwrap();
    let c = Client::connect(
        &format!("redis://127.0.0.1:{port}"),
        Options::default().cluster(redipc::ClusterMode::Cluster),
    )
    .unwrap();
    let before = maps.load(Ordering::SeqCst);
    for _ in 0..6 {
        assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        // Past the refresh that the `MOVED` asked for (at most every 100 ms).
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        maps.load(Ordering::SeqCst) > before,
        "the map was read again after the MOVED"
    );
    assert_eq!(
        old_gets.load(Ordering::SeqCst),
        1,
        "only the first call went to the old owner"
    );
    assert_eq!(new_gets.load(Ordering::SeqCst), 6);
}

/// Built without the `cluster` feature (`cargo test -p redipc --no-default-features`): a
/// cluster node is refused at connect time with a clear `Unsupported` error, in `Auto`
/// mode as in `Cluster` mode; a standalone server still works.
#[cfg(not(feature = "cluster"))]
#[test]
fn without_the_cluster_feature_a_cluster_node_is_refused() {
    let (port, _) = common::serve_commands(|_, cmd, s| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        let reply: Vec<u8> = match name.as_str() {
            "HELLO" => b"%1\r\n+server\r\n+fake\r\n".to_vec(),
            "CLUSTER" => all_slots_at(1),
            _ => b"+OK\r\n".to_vec(),
        };
        s.write_all(&reply).is_ok()
    });
    let url = format!("redis://127.0.0.1:{port}");
    for mode in [redipc::ClusterMode::Auto, redipc::ClusterMode::Cluster] {
        let e = Client::connect(&url, Options::default().cluster(mode)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains("`cluster` feature"), "{e}");
    }
    let c = Client::connect(
        &url,
        Options::default().cluster(redipc::ClusterMode::Standalone),
    )
    .unwrap();
    c.set("k", "v").unwrap();
}

/// Built without the `sentinel` feature (`cargo test -p redipc --no-default-features`): a
/// sentinel URL is refused when the client is created, with a clear `Unsupported` error
/// that does not show the URL's password.
#[cfg(not(feature = "sentinel"))]
#[test]
fn without_the_sentinel_feature_a_sentinel_url_is_refused() {
    let e = Client::connect(
        "redis-sentinel://:secret@127.0.0.1:1/0#mymaster",
        Options::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let text = e.to_string();
    assert!(text.contains("`sentinel` feature"), "{e}");
    assert!(!text.contains("secret"), "{e}");
}

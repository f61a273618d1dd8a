#![cfg(feature = "tls")]
//! TLS (`rediss://`) against private redis-servers listening with TLS, with certificates
//! made for this run (scripts/lib/tls-certs.sh): plain TLS, mutual TLS, a wrong CA, name
//! mismatches, bad settings, and every kind of connection the client opens (commands,
//! pipelines, big values, pub/sub and its reconnect, dedicated connections, workers, RPC).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, direct_id, free_port, shared_id, tls_certs};
use redipc::{ErrorKind, Event, Options, Pem, SubscribeOptions, TlsOptions, blocking};

fn ca(certs: &Path) -> TlsOptions {
    TlsOptions::default().ca(Pem::file(certs.join("ca.crt")))
}

fn connect(url: &str, tls: TlsOptions) -> redipc::Result<blocking::Client> {
    blocking::Client::connect(
        url,
        Options::default()
            .tls(tls)
            .connect_timeout(Duration::from_secs(3)),
    )
}

#[test]
fn every_kind_of_connection_works_over_tls() {
    let certs = tls_certs();
    let port = free_port();
    let server = Server::start_tls(certs.path(), port, false, &[]);
    let url = format!("rediss://127.0.0.1:{port}/0");
    let c = connect(&url, ca(certs.path())).unwrap();
    c.set("k", "v").unwrap();
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));

    // A big value both ways (many TLS records, partial writes), then a deep pipeline.
    let big = vec![b'x'; 8 << 20];
    c.set("big", &big).unwrap();
    assert_eq!(c.get("big").unwrap().map(|b| b.len()), Some(big.len()));
    let mut b = c.pipeline();
    for _ in 0..1000 {
        b.add(&["INCR", "n"]).unwrap();
    }
    let replies = b.exec().unwrap();
    assert_eq!(replies.len(), 1000);

    // The connection is really TLS: the server counts it on its TLS port.
    let list = c.command(&["CLIENT", "LIST"]).unwrap();
    assert!(format!("{list:?}").contains(&format!("laddr=127.0.0.1:{port}")));

    // Pub/sub over TLS, and its reconnect after CLIENT KILL.
    let sub = c.subscribe(&["news"], SubscribeOptions::default()).unwrap();
    wait_for(&sub, |e| matches!(e, Event::Activated { .. }));
    c.publish("news", "one").unwrap();
    wait_for(
        &sub,
        |e| matches!(e, Event::Message(m) if &m.payload[..] == b"one"),
    );
    server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    wait_for(&sub, |e| matches!(e, Event::Reactivated { .. }));
    c.publish("news", "two").unwrap();
    wait_for(
        &sub,
        |e| matches!(e, Event::Message(m) if &m.payload[..] == b"two"),
    );

    // The command connection's reconnect.
    server.cmd(&["CLIENT", "KILL", "TYPE", "normal"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.get("k").is_err() {
        assert!(Instant::now() < deadline, "no reconnect over TLS");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A dedicated connection (a blocking pop), a request worker and RPC.
    c.command(&["RPUSH", "list", "a"]).unwrap();
    let got = c.command(&["BLPOP", "list", "1"]).unwrap();
    assert!(format!("{got:?}").contains('a'), "{got:?}");
    let srv = connect(&url, ca(certs.path())).unwrap();
    let s = srv
        .serve("upper", |call| Ok(call.payload.to_ascii_uppercase()), 2)
        .unwrap();
    assert_eq!(
        &c.call("upper", "tls", Duration::from_secs(5)).unwrap()[..],
        b"TLS"
    );
    s.stop(Duration::from_secs(2)).unwrap();
}

#[test]
fn a_lone_caller_takes_its_own_tls_connection() {
    // net/direct.rs over TLS: the handshake on the runtime, then the caller drives rustls
    // over its blocking socket. The rules of the plain direct connection hold.
    let certs = tls_certs();
    let port = free_port();
    let server = Server::start_tls(
        certs.path(),
        port,
        false,
        &["--enable-debug-command", "yes"],
    );
    let url = format!("rediss://127.0.0.1:{port}/0");
    let c = blocking::Client::connect(
        &url,
        Options::default()
            .tls(ca(certs.path()))
            .response_timeout(Duration::from_millis(400)),
    )
    .unwrap();
    let shared = shared_id(&c);
    let direct = direct_id(&c, shared);
    let list = format!("{:?}", c.command(&["CLIENT", "LIST"]).unwrap());
    let on_tls = |id: i64| {
        list.lines()
            .any(|l| l.contains(&format!("id={id} ")) && l.contains(&format!(":{port} ")))
    };
    assert!(
        list.split("id=").count() > 2 && on_tls(direct) && on_tls(shared),
        "{list}"
    );
    // Values over many records both ways, and typed helpers.
    let big = vec![b'y'; 1 << 20];
    c.set("big", &big).unwrap();
    assert_eq!(c.get("big").unwrap().map(|b| b.len()), Some(big.len()));
    assert_eq!(c.incr("n").unwrap(), 1);
    assert_eq!(
        c.command(&["CLIENT", "ID"]).unwrap().into_int().unwrap(),
        direct
    );
    // A timeout: the late reply never answers the next call.
    let e = c.command(&["DEBUG", "SLEEP", "0.7"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    std::thread::sleep(Duration::from_millis(500));
    for i in 2..=10 {
        assert_eq!(c.incr("n").unwrap(), i);
    }
    // Killed while idle: noticed before the write, the call runs once on the shared one.
    for i in 11..=15 {
        server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.incr("n").unwrap(), i);
    }
    let shared = shared_id(&c);
    direct_id(&c, shared);
    // Closing ends a wait on the TLS socket at once.
    let c2 = c.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        (
            c2.command(&["DEBUG", "SLEEP", "0.35"]).unwrap_err(),
            t.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    c.close();
    let (e, took) = waiter.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    assert!(took < Duration::from_millis(330), "{took:?}");
}

fn wait_for(sub: &redipc::blocking::Subscription, want: impl Fn(&Event) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(e)) = sub.next(Some(Duration::from_millis(100)))
            && want(&e)
        {
            return;
        }
    }
    panic!("the event did not come");
}

#[test]
fn certificates_are_checked() {
    let certs = tls_certs();
    let dir = certs.path();
    let port = free_port();
    let _server = Server::start_tls(dir, port, false, &["--bind", "127.0.0.1", "127.0.0.2"]);
    let url = format!("rediss://127.0.0.1:{port}");
    let fails = |url: &str, tls: TlsOptions, want: &str| {
        let Err(e) = connect(url, tls) else {
            panic!("connected")
        };
        assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
        assert!(e.to_string().contains(want), "wanted {want:?} in: {e}");
    };
    // A CA that did not sign the server's certificate, and the system's roots (no CA).
    let other = TlsOptions::default().ca(Pem::file(dir.join("other-ca.crt")));
    fails(&url, other, "unknown issuer");
    fails(&url, TlsOptions::default(), "unknown issuer");
    // The name the certificate holds: 127.0.0.1 and localhost, not 127.0.0.2.
    let other_ip = format!("rediss://127.0.0.2:{port}");
    fails(&other_ip, ca(dir), "name mismatch");
    connect(&other_ip, ca(dir).server_name("localhost")).unwrap();
    fails(&url, ca(dir).server_name("redis.example"), "redis.example");
    connect(&format!("rediss://localhost:{port}"), ca(dir)).unwrap();
    // PEM given as data rather than a file.
    let pem = std::fs::read(dir.join("ca.crt")).unwrap();
    let c = connect(&url, TlsOptions::default().ca(Pem::data(pem))).unwrap();
    c.ping().unwrap();
    // Insecure: any certificate (the test CA is not given).
    let c = connect(&url, TlsOptions::default().insecure(true)).unwrap();
    c.ping().unwrap();
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let certs = tls_certs();
    let dir = certs.path();
    let port = free_port();
    let _server = Server::start_tls(dir, port, true, &[]);
    let url = format!("rediss://127.0.0.1:{port}");
    let Err(e) = connect(&url, ca(dir)) else {
        panic!("connected without a certificate")
    };
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.to_string().contains("client certificate"), "{e}");
    let with_cert = ca(dir).client_cert(
        Pem::file(dir.join("client.crt")),
        Pem::file(dir.join("client.key")),
    );
    let c = connect(&url, with_cert).unwrap();
    c.set("m", "1").unwrap();
    let sub = c.subscribe(&["m"], SubscribeOptions::default()).unwrap();
    wait_for(&sub, |e| matches!(e, Event::Activated { .. }));
    // Keys given as data, and a certificate that is not this key's.
    let key = std::fs::read(dir.join("client.key")).unwrap();
    let cert = std::fs::read(dir.join("client.crt")).unwrap();
    connect(
        &url,
        ca(dir).client_cert(Pem::data(cert), Pem::data(key.clone())),
    )
    .unwrap();
    let e = connect(
        &url,
        ca(dir).client_cert(Pem::file(dir.join("server.crt")), Pem::data(key)),
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn bad_settings_are_clear_errors_and_no_pem_is_repeated() {
    let certs = tls_certs();
    let dir = certs.path();
    let server = Server::start();
    let plain = server.tcp_url();
    // TLS options with a redis:// URL: refused, not silently unencrypted.
    let e = connect(&plain, ca(dir)).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("not rediss://"), "{e}");
    // TLS to a port that does not speak it.
    let e = connect(&format!("rediss://127.0.0.1:{}", server.port), ca(dir))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.to_string().contains("TLS"), "{e}");
    // A unix socket never uses TLS.
    let e = connect(&format!("rediss://{}", server.sock().display()), ca(dir))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // Files that are missing or not PEM, a key without a certificate.
    let url = "rediss://127.0.0.1:1";
    let e = connect(
        url,
        TlsOptions::default().ca(Pem::file(dir.join("nope.crt"))),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("nope.crt"), "{e}");
    let secret = "-----BEGIN PRIVATE KEY-----\nS3cr3tKeyMaterial\n-----END PRIVATE KEY-----\n";
    for tls in [
        TlsOptions::default().ca(Pem::data("not a certificate")),
        TlsOptions::default().ca(Pem::data(secret)),
        ca(dir).client_cert(Pem::file(dir.join("client.crt")), Pem::data(secret)),
        ca(dir).client_cert(Pem::data(secret), Pem::file(dir.join("client.key"))),
    ] {
        let e = connect(url, tls.clone()).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let text = format!("{e} {e:?} {tls:?}");
        assert!(!text.contains("S3cr3tKeyMaterial"), "{text}");
    }
    let mut half = ca(dir);
    half.key = Some(Pem::file(dir.join("client.key")));
    let e = connect(url, half).err().unwrap();
    assert!(e.to_string().contains("needs its"), "{e}");
}

//! Joining a redis-ipc fleet: every convention of `docs/FLEET.md`, played from the other
//! side with the raw commands the fleet sends (a separate connection), both ways.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Server;
use redipc::blocking::Client;
use redipc::{
    CallOptions, Error, ErrorKind, Event, HashWrite, Options, Protocol, Reply, RpcHandler,
    SubscribeOptions, TimestampFormat, WatchOptions, WorkerOptions,
};

fn connect(url: &str) -> Client {
    Client::connect(url, Options::default()).unwrap()
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(r.as_bytes().unwrap_or_default()).into_owned()
}

/// The next message published on a raw subscription, within `t`.
fn next_message(sub: &redipc::blocking::Subscription, t: Duration) -> Option<(Vec<u8>, Vec<u8>)> {
    let until = Instant::now() + t;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match sub.next(Some(left)).unwrap() {
            Some(Event::Message(m)) => return Some((m.channel.to_vec(), m.payload.to_vec())),
            Some(_) => continue,
            None => return None,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn bare_queues_both_ways_and_a_multi_list_consumer() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let raw = connect(&server.unix_url());
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let g = got.clone();
    let w = c
        .handle_requests(
            &["scooter:state", "scooter:seatbox"],
            move |r| {
                g.lock().unwrap().push((
                    String::from_utf8_lossy(&r.queue).into_owned(),
                    String::from_utf8_lossy(&r.payload).into_owned(),
                ));
                Ok(())
            },
            WorkerOptions::default().bare(true),
        )
        .unwrap();
    // The fleet's producers: LPUSH on the bare keys (FIFO per list).
    raw.command(&["LPUSH", "scooter:state", "lock"]).unwrap();
    raw.command(&["LPUSH", "scooter:state", "unlock"]).unwrap();
    raw.command(&["LPUSH", "scooter:seatbox", "open"]).unwrap();
    wait_for("three requests", || got.lock().unwrap().len() == 3);
    let got = got.lock().unwrap().clone();
    let state: Vec<&str> = got
        .iter()
        .filter(|(q, _)| q == "scooter:state")
        .map(|(_, p)| p.as_str())
        .collect();
    assert_eq!(state, ["lock", "unlock"]);
    assert!(got.contains(&("scooter:seatbox".into(), "open".into())));
    w.stop(Duration::from_secs(5)).unwrap();

    // redipc produces for the fleet's consumer (BRPOP on the bare key).
    c.send_request_bare("scooter:blinker", "left").unwrap();
    let r = raw.command(&["BRPOP", "scooter:blinker", "2"]).unwrap();
    let pair = r.as_slice().unwrap();
    assert_eq!(
        (text(&pair[0]), text(&pair[1])),
        ("scooter:blinker".into(), "left".into())
    );

    // A bare queue is plain: reliable mode is refused, clearly.
    let e = c
        .handle_requests(
            &["scooter:state"],
            |_| Ok(()),
            WorkerOptions::default().bare(true).reliable(true),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("bare"), "{e}");
}

/// A fleet caller, by hand: SUBSCRIBE the reply channel (confirmed), LPUSH the envelope.
fn fleet_call(
    raw: &Client,
    list: &str,
    method: Option<&str>,
    payload: &str,
    deadline_ms: u64,
) -> Option<serde_json::Value> {
    let id = format!("{:032x}", rand_id());
    let reply_channel = format!("{list}:reply:{id}");
    let sub = raw
        .subscribe(&[&reply_channel], SubscribeOptions::default())
        .unwrap();
    let mut env = serde_json::json!({
        "id": id,
        "reply_channel": reply_channel,
        "deadline": deadline_ms,
        "payload": serde_json::from_str::<serde_json::Value>(payload).unwrap(),
    });
    if let Some(m) = method {
        env["method"] = m.into();
    }
    raw.command(&["LPUSH", list, &env.to_string()]).unwrap();
    let (ch, body) = next_message(&sub, Duration::from_millis(1500))?;
    assert_eq!(ch, reply_channel.as_bytes());
    Some(serde_json::from_slice(&body).unwrap())
}

fn rand_id() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    let s = RandomState::new();
    (u128::from(s.hash_one(1u8)) << 64) | u128::from(s.hash_one(2u8))
}

#[test]
fn rpc_on_the_redis_ipc_wire_both_ways() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let raw = connect(&server.unix_url());
    let fleet = WorkerOptions::default().protocol(Protocol::RedisIpc);

    // redipc serves a one-method list: the fleet's caller gets {"ok":true,"payload":..}.
    let srv = c
        .serve_with(
            "motion:speed",
            |call| {
                let v: serde_json::Value = serde_json::from_slice(&call.payload).unwrap();
                if v["fail"].as_bool() == Some(true) {
                    return Err(Error::handler("cannot do that"));
                }
                Ok(serde_json::json!({"speed": v["kmh"].as_i64().unwrap() * 2})
                    .to_string()
                    .into_bytes())
            },
            fleet.clone(),
        )
        .unwrap();
    let deadline = now_ms() + 5_000;
    let r = fleet_call(&raw, "motion:speed", None, r#"{"kmh":21}"#, deadline).unwrap();
    assert_eq!(r, serde_json::json!({"ok": true, "payload": {"speed": 42}}));
    // The error form.
    let r = fleet_call(&raw, "motion:speed", None, r#"{"fail":true}"#, deadline).unwrap();
    assert_eq!(
        r,
        serde_json::json!({"ok": false, "error": "cannot do that"})
    );
    // An expired deadline: dropped without a reply.
    assert!(fleet_call(&raw, "motion:speed", None, r#"{"kmh":1}"#, now_ms() - 10).is_none());
    // A redipc caller on the same wire, 16 at once, each its own reply.
    let opts = CallOptions::default().protocol(Protocol::RedisIpc);
    std::thread::scope(|s| {
        for i in 0..16 {
            let c = c.clone();
            s.spawn(move || {
                let payload = format!(r#"{{"kmh":{i}}}"#);
                let r = c.call_with("motion:speed", "", payload, opts).unwrap();
                let v: serde_json::Value = serde_json::from_slice(&r).unwrap();
                assert_eq!(v["speed"].as_i64(), Some(i * 2));
            });
        }
    });
    // A payload that is not JSON is refused before anything is sent.
    let e = c
        .call_with("motion:speed", "", "not json", opts)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("not JSON"), "{e}");
    srv.stop(Duration::from_secs(5)).unwrap();

    // A multi-method server: method dispatch and the fleet's unknown-method text.
    let mut methods: HashMap<String, RpcHandler> = HashMap::new();
    methods.insert("ping".into(), Arc::new(|_| Ok(b"\"pong\"".to_vec())));
    let srv = c
        .serve_methods_with("motion:rpc", methods, fleet.clone())
        .unwrap();
    let r = fleet_call(&raw, "motion:rpc", Some("ping"), "null", deadline).unwrap();
    assert_eq!(r, serde_json::json!({"ok": true, "payload": "pong"}));
    let r = fleet_call(&raw, "motion:rpc", Some("jump"), "null", deadline).unwrap();
    assert_eq!(
        r,
        serde_json::json!({"ok": false, "error": "unknown method: jump"})
    );
    let r = c.call_with("motion:rpc", "ping", "{}", opts).unwrap();
    assert_eq!(&r[..], b"\"pong\"");
    let e = c.call_with("motion:rpc", "jump", "{}", opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote);
    assert_eq!(e.message(), "unknown method: jump");
    srv.stop(Duration::from_secs(5)).unwrap();

    // redipc calls a fleet server, played by hand: BRPOP the envelope, PUBLISH the reply.
    let caller = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.call_with(
                "nav:route",
                "plan",
                r#"{"to":"home"}"#,
                opts.timeout(Duration::from_secs(5)),
            )
        })
    };
    let popped = raw.command(&["BRPOP", "nav:route", "5"]).unwrap();
    let env: serde_json::Value =
        serde_json::from_slice(popped.as_slice().unwrap()[1].as_bytes().unwrap()).unwrap();
    let id = env["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(env["method"], "plan");
    assert_eq!(
        env["reply_channel"].as_str().unwrap(),
        format!("nav:route:reply:{id}")
    );
    assert_eq!(env["payload"], serde_json::json!({"to": "home"}));
    let dl = env["deadline"].as_u64().unwrap();
    assert!(dl > now_ms() && dl <= now_ms() + 5_100, "{dl}");
    raw.command(&[
        "PUBLISH",
        env["reply_channel"].as_str().unwrap(),
        r#"{"ok":true,"payload":[1,2,3]}"#,
    ])
    .unwrap();
    assert_eq!(&caller.join().unwrap().unwrap()[..], b"[1,2,3]");
    // Without a method the field is left out; an error reply is a remote error.
    let caller = {
        let c = c.clone();
        std::thread::spawn(move || c.call_with("nav:route", "", "1", opts))
    };
    let popped = raw.command(&["BRPOP", "nav:route", "5"]).unwrap();
    let env: serde_json::Value =
        serde_json::from_slice(popped.as_slice().unwrap()[1].as_bytes().unwrap()).unwrap();
    assert!(env.get("method").is_none(), "{env}");
    raw.command(&[
        "PUBLISH",
        env["reply_channel"].as_str().unwrap(),
        r#"{"ok":false,"error":"no route"}"#,
    ])
    .unwrap();
    let e = caller.join().unwrap().unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Remote, "no route"));
    // Nobody answers: a timeout, and the request is taken back.
    let e = c
        .call_with(
            "nav:nobody",
            "",
            "1",
            opts.timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(raw.llen("nav:nobody").unwrap(), 0);
}

type Seen = Arc<Mutex<Vec<String>>>;

fn seen_watch(c: &Client, hash: &str, opts: WatchOptions) -> (redipc::HashWatcher, Seen) {
    let seen: Seen = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let w = c
        .hash_watch(
            hash,
            opts.on_any(move |f, v| {
                s1.lock().unwrap().push(format!(
                    "{}={}",
                    String::from_utf8_lossy(f),
                    v.map_or("<gone>".into(), |v| String::from_utf8_lossy(v).into_owned())
                ))
            })
            .on_event(move |e| {
                s2.lock()
                    .unwrap()
                    .push(format!("event:{}", String::from_utf8_lossy(e)))
            }),
        )
        .unwrap();
    (w, seen)
}

#[test]
fn hash_state_every_notification_events_clear_and_replace() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let raw = connect(&server.unix_url());
    raw.command(&["HSET", "keycard", "uid", "04ab"]).unwrap();
    let (w, seen) = seen_watch(&c, "keycard", WatchOptions::new().every_notification(true));
    wait_for("the initial sync", || *seen.lock().unwrap() == ["uid=04ab"]);
    // The same card tapped twice: two notifications, two deliveries.
    for _ in 0..2 {
        raw.command(&["HSET", "keycard", "uid", "04ab"]).unwrap();
        raw.command(&["PUBLISH", "keycard", "uid"]).unwrap();
    }
    wait_for("both taps", || seen.lock().unwrap().len() == 3);
    // An event on the hash's channel.
    raw.command(&["PUBLISH", "keycard", "seatbox:opened"])
        .unwrap();
    wait_for("the event", || {
        seen.lock().unwrap().last().map(String::as_str) == Some("event:seatbox:opened")
    });
    // The fleet's replace-all: DEL, HSETs, PUBLISH replaced: re-read, deletions reported.
    raw.command(&["DEL", "keycard"]).unwrap();
    raw.command(&["HSET", "keycard", "owner", "ann"]).unwrap();
    raw.command(&["PUBLISH", "keycard", "replaced"]).unwrap();
    wait_for("the replace", || {
        let s = seen.lock().unwrap();
        s.contains(&"owner=ann".to_string()) && s.contains(&"uid=<gone>".to_string())
    });
    // The fleet's clear: DEL, PUBLISH cleared.
    raw.command(&["DEL", "keycard"]).unwrap();
    raw.command(&["PUBLISH", "keycard", "cleared"]).unwrap();
    wait_for("the clear", || {
        seen.lock().unwrap().last().map(String::as_str) == Some("owner=<gone>")
    });
    w.stop(Duration::from_secs(5)).unwrap();

    // Without every_notification a repeated value is delivered once (redipc's default).
    raw.command(&["HSET", "dedupe", "a", "1"]).unwrap();
    let (w, seen) = seen_watch(&c, "dedupe", WatchOptions::new());
    wait_for("the initial sync", || seen.lock().unwrap().len() == 1);
    raw.command(&["PUBLISH", "dedupe", "a"]).unwrap();
    raw.command(&["PUBLISH", "dedupe", "ping"]).unwrap();
    wait_for("the event", || seen.lock().unwrap().len() == 2);
    assert_eq!(*seen.lock().unwrap(), ["a=1", "event:ping"]);
    w.stop(Duration::from_secs(5)).unwrap();

    // A custom channel.
    let (w, seen) = seen_watch(
        &c,
        "battery:0",
        WatchOptions::new().initial_sync(false).channel("battery"),
    );
    raw.command(&["HSET", "battery:0", "charge", "80"]).unwrap();
    raw.command(&["PUBLISH", "battery", "charge"]).unwrap();
    wait_for("the change on the custom channel", || {
        *seen.lock().unwrap() == ["charge=80"]
    });
    w.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn hash_writes_in_the_fleets_words() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let raw = connect(&server.unix_url());
    let sub = raw
        .subscribe(&["vehicle", "blinker"], SubscribeOptions::default())
        .unwrap();
    let msg = || next_message(&sub, Duration::from_secs(2)).unwrap();

    // A timestamped write: the field, `<field>:timestamp`, one announcement of the field.
    let before = now_ms();
    c.hash_set_with(
        "vehicle",
        "state",
        "ready",
        HashWrite::new().timestamp(TimestampFormat::UnixMillis),
    )
    .unwrap();
    assert_eq!(msg(), (b"vehicle".to_vec(), b"state".to_vec()));
    let ts: u64 = text(
        &raw.command(&["HGET", "vehicle", "state:timestamp"])
            .unwrap(),
    )
    .parse()
    .unwrap();
    assert!(ts >= before && ts <= now_ms(), "{ts}");
    c.hash_set_with(
        "vehicle",
        "state",
        "parked",
        HashWrite::new().timestamp(TimestampFormat::Rfc3339),
    )
    .unwrap();
    msg();
    let ts = text(
        &raw.command(&["HGET", "vehicle", "state:timestamp"])
            .unwrap(),
    );
    assert_eq!(ts.len(), "2026-12-04T21:40:00.123Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    assert_eq!(
        TimestampFormat::Rfc3339.format(UNIX_EPOCH + Duration::from_millis(1_709_251_200_007)),
        "2024-03-01T00:00:00.007Z"
    );

    // Several fields announced with one chosen word, on another channel.
    c.hash_set_many_with(
        "vehicle",
        &[("blinker:left", "on"), ("blinker:right", "off")],
        HashWrite::new()
            .channel("blinker")
            .announce("blinker:state"),
    )
    .unwrap();
    assert_eq!(msg(), (b"blinker".to_vec(), b"blinker:state".to_vec()));
    // Replace-all and clear in the fleet's words.
    c.hash_replace_all_with(
        "vehicle",
        &[("state", "off")],
        HashWrite::new().announce("replaced"),
    )
    .unwrap();
    assert_eq!(msg(), (b"vehicle".to_vec(), b"replaced".to_vec()));
    assert_eq!(c.hgetall("vehicle").unwrap().len(), 1);
    c.hash_clear("vehicle", HashWrite::new()).unwrap();
    assert_eq!(msg(), (b"vehicle".to_vec(), b"cleared".to_vec()));
    assert_eq!(c.exists(&["vehicle"]).unwrap(), 0);
    // redipc's defaults still talk to redipc watchers: `*` for a replace-all.
    c.hash_replace_all("vehicle", &[("a", "1")]).unwrap();
    assert_eq!(msg(), (b"vehicle".to_vec(), b"*".to_vec()));
}

#[test]
fn faults_set_and_clear_in_the_set_the_stream_and_the_channel() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let raw = connect(&server.unix_url());
    let sub = raw
        .subscribe(&["battery:0"], SubscribeOptions::default())
        .unwrap();
    assert!(c.fault_set("battery:0", 35, "too hot").unwrap());
    assert!(
        !c.fault_set("battery:0", 35, "too hot").unwrap(),
        "idempotent"
    );
    let members = raw.command(&["SMEMBERS", "battery:0:fault"]).unwrap();
    assert_eq!(
        members
            .as_slice()
            .unwrap()
            .iter()
            .map(text)
            .collect::<Vec<_>>(),
        ["35"]
    );
    assert_eq!(
        next_message(&sub, Duration::from_secs(2)),
        Some((b"battery:0".to_vec(), b"fault".to_vec()))
    );
    assert!(c.fault_clear("battery:0", 35).unwrap());
    assert!(!c.fault_clear("battery:0", 35).unwrap());
    assert_eq!(
        next_message(&sub, Duration::from_secs(2)),
        Some((b"battery:0".to_vec(), b"fault".to_vec()))
    );
    assert_eq!(
        next_message(&sub, Duration::from_millis(200)),
        None,
        "one message each"
    );
    assert_eq!(
        raw.command(&["SCARD", "battery:0:fault"]).unwrap(),
        Reply::Int(0)
    );
    let entries = c.stream_read("events:faults", "0", 10, None).unwrap();
    let fields: Vec<Vec<(String, String)>> = entries
        .iter()
        .map(|e| {
            e.fields
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect()
        })
        .collect();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        fields,
        [
            vec![
                pair("group", "battery:0"),
                pair("code", "35"),
                pair("description", "too hot")
            ],
            vec![pair("group", "battery:0"), pair("code", "-35")],
        ]
    );
    assert_eq!(
        c.fault_set("battery:0", 0, "x").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn a_server_without_config_works_and_watch_keys_says_why_it_cannot() {
    let server = Server::start_with(&["--rename-command", "CONFIG", ""]);
    let c = connect(&server.unix_url());
    c.set("k", "v").unwrap();
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    let sub = c.subscribe(&["ch"], SubscribeOptions::default()).unwrap();
    c.publish("ch", "x").unwrap();
    assert!(next_message(&sub, Duration::from_secs(2)).is_some());
    let e = c.watch_keys("k*", &["set"], true, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let t = e.to_string();
    assert!(
        t.contains("CONFIG") && t.contains("notify-keyspace-events"),
        "{t}"
    );
}

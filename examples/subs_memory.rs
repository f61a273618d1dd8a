//! Memory of many channel subscriptions on one client:
//! `cargo run --release --example subs_memory -- URL [CHANNELS]` prints the process's RSS
//! growth for CHANNELS (default 10,000) channels, both as one subscription with all of them
//! and as one subscription per channel. The target is < 20 MiB for 10,000.

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> redipc::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let c = redipc::blocking::Client::connect(&url, redipc::Options::default())?;
    // Start the pub/sub connection first, so only the subscriptions are measured.
    let warm = c.subscribe(&["warmup"], redipc::SubscribeOptions::default())?;
    let names: Vec<String> = (0..n).map(|i| format!("mem:channel:{i}")).collect();

    let before = rss_kib();
    let one = c.subscribe(&names, redipc::SubscribeOptions::default())?;
    let after_one = rss_kib();
    drop(one);

    let before_many = rss_kib();
    let many: Vec<_> = names
        .iter()
        .map(|name| c.subscribe(&[name], redipc::SubscribeOptions::default()))
        .collect::<redipc::Result<_>>()?;
    let after_many = rss_kib();
    drop(many);
    drop(warm);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{n} channels in one subscription: +{:.1} MiB RSS; {n} subscriptions of one channel: +{:.1} MiB RSS",
        mib(after_one.saturating_sub(before)),
        mib(after_many.saturating_sub(before_many))
    );
    Ok(())
}

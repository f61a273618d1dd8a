//! Sequential GETs from one thread: `cargo run --release --example seqget -- URL [N] [IO_THREADS]`.
//! A quick look at the per-call cost of the blocking facade (the real comparison with
//! hiredis and redis-py lives in bench/).

use std::time::Instant;

fn main() -> redipc::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let io: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let c = redipc::blocking::Client::connect(&url, redipc::Options::default().io_threads(io))?;
    c.set("seqget", "value")?;
    for _ in 0..1000 {
        c.get("seqget")?;
    }
    let t = Instant::now();
    for _ in 0..n {
        c.get("seqget")?;
    }
    let dt = t.elapsed();
    println!("{n} GETs in {dt:?}: {:.0}/s", n as f64 / dt.as_secs_f64());
    Ok(())
}

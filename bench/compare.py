"""Side by side: benchmark results (bench/run's JSON) of the same mode, before and after
a change, as a Markdown table.

    python bench/compare.py BEFORE.json AFTER.json [--impls redipc-c,redipc-py]
    python bench/compare.py --before B1.json B2.json --after A1.json A2.json

Several files per side pool their repetitions (run them alternately, before-after-after-
before, so that the machine's drift falls on both sides).

For each workload and implementation: the median of each run with its spread (min..max as
a percentage of the median), the change, and whether the change is beyond the spread of
both runs ("slower"/"faster") or within it ("="). The peers (hiredis, redis-py) are listed
too: they did not change, so their own "changes" show how much the machine moved between
the two runs. CPU per operation is given where both runs have it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def summary(doc: dict) -> dict[tuple[str, str], dict]:
    return {(s["impl"], s["label"]): s for s in doc.get("summary", [])}


def pooled(docs: list[dict]) -> dict:
    """One result made of the repetitions of several: median, min, max, spread, CPU/op."""
    if len(docs) == 1:
        return docs[0]
    reps: dict[tuple[str, str], list[dict]] = {}
    for d in docs:
        for r in d.get("runs", []):
            reps.setdefault((r["impl"], r["label"]), []).append(r)
    out = []
    for (impl, label), rs in reps.items():
        ops = sorted(r["ops_per_s"] for r in rs)
        med = statistics.median(ops)
        cpus = [r["cpu_us_per_op"] for r in rs if r.get("cpu_us_per_op") is not None]
        out.append(dict(impl=impl, label=label, runs=len(rs), ops_per_s=med, min=ops[0],
                        max=ops[-1], spread_pct=(ops[-1] - ops[0]) / med * 100 if med else 0,
                        cpu_us_per_op=statistics.median(cpus) if cpus else None))
    meta = dict(docs[0].get("meta", {}))
    meta["git"] = ", ".join(sorted({str(d.get("meta", {}).get("git")) for d in docs}))
    meta["repetitions"] = sum(d.get("meta", {}).get("repetitions", 0) for d in docs)
    meta["date"] = " / ".join(str(d.get("meta", {}).get("date")) for d in docs)
    return dict(meta=meta, workloads=docs[-1].get("workloads", {}), summary=out)


def verdict(b: dict, a: dict) -> str:
    """Beyond both spreads: a change; otherwise "=" (within the noise of these runs)."""
    b_lo, b_hi = b.get("min", b["ops_per_s"]), b.get("max", b["ops_per_s"])
    a_lo, a_hi = a.get("min", a["ops_per_s"]), a.get("max", a["ops_per_s"])
    if a_hi < b_lo:
        return "slower"
    if a_lo > b_hi:
        return "faster"
    return "="


def table(before: dict, after: dict, impls: list[str]) -> str:
    sb, sa = summary(before), summary(after)
    titles = {k: v.get("title", k) for k, v in after.get("workloads", {}).items()}
    rows = [
        "| workload | impl | before (spread) | after (spread) | change | | CPU µs/op before → after |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    labels = [k for k in after.get("workloads", {})]
    for label in labels:
        for impl in impls:
            b, a = sb.get((impl, label)), sa.get((impl, label))
            if not b or not a:
                continue
            change = (a["ops_per_s"] / b["ops_per_s"] - 1.0) * 100 if b["ops_per_s"] else 0.0
            cpu = ""
            if b.get("cpu_us_per_op") is not None and a.get("cpu_us_per_op") is not None:
                cpu = f"{b['cpu_us_per_op']:.2f} → {a['cpu_us_per_op']:.2f}"
            rows.append(
                f"| {titles.get(label, label)} | {impl} "
                f"| {b['ops_per_s']:,.0f} (±{b.get('spread_pct', 0) / 2:.0f} %) "
                f"| {a['ops_per_s']:,.0f} (±{a.get('spread_pct', 0) / 2:.0f} %) "
                f"| {change:+.1f} % | {verdict(b, a)} | {cpu} |"
            )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="BEFORE.json AFTER.json")
    ap.add_argument("--before", nargs="+", default=[])
    ap.add_argument("--after", nargs="+", default=[])
    ap.add_argument("--impls", default="redipc-c,hiredis,redipc-py,redis-py")
    args = ap.parse_args()
    if args.files:
        if len(args.files) != 2 or args.before or args.after:
            ap.error("give BEFORE.json AFTER.json, or --before ... --after ...")
        args.before, args.after = [args.files[0]], [args.files[1]]
    if not args.before or not args.after:
        ap.error("give BEFORE.json AFTER.json, or --before ... --after ...")
    before = pooled([load(f) for f in args.before])
    after = pooled([load(f) for f in args.after])
    for name, doc in (("before", before), ("after", after)):
        m = doc.get("meta", {})
        print(f"- {name}: git {m.get('git')}, {m.get('mode')} mode, {m.get('repetitions')} "
              f"repetitions, {m.get('date')}, load {m.get('loadavg')}")
    print()
    print(table(before, after, args.impls.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

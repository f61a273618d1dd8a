"""Side by side: two benchmark results (bench/run's JSON) of the same mode, before and after
a change, as a Markdown table.

    python bench/compare.py BEFORE.json AFTER.json [--impls redipc-c,redipc-py]

For each workload and implementation: the median of each run with its spread (min..max as
a percentage of the median), the change, and whether the change is beyond the spread of
both runs ("slower"/"faster") or within it ("="). The peers (hiredis, redis-py) are listed
too: they did not change, so their own "changes" show how much the machine moved between
the two runs. CPU per operation is given where both runs have it.
"""

from __future__ import annotations

import argparse
import json
import sys


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def summary(doc: dict) -> dict[tuple[str, str], dict]:
    return {(s["impl"], s["label"]): s for s in doc.get("summary", [])}


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
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--impls", default="redipc-c,hiredis,redipc-py,redis-py")
    args = ap.parse_args()
    before, after = load(args.before), load(args.after)
    for name, doc in (("before", before), ("after", after)):
        m = doc.get("meta", {})
        print(f"- {name}: git {m.get('git')}, {m.get('mode')} mode, {m.get('repetitions')} "
              f"repetitions, {m.get('date')}, load {m.get('loadavg')}")
    print()
    print(table(before, after, args.impls.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

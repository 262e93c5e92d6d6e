#!/usr/bin/env python3
"""Charts (SVG) for docs/performance.md from the benchmark scripts' output.

    scripts/bench.sh > bench.txt
    scripts/fill-compare.sh --scenarios a,b,c,d > fill.txt
    scripts/bench_charts.py bench.txt fill.txt --out docs/img

Reads the `BENCH_RESULT {json}` line of scripts/bench.sh and the
`FILL_RESULT {json}` lines of scripts/fill-compare.sh, and writes:

  throughput.svg  memcrab/memcached throughput and CPU-per-request ratios
                  per workload (W*), with the 1.0 line;
  scaling.svg     ops/s of both servers at 1, 10, 100, 1000 connections (C*);
  memory.svg      RSS of both servers at 10k ... 10M items (scenario d).

A chart whose data is missing from the inputs is skipped. Stdlib only.
"""

import argparse
import json
import os
import sys

COLORS = {"memcached": "#8c8c8c", "memcrab": "#d9534f", "cpu": "#5b8def"}


def results(paths, tag):
    out = []
    for path in paths:
        for line in open(path, encoding="utf-8", errors="replace"):
            if line.startswith(tag + " "):
                out.append(json.loads(line[len(tag) + 1:]))
    return out


def bars(title, groups, series, unit, ref_line=None, fmt="{:.2f}"):
    """A grouped bar chart: groups = [(label, {series: value})]."""
    w, h, left, bottom, top = 720, 360, 70, 60, 40
    plot_w, plot_h = w - left - 20, h - top - bottom
    vmax = max([v for _, vals in groups for v in vals.values() if v is not None] + [ref_line or 0])
    vmax = vmax * 1.15 or 1
    slot = plot_w / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    y = lambda v: top + plot_h - v / vmax * plot_h  # noqa: E731
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{w - 20}" y2="{top + plot_h}" stroke="black"/>',
           f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" '
           f'text-anchor="middle">{unit}</text>']
    for i in range(5):
        v = vmax / 5 * i
        svg.append(f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end" fill="#555">'
                   f'{fmt.format(v)}</text>')
    for gi, (label, vals) in enumerate(groups):
        x0 = left + gi * slot + slot * 0.1
        for si, name in enumerate(series):
            v = vals.get(name)
            if v is None:
                continue
            x = x0 + si * bar
            svg.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar - 2:.1f}" '
                       f'height="{top + plot_h - y(v):.1f}" fill="{COLORS.get(name, "#444")}"/>')
            svg.append(f'<text x="{x + bar / 2 - 1:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle" '
                       f'font-size="10">{fmt.format(v)}</text>')
        svg.append(f'<text x="{left + gi * slot + slot / 2:.1f}" y="{top + plot_h + 18}" '
                   f'text-anchor="middle">{label}</text>')
    if ref_line is not None:
        svg.append(f'<line x1="{left}" y1="{y(ref_line):.1f}" x2="{w - 20}" y2="{y(ref_line):.1f}" '
                   f'stroke="black" stroke-dasharray="4 3"/>')
    for si, name in enumerate(series):
        lx = left + si * 170
        svg.append(f'<rect x="{lx}" y="{h - 22}" width="12" height="12" '
                   f'fill="{COLORS.get(name, "#444")}"/>')
        svg.append(f'<text x="{lx + 18}" y="{h - 12}">{series[name]}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="files with BENCH_RESULT / FILL_RESULT lines")
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    written = []

    bench = results(args.inputs, "BENCH_RESULT")
    work = bench[-1]["workloads"] if bench else {}
    w_rows = [(w, {"memcrab": r["ops_ratio"], "cpu": r["cpu_ratio"]})
              for w, r in work.items() if w.startswith("W") and r["ops_ratio"]]
    if w_rows:
        written.append(("throughput.svg", bars(
            "memcrab / memcached, same run (higher throughput, lower CPU is better)", w_rows,
            {"memcrab": "throughput ratio", "cpu": "CPU per request ratio"}, "ratio",
            ref_line=1.0)))
    c_rows = sorted(((int(w[1:]), r) for w, r in work.items() if w.startswith("C") and w[1:].isdigit()),
                    key=lambda x: x[0])
    if c_rows:
        groups = [(f"{n} conns", {s: (r[s]["ops"] or 0) / 1000 for s in ("memcached", "memcrab")})
                  for n, r in c_rows]
        written.append(("scaling.svg", bars(
            "throughput by connections (get 90:10, 100 B values)", groups,
            {"memcached": "memcached", "memcrab": "memcrab"}, "thousand ops/s", fmt="{:.0f}")))

    fills = [f for f in results(args.inputs, "FILL_RESULT") if f.get("scenario") == "d"]
    if fills:
        f = fills[-1]
        points = sorted({int(k[len("rss_"):]) for s in ("memcached", "memcrab")
                         for k in f.get(s, {}) if k.startswith("rss_") and k[4:].isdigit()})
        groups = [(f"{p:,} items", {s: f.get(s, {}).get(f"rss_{p}", 0) / 1024
                                   for s in ("memcached", "memcrab")}) for p in points]
        written.append(("memory.svg", bars(
            f"RSS after storing N items of 100 B ({f['flags']})", groups,
            {"memcached": "memcached", "memcrab": "memcrab"}, "RSS (MiB)", fmt="{:.0f}")))

    for name, svg in written:
        with open(os.path.join(args.out, name), "w") as fh:
            fh.write(svg)
        print(os.path.join(args.out, name))
    if not written:
        print("bench_charts.py: no BENCH_RESULT or FILL_RESULT data found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

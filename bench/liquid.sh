#!/usr/bin/env bash
# QuarryLiquid against python-liquid 2.x, the same workloads in the same run (results go to BENCHMARKS.md by hand).
#
#   bench/liquid.sh [SECONDS]    seconds per workload and mode (default 3)
#
# Workloads: bench/liquid/hunt_report.liquid over 1,000 generated hosts, bench/liquid/search_body.liquid, and every
# valid case of ../shared/corpus/liquid/golden_liquid.json when the corpus is present.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3}
out=bench/out
mkdir -p "$out"

python3 -c 'import liquid, sys; sys.exit(0 if liquid.__version__.startswith("2.") else 1)' 2>/dev/null \
    || pip install --quiet 'python-liquid>=2,<3'
swift build -c release --product QuarryBench
golden=../shared/corpus/liquid/golden_liquid.json
[ -f "$golden" ] || golden=""
python3 bench/liquid/workloads.py "$out/liquid-workloads.json" $golden
# The HTML report alone, for profiling: perf record -g .build/release/QuarryBench liquid bench/out/liquid-report.json
python3 -c 'import json, sys; w = json.load(open(sys.argv[1])); w["workloads"] = w["workloads"][:1]; json.dump(w, open(sys.argv[2], "w"))' \
    "$out/liquid-workloads.json" "$out/liquid-report.json"

echo "== machine: $(nproc) cores, $(uname -r)"
.build/release/QuarryBench liquid "$out/liquid-workloads.json" "$seconds" | tee "$out/liquid-quarry.jsonl"
python3 bench/liquid/python_liquid.py "$out/liquid-workloads.json" "$seconds" | tee "$out/liquid-python.jsonl"
python3 - "$out/liquid-quarry.jsonl" "$out/liquid-python.jsonl" <<'PY'
import json, sys
quarry = [json.loads(line) for line in open(sys.argv[1])]
python = {(r["workload"], r["mode"]): r["renders_per_second"] for r in map(json.loads, open(sys.argv[2]))}
print(f"{'workload':40} {'mode':13} {'Quarry/s':>11} {'python/s':>10} {'ratio':>7}")
for r in quarry:
    peer = python[(r["workload"], r["mode"])]
    print(f"{r['workload']:40} {r['mode']:13} {r['renders_per_second']:11.0f} {peer:10.0f} {r['renders_per_second'] / peer:6.1f}x")
for r in quarry:
    if r["mode"] == "render":
        peer = python[(r["workload"], "parse+render")]
        print(f"parse once, render many vs python parse+render, {r['workload']}: {r['renders_per_second'] / peer:.1f}x")
PY

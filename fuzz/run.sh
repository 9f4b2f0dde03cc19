#!/usr/bin/env bash
# Fuzzes everything that reads untrusted bytes with libFuzzer (results go to the issue notes and README by hand).
#
#   fuzz/run.sh [SECONDS] [TARGET...]   each target runs SECONDS (default 1800) or 10 million executions, whichever
#                                       comes first; crashes are written to fuzz/out/ and the run stops on the first
#
# Targets: dns, capture (the packet decoders) and, in FuzzQuarry, es-api, query-dsl, query-string, dates, indexing,
# liquid, story (see fuzz/FuzzQuarry/FuzzQuarry.swift). FUZZ_JOBS of them (default 2) run at a time. Seeds: generated captures and their DNS
# messages, and (fuzz/seeds.py) Elastic's YAML REST tests, the Golden Liquid suite and the Tines exports from
# ../shared/corpus, and the project's stories.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(es-api query-dsl query-string dates indexing liquid story dns capture)
out=fuzz/out
mkdir -p "$out/seeds/dns" "$out/seeds/capture"

swift build --product quarry
for format in pcap pcapng; do
    .build/debug/quarry sample capture --out "$out/seeds/capture/sample.$format" --format "$format" --hosts 2 \
        --minutes 1 --rate 10 2> /dev/null
done
python3 - "$out/seeds/capture/sample.pcap" "$out/seeds/dns" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
offset, count = 24, 0
while offset + 16 <= len(data) and count < 200:
    caplen = struct.unpack("<I", data[offset + 8:offset + 12])[0]
    frame = data[offset + 16:offset + 16 + caplen]
    offset += 16 + caplen
    if len(frame) > 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
        header = (frame[14] & 15) * 4
        payload = frame[14 + header + 8:]
        open(f"{sys.argv[2]}/message-{count}", "wb").write(payload)
        count += 1
PY
if [ -d ../shared/corpus ]; then
    python3 fuzz/seeds.py ../shared/corpus "$out/seeds"
else
    echo "../shared/corpus is absent: the FuzzQuarry targets start from the project's stories only"
fi

flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING --build-path .build-fuzz)
for product in FuzzDNS FuzzCapture FuzzQuarry; do
    swift build --product "$product" "${flags[@]}"
done

run() { # TARGET
    local target=$1 binary=.build-fuzz/debug/FuzzQuarry extra=()
    case $target in
        dns) binary=.build-fuzz/debug/FuzzDNS ;;
        capture) binary=.build-fuzz/debug/FuzzCapture extra=(-max_len=65536) ;;
        liquid | story | es-api) extra=(-max_len=16384) ;;
    esac
    mkdir -p "$out/corpus/$target" "$out/seeds/$target" "$out/$target"
    ASAN_OPTIONS=detect_leaks=0 FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -runs=10000000 -rss_limit_mb=4096 -timeout=20 \
        -print_final_stats=1 -detect_leaks=0 "${extra[@]}" -artifact_prefix="$out/$target/" "$out/corpus/$target" \
        "$out/seeds/$target" > "$out/$target.log" 2>&1
    local status=$?
    local runs cov
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$target.log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$out/$target.log" | tail -1 | grep -o '[0-9]*' || echo "?")
    echo "$target: exit $status, $runs executions, coverage $cov edges ($(date -u +%H:%M))"
    ls "$out/$target" | sed "s|^|  artifact: $out/$target/|"
}

set +e
jobs=${FUZZ_JOBS:-2}
pending=("${targets[@]}")
while [ ${#pending[@]} -gt 0 ]; do
    for target in "${pending[@]:0:$jobs}"; do run "$target" & done
    wait
    pending=("${pending[@]:$jobs}")
done

#!/usr/bin/env bash
# Capture ingestion against tshark, in one run (results and the machine go to BENCHMARKS.md by hand).
#
#   bench/capture.sh [MINUTES]   generate a DNS-heavy capture (2,000 hosts, MINUTES of traffic, default 130: about
#                                210 MB), then measure:
#     - quarry ingest --ndjson FILE > /dev/null    against    tshark -r FILE -T ek > /dev/null
#     - decode alone on one core (QuarryBench capture-decode) and documents without output (capture-documents)
#     - quarry ingest FILE into the embedded store: documents/s, and the share of time spent decoding
#   bench/capture.sh rss [MINUTES]   peak RSS of quarry ingest --ndjson on a capture of about 1 GB (default 400)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=run
if [ "${1:-}" = rss ]; then
    mode=rss
    shift
fi
minutes=${1:-$([ "$mode" = rss ] && echo 640 || echo 130)}
out=bench/out
mkdir -p "$out"
swift build -c release --product quarry
swift build -c release --product QuarryBench
quarry=.build/release/quarry
bench=.build/release/QuarryBench
capture="$out/dns-heavy-$minutes.pcap"
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); tshark $(tshark --version | head -1 | awk '{print $3}')"
if [ ! -s "$capture" ]; then
    $quarry sample capture --out "$capture" --hosts 2000 --minutes "$minutes" --rate 2 --connections 0.05
fi
ls -la "$capture"
packets=$(capinfos -c -M "$capture" 2>/dev/null | awk '/Number of packets/{print $NF}')
echo "packets: $packets"

seconds() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
timed() {
    local start end
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}

if [ "$mode" = rss ]; then
    /usr/bin/time -f "quarry ingest --ndjson: %e s, peak RSS %M KiB" $quarry ingest --ndjson "$capture" > /dev/null
    exit 0
fi

echo "== quarry ingest --ndjson > /dev/null"
quarry_seconds=$(timed sh -c "$quarry ingest --ndjson '$capture' > /dev/null 2> '$out/ingest-ndjson.log'")
tail -1 "$out/ingest-ndjson.log" | cut -c1-200
echo "== tshark -T ek > /dev/null"
tshark_seconds=$(timed sh -c "tshark -r '$capture' -T ek > /dev/null 2>&1")
python3 - "$packets" "$quarry_seconds" "$tshark_seconds" <<'PY'
import sys
packets, quarry, tshark = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"quarry ingest --ndjson: {quarry:.2f} s, {packets / quarry:,.0f} packets/s")
print(f"tshark -T ek:           {tshark:.2f} s, {packets / tshark:,.0f} packets/s")
print(f"ratio: {tshark / quarry:.1f}x")
PY
echo "== decode alone, one core"
$bench capture-decode "$capture"
echo "== documents without output"
$bench capture-documents "$capture"
echo "== quarry ingest into the embedded store"
rm -rf "$out/capture-store"
store_seconds=$(timed sh -c "$quarry ingest '$capture' --data '$out/capture-store' 2> '$out/ingest-store.log'")
grep -o "[0-9]* documents stored" "$out/ingest-store.log" || true
python3 - "$store_seconds" "$out/ingest-store.log" <<'PY'
import re, sys
seconds = float(sys.argv[1])
text = open(sys.argv[2]).read()
documents = int(re.search(r"(\d+) documents stored", text).group(1))
print(f"quarry ingest into the store: {seconds:.1f} s, {documents / seconds:,.0f} documents/s")
PY

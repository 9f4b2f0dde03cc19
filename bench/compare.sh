#!/usr/bin/env bash
# Two builds of Quarry side by side on the same machine, each measure taken for one build and then the other, twice
# (A B B A), so that drift in the machine's load falls on both (results go to BENCHMARKS.md by hand).
#
#   bench/compare.sh OLD_CHECKOUT [DOCS] [CAPTURE_MINUTES]
#
# OLD_CHECKOUT is another checkout with release builds of quarry and QuarryBench (for example
# `git worktree add /tmp/old REV && (cd /tmp/old && swift build -c release --product quarry &&
# swift build -c release --product QuarryBench)`); this checkout's are built here. The measures:
#   - quarry ingest --ndjson CAPTURE > /dev/null                     packets/s
#   - quarry bulk FILE of DOCS generated documents (default 1,000,000)  documents/s
#   - the reference hunt's searches on those documents (QuarryBench query 100), in process   median ms
#   - the 10-agent chain (QuarryBench stories-chain 2000)            events/s
#   - the reference hunt from webhook to email (QuarryBench stories-hunt 30)   median ms
# Needs unbound, python3-aiosmtpd, openssl and capinfos (Debian). Work files go to bench/out/compare.
# ONLY=hunt measures the hunt alone, on the stores an earlier run loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
old_checkout=$(cd "$1" && pwd)
docs=${2:-1000000}
minutes=${3:-30}
out=bench/out/compare
mkdir -p "$out"

swift build -c release --product quarry
swift build -c release --product QuarryBench
declare -A quarry=([old]="$old_checkout/.build/release/quarry" [new]=.build/release/quarry)
declare -A bench=([old]="$old_checkout/.build/release/QuarryBench" [new]=.build/release/QuarryBench)
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
echo "== old: $(git -C "$old_checkout" log --oneline -1)"
echo "== new: $(git log --oneline -1)"

elapsed() {
    local start end
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}

capture="$out/dns-heavy-$minutes.pcap"
[ -s "$capture" ] || ${quarry[new]} sample capture --out "$capture" --hosts 2000 --minutes "$minutes" --rate 2 \
    --connections 0.05
packets=$(capinfos -c -M "$capture" 2> /dev/null | awk '/Number of packets/{print $NF}')
[ -s "$out/dns.ndjson" ] || ${quarry[new]} sample dns --documents "$docs" --out "$out/dns.ndjson"
${quarry[new]} sample template > "$out/template.json"

for build in old new new old; do
    [ "${ONLY:-}" = hunt ] && break
    echo "== $build"
    seconds=$(elapsed sh -c "${quarry[$build]} ingest --ndjson '$capture' > /dev/null 2> /dev/null")
    python3 -c "print(f'ingest --ndjson: {$packets / $seconds:,.0f} packets/s ($packets packets, $seconds s)')"

    rm -rf "$out/store-$build"
    ${quarry[$build]} index template packetbeat --body @"$out/template.json" --data "$out/store-$build" > /dev/null
    seconds=$(elapsed sh -c "${quarry[$build]} bulk '$out/dns.ndjson' --data '$out/store-$build' > /dev/null 2>&1")
    python3 -c "print(f'quarry bulk: {$docs / $seconds:,.0f} documents/s ($docs documents, $seconds s)')"

    ${bench[$build]} query 100 "$out/store-$build" | grep -i "median\|p50\|ms" | head -8
    ${bench[$build]} stories-chain 2000 "$out/chain-$build" | grep -E "^engine"
done

source bench/loopback.sh
for build in old new new old; do
    echo "== $build: reference hunt, webhook → email"
    ${bench[$build]} stories-hunt 30 "$out/store-$build" "https://localhost:$doh/dns-query" "$smtp" "$out/cert.pem" \
        stories/dns-threat-hunt.yaml | head -1
done

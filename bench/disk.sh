#!/usr/bin/env bash
# The store's size on disk against the documents' JSON and gzip -1 of it (the floor), with the ingest rate and the
# time to read back 10,000 hits' _source, for one build of quarry or for two side by side in the same run.
#
#   bench/disk.sh [DOCS]                                  .build/release/quarry (built first)
#   BASELINE=/path/to/older/quarry bench/disk.sh [DOCS]   that binary too, on the same documents
#
# Work files go to bench/out/disk (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
docs=${1:-100000}
out=bench/out/disk
rm -rf "$out"
mkdir -p "$out"
if [ -z "${QUARRY:-}" ]; then
    swift build -c release --product quarry > /dev/null
    QUARRY=.build/release/quarry
fi

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
"$QUARRY" sample dns --documents "$docs" --out "$out/dns.ndjson" > /dev/null
"$QUARRY" sample template > "$out/template.json"
# The documents alone (not the bulk action lines), as they are stored in _source.
grep -v '^{"index"' "$out/dns.ndjson" > "$out/sources.ndjson"
json=$(stat -c %s "$out/sources.ndjson")
gzipped=$(gzip -1 -c "$out/sources.ndjson" | wc -c)
echo "== $docs documents: $json bytes of JSON, gzip -1 $gzipped bytes ($(awk "BEGIN{printf \"%.3f\", $gzipped/$json}")x)"

measure() {
    local name=$1 binary=$2 data="$out/data-$1"
    rm -rf "$data"
    "$binary" index template packetbeat --body @"$out/template.json" --data "$data" > /dev/null
    local line
    line=$("$binary" bulk "$out/dns.ndjson" --data "$data" 2>&1 | tail -1)
    local docs_bytes=0 segment_bytes=0
    for file in "$data"/indices/*; do
        case "$file" in
            *.segments.sqlite*) segment_bytes=$((segment_bytes + $(stat -c %s "$file"))) ;;
            *.sqlite*) docs_bytes=$((docs_bytes + $(stat -c %s "$file"))) ;;
        esac
    done
    local total=$((docs_bytes + segment_bytes))
    # Reading _source back: 10,000 hits in one search, three times, the median.
    local times=()
    for _ in 1 2 3; do
        local start end
        start=$(date +%s.%N)
        "$binary" search 'packetbeat-*' --data "$data" \
            --query '{"size":10000,"query":{"term":{"type":"dns"}}}' > /dev/null
        end=$(date +%s.%N)
        times+=("$(awk "BEGIN{printf \"%.0f\", ($end - $start) * 1000}")")
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    echo "$name: $line"
    echo "$name: documents file $docs_bytes bytes, segments file $segment_bytes bytes, total $total bytes" \
        "($(awk "BEGIN{printf \"%.2f\", $total/$json}")x the JSON; documents file" \
        "$(awk "BEGIN{printf \"%.2f\", $docs_bytes/$json}")x); 10,000 hits read back in $median ms (median of 3)"
}

if [ -n "${BASELINE:-}" ]; then measure baseline "$BASELINE"; fi
measure quarry "$QUARRY"

#!/usr/bin/env bash
# Benchmarks of the story engine (results and the machine go to BENCHMARKS.md by hand).
#
#   bench/stories.sh [DOCS] [RUNS] [CHAIN_RUNS]
#
# 1. Events/s through a chain of 10 message_only agents with durable delivery (CHAIN_RUNS runs, default 2,000),
#    against the same writes as bare SQLite transactions in the same run.
# 2. The reference hunt from the webhook's POST to the email accepted by the SMTP server (RUNS runs, default 50)
#    over DOCS generated Packetbeat documents (default 1,000,000) in the embedded store, with unbound serving
#    DNS-over-HTTPS and aiosmtpd receiving the mail over STARTTLS with AUTH, both on loopback.
#
# Needs unbound, python3-aiosmtpd and openssl (Debian). Work files go to bench/out/stories (ignored by git);
# REUSE_DATA=1 keeps the loaded store of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
docs=${1:-1000000}
runs=${2:-50}
chain_runs=${3:-2000}
out=bench/out/stories
mkdir -p "$out"

swift build -c release --product quarry
swift build -c release --product QuarryBench
quarry=.build/release/quarry
bench=.build/release/QuarryBench
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"

echo "== 10-agent message_only chain, $chain_runs runs"
$bench stories-chain "$chain_runs" "$out/chain"

if [ "${REUSE_DATA:-}" = 1 ] && [ -d "$out/data" ]; then
    echo "== reusing $out/data (REUSE_DATA=1)"
else
    echo "== loading $docs generated documents"
    rm -rf "$out/data"
    $quarry sample dns --documents "$docs" --out "$out/dns.ndjson"
    $quarry sample template > "$out/template.json"
    $quarry index template packetbeat --body @"$out/template.json" --data "$out/data" > /dev/null
    $quarry bulk "$out/dns.ndjson" --data "$out/data"
fi

source bench/loopback.sh

echo "== reference hunt over $docs documents, $runs runs (webhook → DoH → searches → email over STARTTLS)"
$bench stories-hunt "$runs" "$out/data" "https://localhost:$doh/dns-query" "$smtp" "$out/cert.pem" \
    stories/dns-threat-hunt.yaml
echo "emails received: $(ls "$out/mail" | wc -l)"

#!/usr/bin/env bash
# Benchmarks of the embedded store (results and the machine go to BENCHMARKS.md by hand).
#
#   bench/run.sh ingest [DOCS]    quarry bulk, POST /_bulk (one connection, then two) and the in-process _bulk path vs
#                                 a plain SQLite insert
#   bench/run.sh query [DOCS]     load DOCS documents with quarry bulk, then the hunt's search latencies (in
#                                 process, after the merge policy's merges, and over HTTP) and the server's peak RSS
#   bench/run.sh small [DOCS]     POST /_bulk in requests of 5,000, and of 50 on one connection and on two, then the
#                                 hunt's searches on each
#   bench/run.sh security [DOCS]  the hunt's search with an API key on every request against security off
#   bench/run.sh iterate [DOCS]   every hit over HTTP: QuarryElastic's iterator against the Python client's loop
#   bench/run.sh aggs [DOCS]     issue 15's aggregations and a point-in-time read of a million hits, in process, beside
#                                 SQLite GROUP BY over a table of the same values (REUSE_DATA=1 keeps a loaded store)
#   bench/run.sh web              wrk against a webhook of a one-agent story and against nginx answering a static
#                                 201, runs created against 2xx answers, and the page of a 10,000-event run
#
# Work files go to bench/out (ignored by git); the generated data is regenerated each run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-ingest}
docs=${2:-1000000}
out=bench/out
mkdir -p "$out"

swift build -c release --product quarry
swift build -c release --product QuarryBench
quarry=.build/release/quarry
bench=.build/release/QuarryBench

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
if [ "$mode" = web ]; then
    exec bench/web.sh "$quarry"
fi
if [ "${REUSE_DATA:-}" = 1 ] && [ -s "$out/dns.ndjson" ]; then
    echo "== reusing $out/dns.ndjson (REUSE_DATA=1)"
else
    echo "== generating $docs documents"
    $quarry sample dns --documents "$docs" --out "$out/dns.ndjson"
fi
$quarry sample template > "$out/template.json"
ls -la "$out/dns.ndjson"

# The servers' elastic user, and the header the Python scripts send (bench/http_*.py read ES_AUTHORIZATION).
export QUARRY_ELASTIC_PASSWORD=quarry-bench-password
export ES_AUTHORIZATION="Basic $(printf 'elastic:%s' "$QUARRY_ELASTIC_PASSWORD" | base64)"

# The Elasticsearch API's URL in a serve log (the web application announces its own on the next line).
es_url() {
    grep -o 'Elasticsearch API listening on http://[0-9.:]*' "$1" | grep -o 'http://[0-9.:]*'
}

start_server() {
    rm -rf "$out/server"
    $quarry serve --data "$out/server" --es-port 0 --port 0 --log-level error > "$out/serve.log" &
    server=$!
    for _ in $(seq 50); do grep -q listening "$out/serve.log" 2>/dev/null && break; sleep 0.2; done
    url=$(es_url "$out/serve.log")
    curl -s -X PUT "$url/_index_template/packetbeat" -H 'Content-Type: application/json' \
        -H "Authorization: $ES_AUTHORIZATION" \
        --data-binary @"$out/template.json" > /dev/null
}

case "$mode" in
ingest)
    echo "== in process: _bulk path vs plain SQLite (same documents, batches of 5,000, WAL, synchronous=NORMAL)"
    $bench sqlite "$docs" "$out/sqlite"
    $bench bulk "$docs" "$out/inprocess"
    echo "== quarry bulk FILE"
    rm -rf "$out/cli"
    $quarry index template packetbeat --body @"$out/template.json" --data "$out/cli" > /dev/null
    /usr/bin/time -f "quarry bulk: peak RSS %M KB, %e s" $quarry bulk "$out/dns.ndjson" --data "$out/cli"
    echo "== POST /_bulk over HTTP (python http.client, one connection)"
    start_server
    python3 bench/http_bulk.py "$url" "$out/dns.ndjson"
    echo "server peak RSS: $(grep VmHWM /proc/$server/status)"
    kill "$server"; wait "$server" || true
    echo "== POST /_bulk on two connections (as Beats with worker: 2, or parallel_bulk)"
    start_server
    python3 bench/http_bulk.py "$url" "$out/dns.ndjson" 5000 2
    echo "server peak RSS: $(grep VmHWM /proc/$server/status)"
    kill "$server"; wait "$server" || true
    ;;
small)
    # The same documents as requests of 50 (as Beats send them: 20,000 requests for a million) and of 5,000, each
    # into a fresh server; then the reference query over HTTP on each, with the merges the server did meanwhile.
    # Requests of 50 go on one connection (Beats' default `worker: 1`), then on two (`worker: 2`).
    for run in "5000 1" "50 1" "50 2"; do
        read -r items connections <<< "$run"
        echo "== POST /_bulk in requests of $items documents on $connections connection(s)"
        start_server
        python3 bench/http_bulk.py "$url" "$out/dns.ndjson" "$items" "$connections"
        echo "segments: $(curl -s -H "Authorization: $ES_AUTHORIZATION" "$url/_cat/segments" | wc -l)"
        python3 bench/http_query.py "$url" 100
        echo "segments after the queries: $(curl -s -H "Authorization: $ES_AUTHORIZATION" "$url/_cat/segments" | wc -l)"
        echo "server peak RSS: $(grep VmHWM /proc/$server/status)"
        kill "$server"; wait "$server" || true
    done
    ;;
query)
    rm -rf "$out/query"
    $quarry index template packetbeat --body @"$out/template.json" --data "$out/query" > /dev/null
    /usr/bin/time -f "quarry bulk: peak RSS %M KB, %e s" $quarry bulk "$out/dns.ndjson" --data "$out/query"
    du -sh "$out/query"
    echo "== in process (QuarryBench query)"
    $bench query 100 "$out/query"
    echo "== over HTTP (quarry serve, python http.client)"
    $quarry serve --data "$out/query" --es-port 0 --port 0 --log-level error > "$out/serve.log" &
    server=$!
    for _ in $(seq 100); do grep -q listening "$out/serve.log" 2>/dev/null && break; sleep 0.2; done
    url=$(es_url "$out/serve.log")
    python3 bench/http_query.py "$url" 100
    echo "server peak RSS: $(grep VmHWM /proc/$server/status)"
    kill "$server"; wait "$server" || true
    ;;
security)
    # The reference query with an API key checked on every request against the same query with security off.
    rm -rf "$out/secured" "$out/open"
    $quarry index template packetbeat --body @"$out/template.json" --data "$out/secured" > /dev/null
    $quarry bulk "$out/dns.ndjson" --data "$out/secured" > /dev/null
    cp -r "$out/secured" "$out/open"
    $quarry serve --data "$out/open" --es-port 0 --port 0 --no-es-authentication --log-level error > "$out/open.log" &
    open_server=$!
    $quarry serve --data "$out/secured" --es-port 0 --port 0 --log-level error > "$out/secured.log" &
    secured_server=$!
    for _ in $(seq 100); do
        grep -q listening "$out/open.log" 2>/dev/null && grep -q listening "$out/secured.log" 2>/dev/null && break
        sleep 0.2
    done
    key=$($quarry es api-key create --data "$out/secured" --name bench --index 'packetbeat-*' | sed -n 's/^encoded: *//p')
    python3 bench/http_security.py "$(es_url "$out/open.log")" \
        "$(es_url "$out/secured.log")" "$key" 1000
    kill "$open_server" "$secured_server"; wait "$open_server" "$secured_server" || true
    ;;
aggs)
    if [ "${REUSE_DATA:-}" != 1 ] || [ ! -d "$out/aggs" ]; then
        rm -rf "$out/aggs"
        $quarry index template packetbeat --body @"$out/template.json" --data "$out/aggs" > /dev/null
        /usr/bin/time -f "quarry bulk: peak RSS %M KB, %e s" $quarry bulk "$out/dns.ndjson" --data "$out/aggs"
    fi
    du -sh "$out/aggs"
    echo "== in process (QuarryBench aggs: 20 runs each, then a point in time in pages of 10,000)"
    /usr/bin/time -f "QuarryBench aggs: peak RSS %M KB" $bench aggs 20 "$out/aggs" 10000 1000000
    echo "== SQLite GROUP BY over the same values (the floor)"
    $bench sqlite-aggs 20 "$out/aggs.sqlite" "$out/dns.ndjson"
    ;;
iterate)
    # Deep iteration of every document: the Python client and QuarryElastic, twice each (A B B A), same server.
    if [ "${REUSE_DATA:-}" != 1 ] || [ ! -d "$out/iterate" ]; then
        rm -rf "$out/iterate"
        $quarry index template packetbeat --body @"$out/template.json" --data "$out/iterate" > /dev/null
        $quarry bulk "$out/dns.ndjson" --data "$out/iterate" > /dev/null
    fi
    $quarry serve --data "$out/iterate" --es-port 0 --port 0 --log-level error > "$out/serve.log" &
    server=$!
    for _ in $(seq 100); do grep -q listening "$out/serve.log" 2>/dev/null && break; sleep 0.2; done
    url=$(es_url "$out/serve.log")
    for client in python swift swift python; do
        if [ "$client" = python ]; then
            python3 bench/http_iterate.py "$url" 'packetbeat-*' 5000
        else
            $bench iterate 5000 "$url" 'packetbeat-*'
        fi
    done
    echo "server peak RSS: $(grep VmHWM /proc/$server/status)"
    kill "$server"; wait "$server" || true
    ;;
*)
    echo "usage: bench/run.sh ingest|query|security|iterate|aggs|web [DOCS]" >&2
    exit 2
    ;;
esac

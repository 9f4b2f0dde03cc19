#!/usr/bin/env bash
# The web application under load (bench/run.sh web runs it after the release build):
#   1. wrk POSTs to the webhook of a story of one message_only agent, and to nginx answering a static 201 on the
#      same machine, alternately (nginx, quarry, nginx, quarry); requests/s and p99 latency of each;
#   2. the runs the server created against the 2xx answers it sent (its /metrics) and wrk counted;
#   3. the page of a run with 10,000 events, fetched 20 times with curl (median and maximum).
# DURATION (default 15s), CONNECTIONS (default 64) and THREADS (default 2) tune wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
quarry=${1:-.build/release/quarry}
duration=${DURATION:-15s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
out=bench/out/web
rm -rf "$out"
mkdir -p "$out/stories" "$out/nginx"
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v nginx > /dev/null || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }

secret=bench-webhook-secret-0123456789
cat > "$out/stories/ping.yaml" << YAML
name: Ping
agents:
  - name: Receive
    type: webhook
    options: {secret: "$secret"}
  - name: Shape
    type: transform
    receives_from: Receive
    options: {mode: message_only, payload: {domain: "{{ .receive.domain }}", n: "{{ .receive.n }}"}}
YAML
cat > "$out/stories/fan-out.yaml" << YAML
name: Fan out
agents:
  - name: Receive
    type: webhook
    options: {secret: "$secret"}
  - name: Split
    type: transform
    receives_from: Receive
    options: {mode: explode, path: "{{ .receive.items | as_object }}", limit: 20000}
YAML

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
nginx_port=$(free_port)
cat > "$out/nginx/nginx.conf" << CONF
worker_processes 2;
daemon off;
pid $PWD/$out/nginx/nginx.pid;
error_log $PWD/$out/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $PWD/$out/nginx/body;
    proxy_temp_path $PWD/$out/nginx/proxy;
    fastcgi_temp_path $PWD/$out/nginx/fastcgi;
    uwsgi_temp_path $PWD/$out/nginx/uwsgi;
    scgi_temp_path $PWD/$out/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location / { default_type application/json; return 201 '{"run":"static"}'; }
    }
}
CONF
nginx -c "$PWD/$out/nginx/nginx.conf" &
nginx_pid=$!

data=$out/data
printf 'bench-viewer-password\n' | $quarry users add bench --role admin --data "$data" > /dev/null
token=$($quarry users token bench --data "$data")
QUARRY_ELASTIC_PASSWORD=bench-elastic-password $quarry serve --data "$data" --stories "$out/stories" --port 0 \
    --es-port 0 --log-level error > "$out/serve.log" &
server=$!
trap 'kill $server $nginx_pid 2> /dev/null || true' EXIT
for _ in $(seq 100); do grep -q "Web app listening" "$out/serve.log" 2> /dev/null && break; sleep 0.2; done
web=$(grep -o 'Web app listening on http://[0-9.:]*' "$out/serve.log" | grep -o 'http://[0-9.:]*')
for _ in $(seq 50); do curl -s "http://127.0.0.1:$nginx_port/" > /dev/null && break; sleep 0.1; done

cat > "$out/post.lua" << 'LUA'
wrk.method = "POST"
wrk.body = '{"domain": "update.evil-cdn.example", "n": 1}'
wrk.headers["Content-Type"] = "application/json"
LUA

# requests/s, p99 and 2xx count of one wrk run against URL.
load() { # NAME URL
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$out/post.lua" "$2" > "$out/$1.txt"
    local rps p99 total non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out/$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$out/$1.txt")
    total=$(awk '/requests in/ {print $1}' "$out/$1.txt")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out/$1.txt")
    echo "$1: $rps requests/s, p99 $p99, $total requests, ${non2xx:-0} not 2xx"
}
echo "== wrk -t$threads -c$connections -d$duration, POST of 46 bytes of JSON"
for round in 1 2; do
    load "nginx-$round" "http://127.0.0.1:$nginx_port/webhook/ping/$secret"
    load "quarry-$round" "$web/webhook/ping/$secret"
done

# Every 2xx the server sent is a run: wait for the queue to drain, then count.
metric() { curl -s -H "Authorization: Bearer $token" "$web/metrics" | awk -v name="$1" 'index($0, name) == 1 {sum += $NF} END {print sum + 0}'; }
for _ in $(seq 300); do [ "$(metric quarry_queue_depth)" = 0 ] && break; sleep 1; done
sent=$(metric 'quarry_http_requests_total{route="/webhook/:id/:secret",method="POST",status="201"}')
counted=$(( $(awk '/requests in/ {print $1}' "$out/quarry-1.txt") + $(awk '/requests in/ {print $1}' "$out/quarry-2.txt") \
    - $(awk '/Non-2xx/ {s += $5} END {print s + 0}' "$out/quarry-1.txt" "$out/quarry-2.txt") ))
runs=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM runs WHERE story = ?", ("Ping",)).fetchone()[0])' "$data/stories/stories.sqlite")
finished=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM runs WHERE story = ? AND status = ?", ("Ping", "succeeded")).fetchone()[0])' "$data/stories/stories.sqlite")
echo "runs created: $runs ($finished succeeded); 201 answers sent (server): $sent; 2xx counted by wrk: $counted"
echo "(wrk does not count the answers to requests in flight when it stops)"

# The page of a run with 10,000 events.
python3 -c 'import json; print(json.dumps({"items": ["host-%d.example" % i for i in range(10000)]}))' > "$out/items.json"
guid=$(curl -s -X POST -H 'Content-Type: application/json' --data @"$out/items.json" "$web/webhook/fan_out/$secret" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["run"])')
for _ in $(seq 600); do
    status=$(curl -s -H "Authorization: Bearer $token" "$web/api/v1/runs/$guid" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')
    [ "$status" != running ] && break
    sleep 0.5
done
events=$(curl -s -H "Authorization: Bearer $token" "$web/api/v1/runs/$guid/events" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["events"]))')
jar=$out/cookies
login=$(curl -s -c "$jar" -b "$jar" "$web/login")
csrf=$(printf '%s' "$login" | grep -o 'name="_csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -s -c "$jar" -b "$jar" -o /dev/null --data-urlencode "_csrf=$csrf" --data-urlencode username=bench \
    --data-urlencode password=bench-viewer-password "$web/login"
for _ in $(seq 20); do
    curl -s -b "$jar" -o "$out/run.html" -w '%{http_code} %{time_total}\n' "$web/runs/$guid"
done > "$out/page-times.txt"
grep -c '^200 ' "$out/page-times.txt" > /dev/null
python3 - "$out/page-times.txt" "$events" "$(wc -c < "$out/run.html")" << 'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
times = sorted(float(t) * 1000 for status, t in rows if status == "200")
print(f"run page of {sys.argv[2]} events ({int(sys.argv[3]) // 1024} KiB of HTML): median {statistics.median(times):.1f} ms, "
      f"max {max(times):.1f} ms over {len(times)} fetches ({len(rows) - len(times)} not 200)")
PY
echo "server peak RSS: $(grep VmHWM /proc/$server/status)"

"""Streams an Elasticsearch bulk file to POST /_bulk over keep-alive HTTP connections, in batches.

Usage: python3 bench/http_bulk.py URL FILE [BATCH_ITEMS] [CONNECTIONS]
One connection by default; with more, batches go out on that many connections at once, as Beats with `worker: N`
or the Python client's parallel_bulk send them. Prints documents/s; exits non-zero if any item failed.
"""
import concurrent.futures
import http.client
import threading
import json
import os
import sys
import time
from urllib.parse import urlparse

url = urlparse(sys.argv[1])
# quarry serve authenticates every request: bench/run.sh exports the header to send.
auth = {"Authorization": os.environ["ES_AUTHORIZATION"]} if os.environ.get("ES_AUTHORIZATION") else {}
path = sys.argv[2]
batch_items = int(sys.argv[3]) if len(sys.argv) > 3 else 5000

connections = int(sys.argv[4]) if len(sys.argv) > 4 else 1
local = threading.local()
headers = {"Content-Type": "application/x-ndjson", **auth}
sent = failed = 0
counting = threading.Lock()
batch = []
started = time.monotonic()


def send(lines):
    global sent, failed
    if not hasattr(local, "connection"):
        local.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    local.connection.request("POST", "/_bulk", body=b"".join(lines), headers=headers)
    response = local.connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"bulk failed with {response.status}: {body[:300]}")
    if body.startswith(b'{"errors":false'):
        done, refused = len(lines) // 2, 0
    else:
        items = json.loads(body)["items"]
        done, refused = len(items), sum(1 for item in items if "error" in next(iter(item.values())))
    with counting:
        sent += done
        failed += refused


with concurrent.futures.ThreadPoolExecutor(connections) as pool:
    in_flight = set()
    with open(path, "rb") as source:
        for line in source:
            batch.append(line)
            if len(batch) >= 2 * batch_items:
                if len(in_flight) >= connections:
                    finished, in_flight = concurrent.futures.wait(
                        in_flight, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in finished:
                        future.result()
                in_flight.add(pool.submit(send, batch))
                batch = []
    if batch:
        in_flight.add(pool.submit(send, batch))
    for future in in_flight:
        future.result()
seconds = time.monotonic() - started
label = "POST /_bulk" if connections == 1 else f"POST /_bulk on {connections} connections"
print(f"{label}: {sent} documents in {seconds:.2f} s ({sent / seconds:.0f} documents/s), {failed} failed")
sys.exit(1 if failed else 0)

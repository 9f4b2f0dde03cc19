"""Streams an Elasticsearch bulk file to POST /_bulk over one keep-alive HTTP connection, in batches.

Usage: python3 bench/http_bulk.py URL FILE [BATCH_ITEMS]
Prints documents/s; exits non-zero if any item failed.
"""
import http.client
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

connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
headers = {"Content-Type": "application/x-ndjson", **auth}
sent = failed = 0
batch = []
started = time.monotonic()


def send(lines):
    global sent, failed
    connection.request("POST", "/_bulk", body=b"".join(lines), headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"bulk failed with {response.status}: {body[:300]}")
    if body.startswith(b'{"errors":false'):
        sent += len(lines) // 2
    else:
        items = json.loads(body)["items"]
        failed += sum(1 for item in items if "error" in next(iter(item.values())))
        sent += len(items)


with open(path, "rb") as source:
    for line in source:
        batch.append(line)
        if len(batch) >= 2 * batch_items:
            send(batch)
            batch = []
if batch:
    send(batch)
seconds = time.monotonic() - started
print(f"POST /_bulk: {sent} documents in {seconds:.2f} s ({sent / seconds:.0f} documents/s), {failed} failed")
sys.exit(1 if failed else 0)

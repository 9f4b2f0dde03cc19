"""The round trip of small bulk requests on one keep-alive connection, against the `took` the server reports.

Usage: python3 bench/http_bulk_latency.py URL FILE [ITEMS] [REQUESTS]
Sends REQUESTS (default 400) requests of ITEMS documents (default 50) from FILE, a bulk file, one after another, and
prints the median and 90th percentile of each request's wall time and of the server's `took`, in milliseconds.
"""
import http.client
import os
import sys
import time
from urllib.parse import urlparse

url = urlparse(sys.argv[1])
lines = open(sys.argv[2], "rb").readlines()
items = int(sys.argv[3]) if len(sys.argv) > 3 else 50
requests = int(sys.argv[4]) if len(sys.argv) > 4 else 400
headers = {"Content-Type": "application/x-ndjson"}
if os.environ.get("ES_AUTHORIZATION"):
    headers["Authorization"] = os.environ["ES_AUTHORIZATION"]
connection = http.client.HTTPConnection(url.hostname, url.port)
walls, tooks = [], []
for n in range(requests):
    start = (n * 2 * items) % max(1, len(lines) - 2 * items)
    body = b"".join(lines[start:start + 2 * items])
    began = time.monotonic()
    connection.request("POST", "/_bulk", body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200 or b'"took":' not in answer:
        raise SystemExit(f"bulk failed with {response.status}: {answer[:300]}")
    walls.append((time.monotonic() - began) * 1000)
    tooks.append(int(answer[answer.index(b'"took":') + 7:answer.index(b',"items"')]))
walls.sort()
tooks.sort()
print(
    f"{requests} requests of {items}: wall median {walls[len(walls) // 2]:.2f} ms, p90 {walls[len(walls) * 9 // 10]:.2f}; "
    f"took median {tooks[len(tooks) // 2]} ms, p90 {tooks[len(tooks) * 9 // 10]}"
)

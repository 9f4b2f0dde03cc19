"""The cost of authentication: the reference hunt's search through two `quarry serve` processes over copies of the
same data, one with security off (--no-es-authentication) and one checking an API key on every request, interleaved
request by request so that both see the same machine.

Usage: python3 bench/http_security.py OPEN_URL SECURED_URL ENCODED_API_KEY RUNS
"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlparse

open_url, secured_url, api_key = urlparse(sys.argv[1]), urlparse(sys.argv[2]), sys.argv[3]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 500
body = json.dumps({
    "size": 1000, "_source": ["client.ip", "source.ip", "host.name"],
    "query": {"bool": {"must": [{"term": {"dns.question.name": "update.evil-cdn.example"}},
                                {"range": {"@timestamp": {"gte": "now-4h"}}}]}}})
targets = {
    "security off": (http.client.HTTPConnection(open_url.hostname, open_url.port, timeout=60), {}),
    "ApiKey": (http.client.HTTPConnection(secured_url.hostname, secured_url.port, timeout=60),
               {"Authorization": "ApiKey " + api_key}),
}
latencies = {name: [] for name in targets}
for run in range(runs + 20):
    order = list(targets) if run % 2 == 0 else list(reversed(targets))
    for name in order:
        connection, headers = targets[name]
        started = time.perf_counter()
        connection.request("POST", "/packetbeat-*/_search", body=body,
                           headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"{name}: {response.status} {data[:300]}")
        if run >= 20:  # the first rounds warm both servers' caches
            latencies[name].append((time.perf_counter() - started) * 1000)
medians = {name: statistics.median(values) for name, values in latencies.items()}
for name, values in latencies.items():
    values.sort()
    print(f"{name:14} median {medians[name]:7.3f} ms  p95 {values[int(len(values) * 0.95)]:7.3f} ms  ({runs} runs)")
print(f"ApiKey / security off: {medians['ApiKey'] / medians['security off']:.3f}")

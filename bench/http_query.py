"""Latency of the reference hunt's searches through the HTTP API (one keep-alive connection).

Usage: python3 bench/http_query.py URL RUNS
"""
import http.client
import json
import os
import statistics
import sys
import time
from urllib.parse import urlparse

url = urlparse(sys.argv[1])
# quarry serve authenticates every request: bench/run.sh exports the header to send.
auth = {"Authorization": os.environ["ES_AUTHORIZATION"]} if os.environ.get("ES_AUTHORIZATION") else {}
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)


def newest_timestamp():
    """The newest document's @timestamp: the window ends there, so that data generated hours ago still has hits."""
    connection.request("POST", "/packetbeat-*/_search",
                       body=json.dumps({"size": 0, "aggs": {"newest": {"max": {"field": "@timestamp"}}}}),
                       headers={"Content-Type": "application/json", **auth})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"newest @timestamp: {response.status} {data[:300]}")
    return json.loads(data)["aggregations"]["newest"].get("value_as_string")


# The hunt asks for the last four hours (`now-4h`); here the four hours before the newest document.
newest = newest_timestamp()
window = {"range": {"@timestamp": {"gte": f"{newest}||-4h" if newest else "now-4h"}}}
print(f"window: the four hours before {newest or 'now'}")


def sample_address(domain):
    """The address QuarrySamples' generator gives a popular domain (FNV-1a of the name)."""
    value = 1469598103934665603
    for byte in domain.encode():
        value = ((value ^ byte) * 1099511628211) % 2**64
    return f"93.{value % 200 + 20}.{(value >> 8) % 250}.{(value >> 16) % 250 + 1}"


addresses = ["203.0.113.66"] + [sample_address(d) for d in
                                ["www.google.com", "github.com", "slack.com", "zoom.us", "pypi.org", "sentry.io",
                                 "twitter.com"]]
queries = {
    "hunt: term rare domain + range": {
        "size": 1000, "_source": ["client.ip", "source.ip", "host.name"],
        "query": {"bool": {"must": [{"term": {"dns.question.name": "update.evil-cdn.example"}}, window]}}},
    "hunt: term popular domain + range": {
        "size": 1000, "_source": ["client.ip", "source.ip", "host.name"],
        "query": {"bool": {"must": [{"term": {"dns.question.name": "www.google.com"}}, window]}}},
    "terms destination.ip (8 addresses)": {
        "size": 1000, "_source": ["source.ip", "destination.ip", "host.name"],
        "query": {"bool": {"must": [{"terms": {"destination.ip": addresses}}, window]}}},
}
for name, body in queries.items():
    payload = json.dumps(body)
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        connection.request("POST", "/packetbeat-*/_search", body=payload,
                           headers={"Content-Type": "application/json", **auth})
        response = connection.getresponse()
        data = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"{name}: {response.status} {data[:300]}")
    result = json.loads(data)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))]
    print(f"{name:36} median {statistics.median(latencies):7.2f} ms  p95 {p(0.95):7.2f} ms  p99 {p(0.99):7.2f} ms"
          f"  ({len(result['hits']['hits'])} hits, total {result['hits']['total']})")

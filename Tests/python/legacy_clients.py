"""Drives Quarry's Elasticsearch API with the clients older tools are built on: `elasticsearch7` (the 7.x official
client, as ElastAlert and older scripts use it) and `opensearch-py` (whose point-in-time API is OpenSearch's
`_search/point_in_time`).

Usage: python legacy_clients.py http://127.0.0.1:PORT ENCODED_API_KEY ELASTIC_PASSWORD
Exits non-zero with a message on the first mismatch; prints "N passed, 0 failed" otherwise.
"""
import sys
import warnings
from datetime import datetime

from elasticsearch7 import Elasticsearch, helpers as helpers7
from opensearchpy import OpenSearch, helpers as opensearch_helpers

# The 7.x client warns about `body=`, which is how the scripts it serves are written.
warnings.filterwarnings("ignore", category=DeprecationWarning)
url, api_key, password = sys.argv[1], sys.argv[2], sys.argv[3]
checks = 0


def check(condition, message):
    global checks
    if not condition:
        print("FAILED:", message)
        sys.exit(1)
    checks += 1


# Generated data: 2,400 DNS events, a known number per client and per name.
clients = [f"10.2.0.{n}" for n in range(2, 14)]
names = ["evil.example", "github.com", "cdn.example", "mail.example"]
events = []
for n in range(2400):
    events.append({
        "_index": "legacy-dns", "_id": f"e{n}",
        "@timestamp": f"2026-11-30T{n // 120:02d}:{n % 60:02d}:{n % 59:02d}Z",
        "client": {"ip": clients[(n * 7) % len(clients)]},
        "dns": {"question": {"name": names[(n * 3 + n // 11) % len(names)]}},
        "bytes": n % 97,
    })
per_client = {}
per_pair = {}
for event in events:
    client = event["client"]["ip"]
    per_client[client] = per_client.get(client, 0) + 1
    pair = (client, event["dns"]["question"]["name"])
    per_pair[pair] = per_pair.get(pair, 0) + 1

# --- elasticsearch7 -------------------------------------------------------------------------------------------------
es = Elasticsearch(url, api_key=api_key, timeout=30)
check(es.info()["version"]["number"].startswith("8."), "7.x client: info")
es.indices.create(index="legacy-dns", body={"mappings": {"properties": {
    "client": {"properties": {"ip": {"type": "ip"}}}, "dns": {"properties": {"question": {"properties": {
        "name": {"type": "keyword"}}}}}, "@timestamp": {"type": "date"}, "bytes": {"type": "long"}}}})
ok, errors = helpers7.bulk(es, events, chunk_size=400, refresh=True)
check(ok == 2400 and not errors, f"7.x bulk helper: {ok} {errors}")

# A 7.x-era search: totals as a bare number.
old_style = es.search(index="legacy-dns", body={"query": {"term": {"dns.question.name": "evil.example"}}},
                      params={"rest_total_hits_as_int": "true"})
evil = sum(count for (client, name), count in per_pair.items() if name == "evil.example")
check(old_style["hits"]["total"] == evil, f"7.x rest_total_hits_as_int: {old_style['hits']['total']} != {evil}")

# helpers.scan (scroll) sees every document once.
scanned = [hit["_id"] for hit in helpers7.scan(es, index="legacy-dns", query={"query": {"match_all": {}}}, size=333)]
check(len(scanned) == 2400 and len(set(scanned)) == 2400, f"7.x scan: {len(scanned)} hits, {len(set(scanned))} ids")

# Composite paging over (client, name) gives every pair once with its count.
seen = {}
after = None
while True:
    composite = {"size": 7, "sources": [{"client": {"terms": {"field": "client.ip"}}},
                                        {"name": {"terms": {"field": "dns.question.name"}}}]}
    if after:
        composite["after"] = after
    page = es.search(index="legacy-dns", body={"size": 0, "aggs": {"pairs": {"composite": composite}}})
    buckets = page["aggregations"]["pairs"]["buckets"]
    if not buckets:
        break
    for bucket in buckets:
        key = (bucket["key"]["client"], bucket["key"]["name"])
        check(key not in seen, f"composite: {key} twice")
        seen[key] = bucket["doc_count"]
    after = page["aggregations"]["pairs"]["after_key"]
check(seen == per_pair, "7.x composite paging equals the data's pairs")

# Point in time through the 7.x client, paged with search_after.
pit = es.open_point_in_time(index="legacy-dns", keep_alive="1m")["id"]
es.index(index="legacy-dns", id="late", body={"client": {"ip": "10.9.9.9"}}, refresh=True)
ids = []
search_after = None
while True:
    body = {"size": 500, "pit": {"id": pit, "keep_alive": "1m"}, "sort": [{"@timestamp": "asc"}]}
    if search_after:
        body["search_after"] = search_after
    page = es.search(body=body)
    hits = page["hits"]["hits"]
    if not hits:
        break
    ids += [hit["_id"] for hit in hits]
    search_after = hits[-1]["sort"]
check(len(ids) == 2400 and "late" not in ids, f"7.x PIT: {len(ids)} hits")
check(es.close_point_in_time(body={"id": pit})["succeeded"], "7.x close PIT")

# Hit fields.
fielded = es.search(index="legacy-dns", body={
    "size": 1, "query": {"ids": {"values": ["e5"]}}, "_source": False,
    "fields": ["client.ip", {"field": "@timestamp", "format": "epoch_millis"}], "docvalue_fields": ["bytes"]})
hit = fielded["hits"]["hits"][0]
millis = str(int(datetime.fromisoformat(events[5]["@timestamp"].replace("Z", "+00:00")).timestamp() * 1000))
check(hit["fields"] == {"client.ip": [events[5]["client"]["ip"]], "@timestamp": [millis], "bytes": [5]},
      f"7.x fields: {hit}")
es.delete(index="legacy-dns", id="late", refresh=True)

# --- opensearch-py --------------------------------------------------------------------------------------------------
client = OpenSearch(hosts=[url], http_auth=("elastic", password), timeout=30)
check(client.count(index="legacy-dns")["count"] == 2400, "opensearch-py: count")
created = client.create_pit(index="legacy-dns", keep_alive="1m")
check("pit_id" in created and "creation_time" in created, f"opensearch-py PIT: {created}")
pit_id = created["pit_id"]
ids = []
search_after = None
while True:
    body = {"size": 700, "pit": {"id": pit_id, "keep_alive": "1m"}, "sort": [{"@timestamp": "desc"}]}
    if search_after:
        body["search_after"] = search_after
    hits = client.search(body=body)["hits"]["hits"]
    if not hits:
        break
    ids += [hit["_id"] for hit in hits]
    search_after = hits[-1]["sort"]
check(len(ids) == 2400 and len(set(ids)) == 2400, f"opensearch-py PIT paging: {len(ids)}")
listed = client.get_all_pits()["pits"]
check([p["pit_id"] for p in listed] == [pit_id] and listed[0]["keep_alive"] == 60000, f"opensearch-py list: {listed}")
deleted = client.delete_pit(body={"pit_id": [pit_id]})
check(deleted["pits"][0]["successful"], f"opensearch-py delete PIT: {deleted}")
client.create_pit(index="legacy-dns", keep_alive="1m")
check(len(client.delete_all_pits()["pits"]) == 1 and client.get_all_pits()["pits"] == [], "opensearch-py delete all")
scanned = list(opensearch_helpers.scan(client, index="legacy-dns", query={"query": {"term": {"client.ip": "10.2.0.2"}}}))
check(len(scanned) == per_client["10.2.0.2"], f"opensearch-py scan: {len(scanned)}")
terms = client.search(index="legacy-dns", body={"size": 0, "aggs": {"c": {"terms": {"field": "client.ip", "size": 50}}}})
check({b["key"]: b["doc_count"] for b in terms["aggregations"]["c"]["buckets"]} == per_client, "opensearch-py terms")

print(f"{checks} passed, 0 failed")

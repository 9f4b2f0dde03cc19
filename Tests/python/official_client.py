"""Drives Quarry's Elasticsearch API with Elastic's official Python client (elasticsearch 8.x).

Usage: python3 official_client.py http://127.0.0.1:PORT
Exits non-zero with a message on the first mismatch; prints "N passed, 0 failed" otherwise.
"""
import sys

from elasticsearch import Elasticsearch, helpers, NotFoundError, BadRequestError, ConflictError

url = sys.argv[1]
es = Elasticsearch(url, request_timeout=30)
checks = 0


def check(condition, message):
    global checks
    if not condition:
        print("FAILED:", message)
        sys.exit(1)
    checks += 1


info = es.info()
check(info["version"]["number"].startswith("8."), f"info: {info}")
check(es.ping(), "ping")

es.indices.put_index_template(
    name="packetbeat",
    index_patterns=["packetbeat-*"],
    template={"mappings": {"properties": {"client": {"properties": {"ip": {"type": "ip"}}},
                                          "@timestamp": {"type": "date"}}}},
)
check(es.indices.exists_index_template(name="packetbeat"), "template exists")

actions = [
    {"_index": "packetbeat-test", "_id": str(n),
     "@timestamp": f"2026-11-29T10:{n % 60:02d}:00Z",
     "client": {"ip": f"10.1.0.{n % 20 + 2}"},
     "dns": {"question": {"name": "evil.example" if n % 50 == 0 else "github.com"}}}
    for n in range(3000)
]
ok, errors = helpers.bulk(es, actions, chunk_size=500)
check(ok == 3000 and not errors, f"bulk helper: {ok} {errors}")
es.indices.refresh(index="packetbeat-test")
check(es.count(index="packetbeat-*")["count"] == 3000, "count")

mapping = es.indices.get_mapping(index="packetbeat-test")
check(mapping["packetbeat-test"]["mappings"]["properties"]["client"]["properties"]["ip"]["type"] == "ip", "mapping")

response = es.search(
    index="packetbeat-*",
    size=1000,
    source=["client.ip"],
    query={"bool": {"must": [{"term": {"dns.question.name.keyword": "evil.example"}},
                             {"range": {"@timestamp": {"gte": "2026-11-29T00:00:00Z"}}}]}},
)
check(response["hits"]["total"]["value"] == 60, f"hunt total: {response['hits']['total']}")
check(set(h["_source"]["client"]["ip"] for h in response["hits"]["hits"]) == {"10.1.0.2", "10.1.0.12"},
      "hunt hosts")

cidr = es.count(index="packetbeat-test", query={"term": {"client.ip": "10.1.0.0/28"}})
check(cidr["count"] == 2100, f"cidr count {cidr}")  # .2 to .15 of the 20 client addresses

# search_after paging through everything, as scripts without scroll do.
seen = 0
after = None
while True:
    kwargs = {"index": "packetbeat-test", "size": 700, "sort": [{"@timestamp": "asc"}, {"_id": "asc"}]}
    if after:
        kwargs["search_after"] = after
    page = es.search(**kwargs)["hits"]["hits"]
    if not page:
        break
    seen += len(page)
    after = page[-1]["sort"]
check(seen == 3000, f"search_after paging saw {seen}")

doc = es.get(index="packetbeat-test", id="7")
check(doc["found"] and doc["_source"]["client"]["ip"] == "10.1.0.9", "get")
es.update(index="packetbeat-test", id="7", doc={"tag": "seen"})
check(es.get(index="packetbeat-test", id="7")["_source"]["tag"] == "seen", "update")
try:
    es.create(index="packetbeat-test", id="7", document={"x": 1})
    check(False, "create must conflict")
except ConflictError:
    checks += 1
try:
    es.get(index="packetbeat-test", id="nope")
    check(False, "missing document must raise")
except NotFoundError:
    checks += 1
try:
    es.search(index="packetbeat-test", query={"nope": {}})
    check(False, "unknown query must raise")
except BadRequestError as error:
    check(error.meta.status == 400 and error.body["error"]["type"] == "parsing_exception", "unknown query error")

check(es.indices.exists(index="packetbeat-test"), "exists")
es.indices.delete(index="packetbeat-test")
check(not es.indices.exists(index="packetbeat-test"), "deleted")

print(f"{checks} passed, 0 failed")

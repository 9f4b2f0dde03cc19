"""Drives Quarry's Elasticsearch API with Elastic's official Python client (elasticsearch 8.x).

Usage: python3 official_client.py http://127.0.0.1:PORT ENCODED_API_KEY ELASTIC_PASSWORD
The API key (minted by `quarry es api-key create`) does the work; the elastic user mints the restricted keys whose
refusals are checked.
Exits non-zero with a message on the first mismatch; prints "N passed, 0 failed" otherwise.
"""
import sys
import time

from elasticsearch import (Elasticsearch, helpers, NotFoundError, BadRequestError, ConflictError,
                           AuthenticationException, AuthorizationException)

url, api_key, password = sys.argv[1], sys.argv[2], sys.argv[3]
es = Elasticsearch(url, api_key=api_key, request_timeout=30)
admin = Elasticsearch(url, basic_auth=("elastic", password), request_timeout=30)
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

# Aggregations, as a hunter summarises: who asked, how often, and when last.
summary = es.search(index="packetbeat-*", size=0, query={"term": {"dns.question.name": "evil.example"}},
                    aggs={"askers": {"terms": {"field": "client.ip", "size": 3},
                                     "aggs": {"last": {"max": {"field": "@timestamp"}}}},
                          "hosts": {"cardinality": {"field": "client.ip"}},
                          "per_minute": {"date_histogram": {"field": "@timestamp", "fixed_interval": "10m"}}})
askers = summary["aggregations"]["askers"]
check([b["key"] for b in askers["buckets"]] == ["10.1.0.2", "10.1.0.12"] and all(b["doc_count"] == 30 for b in askers["buckets"]),
      f"terms: {askers}")
check(summary["aggregations"]["hosts"]["value"] == 2, "cardinality")
check(sum(b["doc_count"] for b in summary["aggregations"]["per_minute"]["buckets"]) == 60, "date_histogram")
check(askers["buckets"][0]["last"]["value_as_string"].startswith("2026-11-29T10:"), "max of a date")

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

# helpers.scan: scroll in pages of 400 (sorted by _doc), then clear_scroll; every document once.
scanned = [hit["_id"] for hit in helpers.scan(es, index="packetbeat-*", query={"query": {"match_all": {}}}, size=400)]
check(len(scanned) == 3000 and len(set(scanned)) == 3000, f"helpers.scan saw {len(scanned)} ({len(set(scanned))} distinct)")
# A scroll sorted by time, as ElastAlert reads: a document written after it opened is not seen.
first = es.search(index="packetbeat-test", scroll="1m", size=40, sort=[{"@timestamp": "asc"}],
                  query={"term": {"client.ip": "10.1.0.9"}})
es.index(index="packetbeat-test", id="late", document={"@timestamp": "2026-11-29T12:00:00Z", "client": {"ip": "10.1.0.9"}},
         refresh=True)
hits = list(first["hits"]["hits"])
page = es.scroll(scroll_id=first["_scroll_id"], scroll="1m")
while page["hits"]["hits"]:
    hits += page["hits"]["hits"]
    page = es.scroll(scroll_id=page["_scroll_id"], scroll="1m")
ids = [hit["_id"] for hit in hits]
check(len(ids) == first["hits"]["total"]["value"] == len(set(ids)) > 40 and "late" not in ids,
      f"scroll by time: {len(ids)} of {first['hits']['total']}")
times = [hit["_source"]["@timestamp"] for hit in hits]
check(times == sorted(times), "a scroll keeps its sort across pages")
check(es.clear_scroll(scroll_id=first["_scroll_id"])["succeeded"], "clear_scroll")
try:
    es.scroll(scroll_id=first["_scroll_id"], scroll="1m")
    check(False, "a cleared scroll must be gone")
except NotFoundError as error:
    check(error.body["error"]["root_cause"][0]["type"] == "search_context_missing_exception", f"missing scroll: {error}")
es.delete(index="packetbeat-test", id="late", refresh=True)

# Point in time with search_after, as Kibana and the clients page today: the implicit _shard_doc tiebreaker.
pit = es.open_point_in_time(index="packetbeat-*", keep_alive="1m")
paged, after = [], None
while True:
    kwargs = {"size": 900, "sort": [{"@timestamp": "asc"}], "pit": {"id": pit["id"], "keep_alive": "1m"}}
    if after:
        kwargs["search_after"] = after
    page = es.search(**kwargs)
    if not page["hits"]["hits"]:
        break
    check(page["pit_id"] == pit["id"], "pit_id")
    paged += [hit["_id"] for hit in page["hits"]["hits"]]
    after = page["hits"]["hits"][-1]["sort"]
check(len(paged) == 3000 and len(set(paged)) == 3000, f"point in time paging saw {len(paged)}")
check(es.close_point_in_time(id=pit["id"])["succeeded"], "close_point_in_time")

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

# Security: who the key is, and what narrower keys may not do.
me = es.security.authenticate()
check(me["username"] == "elastic" and me["authentication_type"] == "api_key" and me["api_key"]["id"],
      f"authenticate: {me}")
try:
    Elasticsearch(url, request_timeout=30).info()
    check(False, "a request without credentials must be refused")
except AuthenticationException as error:
    check(error.meta.status == 401 and error.body["error"]["type"] == "security_exception", "401 shape")
admin.indices.create(index="secrets")
admin.index(index="secrets", id="1", document={"password": "hunter2"}, refresh=True)

read_only = admin.security.create_api_key(
    name="read-only", expiration="14d",
    role_descriptors={"reader": {"cluster": [], "index": [{"names": ["packetbeat-*"], "privileges": ["read"]}]}})
check(read_only["encoded"] and read_only["expiration"] > 0, f"create_api_key: {read_only}")
reader = Elasticsearch(url, api_key=read_only["encoded"], request_timeout=30)
check(reader.count(index="packetbeat-*")["count"] == 3000, "a read-only key reads packetbeat-*")
check(reader.search(index="*", size=0)["hits"]["total"]["value"] == 3000, "a wildcard reaches only packetbeat-*")
try:
    reader.index(index="packetbeat-test", document={"x": 1})
    check(False, "a read-only key must not write")
except AuthorizationException as error:
    check(error.meta.status == 403 and "indices:data/write" in error.body["error"]["reason"], f"403 on write: {error}")
try:
    reader.search(index="secrets")
    check(False, "a key limited to packetbeat-* must not read another index")
except AuthorizationException as error:
    check(error.meta.status == 403, "403 on another index")
result = helpers.bulk(reader, [{"_index": "packetbeat-test", "_id": "x", "a": 1}], raise_on_error=False)
check(result[0] == 0 and result[1][0]["index"]["status"] == 403, f"bulk items are refused one by one: {result}")
privileges = reader.security.has_privileges(index=[{"names": ["packetbeat-1"], "privileges": ["read", "write"]}])
check(privileges["index"]["packetbeat-1"] == {"read": True, "write": False} and not privileges["has_all_requested"],
      f"has_privileges: {privileges}")
listed = admin.security.get_api_key(id=read_only["id"])["api_keys"][0]
check(listed["name"] == "read-only" and not listed["invalidated"] and "api_key" not in listed, f"get_api_key {listed}")

invalidated = admin.security.invalidate_api_key(ids=[read_only["id"]])
check(invalidated["invalidated_api_keys"] == [read_only["id"]], f"invalidate: {invalidated}")
try:
    reader.count(index="packetbeat-*")
    check(False, "an invalidated key must be refused")
except AuthenticationException as error:
    check(error.meta.status == 401, "401 for an invalidated key")

short = admin.security.create_api_key(name="short", expiration="1s")
time.sleep(1.5)
try:
    Elasticsearch(url, api_key=short["encoded"], request_timeout=30).info()
    check(False, "an expired key must be refused")
except AuthenticationException as error:
    check(error.meta.status == 401, "401 for an expired key")

check(es.indices.exists(index="packetbeat-test"), "exists")
es.indices.delete(index="packetbeat-test")
check(not es.indices.exists(index="packetbeat-test"), "deleted")

print(f"{checks} passed, 0 failed")

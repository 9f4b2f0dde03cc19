#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs (fuzz/run.sh calls it) from material nobody here wrote: Elastic's YAML REST
tests (requests, search bodies, documents, mappings, dates, q= strings), the Golden Liquid suite (templates), the
Tines exports and the project's own stories; and the requests the hostile-input catalogue found.

    fuzz/seeds.py CORPUS_DIR OUT_DIR
"""
import json, os, re, sys, urllib.parse

import yaml

corpus, out = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
counts = {}


def seed(target, data):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    counts[target] = counts.get(target, 0) + 1
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-%05d" % counts[target]), "wb") as f:
        f.write(data)


# The method and path of each API a YAML test calls.
endpoints, name = {}, None
for line in open(os.path.join(corpus, "es-api/ENDPOINTS.txt")):
    if line.startswith("== "):
        name = line.split()[1]
        endpoints[name] = []
    elif "path:" in line and name:
        endpoints[name].append([line.split("'")[1], None])
    elif "methods:" in line and name and endpoints[name]:
        endpoints[name][-1][1] = re.findall(r"'(\w+)'", line)


def request(api, params):
    params = dict(params)
    body = params.pop("body", None)
    for path, methods in sorted(endpoints.get(api, []), key=lambda p: -p[0].count("{")):
        names = re.findall(r"{(\w+)}", path)
        if all(n in params for n in names):
            for n in names:
                path = path.replace("{%s}" % n, urllib.parse.quote(str(params.pop(n)), safe=",*"))
            method = methods[-1] if body is None else methods[0]
            if params:
                path += "?" + urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()})
            if isinstance(body, list):
                text = "".join(json.dumps(item) + "\n" for item in body)
            elif body is None:
                text = ""
            else:
                text = body if isinstance(body, str) else json.dumps(body)
            return "%s\n%s\n%s" % (method, path, text)
    return None


def walk(node):
    if isinstance(node, dict):
        if "do" in node and isinstance(node["do"], dict):
            yield node["do"]
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


for folder, _, files in os.walk(os.path.join(corpus, "es-yaml")):
    for file in sorted(files):
        if not file.endswith(".yml"):
            continue
        for document in yaml.safe_load_all(open(os.path.join(folder, file))):
            for step in walk(document):
                for api, params in step.items():
                    if api in ("catch", "headers", "warnings", "allowed_warnings") or not isinstance(params, dict):
                        continue
                    text = request(api, params)
                    if text:
                        seed("es-api", text)
                    body = params.get("body")
                    if api in ("search", "count") and isinstance(body, dict):
                        seed("query-dsl", json.dumps(body))
                    if api in ("index", "create") and isinstance(body, dict):
                        seed("indexing", "{}\n" + json.dumps(body))
                    if api == "indices.create" and isinstance(body, dict) and "mappings" in body:
                        seed("indexing", json.dumps(body["mappings"]) + "\n{}")
                    if "q" in params:
                        seed("query-string", str(params["q"]))

queries = [
    {"match_all": {}}, {"term": {"k": "key-1"}}, {"terms": {"n": [1, 2]}}, {"range": {"ts": {"gte": "now-1d/d", "lt": "now"}}},
    {"range": {"ip": {"gte": "10.0.0.0", "lte": "10.0.1.255"}}}, {"exists": {"field": "b"}}, {"ids": {"values": ["d1"]}},
    {"prefix": {"k": {"value": "KEY", "case_insensitive": True}}}, {"wildcard": {"k": "key-?"}},
    {"match": {"t": {"query": "quick fox", "operator": "and"}}}, {"match_phrase": {"t": "brown fox"}},
    {"multi_match": {"query": "fox", "fields": ["t", "k"]}}, {"constant_score": {"filter": {"term": {"b": True}}}},
    {"query_string": {"query": "k:key-1 OR n:>5"}},
    {"bool": {"must": [{"term": {"k": "key-2"}}], "should": [{"range": {"d": {"gt": 1.5}}}], "minimum_should_match": 1,
              "must_not": [{"term": {"ip": "10.0.0.0/24"}}], "filter": [{"exists": {"field": "ts"}}]}},
]
for query in queries:
    seed("query-dsl", json.dumps({"query": query, "size": 3, "sort": [{"n": "desc"}, "_doc"], "_source": ["k", "n"],
                                  "track_total_hits": True}))
seed("query-dsl", json.dumps({"size": 2, "search_after": [5, 3], "sort": [{"ts": {"order": "asc", "format": "epoch_millis"}}]}))

for text in ["2026-11-29T10:15:30Z", "now-4h/h", "2026-11-29||+1M/d", "1764400000000", "yyyy-MM-dd\n2026-02-29",
             "epoch_second\n1764400000.5", "strict_date_optional_time||epoch_millis\nnow+1w/w", "dd/MM/yyyy HH:mm\n29/11/2026 10:15"]:
    seed("dates", text)
for text in ["k:key-1 AND n:>5", "t:(quick OR brown) -b:false", "ts:[now-1d TO now]", "ip:10.0.0.0/8", "_exists_:k",
             "\"quick brown\"~2", "k:key* AND NOT i:{1 TO 5}"]:
    seed("query-string", text)
seed("indexing", json.dumps({"properties": {"ip": {"type": "ip"}, "ts": {"type": "date", "format": "epoch_second"}}})
     + "\n" + json.dumps({"ip": "::1", "ts": 1764400000, "a": {"b": [1, 2.5, "x", None, True]}}))

golden = json.load(open(os.path.join(corpus, "liquid/golden_liquid.json")))
for case in golden.get("tests", golden if isinstance(golden, list) else []):
    if isinstance(case, dict) and isinstance(case.get("template"), str):
        seed("liquid", case["template"])

for folder in [os.path.join(root, "stories"), os.path.join(corpus, "tines")]:
    for file in sorted(os.listdir(folder)):
        if file.endswith((".yaml", ".yml", ".json")):
            seed("story", open(os.path.join(folder, file), "rb").read())

print(" ".join("%s: %d" % item for item in sorted(counts.items())))

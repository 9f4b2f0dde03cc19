"""Reads every hit of an index with Elastic's official Python client: a search_after loop (Quarry has no scroll or
point in time yet, so helpers.scan cannot run), the same requests QuarryElastic's iterator sends.

Usage: python3 bench/http_iterate.py URL INDEX PAGE_SIZE   (ES_AUTHORIZATION: the Authorization header value)
"""
import os
import resource
import sys
import time

from elasticsearch import Elasticsearch

url, index, page_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
es = Elasticsearch(url, headers={"Authorization": os.environ["ES_AUTHORIZATION"]}, request_timeout=600)
started = time.perf_counter()
count = 0
after = None
while True:
    kwargs = {"index": index, "size": page_size, "sort": ["_doc"],
              "track_total_hits": False, "query": {"match_all": {}}}
    if after is not None:
        kwargs["search_after"] = after
    hits = es.search(**kwargs)["hits"]["hits"]
    count += len(hits)
    if len(hits) < page_size:
        break
    after = hits[-1]["sort"]
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"Python client search_after: {count} hits in {seconds:.2f} s, {count / seconds:.0f} hits/s, VmHWM: {peak} kB")

#!/usr/bin/env python3
"""Writes the Liquid benchmark's workloads (templates, data, partials) to one JSON file that both the Swift
benchmark and python-liquid read, so that both render exactly the same thing.

    bench/liquid/workloads.py OUT.json [GOLDEN.json]
"""
import json
import os
import random
import sys

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1]
golden = sys.argv[2] if len(sys.argv) > 2 else None
rng = random.Random(7)

hosts = []
for i in range(1000):
    contacted = rng.random() < 0.1
    first = 1795939050 + rng.randrange(0, 3600)
    hosts.append({
        "name": rng.choice(["ws", "srv", "lab", "dc"]) + f"-{i:04d}.corp.example" if rng.random() < 0.9 else None,
        "ip": f"10.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 2}",
        "queries": rng.randrange(1, 500),
        "first_seen": first,
        "last_seen": first + rng.randrange(0, 7200),
        "bytes_out": rng.randrange(0, 4 * 1048576) if contacted else 0,
        "contacted": contacted,
    })

def read(name):
    with open(os.path.join(here, name)) as f:
        return f.read()

workloads = [
    {
        "name": "hunt report, 1,000 hosts (HTML)",
        "cases": [{
            "template": read("hunt_report.liquid"),
            "data": {
                "domain": "update.evil-cdn.example",
                "addresses": ["203.0.113.66", "203.0.113.67"],
                "run": {"guid": "5b2f0e8c-0000-4000-8000-000000000001", "started": 1795939050},
                "hosts": hosts,
            },
            "partials": {},
        }],
    },
    {
        "name": "search body (JSON)",
        "cases": [{
            "template": read("search_body.liquid"),
            "data": {
                "size": 1000,
                "fields": ["@timestamp", "client.ip", "dns.question.name", "destination.ip"],
                "domain": "Update.Evil-CDN.example",
                "hours": 4,
                "addresses": ["203.0.113.66", "203.0.113.67"],
                "after": [1795939050000, 41],
            },
            "partials": {},
        }],
    },
]

if golden:
    with open(golden) as f:
        tests = json.load(f)["tests"]
    workloads.append({
        "name": "golden cases (%d valid)" % sum(1 for t in tests if not t.get("invalid")),
        "cases": [
            {"template": t["template"], "data": t.get("data", {}), "partials": t.get("templates", {})}
            for t in tests if not t.get("invalid")
        ],
    })

with open(out, "w") as f:
    json.dump({"workloads": workloads}, f)

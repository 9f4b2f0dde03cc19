#!/usr/bin/env python3
"""python-liquid 2.x rendering the benchmark's workloads: the peer that QuarryLiquid is measured against.

    bench/liquid/python_liquid.py WORKLOADS.json [SECONDS]

Prints one JSON line per workload and mode: renders per second with parsing each time ("parse+render") and with
templates parsed once ("render").
"""
import json
import sys
import time

import liquid
from liquid import DictLoader, Environment

workloads = json.load(open(sys.argv[1]))["workloads"]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0

def run(cases, parse_each_time):
    environments = [Environment(loader=DictLoader(case["partials"])) for case in cases]
    parsed = [] if parse_each_time else [env.from_string(case["template"]) for env, case in zip(environments, cases)]
    renders = 0
    start = time.perf_counter()
    while True:
        for index, case in enumerate(cases):
            try:
                if parse_each_time:
                    environments[index].from_string(case["template"]).render(**case["data"])
                else:
                    parsed[index].render(**case["data"])
            except Exception:
                pass
            renders += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return renders / elapsed

for workload in workloads:
    for mode, each in (("parse+render", True), ("render", False)):
        rate = run(workload["cases"], each)
        print(json.dumps({"engine": "python-liquid " + liquid.__version__, "workload": workload["name"],
                          "mode": mode, "renders_per_second": rate}), flush=True)

"""Renders Liquid templates with python-liquid 2, the reference the Liquid tests compare Quarry's engine with.

Reads a JSON list of {"template": ..., "data": {...}} from the file named by the first argument and prints a JSON
list of rendered strings (or {"error": ...}) in the same order.
"""
import json
import sys

import liquid

if not liquid.__version__.startswith("2."):
    sys.exit(f"python-liquid 2 is needed, found {liquid.__version__}")

cases = json.load(open(sys.argv[1]))
environment = liquid.Environment()
results = []
for case in cases:
    try:
        results.append(environment.from_string(case["template"]).render(**case["data"]))
    except Exception as error:  # the comparison reports it
        results.append({"error": f"{type(error).__name__}: {error}"})
json.dump(results, sys.stdout)

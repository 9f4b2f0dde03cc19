"""Generated DNS events and a brute-force reading of Sigma rules over them, the reference `quarry hunt sigma` is
checked against.

  python sigma_oracle.py generate SEED COUNT OUT.ndjson   # Packetbeat-shaped DNS events as _bulk lines
  python sigma_oracle.py evaluate OUT.ndjson RULE.yml...  # {"RULE.yml": [ids the rule matches], ...} as JSON

The reading follows Sigma's specification for the parts the rules use: a selection is a map (every field must match)
or a list of maps (any); a field's list of values is any of them (all of them with `|all`); plain values compare
without case, `*` and `?` being wildcards; `contains`, `startswith`, `endswith`, `re` (Python's re.search) and `cidr`;
conditions with `and`, `or`, `not`, parentheses, `1 of X*`, `all of X*` and `them`. A missing field matches
nothing. It needs PyYAML (which pySigma brings).
"""
import fnmatch
import ipaddress
import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone

import yaml


def generate(seed, count, out):
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    consonants = "bcdfghjklmnpqrstvwxz"
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"

    def label(alphabet, low, high):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    def name():
        kind = rng.randrange(12)
        if kind == 0:
            return rng.choice(["www.google.com", "mail.example.org", "cdn-12.akamaiedge.net", "s3.amazonaws.com",
                               "api.github.com", "evil-cdn.example", "notduckdns.org", "tkt.com", "z.topx",
                               "nip.io.evil", "update.microsoft.com"])
        if kind == 1:
            return f"{label(letters, 38, 62)}.t.{rng.choice(['tunnel.example', 'amazonaws.com', 'dnscat.example'])}"
        if kind == 2:
            return f"{label(consonants, 5, 9)}{label('aeiou', 0, 2)}.{rng.choice(['com', 'net', 'info'])}"
        if kind == 3:
            return rng.choice(["update.", "c2.", "x.", ""]) + rng.choice(
                ["evil-cdn.example", "duckdns.org", "no-ip.biz", "evil-cdn.example.com"])
        if kind == 4:
            return rng.choice(["_dmarc.example.com", "s1._domainkey.example.com", "cmd.tunnel.example",
                               "_domainkey.example.net", "txt.data.example"])
        if kind == 5:
            return f"{label(letters, 3, 8)}.{rng.choice(['tk', 'top', 'xyz', 'zip', 'mov', 'com', 'to'])}"
        if kind == 6:
            return ".".join(label(letters, 20, 40) for _ in range(rng.randint(2, 5))) + ".exfil.example"
        if kind == 7:
            return rng.choice([f"10-0-{rng.randint(0, 9)}-1.nip.io", f"1.2.3.{rng.randint(1, 9)}.sslip.io",
                               "nip.io", "sslip.io.example"])
        if kind == 8:
            return rng.choice(["pool.xmr.example", "monero.crypto-pool.fr", "eth.nanopool.org", "xmrig.example",
                               "minexmr.com"])
        return f"{label(letters, 3, 10)}.{rng.choice(['example.com', 'example.org', 'corp.example'])}"

    with open(out, "w") as handle:
        for n in range(count):
            question = name()
            labels = question.split(".")
            event = {
                "@timestamp": (now - timedelta(seconds=rng.randint(60, 20 * 3600))).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "event": {"dataset": "dns", "kind": "event"},
                "client": {"ip": rng.choice([f"10.1.0.{rng.randint(2, 60)}", f"10.9.{rng.randint(0, 3)}.7"])},
                "dns": {
                    "question": {
                        "name": question,
                        "registered_domain": ".".join(labels[-2:]) if len(labels) >= 2 else question,
                        "type": rng.choice(["A", "A", "A", "AAAA", "TXT", "MX", "NULL", "ANY"]),
                    },
                    "response_code": rng.choice(["NOERROR", "NOERROR", "NXDOMAIN", "SERVFAIL"]),
                },
            }
            handle.write(json.dumps({"index": {"_index": "packetbeat-sigma", "_id": f"s{n}"}}) + "\n")
            handle.write(json.dumps(event) + "\n")


def lookup(document, path):
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def value_matches(actual, expected, modifiers):
    if actual is None:
        return False
    if isinstance(actual, list):
        return any(value_matches(item, expected, modifiers) for item in actual)
    text = str(actual)
    if "re" in modifiers:
        return re.search(str(expected), text) is not None
    if "cidr" in modifiers:
        try:
            return ipaddress.ip_address(text) in ipaddress.ip_network(str(expected), strict=False)
        except ValueError:
            return False
    pattern = str(expected).lower()
    if "contains" in modifiers:
        pattern = f"*{pattern}*"
    elif "startswith" in modifiers:
        pattern = f"{pattern}*"
    elif "endswith" in modifiers:
        pattern = f"*{pattern}"
    return fnmatch.fnmatchcase(text.lower(), pattern)


def selection_matches(document, selection):
    if isinstance(selection, list):
        return any(selection_matches(document, item) for item in selection)
    for key, expected in selection.items():
        field, *modifiers = key.split("|")
        values = expected if isinstance(expected, list) else [expected]
        actual = lookup(document, field)
        test = all if "all" in modifiers else any
        if not test(value_matches(actual, value, modifiers) for value in values):
            return False
    return True


def condition_matches(document, condition, detection):
    tokens = re.findall(r"\(|\)|[^\s()]+", condition)
    position = 0

    def names(pattern):
        if pattern == "them":
            return [name for name in detection if name != "condition"]
        return [name for name in detection if name != "condition" and fnmatch.fnmatchcase(name, pattern)]

    def primary():
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            result = disjunction()
            position += 1  # ")"
            return result
        if token == "not":
            return not primary()
        if token in ("1", "all") and position < len(tokens) and tokens[position] == "of":
            pattern = tokens[position + 1]
            position += 2
            results = [selection_matches(document, detection[name]) for name in names(pattern)]
            return any(results) if token == "1" else all(results)
        return selection_matches(document, detection[token])

    def conjunction():
        nonlocal position
        result = primary()
        while position < len(tokens) and tokens[position] == "and":
            position += 1
            right = primary()
            result = result and right
        return result

    def disjunction():
        nonlocal position
        result = conjunction()
        while position < len(tokens) and tokens[position] == "or":
            position += 1
            right = conjunction()
            result = result or right
        return result

    return disjunction()


def evaluate(events_file, rules):
    documents = []
    with open(events_file) as handle:
        lines = handle.read().splitlines()
    for action, source in zip(lines[0::2], lines[1::2]):
        documents.append((json.loads(action)["index"]["_id"], json.loads(source)))
    result = {}
    for path in rules:
        with open(path) as handle:
            detection = yaml.safe_load(handle)["detection"]
        result[path] = sorted(doc_id for doc_id, document in documents
                              if condition_matches(document, detection["condition"], detection))
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        evaluate(sys.argv[2], sys.argv[3:])

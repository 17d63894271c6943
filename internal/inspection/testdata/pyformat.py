"""Python's side of TestInterpolationMatchesPython.

Reads {"inventory", "plugin_data", "node", "templates", "compare"} on stdin and prints, for each
template, what Python's str.format gives (or the exception class when it raises), and for each
pair to compare, Python's ==, < and the TypeError of <. Objects keep sorted keys, as Ironwork
prints them.
"""
import json
import sys


def sorted_object(pairs):
    return dict(sorted(pairs))


class Node:
    def __init__(self, attrs):
        self.__dict__.update(attrs)


doc = json.loads(sys.stdin.read(), object_pairs_hook=sorted_object)
ctx = {"inventory": doc["inventory"], "plugin_data": doc["plugin_data"], "node": Node(doc["node"])}
out = {"format": [], "compare": []}
for tpl in doc["templates"]:
    try:
        out["format"].append({"ok": True, "value": tpl.format(**ctx)})
    except Exception as e:
        out["format"].append({"ok": False, "error": type(e).__name__})
for a, b in doc["compare"]:
    try:
        lt = a < b
        err = ""
    except TypeError:
        lt, err = False, "TypeError"
    out["compare"].append({"eq": a == b, "lt": lt, "error": err, "str": str(a)})
print(json.dumps(out))

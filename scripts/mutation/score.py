"""The score per file of a Stryker JSON report: killed (and timed out) over every mutant a test
could have killed (survived and not covered included); ignored and compile-error mutants do not
count, nor do the survivors listed in equivalent-mutants.md beside this file (mutants no test can
kill, each with its reason). A listed mutant that no longer survives is named, so the list stays true.
Usage: python3 score.py mutation-report.json [equivalent-mutants.md]"""
import json
import os
import re
import sys

KILLED = {"Killed", "Timeout"}
LIVE = {"Survived", "NoCoverage"}
# - `File.cs` · Mutator name · `original` → `replacement` — reason
ENTRY = re.compile(r"^- `([^`]+)` · ([^·]+?) · `(.+)` → `(.*)` — .+$")


def equivalents(path):
    listed = {}
    with open(path, encoding="utf-8") as text:
        for number, line in enumerate(text, 1):
            match = ENTRY.match(line.rstrip("\n"))
            if match:
                listed[(match[1], match[2].strip(), match[3], match[4])] = 0
            elif line.startswith("- `"):
                sys.exit(f"{path}:{number}: not an entry (- `file` · mutator · `code` → `replacement` — reason): {line.strip()}")
    return listed


def one_line(text):
    return " ".join(text.split())


def original(source, location):
    """The mutated code as written, on one line (Stryker's columns are 1-based, the end exclusive)."""
    lines = source.split("\n")
    start, end = location["start"], location["end"]
    if start["line"] == end["line"]:
        return lines[start["line"] - 1][start["column"] - 1:end["column"] - 1]
    middle = lines[start["line"]:end["line"] - 1]
    return one_line(" ".join([lines[start["line"] - 1][start["column"] - 1:], *middle, lines[end["line"] - 1][:end["column"] - 1]]))


report = json.load(open(sys.argv[1], encoding="utf-8"))
listed = equivalents(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "equivalent-mutants.md"))
total_killed = total_live = total_equivalent = 0
rows = []
for path, file in sorted(report["files"].items()):
    name = path.split("/src/Packet.Agent/", 1)[-1]
    killed = live = equivalent = 0
    for mutant in file["mutants"]:
        key = (name, mutant["mutatorName"], original(file["source"], mutant["location"]), one_line(mutant.get("replacement", "")))
        if mutant["status"] in KILLED:
            killed += 1
        elif mutant["status"] in LIVE and key in listed:
            listed[key] += 1
            equivalent += 1
        elif mutant["status"] in LIVE:
            live += 1
    if killed + live + equivalent == 0:
        continue
    total_killed += killed
    total_live += live
    total_equivalent += equivalent
    rows.append((name, killed, live, equivalent))

width = max((len(r[0]) for r in rows), default=4)
print(f"{'file':<{width}}  killed  survived  equivalent  score")
for name, killed, live, equivalent in rows:
    score = f"{100 * killed / (killed + live):5.1f}%" if killed + live else "    -"
    print(f"{name:<{width}}  {killed:>6}  {live:>8}  {equivalent:>10}  {score}")
if total_killed + total_live:
    print(f"{'all':<{width}}  {total_killed:>6}  {total_live:>8}  {total_equivalent:>10}  {100 * total_killed / (total_killed + total_live):5.1f}%")

mutated = {r[0] for r in rows}
stale = [key for key, seen in listed.items() if seen == 0 and key[0] in mutated]
for file, mutator, code, replacement in stale:
    print(f"equivalent-mutants.md lists a mutant that did not survive this run: {file} · {mutator} · {code} → {replacement}", file=sys.stderr)

"""Summarise Nsight Compute's per-SASS-instruction source counters (the CSV `bench/ncu_sass_counts.sh` writes): the
instructions one warp executes, by opcode and by stretch of code, and where the warps' stall samples fall.

    python bench/sass_counts.py short_f16_b128.csv                # opcodes, then stretches
    python bench/sass_counts.py rows_f16_b128.csv --listing 1300 1500

A stretch is a run of consecutive instructions that each warp executed the same number of times (a loop body, a
branch taken once, code never run): the chunk loop and the one-off parts of a kernel fall apart that way without
line information.
"""

import argparse
import collections
import csv


def load(path):
    """The CSV's instructions: dicts of source text, executions (all warps), stall samples and samples per reason."""
    rows = list(csv.reader(open(path)))
    header = rows[1]
    col = {h: i for i, h in enumerate(header)}
    reasons = [h for h in header if h.startswith("stall_") and not h.endswith("(Not Issued)")]
    out = []
    for r in rows[2:]:
        if len(r) < len(header):
            continue
        out.append(dict(src=r[col["Source"]].strip(), n=int(r[col["Instructions Executed"]] or 0),
                        samples=int(r[col["Warp Stall Sampling (All Samples)"]] or 0),
                        stalls={h[6:]: int(r[col[h]] or 0) for h in reasons}))
    return out


def opcode(src):
    words = src.split()
    word = words[1] if words[0].startswith("@") else words[0]  # past a predicate
    return word.split(".")[0]


def stretches(ins, warps):
    """(first, last, executions per warp) of each run of equal counts."""
    runs, start = [], 0
    for k in range(1, len(ins) + 1):
        if k == len(ins) or ins[k]["n"] != ins[start]["n"]:
            runs.append((start, k - 1, ins[start]["n"] / warps))
            start = k
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=16, help="opcodes to list")
    ap.add_argument("--listing", type=int, nargs=2, metavar=("FIRST", "LAST"), help="print these instructions")
    args = ap.parse_args()
    ins = load(args.csv)
    warps = ins[0]["n"]  # the first instruction runs once per warp
    total = sum(i["n"] for i in ins)
    samples = sum(i["samples"] for i in ins) or 1
    print(f"{args.csv}: {warps} warps, {total / warps:.0f} instructions per warp, {samples} stall samples")
    if args.listing:
        for k in range(args.listing[0], args.listing[1] + 1):
            print(f"{k:5d} {ins[k]['n'] / warps:6.2f} {ins[k]['samples']:5d}  {ins[k]['src']}")
        return
    per_op, op_samples = collections.Counter(), collections.Counter()
    for i in ins:
        per_op[opcode(i["src"])] += i["n"]
        op_samples[opcode(i["src"])] += i["samples"]
    print("\n| opcode | per warp | % of samples |\n|---|---|---|")
    for op, n in per_op.most_common(args.top):
        print(f"| {op} | {n / warps:.0f} | {op_samples[op] / samples * 100:.1f} |")
    print("\n| instructions | runs per warp | per warp | % of samples | top stalls (% of samples) |")
    print("|---|---|---|---|---|")
    for first, last, runs in stretches(ins, warps):
        part = ins[first:last + 1]
        n = sum(i["n"] for i in part) / warps
        if n < 20:
            continue
        s = sum(i["samples"] for i in part)
        why = collections.Counter()
        for i in part:
            why.update(i["stalls"])
        top = ", ".join(f"{k} {v / samples * 100:.1f}" for k, v in why.most_common(3) if v)
        print(f"| {first}-{last} | {runs:.0f} | {n:.0f} | {s / samples * 100:.1f} | {top} |")


if __name__ == "__main__":
    main()

"""Precision, recall and F1 of a linkage (left_id,right_id,score; best per left id kept)
against the truth (left_id,right_id), at score 0.5 and at the threshold that gives this linker
its best F1. Usage: prf.py TRUTH LINKS"""
import csv, sys

truth = {r["left_id"]: r["right_id"] for r in csv.DictReader(open(sys.argv[1]))}
best = {}
for r in csv.DictReader(open(sys.argv[2])):
    s = float(r["score"])
    if r["left_id"] not in best or s > best[r["left_id"]][1]:
        best[r["left_id"]] = (r["right_id"], s)


def quality(threshold):
    links = {l: rr for l, (rr, s) in best.items() if s >= threshold}
    tp = sum(1 for l, rr in links.items() if truth.get(l) == rr)
    p = tp / max(1, len(links))
    rc = tp / max(1, len(truth))
    return p, rc, 2 * p * rc / max(1e-9, p + rc)


p, rc, f1 = quality(0.5)
bt = max([0.01 * k for k in range(1, 100)], key=lambda t: quality(t)[2])
bp, brc, bf1 = quality(bt)
print(f"at 0.5: P {p:.3f} R {rc:.3f} F1 {f1:.3f}; best F1 {bf1:.3f} at {bt:.2f} (P {bp:.3f} R {brc:.3f})")

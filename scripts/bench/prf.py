"""Precision, recall and F1 of a linkage (left_id,right_id,score; best per left id kept)
against the truth (left_id,right_id). Usage: prf.py TRUTH LINKS"""
import csv, sys
truth = {}
for r in csv.DictReader(open(sys.argv[1])): truth[r['left_id']] = r['right_id']
best = {}
for r in csv.DictReader(open(sys.argv[2])):
    l, rr, s = r['left_id'], r['right_id'], float(r['score'])
    if l not in best or s > best[l][1]: best[l] = (rr, s)
tp = sum(1 for l,(rr,s) in best.items() if truth.get(l) == rr)
p = tp / max(1, len(best)); rcl = tp / max(1, len(truth)); f1 = 2*p*rcl/max(1e-9, p+rcl)
print(f"links {len(best)} true {len(truth)} tp {tp} precision {p:.4f} recall {rcl:.4f} f1 {f1:.4f}")

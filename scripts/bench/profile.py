"""Reads `perf script -F comm,tid,time,ip,sym` of one import (see scripts/profile-import) and
prints each thread's share of the samples, the functions with most samples of their own, the
allocator's share by caller, and a timeline of the cores each thread kept busy."""

import collections
import re
import sys

RATE = 1999  # samples per second a busy thread gives, as scripts/profile-import records them
STEP = 0.1  # seconds per line of the timeline

# Innermost frames that are the allocator's (mimalloc, which also answers C++ delete) or
# SQLite's own allocation wrappers.
ALLOCATOR = re.compile(r"^(_mi_|mi_|operator delete|operator new|malloc|free|realloc|"
                       r"sqlite3MemMalloc|sqlite3MemFree)")
# Frames passed over when looking for who asked for the memory.
PLUMBING = re.compile(r"(_mi_|mi_|operator delete|operator new|__rust_|__rdl_|alloc::|"
                      r"RawVec|finish_grow|reserve|drop_in_place|sqlite3Malloc|sqlite3_malloc|"
                      r"sqlite3DbMalloc|sqlite3_free|sqlite3DbFree|sqlite3Mem|sqlite3DbRealloc|"
                      r"sqlite3Realloc|dbMallocRawFinish|to_owned|to_string|to_vec|clone|"
                      r"from_iter|collect|extend|spec_|^\[|^(alloc|dealloc|realloc|grow)\w*|"
                      r"^(new|with_capacity|push|insert)\b|^$)")


def samples(path):
    """(tid, time, [innermost frame first]) of each sample."""
    head, frames = None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            if not line[0].isspace():
                if head:
                    yield head[0], head[1], frames
                m = re.match(r"\S+\s+(\d+)\s+([\d.]+):", line)
                head, frames = (m.group(1), float(m.group(2))) if m else None, []
            else:
                parts = line.split(None, 1)
                frames.append(parts[1].strip() if len(parts) > 1 else "?")
    if head:
        yield head[0], head[1], frames


def main(path):
    all_samples = list(samples(path))
    if not all_samples:
        sys.exit(f"no samples in {path}")
    total = len(all_samples)
    start = min(t for _, t, _ in all_samples)
    first_seen = {}
    for tid, t, _ in sorted(all_samples, key=lambda s: s[1]):
        first_seen.setdefault(tid, t)
    order = sorted(first_seen, key=lambda tid: (first_seen[tid], int(tid)))
    label = {tid: ("main" if i == 0 else f"thread {i}") for i, tid in enumerate(order)}

    print(f"samples                  {total}")
    print("by thread (main validates, then appends to the log; the others numbered in the "
          "order they first ran: the name reader first, then the sealer, the key store and the "
          "WAL fold in an order that varies: tell them by their shares beside --timings):")
    per_thread = collections.Counter(tid for tid, _, _ in all_samples)
    last_seen = collections.defaultdict(float)
    for tid, t, _ in all_samples:
        last_seen[tid] = max(last_seen[tid], t)
    for tid in order:
        print(f"  {label[tid]:<10} {100 * per_thread[tid] / total:5.1f}%   "
              f"from {first_seen[tid] - start:5.2f} s to {last_seen[tid] - start:5.2f} s")

    print("functions with most samples of their own:")
    own = collections.Counter(frames[0] if frames else "?" for _, _, frames in all_samples)
    for name, n in own.most_common(15):
        print(f"  {100 * n / total:5.2f}%  {name[:100]}")

    callers = collections.Counter()
    allocating = 0
    for _, _, frames in all_samples:
        if not frames or not ALLOCATOR.match(frames[0]):
            continue
        allocating += 1
        caller = next((f for f in frames[1:] if not PLUMBING.search(f)), "?")
        # Generic arguments dropped, except where the name itself is `<Type as Trait>::f`.
        name = caller if caller.startswith("<") else re.sub(r"<.*", "", caller)
        callers[name[:90]] += 1
    print(f"allocator                {100 * allocating / total:.1f}% of the samples; "
          "by the first caller outside allocation code:")
    for name, n in callers.most_common(20):
        print(f"  {100 * n / total:5.2f}%  {name}")

    print(f"timeline: cores each thread kept busy, per {STEP} s")
    print("   at  " + " ".join(f"{label[tid]:>8}" for tid in order) + "     all")
    steps = collections.defaultdict(collections.Counter)
    for tid, t, _ in all_samples:
        steps[int((t - start) / STEP)][tid] += 1
    for step in sorted(steps):
        busy = [steps[step][tid] / (RATE * STEP) for tid in order]
        print(f"{step * STEP:5.1f}  " + " ".join(f"{b:8.2f}" for b in busy)
              + f"  {sum(busy):6.2f}")


if __name__ == "__main__":
    main(sys.argv[1])

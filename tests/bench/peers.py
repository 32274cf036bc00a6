#!/usr/bin/env python3
"""peers.py BUILD WORKDIR - qstore beside the peers that store BF16 models
losslessly, on the same bytes, one core each: ZipNN's codec in process
(PyPI zipnn, threads=1) and lmz's whole command (PyPI lmzip, -j 1).  Each
peer holds the BF16 weights only; qstore holds BF16 and INT8.  The qstore
figures come from the same `make bench` run (WORKDIR/rows.txt)."""
import os
import subprocess
import sys
import time

import zipnn

B, W = sys.argv[1], sys.argv[2]
LMZ = os.path.join(os.path.dirname(sys.executable), "lmz")


def best_of(n, fn):
    best = None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best, out


def zipnn_codec(data):
    z = zipnn.ZipNN(bytearray_dtype="bfloat16", threads=1)
    # a bytearray: given immutable bytes, zipnn 0.5.4 decodes to different bytes
    tc, comp = best_of(2, lambda: z.compress(bytearray(data)))
    td, back = best_of(3, lambda: z.decompress(comp))
    assert bytes(back) == data, "ZipNN round trip differs"
    return len(comp), len(data) / tc, len(data) / td


def lmz_command(path, size):
    out = path + ".lmz"
    tc, _ = best_of(2, lambda: subprocess.run([LMZ, "compress", "-q", "-f", "-j", "1", path, out], check=True))
    back = path + ".back"
    td, _ = best_of(3, lambda: subprocess.run([LMZ, "decompress", "-q", "-f", "-j", "1", out, back], check=True))
    assert subprocess.run(["cmp", "-s", path, back]).returncode == 0, "lmz round trip differs"
    n = os.path.getsize(out)
    os.unlink(out)
    os.unlink(back)
    return n, size / tc, size / td


def main():
    rows = {}
    with open(os.path.join(W, "rows.txt")) as f:
        for line in f:
            r = line.strip().split("|")
            rows[r[0]] = r
    print()
    print("Peers on the same BF16 bytes (one core each; MB = 1e6 bytes; peers hold BF16 only, qstore BF16 + INT8)")
    print()
    print("| model | tool | holds | size MB | compress MB/s | decode BF16 MB/s | qstore decode / tool decode |")
    print("|---|---|---|---|---|---|---|")
    for m, r in rows.items():
        hi = os.path.join(W, "hi-" + m + ".bin")
        if not os.path.exists(hi):
            continue
        hb, c = int(r[1]), int(r[3])
        t1, dh = float(r[7]), float(r[13])
        with open(hi, "rb") as f:
            data = f.read()
        zs = zipnn_codec(data)
        ls = lmz_command(hi, len(data))
        print(f"| {m} | **qstore** | BF16 + INT8 | {c/1e6:.1f} | {hb/t1/1e6:.0f} | **{dh/1e6:.0f}** | 1.00 |")
        for name, holds, (n, cmb, dmb) in (("ZipNN 0.5.4 codec, in process", "BF16", zs),
                                             ("lmz 1.3.0, whole command", "BF16", ls)):
            print(f"| {m} | {name} | {holds} | {n/1e6:.1f} | {cmb/1e6:.0f} | {dmb/1e6:.0f} | {dh/dmb:.2f} |")
        os.unlink(hi)
    print()
    print("Goals (issue 11): decode BF16 >= 1.0 x zstd -dc and >= 2.5 x lmz, aiming at ZipNN's codec; "
          "pack >= zstd -3 -T1 and >= lmz.")


if __name__ == "__main__":
    main()

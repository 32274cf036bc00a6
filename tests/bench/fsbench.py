"""qstorefs read benchmark (part of `make bench`): one run, one table.

usage: fsbench.py BUILD_DIR WORK_DIR

A >= 500 MB generated BF16 model in 8 shards is packed into WORK_DIR/back;
every measurement that says "cold" uses a fresh mount (an empty kernel cache
for the mount's files and an empty daemon cache), with the container itself
in the page cache, as zstd's input is.
"""
import os
import random
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fs"))

BUILD, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
os.environ["QS_BUILD"] = BUILD
import qsmount as conftest  # noqa: E402  (the Mount helper of the tests)

BLOCK = 1 << 20
CACHE = "64M"   # the default
LOW_ROUNDS = 5  # rounds of the lower-view reads (see below)
rss_peak = [0]


def read_file(path, block=BLOCK):
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(block)
            if not b:
                return n
            n += len(b)


def timed(fn):
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def watch_rss(m, stop):
    while not stop.is_set():
        rss_peak[0] = max(rss_peak[0], m.rss_kib())
        time.sleep(0.05)


def mounted(fn, opts=(), cache=CACHE):
    back = os.path.join(WORK, "back")
    m = conftest.Mount(back, [f"cache_size={cache}", *opts])
    stop = threading.Event()
    t = threading.Thread(target=watch_rss, args=(m, stop))
    t.start()
    try:
        return fn(m)
    finally:
        stop.set()
        t.join()
        m.close()


def lmz_mount(src, read):
    """(MB/s, peak RSS KiB) of READ through lmz's mount of SRC on a fresh
    mount, or None when lmz is not installed (make bench-deps)."""
    lmz = os.path.join(os.path.dirname(sys.executable), "lmz")
    if not os.path.exists(lmz):
        return None
    store, mnt = os.path.join(WORK, "lmz-store"), os.path.join(WORK, "lmz-mnt")
    os.makedirs(mnt, exist_ok=True)
    if not os.path.exists(os.path.join(store, "index.json")):
        subprocess.run([lmz, "add", "--store", store, "--name", "gen8", "-q", src], check=True)
    subprocess.run([lmz, "mount", "--store", store, mnt, "-d", "-q"], check=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while not os.path.isdir(os.path.join(mnt, "gen8")) and time.time() < deadline:
            time.sleep(0.05)
        speed = read(os.path.join(mnt, "gen8"))
        pid = subprocess.run(["pgrep", "-f", f"lmz mount --store {store}"], capture_output=True,
                             text=True).stdout.split()
        hwm = 0
        for p in pid:
            with open(f"/proc/{p}/status") as f:
                hwm = max([hwm] + [int(l.split()[1]) for l in f if l.startswith("VmHWM")])
        return speed, hwm
    finally:
        subprocess.run([lmz, "unmount", mnt], check=False, capture_output=True)


def main():
    src = os.path.join(WORK, "gen8")
    back = os.path.join(WORK, "back")
    os.makedirs(back, exist_ok=True)
    if not os.path.exists(os.path.join(src, "config.json")):
        conftest.gen(src, "--mb", "520", "--hidden", "1536", "--shards", "8")
    qst = os.path.join(back, "gen8.qst")
    conftest.pack_once(src, qst)
    shards = sorted(f for f in os.listdir(src) if f.startswith("model-0"))
    whole = b"".join(open(os.path.join(src, s), "rb").read() for s in shards)
    plain = os.path.join(WORK, "plain.bin")
    with open(plain, "wb") as f:
        f.write(whole)
    size = len(whole)
    del whole
    subprocess.run(["zstd", "-3", "-T1", "-qf", plain, "-o", plain + ".zst"], check=True)
    read_file(qst)
    read_file(plain + ".zst")
    r = {}
    # zstd -dc of the same bytes, one thread, output discarded
    t0 = time.perf_counter()
    subprocess.run(f"zstd -dc -T1 '{plain}.zst' > /dev/null", shell=True, check=True)
    r["zstd -dc (BF16 bytes, 1 thread)"] = size / (time.perf_counter() - t0)
    read_file(plain)
    n, t = timed(lambda: read_file(plain))
    r["plain file from the page cache"] = n / t

    r["FUSE ceiling (zeros from memory, same settings)"] = mounted(
        lambda m: (lambda nt: nt[0] / nt[1])(timed(lambda: read_file(m.path(".qstorefs", "ceiling")))),
        [f"ceiling={size}"])

    def cold_then_warm(m):
        p = m.path("gen8", "model-bf16.safetensors")
        n1, t1 = timed(lambda: read_file(p))
        n2, t2 = timed(lambda: read_file(p))
        return n1 / t1, n2 / t2
    r["cold read, BF16 single-file view"], r["warm re-read (kernel cache)"] = mounted(cold_then_warm)
    for w in (1, 2):
        r[f"cold read, BF16 single-file view, workers={w}"] = mounted(
            lambda m: (lambda nt: nt[0] / nt[1])(timed(lambda: read_file(m.path("gen8", "model-bf16.safetensors")))),
            [f"workers={w}"])
    r["cold read, INT8 single-file view"] = mounted(
        lambda m: (lambda nt: nt[0] / nt[1])(timed(lambda: read_file(m.path("gen8", "model-int8.safetensors")))))
    # the lower views (issue 13): the same INT8 codes decoded, fewer bytes
    # served.  One read moves +-15% on a small VM, so the views are read in
    # rounds (int8, int4, int3, int2, each on a fresh mount) and each view's
    # time is taken against INT8's in the same round: the median of those
    # ratios is the figure
    low, ratio = {}, {}
    for _ in range(LOW_ROUNDS):
        one = {v: mounted(lambda m: timed(lambda: read_file(m.path("gen8", f"model-{v}.safetensors"))),
                          ["lower_views=all"]) for v in ("int8", "int4", "int3", "int2")}
        for v, nt in one.items():
            low.setdefault(v, []).append(nt)
            ratio.setdefault(v, []).append(nt[1] / one["int8"][1])
    low = {v: (ts[0][0], statistics.median(t for _, t in ts)) for v, ts in low.items()}
    ratio = {v: statistics.median(x) for v, x in ratio.items()}
    for v, (n, t) in low.items():
        r[f"cold read, {v.upper()} single-file view (lower_views=all)"] = n / t

    def eight(m):
        got = [0] * len(shards)   # one slot per thread: no shared counter

        def one(i, s):
            got[i] = read_file(m.path("gen8", "bf16", s))
        ts = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(shards)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(got) / (time.perf_counter() - t0)
    r["8 readers, 8 shards, cold (aggregate)"] = mounted(eight)

    def random_4k(m):
        p = m.path("gen8", "model-bf16.safetensors")
        fd = os.open(p, os.O_RDONLY)
        rnd = random.Random(7)
        lat = []
        for _ in range(2000):
            off = rnd.randrange(size - 4096) & ~4095
            t0 = time.perf_counter()
            os.pread(fd, 4096, off)
            lat.append(time.perf_counter() - t0)
        os.close(fd)
        lat.sort()
        return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], statistics.mean(lat)
    p50, p99, mean = mounted(random_4k)

    def shards_in_order(root):
        n, t = timed(lambda: sum(read_file(os.path.join(root, s)) for s in shards))
        return n / t
    r["8 shards read in order, cold"] = mounted(lambda m: shards_in_order(m.path("gen8", "bf16")))
    lmz = lmz_mount(src, shards_in_order)

    def single_then_shards(m):
        n1, t1 = timed(lambda: read_file(m.path("gen8", "model-bf16.safetensors")))
        n2, t2 = timed(lambda: sum(read_file(os.path.join(m.path("gen8", "bf16"), s)) for s in shards))
        with open(f"/proc/{m.proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        return n1 / t1, n2 / t2, hwm
    peak = rss_peak[0]   # the runs above, all at cache_size=CACHE
    sweep = {c: mounted(single_then_shards, cache=c) for c in ("16M", "64M", "256M", "1G")}

    print(f"\nqstorefs reads: {size / 1e6:.0f} MB generated BF16 model, 8 shards; cache_size={CACHE}; "
          f"{os.cpu_count()} cores\n")
    print("| measurement | MB/s |")
    print("|---|---|")
    for k, v in r.items():
        print(f"| {k} | {v / 1e6:.0f} |")
    print(f"\nrandom 4 KiB preads on a cold mount (2000): p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
          f"mean {mean * 1e3:.2f} ms")
    if lmz:
        print(f"\nlmz 1.3.0's mount (PyPI lmzip, `lmz add` + `lmz mount -d`), the same 8 shards read in order, cold: "
              f"{lmz[0] / 1e6:.0f} MB/s, daemon peak RSS {lmz[1] / 1024:.0f} MiB; "
              f"qstorefs / lmz = {r['8 shards read in order, cold'] / lmz[0]:.2f}")
    print("\ncache_size, fresh mount each: the single-file BF16 view read cold, then the 8 shards of the same model "
          "(the same chunks under other files: the kernel's page cache does not have them, the daemon's may)\n")
    print("| cache_size | single-file view, cold, MB/s | then the shards, MB/s | daemon peak RSS |")
    print("|---|---|---|---|")
    for c, (a, b, h) in sweep.items():
        print(f"| {c} | {a / 1e6:.0f} | {b / 1e6:.0f} | {h / 1024:.0f} MiB |")
    print(f"daemon peak RSS over the runs at cache_size={CACHE}: {peak / 1024:.0f} MiB (cache_size {CACHE} + 104 MiB allowed: 48 MiB pinned by reads in flight, 32 MiB of span buffers kept, "
          f"24 MiB fixed)")
    ceiling = r["FUSE ceiling (zeros from memory, same settings)"]
    print(f"goals (issue 11): cold BF16 >= 1.5 x zstd -dc "
          f"({r['cold read, BF16 single-file view'] / r['zstd -dc (BF16 bytes, 1 thread)']:.2f}) and >= 0.5 x the "
          f"FUSE ceiling ({r['cold read, BF16 single-file view'] / ceiling:.2f}); INT8 cold >= 0.7 x the ceiling "
          f"({r['cold read, INT8 single-file view'] / ceiling:.2f}); ahead of lmz's mount")
    print(f"\nlower views through the mount, cold, each on a fresh mount (the whole single-file view read once; "
          f"{LOW_ROUNDS} rounds, medians):\n")
    print("| view | bytes | seconds | MB/s | seconds / INT8's, same round |")
    print("|---|---|---|---|---|")
    for v, (n, t) in low.items():
        print(f"| {v} | {n / 1e6:.1f} MB | {t:.3f} | {n / t / 1e6:.0f} | {ratio[v]:.2f} |")
    print(f"goal (issue 13): reading the int4 view no slower than the INT8 view: {low['int4'][1]:.3f} s vs "
          f"{low['int8'][1]:.3f} s ({ratio['int4']:.2f} x the time, median of {LOW_ROUNDS} rounds)")
    os.unlink(plain)
    os.unlink(plain + ".zst")


main()

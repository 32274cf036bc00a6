"""make soak: 16 readers doing random and sequential reads with verification
across several models on one mount, for SOAK_SECONDS (default 600).  Prints
operations, errors (must be 0) and the daemon's RSS over time (must stay
flat).  usage: soak.py BUILD_DIR WORK_DIR"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fs"))
BUILD, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
os.environ["QS_BUILD"] = BUILD
import qsmount  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
CACHE = "32M"   # smaller than the three models: reads keep decoding


def main():
    back = os.path.join(WORK, "soak-back")
    os.makedirs(back, exist_ok=True)
    specs = {"a": ["--mb", "48", "--hidden", "512", "--seed", "1"],
             "b": ["--mb", "32", "--hidden", "384", "--shards", "3", "--seed", "2"],
             "c": ["--mb", "24", "--hidden", "256", "--dtype", "f16", "--special", "--seed", "3"]}
    want = {}
    for name, args in specs.items():
        src = os.path.join(WORK, f"soak-{name}")
        if not os.path.exists(os.path.join(src, "config.json")):
            qsmount.gen(src, *args)
        if not os.path.exists(os.path.join(back, f"{name}.qst")):
            qsmount.pack(src, os.path.join(back, f"{name}.qst"))
        d = "fp16" if "f16" in args else "bf16"
        for rel in qsmount.files_under(src):
            with open(os.path.join(src, rel), "rb") as f:
                want[(name, d, rel)] = f.read()
    files = list(want)
    m = qsmount.Mount(back, [f"cache_size={CACHE}", "prefetch_max=16M"])
    ops, errors, wrong, nbytes = [0] * 16, [0] * 16, [0] * 16, [0] * 16
    stop = threading.Event()

    def reader(i):
        rnd = random.Random(i)
        while not stop.is_set():
            key = files[rnd.randrange(len(files))]
            content = want[key]
            path = m.path(*key)
            try:
                if i % 2 == 0 or len(content) < 4096:     # sequential, whole file
                    with open(path, "rb") as f:
                        got = f.read()
                    ok = got == content
                    nbytes[i] += len(got)
                else:                                     # random preads
                    fd = os.open(path, os.O_RDONLY)
                    ok = True
                    try:
                        for _ in range(64):
                            off = rnd.randrange(len(content))
                            n = rnd.choice([512, 4096, 65536, 1 << 20])
                            got = os.pread(fd, n, off)
                            ok &= got == content[off:off + n]
                            nbytes[i] += len(got)
                    finally:
                        os.close(fd)
                ops[i] += 1
                wrong[i] += not ok
            except OSError as e:
                errors[i] += 1
                if errors[i] <= 2:
                    print(f"reader {i}: {key}: {e!r}", flush=True)

    def dropper():
        """Empty the page cache every few seconds so that reads keep reaching
        the daemon (root only; otherwise most reads are kernel cache hits)."""
        while not stop.wait(3):
            try:
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("1\n")
            except OSError:
                return

    ts = [threading.Thread(target=reader, args=(i,)) for i in range(16)] + [threading.Thread(target=dropper)]
    t0 = time.time()
    for t in ts:
        t.start()
    print(f"soak: 16 readers (8 sequential, 8 random), 3 models, cache_size={CACHE}, {SECONDS} s")
    print("| t (s) | operations | MB read | errors | wrong bytes | daemon RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    rss = []
    try:
        while time.time() - t0 < SECONDS:
            time.sleep(min(30, max(1, SECONDS / 20)))
            rss.append(m.rss_kib() / 1024)
            print(f"| {time.time() - t0:.0f} | {sum(ops)} | {sum(nbytes) / 1e6:.0f} | {sum(errors)} | {sum(wrong)} "
                  f"| {rss[-1]:.0f} |", flush=True)
        with open(m.path(".qstorefs", "stats")) as f:
            import json
            st = json.load(f)
        print(f"\ndaemon: {st['decoded']['bytes'] / 1e9:.1f} GB decoded, cache hits {st['cache']['hits']}, "
              f"misses {st['cache']['misses']}, evictions {st['cache']['evictions']}, errors {st['errors']}")
    finally:
        stop.set()
        for t in ts:
            t.join()
        log = m.log_text()
        m.close()
    print(f"\nsoak: {sum(ops)} operations, {sum(nbytes) / 1e9:.1f} GB verified, {sum(errors)} errors, "
          f"{sum(wrong)} wrong reads; RSS first {rss[0]:.0f} MiB, last {rss[-1]:.0f} MiB, max {max(rss):.0f} MiB")
    bad = sum(errors) + sum(wrong)
    if bad or "error" in log:
        print(log[-2000:])
    sys.exit(1 if bad else 0)


main()
